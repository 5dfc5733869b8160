"""Why a problem happens and what to change, as far as the run's facts and records tell it.

Shared by the rules: an exploding gradient and a non-finite value can have the same cause, and
a non-finite value is traced to where it started before anyone calls it an explosion.
"""

from __future__ import annotations

import numpy as np

from gradscope.diagnosis.facts import RunFacts
from gradscope.diagnosis.settings import DiagnosisSettings
from gradscope.vocabulary import RELU_LIKE, SATURATING, SATURATION_MARGIN, fmt, times


def output_mismatch(facts: RunFacts) -> str | None:
    """How the output activation and the loss fail to fit each other, or None (or not known)."""
    head, kind, logits = facts.head_activation, facts.kind_of_loss, facts.from_logits
    if rate_can_go_negative(facts):
        return (f"the loss {facts.loss} takes the log of the prediction (a rate of counts), but the output layer's "
                f"{head or 'linear'} activation can go below 0, where the log has no value: the loss turns NaN "
                "(an exponential output keeps the rate positive)")
    if squared_error_on_labels(facts):
        return (f"the output layer applies {head} to class labels, but the loss {facts.loss} is a regression loss: "
                f"its gradient carries the {head}'s slope, which vanishes as an output saturates, so the most wrong "
                "outputs learn slowest (a cross-entropy cancels that slope)")
    if head is None or kind not in ("probabilities", "binary") or logits is None:
        return None
    wants = "softmax" if kind == "probabilities" else "sigmoid"
    if kind == "probabilities" and facts.head_units == 1:
        return (f"the output has one unit under {facts.loss}: one class always has probability 1, so the loss "
                "is 0 whatever the weights and nothing is learned (one unit wants a sigmoid and binary_crossentropy)")
    if logits and head in ("softmax", "sigmoid"):
        if logits_recovered(facts):
            return (f"the output layer applies {head}, but the loss {facts.loss} has from_logits=True, which says "
                    f"it applies {head} again. Keras on TensorFlow notices and takes the logits under the {head} "
                    "inside fit and evaluate, so this training was not hurt; a loss computed eagerly on the "
                    "outputs, and the same model on the JAX or PyTorch backend, apply it twice")
        return (f"the output layer applies {head}, but the loss {facts.loss} (from_logits=True) applies it again: "
                "its gradients are squashed and the loss cannot get near 0")
    if not logits and head != wants:
        return (f"the output layer's activation is {head}, but the loss {facts.loss} expects probabilities "
                f"({wants}): outputs of 0 give log(0), and nothing keeps them summing to 1")
    return None


def rate_can_go_negative(facts: RunFacts) -> bool:
    """Whether a Poisson loss (``y_pred - y * log(y_pred)``) trains an output that can go below 0.

    Example:
        >>> rate_can_go_negative(RunFacts(head_activation="linear", loss="poisson"))
        True
        >>> rate_can_go_negative(RunFacts(head_activation="exponential", loss="poisson"))
        False
    """
    low = OUTPUT_RANGE.get(facts.head_activation or "", (None, None))[0]
    return bool(facts.head_activation is not None and facts.loss_is("poisson")
                and (low is None or low < 0))


def squared_error_on_labels(facts: RunFacts) -> bool:
    """Whether a sigmoid or softmax output is trained on 0/1 class labels (or one-hot rows) with a regression
    loss (mean squared error and its kin) rather than a cross-entropy.

    Example:
        >>> squared_error_on_labels(RunFacts(head_activation="sigmoid", loss="mse",
        ...                                  target={"whole": True, "classes": [0, 1], "min": 0, "max": 1}))
        True
        >>> squared_error_on_labels(RunFacts(head_activation="sigmoid", loss="mse",
        ...                                  target={"whole": False, "min": 0.1, "max": 0.9}))
        False
        >>> squared_error_on_labels(RunFacts(head_activation="sigmoid", loss="mse",  # multi-hot rows (an autoencoder)
        ...                                  target={"shape": [None, 784], "whole": True, "classes": [0, 1]}))
        False
    """
    target = facts.target or {}
    column = all(d in (None, 1) for d in (target.get("shape") or [None])[1:])  # one label a row, not multi-hot rows
    labels = target.get("one_hot") or (column and target.get("whole") and target.get("classes")
                                       and set(target["classes"]) <= {0, 1})
    one_softmax = facts.head_activation == "softmax" and facts.head_units == 1  # constant 1: not a pairing to fix
    return bool(facts.kind_of_loss == "regression" and not facts.log_target_loss and not one_softmax
                and facts.head_activation in ("sigmoid", "softmax") and labels)


