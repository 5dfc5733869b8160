"""How the recorders reduce a tensor of an optimizer step to one number per variable.

A measured metric (:data:`gradscope.vocabulary.METRICS` entries with a ``source``) names its
reduction. A reduction is computed where the step runs into a float32 scalar in *graph units*
and finished on the host, so the step does the least work: the L2 norm is ``sum(x**2)/2`` per
tensor (one ``L2Loss`` on TensorFlow), its square root taken on the host. This module knows no
framework: each step source computes the graph side with its own framework
(:mod:`gradscope.recorders.tf_ops` for TensorFlow, :mod:`gradscope.recorders.keras_jax.steps` for
JAX) and the host finishes it here; :attr:`Reduction.numpy` is the same graph side on the host
(what ``audit`` and the host's own weight readings use).

Example:
    >>> import numpy as np
    >>> l2 = REDUCTIONS["l2"]
    >>> float(l2.host(l2.numpy(np.array([3.0, 4.0]))))
    5.0
    >>> float(host_value("grad_norm", np.array([3.0, 4.0])))
    5.0
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from gradscope.vocabulary import METRICS


@dataclass(frozen=True)
class Reduction:
    """A reduction of one tensor to one number.

    Attributes:
        name: its key in :data:`REDUCTIONS` (and in each framework's table of graph sides).
        numpy: an array -> its graph-unit value, computed on the host in float64.
        host: graph-unit values (a numpy array) -> the metric's values.
        power: ``graph(c * x) == |c| ** power * graph(x)``: a gradient's value can be read
            off a plain SGD update ``lr * g`` by dividing by ``lr ** power``.
    """

    name: str
    numpy: Callable
    host: Callable
    power: float


def _half_sq(x) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    return 0.5 * np.sum(np.square(x))


REDUCTIONS = {
    "l2": Reduction(name="l2", numpy=_half_sq, host=lambda v: np.sqrt(2.0 * np.asarray(v, dtype=np.float64)),
                    power=2.0),
}


def reduction_of(metric: str) -> Reduction:
    """The reduction a measured metric names."""
    return REDUCTIONS[METRICS[metric].reduction]


def host_value(metric: str, array) -> float:
    """A measured metric of one array, computed wholly on the host (``audit``, weight readings)."""
    reduction = reduction_of(metric)
    return float(reduction.host(reduction.numpy(array)))
