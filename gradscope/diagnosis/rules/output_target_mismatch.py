"""output_target_mismatch: the output layer and the loss cannot fit the target the model is given.

The commonest fix in public bug reports: class labels 0-9 fed to one sigmoid unit under a
binary cross-entropy (which goes negative above 1 and has no minimum there), a bounded output
(sigmoid, tanh, ReLU) on a target outside its range, labels beyond the output's units, a
percentage error (MAPE) on a target that reaches 0 or below, a cosine similarity on one number. Judged
from the model and the target's range (``run.json``'s ``data``), so it holds from the first step.
"""

from __future__ import annotations

import math

from gradscope.diagnosis.causes import one_number_cosine, percentage_error_reaching_zero, target_mismatch
from gradscope.diagnosis.finding import Finding
from gradscope.diagnosis.rules import Rule
from gradscope.vocabulary import fmt


def fix_for(facts) -> str:
    """What to change, for the way the output and loss miss the target."""
    target, kind = facts.target or {}, facts.kind_of_loss
    classes = target.get("classes") or []
    if one_number_cosine(facts):
        return ("Use a regression loss for one number a row: loss='mean_squared_error' (cosine similarity is for "
                "vectors, such as embeddings).")
    if percentage_error_reaching_zero(facts):
        return ("Use mean squared error (or mean absolute error) for a target that reaches 0 or below: a "
                "percentage error is for targets well away from 0.")
    if kind == "binary" and len(classes) > 2:
        return (f"Give the output layer one unit per class with softmax and a categorical loss: "
                f"Dense({max(classes) + 1}, activation='softmax') with loss='sparse_categorical_crossentropy'.")
    if kind == "binary":
        return ("Scale the target into [0, 1] for a binary cross-entropy, or, for a number to predict, use a linear "
                "output with a regression loss (mean squared error).")
    if kind == "probabilities" and classes and facts.head_units and max(classes) >= facts.head_units:
        return f"Give the output layer {max(classes) + 1} units, one per label."
    if kind == "probabilities":
        return "Use a regression loss (mean squared error) with a linear output, or give integer class labels."
    if kind == "regression" and facts.log_target_loss and target.get("min") is not None and target["min"] < 0:
        return (f"Use a loss that takes any value, such as mean squared error, instead of {facts.loss}, or shift the "
                "target above 0 first.")
    return ("Use a linear output layer (activation=None) for a target that is not bounded, or scale the target into "
            "the output activation's range.")


def check(t, facts, settings):
    mismatch = target_mismatch(facts)
    if mismatch is None:
        return None
    losses = [float(v) for v in t.losses]
    negative = [v for v in losses if math.isfinite(v) and v < 0]
    summary = mismatch + (f"; the loss went negative ({fmt(losses[0])} -> {fmt(losses[-1])})"
                          if negative and facts.kind_of_loss in ("binary", "probabilities") else "")
    target = facts.target or {}
    return Finding(
        kind="output_target_mismatch",
        severity="high",
        layers=[],
        steps=[t.first_step, t.last_step],
        summary=summary,
        evidence={"target_min": target.get("min"), "target_max": target.get("max"),
                  "target_classes": len(target.get("classes") or []) or None, "output_activation": facts.head_activation,
                  "output_units": facts.head_units, "loss": facts.loss, "epoch_losses": losses,
                  "healthy": "an output layer and loss whose range and classes cover the target's"},
        why=("a cross-entropy expects targets in [0, 1] (or labels below the output's units): outside them it has no "
             "minimum to descend to" if facts.kind_of_loss in ("binary", "probabilities") else
             "a cosine sees the direction of the output, and one number has only a sign" if one_number_cosine(facts)
             else "a percentage error weighs each row by 1/|y|: rows at or near 0 outweigh all the others"
             if percentage_error_reaching_zero(facts) else
             "no weights can make the output reach targets outside its activation's range"),
        recommendation=fix_for(facts),
    )


RULE = Rule("output_target_mismatch", "output layers that cannot fit the target", check)