def logits_recovered(facts: RunFacts) -> bool:
    """Whether training already used the logits under a softmax/sigmoid output despite ``from_logits=True``.

    Keras's TensorFlow backend finds the logits a softmax or sigmoid output was computed from (the
    activation caches them on its output, and a graph tensor names the op it came from) and computes
    the cross-entropy from them, with a warning. The JAX and PyTorch backends do not.

    Example:
        >>> logits_recovered(RunFacts(head_activation="softmax", from_logits=True, backend="tensorflow",
        ...                           loss="sparse_categorical_crossentropy"))
        True
        >>> logits_recovered(RunFacts(head_activation="softmax", from_logits=True, backend="jax"))
        False
    """
    return bool(facts.from_logits and facts.head_activation in ("softmax", "sigmoid")
                and facts.backend == "tensorflow")


def output_fix(facts: RunFacts) -> str:
    if rate_can_go_negative(facts):
        return ("Give the output layer activation='exponential' (Poisson regression's log link), or 'softplus': "
                "the predicted rate must stay above 0.")
    if squared_error_on_labels(facts):
        return ("Compile with loss='binary_crossentropy' for a sigmoid output (0/1 labels), or a categorical "
                "cross-entropy for a softmax output.")
    wants = "softmax" if facts.kind_of_loss == "probabilities" else "sigmoid"
    if facts.kind_of_loss == "probabilities" and facts.head_units == 1:
        return ("Give the one output unit activation='sigmoid' and compile with loss='binary_crossentropy', or "
                "give the output one softmax unit per class with a categorical cross-entropy.")
    return (f"Give the output layer activation='{wants}' with from_logits=False (the default), or a linear output "
            f"with from_logits=True: keras.losses.{_loss_class(facts)}(from_logits=True).")


def _loss_class(facts: RunFacts) -> str:
    name = facts.loss or ""
    return {"sparse_categorical_crossentropy": "SparseCategoricalCrossentropy",
            "categorical_crossentropy": "CategoricalCrossentropy",
            "binary_crossentropy": "BinaryCrossentropy"}.get(name, "SparseCategoricalCrossentropy")


def trace_non_finite(timeline, facts: RunFacts, settings: DiagnosisSettings) -> dict | None:
    """Where the first NaN/inf started, and whether gradients or weights grew before it.

    Returns ``{step, metric, layer, cause, grad_growth, weight_growth, inf_gradient, inf_update}``
    with ``cause`` one of ``explosion`` (norms grew first, or a gradient, an update or the weights
    went beyond float32's range), ``loss`` (the loss or an op went non-finite while the norms stayed
    in range) or None when nothing is non-finite.
    """
    first = timeline.non_finite
    if first is None:
        return None
    windows = [w for w in timeline.windows if w.first_step <= first["step"]]
    start = timeline.windows[0]
    grad_growth, weight_growth, inf_grad, inf_update = 1.0, 1.0, False, False
    for w in windows:
        with np.errstate(divide="ignore", invalid="ignore"):
            g = (w.grad_max / start.grad_first.reindex(w.grad_max.index)).to_numpy(dtype=float)
            wt = (w.weight_last / start.weight_first.reindex(w.weight_last.index)).to_numpy(dtype=float)
        inf_grad |= bool(np.any(np.isinf(w.grad_max.to_numpy(dtype=float))))
        inf_update |= bool(np.any(np.isinf(w.update_max.to_numpy(dtype=float)))
                           or np.any(np.isinf(w.weight_last.to_numpy(dtype=float))))
        g, wt = g[np.isfinite(g)], wt[np.isfinite(wt)]
        grad_growth = max(grad_growth, float(g.max()) if len(g) else 1.0)
        weight_growth = max(weight_growth, float(wt.max()) if len(wt) else 1.0)
    grew = (inf_grad or inf_update or grad_growth >= settings.explode_grad_growth or weight_growth >= settings.explode_weight_growth)
    at_start = first["step"] == timeline.first_step
    if grew or (at_start and output_mismatch(facts) is None and facts.large_random_init):
        cause = "explosion"
    else:
        cause = "loss"
    return {**first, "cause": cause, "grad_growth": grad_growth, "weight_growth": weight_growth,
            "inf_gradient": inf_grad, "inf_update": inf_update}


