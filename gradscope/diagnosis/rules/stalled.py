"""stalled: the loss barely fell, or the accuracy stayed near chance."""

from __future__ import annotations

import math

import numpy as np

from gradscope.diagnosis.finding import Finding
from gradscope.diagnosis.rules import Rule


def check(s, config, settings):
    loss = s.loss.replace([np.inf, -np.inf], np.nan)
    acc = float(s.accuracy.iloc[-1]) if len(s.accuracy) else math.nan
    layers = config.get("layers") or []
    classes = layers[-1] if layers else settings.default_classes
    chance = 1.0 / classes if classes > 1 else math.nan
    near_chance = math.isfinite(acc) and math.isfinite(chance) and acc < settings.stalled_accuracy * chance
    drop = math.nan
    if len(loss) >= 2 and not loss.isna().any():
        first, last = float(loss.iloc[0]), float(loss.iloc[-1])
        drop = (first - last) / first if first > 0 else 0.0
    flat = math.isfinite(drop) and drop < settings.stalled_drop
    if not (flat or near_chance):
        return None
    reasons = []
    if flat:
        reasons.append(f"the training loss fell only {100 * drop:.1f}% from the first to the last epoch")
    if near_chance:
        reasons.append(f"training accuracy ends at {acc:.3f}, near chance ({chance:.2f})")
    return Finding(
        kind="stalled",
        severity="high" if near_chance else "medium",
        layers=[],
        steps=s.steps,
        summary="training has stalled: " + "; ".join(reasons),
        evidence={"epoch_losses": [float(v) for v in s.loss], "relative_drop": drop,
                  "train_accuracy_last_epoch": acc, "chance_accuracy": chance,
                  "healthy": f"the loss falls by more than {100 * settings.stalled_drop:.0f}% and accuracy leaves chance"},
        why="",
        recommendation="Check the other findings first (vanishing or exploding gradients, dead or saturated "
                       "units); otherwise raise the learning rate or use Adam.",
    )


RULE = Rule("stalled", "stalled training", check, whole_run=True)
