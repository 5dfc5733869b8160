"""What trials found: every arm's score beside the baseline's at the same step, the noise floor, the winner.

:class:`TrialResult` prints as a table, gives it as a pandas DataFrame (``result.table``), and
names the best arm (``result.best``), or None when nothing tried helped beyond the noise. Its
:meth:`~TrialResult.summary` is plain data: it is written to the trials folder's
``trials.json`` and into the baseline run's ``run.json``, where
:mod:`gradscope.diagnosis.trial_evidence` reads it to confirm (or not) each finding.

Example:
    >>> summary = {"metric": "held-out accuracy", "task": "classification", "max_steps": 100, "arms": [
    ...     {"arm": "baseline", "title": "baseline", "what": "the model as given", "steps": 100, "before": 0.1,
    ...      "after": 0.3, "baseline_after": 0.3, "improvement": 0.0, "helps": False},
    ...     {"arm": "lr_down", "title": "learning rate /10", "what": "learning rate 1 -> 0.1", "steps": 100,
    ...      "before": 0.1, "after": 0.8, "baseline_after": 0.3, "improvement": 0.5, "floor": 0.02, "helps": True}],
    ...     "best": "lr_down"}
    >>> result = TrialResult(summary)
    >>> result.best["arm"], list(result.table["arm"])
    ('lr_down', ['baseline', 'lr_down'])
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from gradscope.vocabulary import BASELINE_ARM, FIXES, NOISE_ARM, TRIALS_FILE, fmt


#: The table's columns, in order.
COLUMNS = ["arm", "fix", "changed", "steps", "before", "after", "baseline_after", "improvement", "noise_floor",
           "beyond_noise", "loss_before", "loss_after", "note"]


def ranked(helped: list[dict], noise_factor: float, min_improvement: float = 0.0) -> list[dict]:
    """The arms that helped, best first: those that cleared twice the seed gap (or helped on both seeds)
    before those that only beat both of the baseline's seeds (``judged_on="best_seed"``, the weaker
    test); within each, by steps trained, then by improvement. Two arms whose
    improvements differ by no more than the margin an arm must clear to beat the baseline
    (``noise_factor`` times the floor) are a tie. A tie goes to the smaller change
    (:attr:`gradscope.vocabulary.Fix.change`): first an output or data fix (the first in the order
    of the fixes), which removes a cause that the other fixes only work around; then one setting (the
    learning rate, clipping, or an initializer found off scale) before the optimizer itself, a
    layer's activation or cell, and added layers. Of equal changes, the larger improvement
    stays ahead. The user should not rebuild a model for a gain a learning rate gives as well.

    Example:
        >>> arms = [{"arm": "adam", "category": "step_size", "steps": 9, "improvement": 0.59, "floor": 0.03},
        ...         {"arm": "standardize_inputs", "category": "data", "steps": 9, "improvement": 0.55, "floor": 0.03},
        ...         {"arm": "clipnorm", "category": "step_size", "steps": 9, "improvement": 0.41, "floor": 0.04}]
        >>> [a["arm"] for a in ranked(arms, noise_factor=2.0)]
        ['standardize_inputs', 'adam', 'clipnorm']
    """
    weak = [a for a in helped if a.get("judged_on") == "best_seed"]
    if weak and len(weak) < len(helped):
        return (ranked([a for a in helped if a not in weak], noise_factor, min_improvement)
                + ranked(weak, noise_factor, min_improvement))
    order = {name: i for i, name in enumerate(FIXES)}
    rest = sorted(helped, key=lambda a: (-(a["steps"] or 0), -a["improvement"], -finite_or_zero(a.get("after"))))
    out = []
    while rest:
        lead = rest[0]
        tied = [a for a in rest if a["steps"] == lead["steps"] and _tied(lead, a, noise_factor, min_improvement)]
        pick = min(tied, key=lambda a: _tie_key(a, order))
        out.append(pick)
        rest = [a for a in rest if a is not pick]
    return out


def _tied(lead: dict, arm: dict, noise_factor: float, min_improvement: float) -> bool:
    """Whether ``arm`` helped as much as ``lead`` within the noise. Arms that both rescued a baseline that
    went non-finite (an infinite improvement) are compared by their scores, within the held-out noise."""
    if math.isinf(lead["improvement"]) and math.isinf(arm["improvement"]):
        return (finite_or_zero(lead.get("after")) - finite_or_zero(arm.get("after"))
                <= max(noise_factor * max(finite_or_zero(lead.get("se")), finite_or_zero(arm.get("se"))), min_improvement))
    return (lead["improvement"] - arm["improvement"] <= noise_factor * max(_tie_floor(lead), _tie_floor(arm))
            or arm["improvement"] == lead["improvement"])


def _tie_key(arm: dict, order: dict) -> tuple:
    """Who wins a tie: the smaller change; among data and output fixes (change 0) the first tried; then the
    larger improvement."""
    change = _change(arm["arm"])
    return change, order.get(arm["arm"], len(order)) if change == 0 else 0, -arm["improvement"]


def _change(arm: str) -> int:
    """How much of the model an arm changes (:attr:`gradscope.vocabulary.Fix.change`); unknown arms the most."""
    fix = FIXES.get(arm)
    return fix.change if fix is not None else max(f.change for f in FIXES.values()) + 1


def _tie_floor(arm: dict) -> float:
    """The noise an arm's improvement was judged against: the floor, or for an arm judged on both seeds the
    larger of its two held-out standard errors (the seed gap did not count against it)."""
    if arm.get("judged_on") == "both_seeds":
        return max(finite_or_zero(arm.get("se")), finite_or_zero(arm["second_seed"].get("se")))
    return arm.get("floor") or 0.0


def finite_or_zero(x) -> float:
    """``x`` as a float, or 0 when it is None, NaN or infinite."""
    return float(x) if x is not None and math.isfinite(x) else 0.0


def _beyond(improvement, noise: float, noise_factor: float, min_improvement: float) -> bool:
    if improvement is None:
        return False
    return improvement == math.inf or bool(math.isfinite(improvement) and improvement > noise_factor * noise
                                           and improvement >= min_improvement)


def judge_arm(arm: dict, noise_factor: float, min_improvement: float) -> dict:
    """One arm's row with ``helps`` (and ``judged_on``) set from what it measured.

    An arm helps when its improvement over the baseline at the same step clears ``noise_factor``
    times the floor and ``min_improvement`` (``judged_on="one_seed"``). An arm that draws its
    layers' weights anew (:attr:`gradscope.vocabulary.Fix.redraws`: another init, activation or
    cell) does not share the baseline's start, so the seeds' whole gap at the end counts in its
    floor: the start is part of what it changed, and part of the noise. Where the baseline is a
    lottery (its two seeds land far apart), twice their gap can hide a fix that beats both: an arm
    also helps when it beats the baseline by more than the seed gap (once) and scores above the
    better of the baseline's two seeds (``baseline2_after``: the second seed at the same step) by
    ``noise_factor`` times the held-out standard error of that comparison (``se_best_seed``: paired
    with the better seed's rows, since a seed that blew up makes the baseline's pairing noisy
    beyond use) and ``min_improvement``
    (``judged_on="best_seed"``; ranked after the arms that cleared the stricter test). An arm tried
    again from the second seed's start (``second_seed``) also helps when it beats the baseline on
    each seed, at that seed, beyond that seed's held-out standard error alone
    (``judged_on="both_seeds"``): the replication answers the question the seed gap stands for.

    Example:
        >>> arm = {"arm": "lr_down", "category": "step_size", "improvement": 0.06, "floor": 0.43, "se": 0.01,
        ...        "second_seed": {"improvement": 0.81, "se": 0.02}}
        >>> judge_arm(arm, 2.0, 0.02)["judged_on"]
        'both_seeds'
        >>> judge_arm({**arm, "second_seed": {"improvement": 0.01, "se": 0.02}}, 2.0, 0.02)["helps"]
        False
        >>> lottery = {"arm": "output_pairing", "category": "output", "after": 0.97, "baseline_after": 0.56,
        ...            "baseline2_after": 0.23, "improvement": 0.41, "floor": 0.33, "se": 0.03}
        >>> judge_arm(lottery, 2.0, 0.02)["judged_on"]  # 0.41 < 2 x 0.33, but above both seeds' 0.56 and 0.23
        'best_seed'
        >>> judge_arm({**lottery, "after": 0.60, "improvement": 0.04}, 2.0, 0.02)["helps"]  # not past the gap
        False
    """
    arm = {**arm, "helps": False}
    arm.pop("judged_on", None)
    if _redraws(arm["arm"]):
        arm["floor"] = max(arm.get("floor") or 0.0, _ends_gap(arm))
    if arm.get("improvement") is None or arm.get("category") is None:
        return arm
    if _beyond(arm["improvement"], arm.get("floor") or 0.0, noise_factor, min_improvement):
        arm.update(helps=True, judged_on="one_seed")
    elif _beats_best_seed(arm, noise_factor, min_improvement):
        arm.update(helps=True, judged_on="best_seed")
    elif arm.get("second_seed") and all(
            _beyond(imp, finite_or_zero(se), noise_factor, min_improvement)
            for imp, se in ((arm["improvement"], arm.get("se")),
                            (arm["second_seed"].get("improvement"), arm["second_seed"].get("se")))):
        arm.update(helps=True, judged_on="both_seeds")
    return arm


def _redraws(arm: str) -> bool:
    return arm in FIXES and FIXES[arm].redraws


def _ends_gap(arm: dict) -> float:
    """How far apart the baseline's two seeds end, at the arm's step (0 when either is missing or not finite)."""
    first, second = arm.get("baseline_after"), arm.get("baseline2_after")
    return finite_or_zero(abs(first - second)) if first is not None and second is not None else 0.0


def _beats_best_seed(arm: dict, noise_factor: float, min_improvement: float) -> bool:
    """Whether the arm beats the baseline by more than the seed gap and scores above the better of the
    baseline's two seeds beyond the held-out noise (see :func:`judge_arm`)."""
    values = (arm.get("after"), arm.get("baseline_after"), arm.get("baseline2_after"))
    if any(v is None or not math.isfinite(v) for v in values) or not math.isfinite(arm["improvement"]):
        return False
    past_gap = arm["improvement"] > (arm.get("floor") or 0.0)
    se = arm.get("se_best_seed", arm.get("se"))  # paired with the better seed (trials stored before it: the baseline)
    return past_gap and _beyond(values[0] - max(values[1:]), finite_or_zero(se), noise_factor, min_improvement)