def overshoot(timeline, facts: RunFacts, settings: DiagnosisSettings) -> str | None:
    """Words for a learning rate so large that single steps threw the weights far from where
    they were (``update_ratio`` of ``settings.explode_update_ratio`` or more), or None.

    A problem such a step leaves behind (saturated units, a stall) is the step's doing, whatever
    the initialisation was.
    """
    lr = facts.learning_rate
    if lr is None or lr < settings.large_lr:
        return None
    largest = max((float(w.update_ratio_max.max()) for w in timeline.windows if len(w.update_ratio_max)
                   and not np.isnan(w.update_ratio_max.max())), default=0.0)
    if largest < settings.explode_update_ratio:
        return None
    return f"the learning rate {lr:g} changed weights by up to {times(largest)} their own norm in single steps"


def why_exploding(facts: RunFacts, settings: DiagnosisSettings) -> str:
    if facts.large_random_init and facts.act in RELU_LIKE:
        fan = f" with fan-in {facts.layers[0]}" if facts.layers else ""
        return (f"N(0,1) weights{fan} multiply the signal by about sqrt(fan_in/2) per ReLU layer "
                "(He init uses Var(w) = 2/fan_in to keep it level), so activations and gradients "
                "grow geometrically with depth.")
    if facts.learning_rate is not None and facts.learning_rate >= settings.large_lr:
        return f"the learning rate {facts.learning_rate:g} is large enough for single steps to overshoot."
    return ""


def why_vanishing(worst, facts: RunFacts, settings: DiagnosisSettings) -> str:
    act = facts.act
    parts = []
    if act in ("sigmoid", "hard_sigmoid"):
        parts.append("sigmoid' <= 0.25, so every layer multiplies the backpropagated gradient by at most 1/4")
    elif act == "tanh":
        parts.append("tanh' < 1 away from 0, and ~0 where units saturate")
    sat = worst.saturated
    if len(sat) and float(sat.max()) > settings.saturated:
        layer = sat.idxmax()
        text = (f"{100 * float(sat.max()):.0f}% of the outputs of {layer} sit within {SATURATION_MARGIN:g} "
                "of an asymptote")
        if facts.large_random_init:
            fan = facts.layers[0] if facts.layers else None
            text += (f": with N(0,1) weights each unit sums {fan} inputs, so pre-activations have a "
                     f"standard deviation in the tens" if fan else ": N(0,1) weights make pre-activations large")
        parts.append(text + " (where the activation's derivative is ~0)")
    return "; ".join(parts)


def vanishing_remedy(facts: RunFacts) -> str:
    """What to change for a vanishing gradient, for the layers the model has."""
    act = facts.act
    recurrent = facts.recurrent_classes
    if recurrent and recurrent <= {"LSTM", "GRU"}:
        return ("Keep the gated cells' default initializers (Glorot kernels, orthogonal recurrent weights, a forget-gate "
                "bias of 1), train with Adam, and for deep stacks add skip connections or LayerNormalization between "
                "the recurrent layers.")
    if recurrent:
        return ("Use an LSTM or GRU instead of the plain recurrent layers, or a ReLU RNN with identity recurrent "
                "weights (IRNN); clip gradients (clipnorm=1).")
    if facts.conv:
        return ("Use ReLU with He initialisation for the convolutions, put BatchNormalization after each of them, and "
                "for deep stacks add residual connections.")
    if act in SATURATING:
        return ("Use ReLU with He initialisation (Var(w) = 2/fan_in) for the hidden layers; if the "
                f"{act} must stay, use Xavier init and add BatchNormalization. For very deep nets, add "
                "residual connections.")
    return ("Use He initialisation for ReLU-like layers, add BatchNormalization, and for very deep "
            "nets residual connections.")


