"""Trials on the labelled suite: is the top arm the fix the label calls for, and does nothing help a healthy run?

For each selected config of ``benchmarks/suite/families.py`` this trains the run with a monitor
and labels it by intervention, exactly as ``diagnosis_suite.py`` does, then runs
``gradscope.try_fixes`` on the same model as given (the same starting weights) and its training
data, each arm up to the run's own length (at most ``--max-steps``). It scores, per label kind:

* **top-arm agreement**: of the runs with that label, the share whose best arm is one the label
  calls for (``suite.labels.CALLS_FOR``);
* **nothing helped**: of the runs with no label at all, the share where no arm helped beyond noise;
* **findings' P/R** as the rules give them, and once the findings the trials left unconfirmed are
  set aside (``gradscope.diagnosis.trial_evidence.confirmed``), trial-born findings included.

The trial margins (``noise_factor``, ``min_improvement``) are chosen on ``mnist_mlp`` only
(``--tune``: the stored trials judged again, nothing trained) and reported on the other families.

    python benchmarks/trials_suite.py                   # train, label and try (resumable), then score
    python benchmarks/trials_suite.py --score           # score the stored results again
    python benchmarks/trials_suite.py --tune            # margins chosen on mnist_mlp, then scored
    python benchmarks/trials_suite.py --families digits_rnn --per-family 4
    python benchmarks/trials_suite.py --trials-from benchmarks/results/trials_suite --out /tmp/again  # trials only

Results: ``benchmarks/results/trials_suite/`` (``results.jsonl``, ``table.md``).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
import warnings
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from diagnosis_suite import END_STATE_KINDS, KINDS, _json_default, load_results, run_config  # noqa: E402
from suite import families as F  # noqa: E402
from suite.labels import CALLS_FOR  # noqa: E402

DEFAULT_OUT = Path(__file__).parent / "results" / "trials_suite"
#: Hand-made problem configs come first in every family (12: ``families._problems``), but for the toy
#: family (8 per data set: its first data set's are taken) and the recurrent one (10 of its own).
HAND_MADE = {"toy2d_mlp": 8, "digits_rnn": 10}


def selected(family: str, per_family: int, grid: int) -> list[dict]:
    """The hand-made problem configs of a family (at most ``per_family``) and its first ``grid`` sampled ones."""
    cfgs = F.configs(family)
    hand = HAND_MADE.get(family, 12)
    return cfgs[:min(hand, per_family)] + cfgs[hand:hand + grid]


def run_steps(cfg) -> int:
    rows = len(F.dataset(cfg["data"])[0])
    return cfg["epochs"] * math.ceil(rows / cfg["batch"])


def trial_config(cfg, runs_dir: Path, max_steps: int, confirm_arms: int = 0) -> dict:
    """Train, label and try one config; the trials' summary and the rules' findings (without their trials)."""
    from gradscope.diagnosis import findings_of
    from gradscope.storage import load_run

    result = run_config(cfg, runs_dir)
    run = load_run(result["run_dir"])
    run.meta.pop("trials", None)
    findings = [f for f in findings_of(run)
                if not (f["kind"] in END_STATE_KINDS and f["evidence"].get("resolved_at_step") is not None)]
    stored = {"config": cfg, "labels": result["labels"], "measured": result["measured"], "findings": findings,
              "run_seconds": result["seconds"], "run_steps": run_steps(cfg)}
    return tried_again(stored, runs_dir, max_steps, confirm_arms)


def tried_again(stored: dict, runs_dir: Path, max_steps: int, confirm_arms: int = 0) -> dict:
    """A stored result (its run, labels and findings kept) with its trials run again by today's code."""
    from gradscope import try_fixes
    from gradscope.trials.settings import TrialSettings

    cfg = stored["config"]
    x_tr, y_tr, _, _ = F.dataset(cfg["data"])
    steps = min(run_steps(cfg), max_steps)
    started = time.perf_counter()
    trial = try_fixes(F.build(cfg), x_tr, y_tr, batch_size=cfg["batch"], max_steps=steps, verbose=False,
                      out=runs_dir.parent / "trials" / cfg["name"], settings=TrialSettings(confirm_arms=confirm_arms))
    keep = ("arm", "category", "title", "what", "changed", "steps", "before", "after", "baseline_before",
            "baseline_after", "baseline2_after", "improvement", "seed_gap", "se", "se_best_seed", "floor", "helps",
            "loss_comparable", "loss_before", "loss_after", "baseline_loss_before", "baseline_loss_after", "note",
            "second_seed")
    summary = {k: v for k, v in trial.summary.items() if k != "arms"}
    summary["arms"] = [{k: a[k] for k in keep if k in a} for a in trial.summary["arms"]]
    return {**stored, "trials": summary, "trial_seconds": time.perf_counter() - started}


