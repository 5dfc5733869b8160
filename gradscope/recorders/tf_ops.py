"""The TensorFlow side of recording, shared by every TensorFlow step source (Keras 3 on TensorFlow,
legacy Keras 2, TF1 graphs): each reduction's graph side, and which replica writes.

Example:
    >>> import numpy as np, tensorflow as tf
    >>> from gradscope.recorders.reductions import REDUCTIONS
    >>> l2 = REDUCTIONS["l2"]
    >>> float(l2.host(np.array(graph(l2)(tf.constant([3.0, 4.0])))))
    5.0
"""

from __future__ import annotations

import tensorflow as tf


def half_sq(x) -> tf.Tensor:
    """sum(x**2)/2 in float32 for a dense tensor or the dense sum of an IndexedSlices."""
    if isinstance(x, tf.IndexedSlices):
        unique, segments = tf.unique(x.indices)
        x = tf.math.unsorted_segment_sum(x.values, segments, tf.shape(unique)[0])
    x = tf.convert_to_tensor(x)
    if x.dtype != tf.float32:
        x = tf.cast(x, tf.float32)
    return tf.raw_ops.L2Loss(t=x)


#: Each reduction's graph side (tensor -> float32 scalar) and its host finish written in the graph
#: (for a graph that hands over finished values: TF1's stats tensor), by reduction name.
GRAPH = {"l2": half_sq}
FINISH = {"l2": lambda t: tf.sqrt(2.0 * t)}


def graph(reduction):
    """The graph side of a :class:`~gradscope.recorders.reductions.Reduction` on TensorFlow."""
    return GRAPH[reduction.name]


def finish(reduction):
    """The host finish of a reduction, as graph ops."""
    return FINISH[reduction.name]


def is_primary_replica() -> bool:
    """True outside ``tf.distribute`` and on the first replica of this process, which writes the
    process's ring (with several workers, each worker's first replica writes its own)."""
    ctx = tf.distribute.get_replica_context()
    if ctx is None:
        return True
    rid = tf.get_static_value(ctx.replica_id_in_sync_group)
    if rid is None:
        return True
    try:
        local = len(ctx.strategy.extended.worker_devices)  # replicas of this worker; ids run worker by worker
    except Exception:
        local = 0
    return int(rid) % local == 0 if local else int(rid) == 0