# --- the data: its scale, and whether the output layer and loss can fit the target -------------

#: The range an output activation can produce (None: unbounded on that side).
OUTPUT_RANGE = {"sigmoid": (0.0, 1.0), "hard_sigmoid": (0.0, 1.0), "softmax": (0.0, 1.0), "tanh": (-1.0, 1.0),
                "softsign": (-1.0, 1.0), "hard_tanh": (-1.0, 1.0), "relu": (0.0, None), "relu6": (0.0, 6.0),
                "softplus": (0.0, None), "exponential": (0.0, None), "elu": (-1.0, None), "selu": (-1.7581, None)}


def _scale_words(stats: dict, settings: DiagnosisSettings) -> str | None:
    mean, std, rms = stats.get("max_abs_mean"), stats.get("max_std"), stats.get("rms")
    if mean is not None and std is not None and (mean > settings.unit_scale or std > settings.unit_scale):
        return f"feature means up to {fmt(mean)} and standard deviations up to {fmt(std)}"
    if rms is not None and 0 < rms < settings.tiny_scale:
        return f"a root mean square of {fmt(rms)}"
    return None


def inputs_off_scale(facts: RunFacts, settings: DiagnosisSettings) -> str | None:
    """Words for training inputs far from unit scale, or None (or not known, or the inputs are indices
    into an Embedding or a lookup, whose scale means nothing)."""
    if not facts.inputs or facts.normalises_inputs or facts.index_inputs:
        return None
    words = _scale_words(facts.inputs, settings)
    return f"the inputs are far from unit scale ({words})" if words else None


def target_off_scale(facts: RunFacts, settings: DiagnosisSettings) -> str | None:
    """Words for a regression target far from unit scale, or None."""
    target = facts.target
    if not target or facts.kind_of_loss != "regression" or target.get("std") is None or facts.log_target_loss:
        return None  # (MSLE and Poisson take the target's log: standardising it would make half of it negative)
    mean, std = abs(target["mean"]), target["std"]
    if mean > settings.unit_scale or std > settings.unit_scale:
        return (f"the regression target is far from unit scale (mean {fmt(target['mean'])}, standard deviation "
                f"{fmt(std)}, {fmt(target['min'])} to {fmt(target['max'])})")
    if 0 < std < settings.tiny_scale and mean < settings.tiny_scale:
        return f"the regression target is tiny (standard deviation {fmt(std)})"
    return None