# --- scoring ------------------------------------------------------------------------------------------


#: ``--one-seed``: judge stored trials as if no arm had been tried again from the second seed's start
#: (``confirm_arms=0``), so that one stored run of ``--confirm-arms N`` scores both settings.
ONE_SEED = {"on": False}


def judged(result, noise_factor, min_improvement) -> tuple[dict, list[dict]]:
    """The stored trials judged with these margins, and the findings carrying them."""
    from gradscope.diagnosis.trial_evidence import with_trials
    from gradscope.trials.result import rejudge

    stored = result["trials"]
    if ONE_SEED["on"]:
        stored = {**stored, "arms": [{k: v for k, v in a.items() if k != "second_seed"} for a in stored["arms"]]}
    trials = rejudge(stored, noise_factor, min_improvement)
    return trials, with_trials(result["findings"], trials)


def top_arm_labels(result) -> dict:
    """The labels a best arm answers to: ``output_pairing`` only where the wrong pairing cost the run something
    (``suite.labels.pairing_mattered``). Keras on TensorFlow trains a softmax output under ``from_logits=True``
    from the logits anyway, so no arm can or should beat the model as given there; the finding still stands."""
    from suite.labels import pairing_mattered

    labels = dict(result["labels"])
    if labels.get("output_pairing") and result.get("measured"):
        labels["output_pairing"] = pairing_mattered(result["measured"])
    return labels


def agreement(results, margins) -> dict:
    """Per label kind: runs, and how many had a best arm the label calls for; healthy: how many had none;
    ``any label``: runs with at least one label, and how many had a best arm that one of them calls for
    (a run has one best arm but may carry several labels: lr/10 for an explosion that also saturates)."""
    out = {kind: [0, 0] for kind in KINDS}
    out["healthy"] = [0, 0]
    out["any label"] = [0, 0]
    for r in results:
        trials, _ = judged(r, *margins)
        best = trials["best"]
        labels = top_arm_labels(r)
        labelled = [k for k in KINDS if labels.get(k)]
        if not labelled:
            out["healthy"][0] += 1
            out["healthy"][1] += best is None
        answers = {kind: best is not None and (best in CALLS_FOR[kind] or CALLS_FOR[kind] == "any") for kind in labelled}
        for kind in labelled:
            out[kind][0] += 1
            out[kind][1] += answers[kind]
        if labelled:
            out["any label"][0] += 1
            out["any label"][1] += any(answers.values())
    return out


def prf(results, margins, only_confirmed: bool) -> dict:
    """Per kind: (tp, fp, fn) of the findings, all of them or with unconfirmed ones set aside."""
    from gradscope.diagnosis.trial_evidence import confirmed

    counts = {kind: [0, 0, 0] for kind in KINDS}
    born = {"gradient_flow": ("vanishing_gradient", "saturation"), "step_size": ("oscillating_loss", "slow_convergence")}
    for r in results:
        _, findings = judged(r, *margins)
        if only_confirmed:
            findings = confirmed(findings)
        else:
            findings = [f for f in findings if f["kind"] in KINDS]
        said = {f["kind"] for f in findings}
        if only_confirmed:  # a trial-born finding speaks for the kinds it stands for when the rules missed them
            for kind, covers in born.items():
                if kind in said:
                    said |= {k for k in covers if r["labels"].get(k)}
        for kind in KINDS:
            truth, yes = bool(r["labels"].get(kind)), kind in said
            counts[kind][0] += yes and truth
            counts[kind][1] += yes and not truth
            counts[kind][2] += (not yes) and truth
    return counts


def _pr(c) -> str:
    tp, fp, fn = c
    p = f"{tp / (tp + fp):.2f}" if tp + fp else "-"
    r = f"{tp / (tp + fn):.2f}" if tp + fn else "-"
    return f"{p} / {r}"


def _share(pair) -> str:
    n, k = pair
    return f"{k}/{n} = {k / n:.2f}" if n else "-"


