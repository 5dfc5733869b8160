"""Findings that carry their trial: confirmed when their fix helped, unconfirmed when it did not.

Trials (:func:`gradscope.try_fixes`) train the model again with each fix that applies and
measure what each one does (their summary is plain data, see
:mod:`gradscope.trials.result`). Here each finding is given the trial of its fix
(:attr:`gradscope.vocabulary.Fix.confirms` says which fixes are whose):

* ``confirmed``: a fix of its kind helped beyond the noise floor;
* ``unconfirmed``: its fixes were tried and none helped (reports say so);
* ``not tried``: no fix of its kind applied to the model.

A fix that helped where no rule found anything becomes a finding of its own kind
(:attr:`gradscope.vocabulary.Fix.establishes`): a gradient-flow fix that helps a lot is
evidence of a gradient-flow problem, whatever the thresholds said. No TensorFlow.

Example:
    >>> trials = {"metric": "held-out accuracy", "noise_floor": 0.01, "arms": [
    ...     {"arm": "baseline", "steps": 200, "before": 0.1, "after": 0.3},
    ...     {"arm": "relu_he", "what": "ReLU + He init on d0", "steps": 200, "before": 0.1, "after": 0.9,
    ...      "baseline_before": 0.1, "baseline_after": 0.3, "improvement": 0.6, "floor": 0.01, "seed_gap": 0.01,
    ...      "helps": True}], "ranking": ["relu_he"], "best": "relu_he"}
    >>> found = with_trials([{"kind": "vanishing_gradient", "severity": "medium", "summary": "..."}], trials)
    >>> found[0]["trial"]["status"], found[0]["trial"]["text"]
    ('confirmed', 'tried: ReLU + He init on d0 -> held-out accuracy 0.1 -> 0.9 in 200 steps, baseline 0.1 -> 0.3 (seed noise 0.01): helped')
"""

from __future__ import annotations

import math

from gradscope.vocabulary import BASELINE_ARM, FIXES, NOISE_ARM, fmt

CONFIRMED, UNCONFIRMED, NOT_TRIED = "confirmed", "unconfirmed", "not tried"
#: Kinds a trial cannot speak to (they are about the run, not the model).
_NOT_JUDGED = ("incomplete_run",)
#: Finding kinds that only trials make (no rule has them).
TRIAL_KINDS = ("gradient_flow", "step_size")
#: An improvement of at least this much of the yardstick makes a trial-born finding of high severity.
LARGE_IMPROVEMENT = 0.1

_WHY = {
    "gradient_flow": "changing how the gradient flows through the layers (activation, initialisation, normalisation, "
                     "skips or gated cells) made the model learn much better, so the gradient flow was holding it back",
    "step_size": "changing only the size of the optimizer's steps made the model learn much better, so the step size "
                 "was wrong for it",
    "output_target_mismatch": "fitting the output layer and the loss to the target made the model learn much better",
    "output_pairing": "pairing the output activation with the loss made the model learn much better",
    "unscaled_inputs": "standardising the inputs made the model learn much better",
    "unscaled_target": "standardising the target made the model learn much better",
}


def _tried(trials: dict) -> list[dict]:
    return [a for a in trials.get("arms", []) if a.get("steps") and a["arm"] not in (BASELINE_ARM, NOISE_ARM)]


def trial_text(arm: dict, trials: dict) -> str:
    """``tried: <fix> -> <metric> a -> b in N steps, baseline c -> d (seed noise e)``, and the held-out loss
    where it is comparable (the same loss and target scale as the baseline's)."""
    metric = trials.get("metric", "score")
    text = (f"tried: {arm.get('what', arm['arm'])} -> {metric} {fmt(arm.get('before'))} -> {fmt(arm.get('after'))} in "
            f"{arm['steps']} steps, baseline {fmt(arm.get('baseline_before'))} -> {fmt(arm.get('baseline_after'))} "
            f"(seed noise {fmt(arm.get('seed_gap'))})")
    if arm.get("loss_comparable") and arm.get("loss_after") is not None and arm.get("baseline_loss_after") is not None:
        text += (f"; held-out loss {fmt(arm.get('loss_before'))} -> {fmt(arm.get('loss_after'))}, baseline "
                 f"{fmt(arm.get('baseline_loss_before'))} -> {fmt(arm.get('baseline_loss_after'))}")
    second = arm.get("second_seed")
    if second:
        text += (f"; from the second seed's start {fmt(second.get('before'))} -> {fmt(second.get('after'))}, baseline "
                 f"{fmt(second.get('baseline_before'))} -> {fmt(second.get('baseline_after'))}")
    if arm.get("judged_on") == "both_seeds":
        return text + ": helped on both seeds"
    if arm.get("judged_on") == "best_seed":
        return (text + f": helped (above both of the baseline's seeds, {fmt(arm.get('baseline_after'))} and "
                f"{fmt(arm.get('baseline2_after'))}, though not by twice their gap)")
    return text + (": helped" if arm.get("helps") else ": did not help beyond the noise")


