"""The labelled diagnosis suite: six model families, ground truth by intervention, three detectors.

Trains every config of ``benchmarks/suite/families.py`` (249 runs) with a GradientMonitor
writing a run directory, labels it by intervention and direct measurement
(``benchmarks/suite/labels.py``; no detector's signals or thresholds), and scores gradscope's
findings (read back from the run directory, as ``gradscope diagnose`` does) next to the
re-implemented AUTOTRAINER and DeepDiagnosis rules (``benchmarks/suite/baselines.py``), per
finding kind and per family. gradscope's thresholds are tuned on the ``mnist_mlp`` family
only; the other five families are held out.

    python benchmarks/diagnosis_suite.py                      # everything, ~50 minutes on 2 cores (resumable)
    python benchmarks/diagnosis_suite.py --families toy2d_mlp # one family
    python benchmarks/diagnosis_suite.py --quick              # 2 short configs per family, a smoke test
    python benchmarks/diagnosis_suite.py --score              # score saved runs again (no training)
    python benchmarks/diagnosis_suite.py --score --set vanish_ratio=0.05   # with other thresholds
    python benchmarks/diagnosis_suite.py --score --relabel    # labels derived again from the measurements

Results: ``benchmarks/results/suite/`` (``results.jsonl``, one run directory per config,
``table.md``).
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

from suite import baselines as B  # noqa: E402
from suite import families as F  # noqa: E402

from gradscope.diagnosis import DiagnosisSettings  # noqa: E402  (no TensorFlow)

KINDS = ("non_finite", "exploding_gradient", "vanishing_gradient", "saturation", "dead_units", "stalled",
         "output_pairing", "oscillating_loss", "slow_convergence")
DETECTORS = ("gradscope", "AUTOTRAINER", "DeepDiagnosis")
#: Kinds whose label is the run's state at its end: a finding that says it went away during the
#: run (``resolved_at_step``) is history, not a verdict on the end state.
END_STATE_KINDS = ("vanishing_gradient", "saturation", "dead_units")
DEFAULT_OUT = Path(__file__).parent / "results" / "suite"


def quick(cfg) -> dict:
    return {**cfg, "epochs": min(cfg["epochs"], 3), "batch": max(cfg["batch"], 32)}


def run_config(cfg, runs_dir: Path) -> dict:
    """Train one config with a monitor, label it, and measure what the baselines need."""
    from suite import labels as L

    from gradscope import GradientMonitor

    x_tr, y_tr, _, _ = F.dataset(cfg["data"])
    model = F.build(cfg)
    before = L.measure_before(model, cfg)
    base_start = B.measure(model, cfg)
    monitor = GradientMonitor(run=cfg["name"], run_dir=runs_dir / cfg["name"], config=cfg)
    started = time.perf_counter()
    history = model.fit(x_tr, y_tr, batch_size=cfg["batch"], epochs=cfg["epochs"], verbose=0, callbacks=[monitor])
    seconds = time.perf_counter() - started
    losses = [float(v) for v in history.history["loss"]]
    base_end = B.measure(model, cfg)
    measured = L.measure(cfg, model, losses, before)
    return {"config": cfg, "labels": L.derive(measured), "measured": measured, "seconds": seconds,
            "epoch_accuracy": [float(v) for v in history.history.get("accuracy", [])],
            "baseline": {"start": base_start, "end": base_end},
            "family_has_relu": cfg.get("act") == "relu", "run_dir": str(runs_dir / cfg["name"])}


def gradscope_verdict(result, settings) -> dict:
    from gradscope.diagnosis import findings_of
    from gradscope.storage import load_run

    kinds = {f["kind"] for f in findings_of(load_run(result["run_dir"]), settings)
             if not (f["kind"] in END_STATE_KINDS and f["evidence"].get("resolved_at_step") is not None)}
    return {k: k in kinds for k in KINDS}


def verdicts(results, settings) -> dict:
    """Every detector's verdict on every run: ``{detector: [verdict dict per run]}``."""
    return {"gradscope": [gradscope_verdict(r, settings) for r in results],
            "AUTOTRAINER": [B.autotrainer(r) for r in results],
            "DeepDiagnosis": [B.deepdiagnosis(r) for r in results]}


def score(results, said, kind) -> dict | None:
    """Precision, recall and counts of one detector on one kind (None: no rule for it)."""
    tp = fp = fn = 0
    for result, verdict in zip(results, said):
        if verdict[kind] is None:
            return None
        truth = result["labels"][kind]
        tp += bool(verdict[kind]) and truth
        fp += bool(verdict[kind]) and not truth
        fn += (not verdict[kind]) and truth
    return {"tp": tp, "fp": fp, "fn": fn,
            "precision": tp / (tp + fp) if tp + fp else math.nan,
            "recall": tp / (tp + fn) if tp + fn else math.nan}


