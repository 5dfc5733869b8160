"""Activation statistics of a layer's output on a probe batch: the definitions, in one place.

* ``act_mean``, ``act_std``: mean and standard deviation of the layer's output over all
  samples and units of the probe batch.
* ``saturated_frac`` (saturating activations, :data:`~gradscope.vocabulary.SATURATING`):
  fraction of (sample, unit) outputs within
  :data:`~gradscope.vocabulary.SATURATION_MARGIN` (0.01) of an asymptote: for sigmoid,
  outputs <= 0.01 or >= 0.99 (pre-activations beyond +-4.6); for tanh, |output| >= 0.99.
* ``dead_frac`` (:data:`~gradscope.vocabulary.DEAD_ABLE`: relu, relu6, ReLU layers without a
  negative slope): fraction of units (the last axis: a Dense unit or a Conv channel) whose
  output is exactly 0 for every sample (and every position) of the probe batch.

Example:
    >>> import numpy as np
    >>> output_stats("sigmoid", np.array([[0.001, 0.5], [0.999, 0.6]]))["saturated_frac"]
    0.5
    >>> output_stats("relu", np.array([[0.0, 1.0], [0.0, 2.0]]))["dead_frac"]
    0.5
"""

from __future__ import annotations

import numpy as np

from gradscope import records as rec
from gradscope.vocabulary import DEAD_ABLE, SATURATING, SATURATION_MARGIN


def output_stats(activation: str, output: np.ndarray) -> dict[str, float]:
    """Activation metrics of one layer output (see the module docstring)."""
    out = np.asarray(output, dtype=np.float64)
    stats = {"act_mean": float(np.mean(out)), "act_std": float(np.std(out))}
    if activation in SATURATING:
        lo, hi = SATURATING[activation]
        stats["saturated_frac"] = float(
            np.mean((out <= lo + SATURATION_MARGIN) | (out >= hi - SATURATION_MARGIN))
        )
    if activation in DEAD_ABLE:
        units = out.reshape(-1, out.shape[-1]) if out.ndim > 1 else out.reshape(-1, 1)
        stats["dead_frac"] = float(np.mean(np.all(units == 0, axis=0)))
    return stats


def activation_records(run, step, epoch, outputs):
    """Records of :func:`output_stats` for ``(layer, depth, activation, output)`` tuples.

    The rows have ``variable = ""`` (they describe a layer, not one of its variables).
    """
    return rec.from_rows((run, step, epoch, name, depth, "", metric, value)
                         for name, depth, act, output in outputs
                         for metric, value in output_stats(act, output).items())
