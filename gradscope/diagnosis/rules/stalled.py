"""stalled: the loss barely fell, or the accuracy stayed near chance (judged on a whole run)."""

from __future__ import annotations

import math

import numpy as np

from gradscope.diagnosis.causes import data_first, overshoot
from gradscope.diagnosis.finding import Finding
from gradscope.diagnosis.rules import Rule
from gradscope.vocabulary import fmt


def check(t, facts, settings):
    loss = t.losses.replace([np.inf, -np.inf], np.nan)
    accuracy = t.accuracies
    acc = float(accuracy.iloc[-1]) if len(accuracy) else math.nan
    classes = facts.n_classes if facts.n_classes else (settings.default_classes if facts.classification else None)
    chance = 1.0 / classes if classes and classes > 1 else math.nan
    near_chance = (math.isfinite(acc) and math.isfinite(chance)
                   and acc < chance + settings.stalled_above_chance * (1 - chance))
    if facts.kind_of_loss in ("binary", "probabilities") and (loss < 0).any():
        return None  # a cross-entropy below 0: the loss does not fit the labels (output_target_mismatch says so)
    drop = math.nan
    if len(loss) >= 2 and not loss.isna().any():
        first, last = float(loss.iloc[0]), float(loss.iloc[-1])
        drop = (first - last) / abs(first) if first != 0 else 0.0
    flat = math.isfinite(drop) and drop < settings.stalled_drop
    if not (flat or near_chance):
        return None
    step_too_large = overshoot(t, facts, settings)
    reasons = []
    if flat:
        first, last = float(loss.iloc[0]), float(loss.iloc[-1])
        reasons.append(f"the training loss fell only {100 * drop:.1f}% from the first to the last epoch"
                       if round(100 * drop, 1) > 0 else
                       f"the training loss did not fall from the first to the last epoch ({fmt(first)} -> {fmt(last)})")
    if near_chance:
        reasons.append(f"training accuracy ends at {acc:.3f}, near chance ({chance:.2f} for {classes} classes)")
    return Finding(
        kind="stalled",
        severity="high" if near_chance else "medium",
        layers=[],
        steps=[t.first_step, t.last_step],
        summary="training has stalled: " + "; ".join(reasons),
        evidence={"epoch_losses": [float(v) for v in t.losses], "relative_drop": drop,
                  "train_accuracy_last_epoch": acc, "chance_accuracy": chance, "classes": classes,
                  "healthy": f"the loss falls by more than {100 * settings.stalled_drop:.0f}% and accuracy leaves chance"},
        why=step_too_large or "",
        recommendation=data_first(facts, settings) + ("Lower the learning rate (1e-3 to 1e-1 is usual), then check the other findings."
                        if step_too_large else
                        "Check the other findings first (vanishing or exploding gradients, dead or saturated "
                        "units); otherwise raise the learning rate"
                        + (" or use Adam." if "adam" not in (facts.optimizer or "") else ".")),
    )


RULE = Rule("stalled", "stalled training", check, whole_run=True)
