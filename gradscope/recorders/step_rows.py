"""How the Keras recorder lays out what it measures in a step: a device ring of named rows.

A row holds, per measured metric (:data:`gradscope.vocabulary.MEASURED_METRICS`, in that
order) and variable, the graph value of the metric's reduction (for the L2 norm:
``sum(x**2)/2``, one ``L2Loss``), column-major (every variable's first metric, then the
second, ...); the host finishes them (square roots) when it turns a block of rows back into
named ``(rows, variables)`` arrays.

* :class:`EveryStepRows`: one row per optimizer step.
* :class:`WindowRows`: one row per window of N steps, aggregated in the graph.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from gradscope.recorders.reductions import reduction_of
from gradscope.vocabulary import MEASURED_METRICS, METRICS


class DeviceRing:
    """Rows of float32 kept in a device variable between two host reads.

    When more rows are written than it holds, the earliest are overwritten; :meth:`take` says
    how many were lost and grows the ring so that the next period fits (the train step must
    then be traced again, since it holds the old variable).
    """

    def __init__(self, width: int, capacity: int):
        self.width = width
        with tf.init_scope():
            self._count = tf.Variable(tf.constant(0, tf.int64), trainable=False, name="gradscope_count")
        self._allocate(capacity)

    def _allocate(self, capacity: int) -> None:
        self.capacity = max(int(capacity), 1)
        with tf.init_scope():
            self._buf = tf.Variable(tf.zeros([self.capacity, self.width], tf.float32), trainable=False,
                                    name="gradscope_buffer")

    def append(self, row) -> None:
        """In the graph: write ``row`` (shape ``[width]``) at the next position."""
        pos = tf.math.floormod(self._count.read_value(), self.capacity)
        tf.raw_ops.ResourceScatterUpdate(resource=self._buf.handle, indices=pos, updates=row)
        self._count.assign_add(1)

    def take(self) -> tuple[np.ndarray, int]:
        """``(rows in order as float64, lost)`` written since the last take; the ring is then empty."""
        n = int(self._count.numpy())
        k = min(n, self.capacity)
        raw = self._buf[:k].numpy().astype(np.float64)
        self._count.assign(0)
        lost = max(n - self.capacity, 0)
        if lost:  # the oldest rows were overwritten; put the rest in order
            start = n % self.capacity
            raw = np.concatenate([raw[start:], raw[:start]])
            self._allocate(n)
        return raw, lost


def _blocks(raw: np.ndarray, columns, n_vars: int) -> dict[str, np.ndarray]:
    """Column-major row blocks -> ``{column: (rows, variables)}``."""
    return {name: raw[:, j * n_vars:(j + 1) * n_vars] for j, name in enumerate(columns)}


class EveryStepRows:
    """One row per step: every measured metric of every variable.

    Weight metrics are taken from the weights *before* the step (read before the update, so
    that their reductions run alongside the forward and backward passes); :meth:`values`
    shifts them by one row, so that each step reports the weights after it.
    """

    takes_weights_before = True

    def __init__(self, n_vars: int):
        self.n_vars = n_vars
        self.columns = tuple(MEASURED_METRICS)
        self.width = n_vars * len(self.columns)

    def write(self, measured, ring: DeviceRing) -> None:
        """In the graph: append the row of one step, from a :class:`~gradscope.recorders.step_recorder.StepMeasures`."""
        ring.append(tf.concat([measured.reduced(name, weights_before=True) for name in self.columns], 0))

    def values(self, raw: np.ndarray, weight_values) -> dict[str, np.ndarray]:
        """The metrics of each step from a block of rows.

        Args:
            weight_values: ``weight_values(metric)``: the metric of the variables as they are now.
        """
        values = {name: reduction_of(name).host(block) for name, block in _blocks(raw, self.columns, self.n_vars).items()}
        for name in self.columns:
            if METRICS[name].source == "weight" and len(raw):
                # Rows hold the weights before each step; after step k they are those before
                # k+1, and after the last step they are the variables as they are now.
                w = values[name]
                w[:-1] = w[1:].copy()
                w[-1] = weight_values(name)
        return values

    def window_lengths(self, raw: np.ndarray) -> np.ndarray:
        return np.ones(len(raw), np.int64)

    def take_partial(self):
        """No window is ever unfinished."""
        return None


class WindowRows:
    """One row per window of ``n_steps`` steps.

    Gradient metrics are aggregated over the window's steps: their mean under the metric's name
    and their max under ``<name>_max`` (so no spike or NaN is hidden); the other metrics are
    those of the window's last step. Accumulators live in device variables; a row is written
    when a window closes, and :meth:`take_partial` reads (and resets) an unfinished one.
    """

    takes_weights_before = False

    def __init__(self, n_vars: int, n_steps: int):
        self.n_vars = n_vars
        self.n_steps = n_steps
        self.aggregated = tuple(m for m in MEASURED_METRICS if METRICS[m].source == "grad")
        self.at_end = tuple(m for m in MEASURED_METRICS if m not in self.aggregated)
        self.columns = (*self.aggregated, *(f"{m}_max" for m in self.aggregated), *self.at_end)
        self.width = n_vars * len(self.columns) + 1  # + the window's length
        n = max(n_vars, 1) * len(self.aggregated)
        with tf.init_scope():
            self._sum = tf.Variable(tf.zeros([n]), trainable=False, name="gradscope_acc_sum")
            self._max = tf.Variable(tf.fill([n], -np.inf), trainable=False, name="gradscope_acc_max")
            self._n = tf.Variable(tf.constant(0, tf.int64), trainable=False, name="gradscope_acc_n")
            self._index = tf.range(n)

    def write(self, measured, ring: DeviceRing) -> None:
        """In the graph: add this step to the window, and append a row when the window closes."""
        g = tf.concat([reduction_of(m).graph_finish(measured.reduced(m)) for m in self.aggregated], 0)
        new_sum = self._sum.assign_add(g)
        tf.raw_ops.ResourceScatterMax(resource=self._max.handle, indices=self._index, updates=g)
        count = self._n.assign_add(1)
        window_end = tf.equal(tf.math.floormod(count, self.n_steps), 0)

        def close_window():
            at_end = [measured.reduced(m) for m in self.at_end]
            peak = self._max.read_value()
            ring.append(tf.concat([new_sum, peak, *at_end, tf.cast(tf.reshape(count, [1]), tf.float32)], 0))
            self._reset()
            return tf.constant(True)

        tf.cond(window_end, close_window, lambda: tf.constant(False))

    def _reset(self):
        self._sum.assign(tf.zeros_like(self._sum))
        self._max.assign(tf.fill(tf.shape(self._max), -np.inf))
        self._n.assign(0)

    def values(self, raw: np.ndarray, weight_values=None) -> dict[str, np.ndarray]:
        """The metrics of each window from a block of rows (aggregated metrics as the window's mean)."""
        blocks = _blocks(raw[:, :-1], self.columns, self.n_vars)
        window = raw[:, -1][:, None]
        values = {}
        for m in self.aggregated:
            values[m] = blocks[m] / window  # a plain sum of finished values -> their mean
            values[f"{m}_max"] = blocks[f"{m}_max"]  # a plain max
        for m in self.at_end:
            values[m] = reduction_of(m).host(blocks[m])
        return {name: values[name] for name in self.columns}

    def window_lengths(self, raw: np.ndarray) -> np.ndarray:
        return raw[:, -1].astype(np.int64)

    def take_partial(self):
        """The unfinished window as ``(length, {metric: mean}, {metric_max: max})``, or None; then reset."""
        n = int(self._n.numpy())
        if n == 0:
            return None
        total, peak = self._sum.numpy().astype(np.float64), self._max.numpy().astype(np.float64)
        self._reset()
        k = max(self.n_vars, 1)
        means = {m: total[j * k:(j + 1) * k] / n for j, m in enumerate(self.aggregated)}
        peaks = {f"{m}_max": peak[j * k:(j + 1) * k] for j, m in enumerate(self.aggregated)}
        return n, means, peaks