def held_back(arms: list[dict], steps: int, noise_factor: float, min_improvement: float, most: int) -> list[str]:
    """The arms worth trying again from the second seed's start: at most ``most`` that trained all
    ``steps``, beat the baseline beyond the held-out noise and by ``min_improvement``, but not beyond
    the seed gap, and are ahead of every arm that helped (so that a second seed can change the answer);
    the largest improvement first.

    Example:
        >>> arms = [{"arm": "lr_down", "category": "step_size", "steps": 90, "improvement": 0.06, "se": 0.01,
        ...          "floor": 0.43},
        ...         {"arm": "adam", "category": "step_size", "steps": 90, "improvement": 0.01, "se": 0.01,
        ...          "floor": 0.43}]
        >>> held_back(arms, 90, 2.0, 0.02, most=2)
        ['lr_down']
    """
    judged = [judge_arm(a, noise_factor, min_improvement) for a in arms]
    best = max((a["improvement"] for a in judged if a["helps"]), default=-math.inf)
    out = [a for a in judged if not a["helps"] and a.get("category") is not None and a.get("steps") == steps
           and a.get("improvement") is not None and math.isfinite(a["improvement"]) and a["improvement"] > best
           and _beyond(a["improvement"], finite_or_zero(a.get("se")), noise_factor, min_improvement)]
    return [a["arm"] for a in sorted(out, key=lambda a: -a["improvement"])[:most]]


