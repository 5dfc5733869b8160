"""unscaled_inputs: the training inputs are far from unit scale (raw pixels 0-255, features in the thousands).

Large inputs make the first layer's pre-activations large from the first step: sigmoid and tanh
units saturate, ReLU nets take huge steps, and one learning rate cannot suit features of very
different scales. Judged from the inputs ``fit`` was given (``run.json``'s ``data``); a model that
scales its own inputs first (Normalization, Rescaling, BatchNormalization) is left alone, unless its
Normalization layer was never adapted (mean 0, variance 1: it passes the inputs through).
"""

from __future__ import annotations

from gradscope.diagnosis.causes import inputs_off_scale
from gradscope.diagnosis.finding import Finding
from gradscope.diagnosis.rules import Rule


def check(t, facts, settings):
    words = inputs_off_scale(facts, settings)
    if words is None:
        return None
    inputs = facts.inputs
    pixels = inputs.get("min", 0) >= 0 and 200 <= (inputs.get("max") or 0) <= 255
    if facts.idle_normalization:
        fix = (f"Call model.get_layer({facts.idle_normalization!r}).adapt(x_train) before fit: its Normalization "
               "layer has never seen the data (its mean is 0 and its variance 1), so it passes the inputs through "
               "unscaled.")
    else:
        fix = ("Scale the inputs: " + ("divide pixel values by 255, or " if pixels else "")
               + "standardise each feature on the training data (sklearn's StandardScaler, or "
                 "keras.layers.Normalization() adapted on x_train as the model's first layer).")
    return Finding(
        kind="unscaled_inputs",
        severity="medium",
        layers=list(t.layers[:1]),
        steps=[t.first_step, t.last_step],
        summary=words,
        evidence={k: inputs.get(k) for k in ("max_abs_mean", "max_std", "min_std", "rms", "min", "max")}
        | {"healthy": f"features with means and standard deviations within {settings.unit_scale:g} (standardised: 0 and 1)"},
        why=("inputs this large make the first layer's pre-activations large from the first step: saturating units "
             "stop passing gradient, ReLU nets take steps too large, and one learning rate cannot suit features of "
             "very different scales"),
        recommendation=fix,
    )


RULE = Rule("unscaled_inputs", "unscaled inputs", check)