def tables(results, margins) -> str:
    groups = [(f, [r for r in results if r["config"]["family"] == f]) for f in F.FAMILIES]
    groups = [(f, rs) for f, rs in groups if rs]
    held = [r for r in results if r["config"]["family"] != F.TUNING_FAMILY]
    if held:
        groups.append(("held-out pooled", held))
    names = [f"{f} (tuning)" if f == F.TUNING_FAMILY else f for f, _ in groups]
    lines = [f"margins: noise_factor={margins[0]:g}, min_improvement={margins[1]:g}", "",
             "**Top arm is the fix the label calls for** (runs with the label; output_pairing: where the wrong pairing "
             "cost the run something; healthy: no arm helped)", "",
             "| kind | " + " | ".join(names) + " |", "| --- |" + " ---: |" * len(groups)]
    agree = [agreement(rs, margins) for _, rs in groups]
    for kind in (*KINDS, "healthy", "any label"):
        lines.append(f"| {kind} | " + " | ".join(_share(a[kind]) for a in agree) + " |")
    lines += ["", "**Findings' precision / recall: the rules alone -> unconfirmed set aside**", "",
              "| kind | " + " | ".join(names) + " |", "| --- |" + " ---: |" * len(groups)]
    before = [prf(rs, margins, False) for _, rs in groups]
    after = [prf(rs, margins, True) for _, rs in groups]
    for kind in KINDS:
        cells = []
        for b, a in zip(before, after):
            positives = b[kind][0] + b[kind][2]
            cells.append(f"{_pr(b[kind])} -> {_pr(a[kind])} ({positives})")
        lines.append(f"| {kind} | " + " | ".join(cells) + " |")
    seconds = [r["trial_seconds"] / max(r["run_seconds"], 1e-9) for r in results]
    lines += ["", f"trials' time / the run's own time: median {sorted(seconds)[len(seconds) // 2]:.2f}x "
              f"over {len(results)} runs"]
    return "\n".join(lines)


def tune(results) -> tuple:
    """Margins chosen on the tuning family: the best mean of top-arm agreement (per kind) and nothing-helped."""
    tuning = [r for r in results if r["config"]["family"] == F.TUNING_FAMILY]
    best, best_score = None, -1.0
    for factor in (1.0, 1.5, 2.0, 2.5, 3.0, 4.0):
        for least in (0.005, 0.01, 0.02, 0.03, 0.05):
            shares = [k / n for kind, (n, k) in agreement(tuning, (factor, least)).items() if n and kind != "any label"]
            score = sum(shares) / len(shares) if shares else 0.0
            if score > best_score + 1e-9:
                best, best_score = (factor, least), score
    print(f"chosen on {F.TUNING_FAMILY} ({len(tuning)} runs): noise_factor={best[0]:g}, "
          f"min_improvement={best[1]:g} (mean share {best_score:.2f})")
    return best


def main(argv=None):
    from gradscope.trials.settings import DEFAULT_TRIAL_SETTINGS as S

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--families", default=",".join(F.FAMILIES))
    parser.add_argument("--per-family", type=int, default=12, help="hand-made problem configs per family")
    parser.add_argument("--grid", type=int, default=3, help="sampled configs per family")
    parser.add_argument("--max-steps", type=int, default=800, help="the most steps one arm trains")
    parser.add_argument("--out", default=str(DEFAULT_OUT))
    parser.add_argument("--score", action="store_true", help="score the stored results, train nothing")
    parser.add_argument("--tune", action="store_true", help="choose the margins on mnist_mlp, then score")
    parser.add_argument("--confirm-arms", type=int, default=0,
                        help="TrialSettings.confirm_arms: arms held back by the seed gap trained again from seed 2")
    parser.add_argument("--redo", default="", help="config names to train and try again (comma-separated)")
    parser.add_argument("--trials-from", default=None,
                        help="a results folder whose runs, labels and findings are kept: only the trials run again")
    parser.add_argument("--one-seed", action="store_true",
                        help="score as if no arm had been tried again from the second seed (confirm_arms=0)")
    args = parser.parse_args(argv)
    ONE_SEED["on"] = args.one_seed
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / "results.jsonl"
    families = [f for f in args.families.split(",") if f]
    cfgs = [c for f in families for c in selected(f, args.per_family, args.grid)]
    done = {r["config"]["name"]: r for r in load_results(path)}
    if not (args.score or args.tune):
        warnings.filterwarnings("ignore")
        redo = {n for n in args.redo.split(",") if n}
        todo = [c for c in cfgs if c["name"] not in done or c["name"] in redo]
        kept = {r["config"]["name"]: r for r in load_results(Path(args.trials_from) / "results.jsonl")} \
            if args.trials_from else None
        if kept is not None:
            todo = [c for c in todo if c["name"] in kept]
        for i, cfg in enumerate(todo):
            result = (tried_again(kept[cfg["name"]], out / "runs", args.max_steps, args.confirm_arms) if kept is not None
                      else trial_config(cfg, out / "runs", args.max_steps, args.confirm_arms))
            with open(path, "a") as f:
                f.write(json.dumps(result, default=_json_default) + "\n")
            done[cfg["name"]] = result
            truth = [k for k, v in result["labels"].items() if v]
            print(f"[{i + 1}/{len(todo)}] {cfg['name']} run {result['run_seconds']:.1f}s trials "
                  f"{result['trial_seconds']:.1f}s truth={truth} best={result['trials']['best']}", flush=True)
    results = [done[c["name"]] for c in cfgs if c["name"] in done]
    margins = tune(results) if args.tune else (S.noise_factor, S.min_improvement)
    text = tables(results, margins)
    (out / "table.md").write_text(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