def rejudge(summary: dict, noise_factor: float, min_improvement: float) -> dict:
    """The same trials judged with other margins: which arms helped, their ranking and the best, again
    (what each arm measured is kept; nothing is trained). A summary written before arms carried the
    second seed's score at their step (``baseline2_after``) gets it from the second seed's row for the
    arms that trained as long."""
    arms = summary.get("arms", [])
    noise = next((a for a in arms if a["arm"] == NOISE_ARM and a.get("steps")), None)
    if noise is not None:
        arms = [{**a, "baseline2_after": noise.get("after")}
                if "baseline2_after" not in a and a.get("steps") == noise["steps"] else a for a in arms]
    arms = [judge_arm(arm, noise_factor, min_improvement) for arm in arms]
    helped = ranked([a for a in arms if a.get("helps")], noise_factor, min_improvement)
    return {**summary, "arms": arms, "ranking": [a["arm"] for a in helped], "best": helped[0]["arm"] if helped else None,
            "settings": {**summary.get("settings", {}), "noise_factor": noise_factor,
                         "min_improvement": min_improvement}}


def arm_verdict(arm: dict) -> str:
    """What one arm's row says: helps / no better (and where halving stopped it), ``(noise)`` for the
    second seed, nothing for the baseline, or why it did not run.

    Example:
        >>> arm_verdict({"arm": "adam", "steps": 80, "helps": False, "stopped": "stopped at 20 steps"})
        'no better (stopped at 20 steps)'
        >>> arm_verdict({"arm": "skip", "steps": None, "note": "cannot be built"})
        'cannot be built'
    """
    if not arm.get("steps"):
        return arm.get("note") or "not run"
    verdict = ("(noise)" if arm["arm"] == NOISE_ARM else "" if arm["arm"] == BASELINE_ARM else
               "helps on both seeds" if arm.get("judged_on") == "both_seeds" else
               "helps (above both baseline seeds)" if arm.get("judged_on") == "best_seed" else
               "helps" if arm.get("helps") else
               "no better (nor from seed 2)" if arm.get("second_seed") else "no better")
    return f"{verdict} ({arm['stopped']})" if arm.get("stopped") else verdict