def target_mismatch(facts: RunFacts) -> str | None:
    """How the output layer and the loss cannot fit the target, or None (or not known).

    The cases, all seen in public bug reports: a cosine similarity on one output number, a percentage
    error on a target that reaches 0 or below (rows near 0 outweigh the rest), class labels beyond 0/1
    fed to a binary cross-entropy (one sigmoid unit for ten digits: the loss can go negative and has
    no minimum), a bounded output activation on a target outside its range (a sigmoid output for
    prices), and labels beyond the output's units.
    """
    target, kind, head = facts.target, facts.kind_of_loss, facts.head_activation
    if one_number_cosine(facts):
        return (f"the loss {facts.loss} compares directions, but the output is one number: the cosine of two "
                "one-element vectors is +1 or -1, the sign alone, so the model is never told how far off a "
                "prediction is")
    if percentage_error_reaching_zero(facts):
        return (f"the loss {facts.loss} divides each error by |y|, but the target ranges from {fmt(target['min'])} "
                f"to {fmt(target['max'])}: the rows nearest 0 dominate it (at 0 it divides by Keras' epsilon), so the "
                "rest is barely fitted")
    if not target or target.get("min") is None or kind is None:
        return None
    lo, hi, classes = target["min"], target["max"], target.get("classes")
    units = facts.head_units
    if kind == "binary" and (lo < 0 or hi > 1):
        if classes and len(classes) > 2:
            return (f"the targets are {len(classes)} class labels ({classes[0]} to {classes[-1]}), but the loss "
                    f"{facts.loss} expects 0/1 targets for {'one unit' if units == 1 else 'each unit'}: above 1 it "
                    "goes negative and has no minimum, so the model cannot learn the classes")
        return (f"the loss {facts.loss} expects targets in [0, 1], but they range from {fmt(lo)} to {fmt(hi)}: there "
                "it goes negative and has no minimum")
    if kind == "probabilities" and classes and units and not target.get("one_hot") and max(classes) >= units > 1:
        return (f"the labels go up to {max(classes)}, but the output layer has {units} units: labels at or beyond "
                f"{units} have no output")
    if kind == "probabilities" and not target.get("whole", True) and not target.get("one_hot"):
        return (f"the target holds fractional values ({fmt(lo)} to {fmt(hi)}), but the loss {facts.loss} expects class "
                "labels")
    if kind == "regression" and facts.log_target_loss and lo < 0:
        how = ("it takes log(1 + y) and reads values below 0 as 0" if not facts.loss_is("poisson") else
               "it is a likelihood of counts: below 0 it has no minimum")
        return (f"the loss {facts.loss} is for targets of 0 or more ({how}), but the target ranges from {fmt(lo)} to "
                f"{fmt(hi)}: it cannot fit the negative values")
    if kind == "regression" and head in OUTPUT_RANGE:
        low, high = OUTPUT_RANGE[head]
        tol = 1e-6
        if (low is not None and lo < low - tol) or (high is not None and hi > high + tol):
            span = f"({fmt(low)}, {'inf' if high is None else fmt(high)})"
            return (f"the output layer's {head} can only produce values in {span}, but the target ranges from "
                    f"{fmt(lo)} to {fmt(hi)}: no weights can fit it")
    return None


def one_number_cosine(facts: RunFacts) -> bool:
    """Whether a cosine-similarity loss trains a one-unit output (a regression of one number a row).

    Example:
        >>> one_number_cosine(RunFacts(loss="cosine_similarity", head_units=1))
        True
        >>> one_number_cosine(RunFacts(loss="cosine_similarity", head_units=64))  # embeddings: what it is for
        False
    """
    return bool(facts.head_units == 1 and facts.loss_is("cosine_similarity"))


def percentage_error(facts: RunFacts) -> bool:
    """Whether the loss is a mean absolute percentage error (each error divided by the target's ``|y|``).

    Example:
        >>> percentage_error(RunFacts(loss="mape")), percentage_error(RunFacts(loss="MeanAbsolutePercentageError"))
        (True, True)
        >>> percentage_error(RunFacts(loss="mean_absolute_error"))
        False
    """
    return facts.loss_is("mape", "mean_absolute_percentage_error")


def percentage_error_reaching_zero(facts: RunFacts) -> bool:
    """Whether a percentage error trains on a target that reaches 0 or below: rows at or near 0 outweigh
    the rest (a standardised target, counts with zeros).

    Example:
        >>> percentage_error_reaching_zero(RunFacts(loss="mape", target={"min": -1.2, "max": 2.0}))
        True
        >>> percentage_error_reaching_zero(RunFacts(loss="mape", target={"min": 1e5, "max": 5e5}))
        False
    """
    target = facts.target or {}
    return percentage_error(facts) and target.get("min") is not None and target["min"] <= 0


def data_first(facts: RunFacts, settings: DiagnosisSettings) -> str:
    """A sentence that puts a data or output cause ahead of a symptom's own fix ("" when there is none):
    most fixes in public bug reports are about the data and the output layer, not the optimizer."""
    mismatch = target_mismatch(facts)
    if mismatch is not None:
        return "First fit the output layer and loss to the target (see output_target_mismatch). "
    if target_off_scale(facts, settings) is not None:
        return "First standardise the regression target (see unscaled_target). "
    if inputs_off_scale(facts, settings) is not None:
        return "First scale the inputs (see unscaled_inputs). "
    return ""
