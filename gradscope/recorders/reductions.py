"""How the recorders reduce a tensor of an optimizer step to one number per variable.

A measured metric (:data:`gradscope.vocabulary.METRICS` entries with a ``source``) names its
reduction; both recorders (the Keras step recorder and the TF1 graph builder) look it up here.
A reduction is computed in the graph into a float32 scalar and finished on the host, so the
graph does the least work per step: the L2 norm is one ``L2Loss`` (``sum(x**2)/2``) per
tensor, its square root taken on the host.

Example:
    >>> import numpy as np, tensorflow as tf
    >>> l2 = REDUCTIONS["l2"]
    >>> float(l2.host(np.array(l2.graph(tf.constant([3.0, 4.0])))))
    5.0
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import tensorflow as tf

from gradscope.vocabulary import METRICS


def half_sq(x) -> tf.Tensor:
    """sum(x**2)/2 in float32 for a dense tensor or the dense sum of an IndexedSlices."""
    if isinstance(x, tf.IndexedSlices):
        unique, segments = tf.unique(x.indices)
        x = tf.math.unsorted_segment_sum(x.values, segments, tf.shape(unique)[0])
    x = tf.convert_to_tensor(x)
    if x.dtype != tf.float32:
        x = tf.cast(x, tf.float32)
    return tf.raw_ops.L2Loss(t=x)


@dataclass(frozen=True)
class Reduction:
    """A reduction of one tensor to one number.

    Attributes:
        graph: tensor -> float32 scalar tensor, inside the traced step.
        host: what the graph computed (a numpy array) -> the metric's values.
        graph_finish: the same finishing step in the graph (for aggregating over windows).
        power: ``graph(c * x) == |c| ** power * graph(x)``: a gradient's value can be read
            off a plain SGD update ``lr * g`` by dividing by ``lr ** power``.
    """

    graph: Callable
    host: Callable
    graph_finish: Callable
    power: float


REDUCTIONS = {
    "l2": Reduction(graph=half_sq, host=lambda v: np.sqrt(2.0 * v),
                    graph_finish=lambda t: tf.sqrt(2.0 * t), power=2.0),
}


def reduction_of(metric: str) -> Reduction:
    """The reduction a measured metric names."""
    return REDUCTIONS[METRICS[metric].reduction]