def _signed(x) -> str:
    return "-" if x is None else f"{x:+.3f}"


class TrialResult:
    """The outcome of :func:`gradscope.try_fixes`.

    Attributes:
        summary: the whole result as plain data (what ``trials.json`` holds).
        findings: the baseline run's findings, each carrying the trial of its fix
            (:func:`gradscope.diagnosis.trial_evidence.with_trials`).
        path: the trials folder (one run directory per arm under ``runs/``), or None.
    """

    def __init__(self, summary: dict, findings=None, path=None):
        self.summary = summary
        self.findings = findings if findings is not None else []
        self.path = Path(path) if path is not None else None

    @property
    def arms(self) -> list[dict]:
        return list(self.summary.get("arms", []))

    @property
    def helped(self) -> list[dict]:
        """Every arm that helped beyond the noise, best first."""
        by_name = {a["arm"]: a for a in self.arms}
        return [by_name[name] for name in self.summary.get("ranking", []) if name in by_name]

    @property
    def best(self) -> dict | None:
        """The winning arm (its row of the summary), or None when nothing tried helped."""
        best = self.summary.get("best")
        return next((a for a in self.arms if a["arm"] == best), None) if best else None

    @property
    def table(self):
        """One row per arm: arm, fix, changed layers, steps, metric before/after, the baseline's after
        at the same step, improvement, noise floor, beyond noise?, training loss before/after (where
        it shares the baseline's loss and target), and a note."""
        import pandas as pd

        rows = []
        for a in self.arms:
            rows.append({"arm": a["arm"], "fix": a.get("what", ""), "changed": ", ".join(a.get("changed") or []),
                         "steps": a.get("steps"), "before": a.get("before"), "after": a.get("after"),
                         "baseline_after": a.get("baseline_after"), "improvement": a.get("improvement"),
                         "noise_floor": a.get("floor"), "beyond_noise": bool(a.get("helps")),
                         "loss_before": a.get("loss_before"), "loss_after": a.get("loss_after"),
                         "note": a.get("note") or ""})
        return pd.DataFrame(rows, columns=COLUMNS)

    def verdict(self) -> str:
        """One sentence: the best fix and what it did, or that nothing tried helped."""
        best, metric = self.best, self.summary.get("metric", "score")
        if best is None:
            tried = sum(1 for a in self.arms if a["arm"] not in (BASELINE_ARM, NOISE_ARM) and a.get("steps"))
            return (f"nothing tried helped beyond the noise ({tried} fixes, {metric} within "
                    f"{fmt(self.summary.get('noise_floor'))} of the baseline or below it)")
        return (f"best: {best['what']} ({metric} {fmt(best['after'])} vs {fmt(best['baseline_after'])} for the "
                f"baseline after {best['steps']} steps; {len(self.helped)} of the fixes helped)")

    def __str__(self) -> str:
        s = self.summary
        head = (f"trials of {s.get('model', 'the model')}: {s.get('metric')} on {s.get('rows', {}).get('held_out', '?')} "
                f"held-out rows, up to {s.get('max_steps')} steps of {s.get('batch_size', '?')} rows per arm "
                f"({s.get('used_steps', '?')} steps in all, {s.get('seconds', '?')} s)")
        lines = [head, f"  {'arm':<54} {'steps':>5} {'before':>7} {'after':>7} {'vs base':>8}  verdict"]
        for a in self.arms:
            if not a.get("steps"):
                lines.append(f"  {a.get('what', a['arm'])[:54]:<54} {'-':>5}  {arm_verdict(a)}")
                continue
            vs = "" if a["arm"] == BASELINE_ARM else _signed(a.get("improvement"))
            lines.append(f"  {a.get('what', a['arm'])[:54]:<54} {a['steps']:>5} {fmt(a.get('before')):>7} "
                         f"{fmt(a.get('after')):>7} {vs:>8}  {arm_verdict(a)}")
        for name, why in (s.get("skipped") or {}).items():
            lines.append(f"  not tried: {name} ({why})")
        lines.append(self.verdict())
        return "\n".join(lines)

    def __repr__(self) -> str:
        return f"<TrialResult: {self.verdict()}>"

    def rows(self) -> list[dict]:
        """The trial table as the report lays it out: per arm, its cells as text (``arm``, ``fix``,
        ``changed``, ``steps``, ``before``, ``after``, ``improvement``, ``floor``, ``verdict``) and
        whether it ``helps`` and is the ``best``."""
        best = self.summary.get("best")
        rows = []
        for a in self.arms:
            ran = bool(a.get("steps"))
            rows.append({"arm": a["arm"], "fix": a.get("what") or a["arm"], "changed": ", ".join(a.get("changed") or []),
                         "steps": a.get("steps") if ran else "-", "before": fmt(a.get("before")) if ran else "-",
                         "after": fmt(a.get("after")) if ran else "-",
                         "improvement": "" if a["arm"] in (BASELINE_ARM, NOISE_ARM) or not ran else
                         _signed(a.get("improvement")),
                         "floor": fmt(a.get("floor")) if ran and a["arm"] != BASELINE_ARM else "",
                         "verdict": arm_verdict(a), "helps": bool(a.get("helps")), "best": a["arm"] == best})
        return rows

    def _repr_html_(self) -> str:
        """In Jupyter: the trial table as the report shows it, the verdict under it, and the
        findings with what their trial says."""
        from gradscope.display import block, escape, findings_html

        metric = self.summary.get("metric", "score")
        header = ["arm", "fix", "changed", "steps", f"{metric} before", "after", "vs baseline", "noise floor", "verdict"]
        cells = ("arm", "fix", "changed", "steps", "before", "after", "improvement", "floor", "verdict")
        rows = [f'<tr class="{"best" if r["best"] else "helps" if r["helps"] else ""}">'
                + "".join(f"<td>{escape(r[c])}</td>" for c in cells) + "</tr>" for r in self.rows()]
        head = "".join(f"<th>{escape(h)}</th>" for h in header)
        skipped = "".join(f'<p class="ref">not tried: {escape(k)} ({escape(v)})</p>'
                          for k, v in (self.summary.get("skipped") or {}).items())
        found = [f.to_dict() if hasattr(f, "to_dict") else f for f in self.findings]
        findings = f"<h3>findings</h3>{findings_html(found)}" if found else ""
        return block(f'<div class="head">trials of {escape(self.summary.get("model", "the model"))}</div>'
                     f'<table class="trials"><tr>{head}</tr>{"".join(rows)}</table>{skipped}'
                     f"<p><strong>{escape(self.verdict())}</strong></p>{findings}")

    def to_dict(self) -> dict:
        return dict(self.summary)

    def save(self, path) -> Path:
        """Write the summary as ``trials.json`` in ``path`` (a folder); returns the file."""
        from gradscope.storage.run_dir import _write_json_atomic

        file = Path(path) / TRIALS_FILE
        _write_json_atomic(file, self.summary)
        return file

    @classmethod
    def load(cls, path) -> TrialResult:
        """Read a trials folder's ``trials.json`` (the findings are those of its baseline run)."""
        from gradscope.diagnosis import findings_of
        from gradscope.storage import load_run

        folder = Path(path)
        summary = json.loads((folder / TRIALS_FILE).read_text(encoding="utf-8"))
        baseline = folder / "runs" / BASELINE_ARM
        findings = findings_of(load_run(baseline)) if (baseline / "run.json").is_file() else []
        return cls(summary, findings, folder)
