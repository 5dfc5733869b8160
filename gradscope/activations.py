"""Activation statistics of every layer with a non-linear activation, on a probe batch.

Definitions (the same in code, docs and report):

* ``act_mean``, ``act_std``: mean and standard deviation of the layer's output over all
  samples and units of the probe batch.
* ``saturated_frac`` (sigmoid, tanh, hard_sigmoid, softsign): fraction of (sample, unit)
  outputs within ``SATURATION_MARGIN`` (0.01) of an asymptote: for sigmoid, outputs <= 0.01 or
  >= 0.99 (pre-activations beyond +-4.6); for tanh, |output| >= 0.99.
* ``dead_frac`` (relu, relu6, ReLU layers without a negative slope): fraction of units (the
  last axis: a Dense unit or a Conv channel) whose output is exactly 0 for every sample (and
  every position) of the probe batch.
"""

from __future__ import annotations

import functools

import numpy as np

SATURATION_MARGIN = 0.01
PROBE_SIZE = 256  # rows of the probe batch (the first training rows unless a probe is given)

# activation name -> (lower asymptote, upper asymptote)
SATURATING = {
    "sigmoid": (0.0, 1.0),
    "hard_sigmoid": (0.0, 1.0),
    "tanh": (-1.0, 1.0),
    "softsign": (-1.0, 1.0),
    "hard_tanh": (-1.0, 1.0),
}
DEAD_ABLE = {"relu", "relu6"}
IGNORED = {"linear", "softmax", "log_softmax", None}


def activation_name(layer) -> str | None:
    """The name of the activation a layer applies to its output, or None."""
    import keras

    if isinstance(layer, keras.layers.ReLU):
        return "relu" if not float(layer.negative_slope) else "leaky_relu"
    if isinstance(layer, keras.layers.Softmax):
        return "softmax"
    act = getattr(layer, "activation", None)
    if act is None or isinstance(layer, keras.Model):
        return None
    name = getattr(act, "__name__", None) or type(act).__name__
    return name


def output_stats(name: str, output: np.ndarray) -> dict[str, float]:
    """Activation metrics of one layer output (see the module docstring)."""
    out = np.asarray(output, dtype=np.float64)
    stats = {"act_mean": float(np.mean(out)), "act_std": float(np.std(out))}
    if name in SATURATING:
        lo, hi = SATURATING[name]
        stats["saturated_frac"] = float(
            np.mean((out <= lo + SATURATION_MARGIN) | (out >= hi - SATURATION_MARGIN))
        )
    if name in DEAD_ABLE:
        units = out.reshape(-1, out.shape[-1]) if out.ndim > 1 else out.reshape(-1, 1)
        stats["dead_frac"] = float(np.mean(np.all(units == 0, axis=0)))
    return stats


def activation_records(run, step, epoch, outputs):
    """Records of :func:`output_stats` for ``(layer, depth, activation, output)`` tuples.

    The rows have ``variable = ""`` (they describe a layer, not one of its variables).
    """
    import pandas as pd

    from gradscope import records as rec

    rows = [(run, step, epoch, name, depth, "", metric, value)
            for name, depth, act, output in outputs
            for metric, value in output_stats(act, output).items()]
    return rec.coerce(pd.DataFrame(rows, columns=rec.COLUMNS))


class ActivationProbe:
    """Runs a model on a probe batch and returns the outputs of its activation layers.

    Works for Sequential, Functional and subclassed models: each watched layer's ``call`` is
    wrapped (on the instance, only while probing) to keep its output.

    Args:
        model: a built Keras model.
        names: ``{id(layer): (name, depth)}`` for the layers to report, from
            :func:`watched_layers`.
    """

    def __init__(self, model, layers):
        self.model = model
        self.layers = layers  # list of (layer, name, depth, activation)

    def __call__(self, x) -> list[tuple[str, int, str, np.ndarray]]:
        captured: dict[int, object] = {}
        originals = []
        for layer, *_ in self.layers:
            original = layer.call

            @functools.wraps(original)
            def call(*args, _orig=original, _key=id(layer), **kwargs):
                out = _orig(*args, **kwargs)
                captured[_key] = out
                return out

            layer.call = call
            originals.append(layer)
        try:
            self.model(x, training=False)
        finally:
            for layer in originals:
                del layer.call
        result = []
        for layer, name, depth, act in self.layers:
            out = captured.get(id(layer))
            if out is not None:
                result.append((name, depth, act, np.asarray(out)))
        return result


def watched_layers(model, table) -> list[tuple]:
    """Layers with a non-linear activation, as ``(layer, name, depth, activation)``.

    ``depth`` is the depth of the layer itself when it owns variables, else that of the nearest
    layer before it that does (so that an ``Activation`` layer lines up with its ``Dense``).
    """
    from gradscope.keras_layers import walk_layers

    depth_of = {}
    for layer_name, depth, _ in table.values():
        depth_of[layer_name] = depth
    out, depth = [], 0
    for name, layer in walk_layers(model):
        depth = depth_of.get(name, depth)
        act = activation_name(layer)
        if act not in IGNORED:
            out.append((layer, name, depth, act))
    return out
