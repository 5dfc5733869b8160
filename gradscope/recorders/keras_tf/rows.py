"""The rows of a TensorFlow step source, written inside the traced step into a device ring.

The layouts (which metric of which variable goes where, and how the host turns rows back into
named arrays) are :mod:`gradscope.recorders.step_rows`; this is where they meet TensorFlow: the
ring is a device variable, and :func:`write_row` writes one step's row into it as graph ops.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from gradscope.recorders.step_rows import WindowRows


class DeviceRing:
    """Rows of float32 kept in a device variable, at ``index % capacity``.

    The host asks for the rows of a range of indexes; when the range is longer than the ring,
    its earliest rows were overwritten: :meth:`take` says how many, and the ring grows so that
    the next period fits (the train step must then be traced again, since it holds the old
    variable).
    """

    def __init__(self, width: int, capacity: int):
        self.width = width
        self._allocate(capacity)

    def _allocate(self, capacity: int) -> None:
        self.capacity = max(int(capacity), 1)
        with tf.init_scope():
            self._buf = tf.Variable(tf.zeros([self.capacity, self.width], tf.float32), trainable=False,
                                    name="gradscope_buffer")

    def put(self, index, row) -> None:
        """In the graph: write ``row`` (shape ``[width]``) at ``index`` (an int64 tensor)."""
        pos = tf.math.floormod(index, self.capacity)
        tf.raw_ops.ResourceScatterUpdate(resource=self._buf.handle, indices=pos, updates=row)

    def take(self, start: int, stop: int) -> tuple[np.ndarray, int]:
        """``(rows start..stop-1 as float64, lost)``; the earliest ``lost`` of them were overwritten."""
        n = max(stop - start, 0)
        k = min(n, self.capacity)
        if k == 0:
            return np.zeros((0, self.width)), 0
        rows = self._buf.numpy()[np.arange(stop - k, stop) % self.capacity].astype(np.float64)
        lost = n - k
        if lost:
            self._allocate(n)
        return rows, lost


def write_row(layout, measured, ring: DeviceRing, step) -> None:
    """In the graph: the row of one step (``step``: the optimizer's step counter before the update),
    laid out as ``layout`` says (a window layout writes every step's row; the host makes the windows).

    Args:
        measured: the step's tensors, reduced on demand (``reduced(metric, weights_before)``,
            ``small_weights_before(indexes)``).
    """
    rows = layout.per_step if isinstance(layout, WindowRows) else layout
    if rows.every == 1:
        parts = [measured.reduced(m, weights_before=True) for m in rows.columns]
        if rows.small:
            parts.append(measured.small_weights_before(rows.small))
        ring.put(step, tf.concat(parts, 0))
        return

    def record():
        ring.put(step // rows.every, tf.concat([measured.reduced(m) for m in rows.columns], 0))
        return tf.constant(True)

    tf.cond(tf.equal(tf.math.floormod(step, rows.every), 0), record, lambda: tf.constant(False))