def _cell(s) -> str:
    if s is None:
        return "no rule"
    p = "-" if math.isnan(s["precision"]) else f"{s['precision']:.2f}"
    r = "-" if math.isnan(s["recall"]) else f"{s['recall']:.2f}"
    return f"{p} / {r}"


def tables(results, said) -> str:
    """Markdown: per kind, a row per family (and the held-out families pooled) for each detector."""
    groups = [(f, [i for i, r in enumerate(results) if r["config"]["family"] == f]) for f in F.FAMILIES]
    groups = [(f, idx) for f, idx in groups if idx]
    held = [i for i, r in enumerate(results) if r["config"]["family"] != F.TUNING_FAMILY]
    if held and len(groups) > 1:
        groups.append(("held-out families", held))
    lines = []
    for kind in KINDS:
        lines += [f"**{kind}**", "", "| family | runs | positives | " + " | ".join(f"{d} P / R" for d in DETECTORS) + " |",
                  "| --- | ---: | ---: | " + " | ".join("---:" for _ in DETECTORS) + " |"]
        for family, idx in groups:
            sub = [results[i] for i in idx]
            positives = sum(r["labels"][kind] for r in sub)
            cells = [_cell(score(sub, [said[d][i] for i in idx], kind)) for d in DETECTORS]
            name = f"{family} (tuning)" if family == F.TUNING_FAMILY else family
            lines.append(f"| {name} | {len(sub)} | {positives} | " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines)


def matrix(results, said) -> str:
    """Markdown: gradscope's precision / recall per kind (rows) and family (columns), positives in brackets."""
    families = [f for f in F.FAMILIES if any(r["config"]["family"] == f for r in results)]
    lines = ["| kind | " + " | ".join(f"{f} (tuning)" if f == F.TUNING_FAMILY else f for f in families)
             + " | held-out pooled |", "| --- |" + " ---: |" * (len(families) + 1)]
    for kind in KINDS:
        cells = []
        for group in [[f] for f in families] + [[f for f in families if f != F.TUNING_FAMILY]]:
            idx = [i for i, r in enumerate(results) if r["config"]["family"] in group]
            sub = [results[i] for i in idx]
            s = score(sub, [said["gradscope"][i] for i in idx], kind)
            cells.append(f"{_cell(s)} ({sum(r['labels'][kind] for r in sub)})")
        lines.append(f"| {kind} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def load_results(path: Path) -> list:
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _json_default(obj):
    import numpy as np

    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    return str(obj)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--families", default=",".join(F.FAMILIES))
    parser.add_argument("--quick", action="store_true", help="2 configs per family, at most 3 epochs")
    parser.add_argument("--out", default=str(DEFAULT_OUT))
    parser.add_argument("--score", action="store_true", help="score the saved runs again, train nothing")
    parser.add_argument("--relabel", action="store_true",
                        help="with --score: derive the labels again from the saved measurements")
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                        help="a diagnosis threshold instead of its default (gradscope.diagnosis.settings)")
    args = parser.parse_args(argv)
    defaults = DiagnosisSettings()
    overrides = dict(item.split("=", 1) for item in args.set)
    settings = DiagnosisSettings(**{k: type(getattr(defaults, k))(v) for k, v in overrides.items()})
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    results_path = out / "results.jsonl"
    families = [f for f in args.families.split(",") if f]
    cfgs = F.all_configs(families)
    if args.quick:
        cfgs = [quick(c) for f in families for c in F.configs(f)[:2]]
    done = {r["config"]["name"]: r for r in load_results(results_path)}
    if not args.score:
        warnings.filterwarnings("ignore")
        todo = [c for c in cfgs if c["name"] not in done]
        started = time.perf_counter()
        for i, cfg in enumerate(todo):
            result = run_config(cfg, out / "runs")
            with open(results_path, "a") as f:
                f.write(json.dumps(result, default=_json_default) + "\n")
            done[cfg["name"]] = result
            truth = [k for k, v in result["labels"].items() if v]
            print(f"[{i + 1}/{len(todo)}] {cfg['name']} {result['seconds']:.1f}s truth={truth}", flush=True)
        print(f"trained {len(todo)} configs in {time.perf_counter() - started:.0f} s")
    results = [done[c["name"]] for c in cfgs if c["name"] in done]
    if args.relabel:
        from suite import labels as L

        for result in results:
            result["labels"] = L.derive(result["measured"])
    said = verdicts(results, settings)
    text = "gradscope, precision / recall (positives):\n\n" + matrix(results, said) + "\n\n" + tables(results, said)
    (out / "table.md").write_text(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
