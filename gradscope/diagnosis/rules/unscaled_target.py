"""unscaled_target: a regression target far from unit scale (prices in the hundreds of thousands).

A mean squared error on such a target has gradients in the thousands at the first step: SGD
diverges, and a small enough learning rate leaves the hidden layers barely learning. Judged
from the targets ``fit`` was given (``run.json``'s ``data``).
"""

from __future__ import annotations

from gradscope.diagnosis.causes import target_off_scale
from gradscope.diagnosis.finding import Finding
from gradscope.diagnosis.rules import Rule


def check(t, facts, settings):
    words = target_off_scale(facts, settings)
    if words is None:
        return None
    target = facts.target
    return Finding(
        kind="unscaled_target",
        severity="medium",
        layers=[],
        steps=[t.first_step, t.last_step],
        summary=words,
        evidence={k: target.get(k) for k in ("mean", "std", "min", "max")}
        | {"healthy": f"a target with mean and standard deviation within {settings.unit_scale:g}"},
        why=("the loss and its gradients scale with the target: a mean squared error on values this large makes "
             "first steps huge (or the learning rate that avoids that too small for the hidden layers)"),
        recommendation=("Standardise the target for training, (y - mean) / std with the training data's mean and "
                        "std, and undo it for predictions (sklearn's StandardScaler or TransformedTargetRegressor)."),
    )


RULE = Rule("unscaled_target", "an unscaled target", check)