def _fixes_of(kind: str, tried: list[dict]) -> list[dict]:
    return [a for a in tried if a["arm"] in FIXES and kind in FIXES[a["arm"]].confirms]


def _order(arms: list[dict], trials: dict) -> list[dict]:
    ranking = trials.get("ranking", [])
    return sorted(arms, key=lambda a: (ranking.index(a["arm"]) if a["arm"] in ranking else len(ranking),
                                      -(a.get("improvement") if _finite(a.get("improvement")) else -math.inf)))


def _finite(x) -> bool:
    return isinstance(x, (int, float)) and math.isfinite(x)


def trial_of(kind: str, trials: dict) -> dict:
    """The trial of one finding kind: ``{"status", "arm", "arms", "text"}``."""
    tried = _fixes_of(kind, _tried(trials))
    if not tried:
        return {"status": NOT_TRIED, "arms": [], "text": "no fix for it applied to this model, so none was tried"}
    ordered = _order(tried, trials)
    helped = [a for a in ordered if a.get("helps")]
    top = (helped or ordered)[0]
    text = trial_text(top, trials)
    if not helped and len(tried) > 1:
        text = f"{text} (nor did {', '.join(a.get('title', a['arm']) for a in ordered[1:])})"
    return {"status": CONFIRMED if helped else UNCONFIRMED, "arm": top["arm"], "arms": [a["arm"] for a in ordered],
            "helped": [a["arm"] for a in helped], "text": text}


def with_trials(findings: list[dict], trials: dict | None) -> list[dict]:
    """The findings (as dicts), each with its ``trial``, and a finding for each fix that helped where
    no finding was confirmed by it."""
    if not trials:
        return list(findings)
    out = []
    for f in findings:
        if f["kind"] in _NOT_JUDGED:
            out.append(f)
            continue
        out.append({**f, "trial": trial_of(f["kind"], trials)})
    confirmed_by = {arm for f in out for arm in (f.get("trial") or {}).get("helped", [])}
    kinds = {f["kind"] for f in out}
    by_name = {a["arm"]: a for a in _tried(trials)}
    for name in trials.get("ranking", []):
        arm = by_name.get(name)
        if arm is None or name in confirmed_by or name not in FIXES:
            continue
        kind = FIXES[name].establishes
        if kind in kinds:
            continue
        kinds.add(kind)
        out.append(_born(kind, arm, trials))
    return out


def _born(kind: str, arm: dict, trials: dict) -> dict:
    """A finding that only a trial made: the fix that helped, and what it did."""
    metric = trials.get("metric", "score")
    improvement = arm.get("improvement") or 0.0
    return {
        "kind": kind,
        "severity": "high" if improvement >= LARGE_IMPROVEMENT else "medium",
        "layers": list(arm.get("changed") or []),
        "steps": [0, arm["steps"]],
        "summary": (f"{arm.get('title', arm['arm'])} helped where no rule found a problem: {metric} "
                    f"{fmt(arm.get('after'))} vs {fmt(arm.get('baseline_after'))} for the model as given after "
                    f"{arm['steps']} steps ({improvement:+.3f}, noise floor {fmt(arm.get('floor'))})"),
        "evidence": {"trial_arm": arm["arm"], "improvement": improvement, "noise_floor": arm.get("floor"),
                     "after": arm.get("after"), "baseline_after": arm.get("baseline_after"), "steps": arm["steps"],
                     "healthy": "no fix beats the model as given beyond the noise"},
        "why": _WHY.get(kind, "the fix made the model learn much better"),
        "recommendation": f"Apply it: {arm.get('what', arm['arm'])}.",
        "trial": {"status": CONFIRMED, "arm": arm["arm"], "arms": [arm["arm"]], "helped": [arm["arm"]],
                  "text": trial_text(arm, trials)},
    }


def confirmed(findings: list[dict]) -> list[dict]:
    """The findings with unconfirmed ones set aside (confirmed and untried ones stay)."""
    return [f for f in findings if (f.get("trial") or {}).get("status") != UNCONFIRMED]
