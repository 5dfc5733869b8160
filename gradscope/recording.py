"""In-graph recording of per-variable norms for every optimizer step (TensorFlow backend).

:class:`StepRecorder` wraps methods of one Keras optimizer *instance* so that the train step
that Keras traces also computes, from the tensors the optimizer already has,

* the norm of the gradient it applies (after loss-scale unscaling, clipping and cross-replica
  reduction: captured where Keras all-reduces the gradients, right before ``update_step``),
* the norm of each variable after the step,
* the norm of the change the step made (captured from the optimizer's own ``assign_add`` /
  ``assign_sub`` / ``assign`` calls, or, when something else may also change the variables,
  as the difference to a copy taken before the step),

and writes them into a device-side ring buffer. Nothing leaves the device per step; the host
reads the buffer once per epoch (:meth:`StepRecorder.read`).

With ``every_n_steps=N > 1`` the gradient norms of N steps are aggregated in the graph (mean and
max), and weight and update norms are taken at the last step of each window.
"""

from __future__ import annotations

import threading

import numpy as np
import tensorflow as tf

from gradscope.keras_layers import tf_variable

#: Columns of one buffer row per variable.
COLUMNS_EVERY_STEP = ("grad_norm", "weight_norm", "update_norm")
COLUMNS_AGGREGATED = ("grad_norm", "grad_norm_max", "weight_norm", "update_norm")


def _half_sq(x) -> tf.Tensor:
    """sum(x**2) / 2 in float32 for a dense tensor or the dense sum of an IndexedSlices."""
    if isinstance(x, tf.IndexedSlices):
        unique, segments = tf.unique(x.indices)
        x = tf.math.unsorted_segment_sum(x.values, segments, tf.shape(unique)[0])
    x = tf.convert_to_tensor(x)
    if x.dtype != tf.float32:
        x = tf.cast(x, tf.float32)
    return tf.raw_ops.L2Loss(t=x)


def _dense(x):
    return tf.convert_to_tensor(x) if isinstance(x, tf.IndexedSlices) else x


def _is_plain_sgd(optimizer) -> bool:
    """Keras SGD without momentum and with a constant learning rate: its update is exactly lr * g."""
    import keras

    if type(optimizer) is not keras.optimizers.SGD or optimizer.momentum or optimizer.nesterov:
        return False
    if isinstance(optimizer._learning_rate, keras.optimizers.schedules.LearningRateSchedule):
        return False
    return float(np.asarray(optimizer.learning_rate)) > 0


def _is_primary_replica() -> bool:
    ctx = tf.distribute.get_replica_context()
    if ctx is None:
        return True
    rid = tf.get_static_value(ctx.replica_id_in_sync_group)
    return rid is None or int(rid) == 0


class _StepContext:
    """What one optimizer step showed us while it ran (Python-side, during tracing)."""

    def __init__(self):
        self.grads: dict[int, object] = {}
        self.deltas: dict[int, list] = {}
        self.before: list = []
        self.learning_rate = None


class StepRecorder:
    """Records per-variable norms of every step of one optimizer into device buffers.

    Args:
        variables: the trainable variables to record, in record order.
        capacity: rows kept on the device between two :meth:`read` calls.
        every_n_steps: aggregate this many steps per row (1 = a row per step).
        exact_copy: take a copy of the variables before each step and measure the update as the
            difference, instead of capturing the optimizer's own updates. Needed when something
            besides ``update_step`` changes the variables (weight decay, EMA, constraints,
            distribution strategies, optimizers from outside Keras).
    """

    def __init__(self, variables, capacity: int, every_n_steps: int = 1, exact_copy: bool = False):
        self.variables = list(variables)
        self._tf_vars = [tf_variable(v) for v in self.variables]
        self._pos = {id(v): i for i, v in enumerate(self._tf_vars)}
        self.every_n_steps = int(every_n_steps)
        self.exact_copy = exact_copy
        self.columns = COLUMNS_EVERY_STEP if self.every_n_steps == 1 else COLUMNS_AGGREGATED
        self._local = threading.local()
        self._optimizer = None
        self._patched: list[str] = []
        self.grad_source = "update_step"
        n = max(len(self.variables), 1)
        with tf.init_scope():
            self._count = tf.Variable(tf.constant(0, tf.int64), trainable=False, name="gradscope_count")
            if self.every_n_steps > 1:
                self._acc_sum = tf.Variable(tf.zeros([n]), trainable=False, name="gradscope_acc_sum")
                self._acc_max = tf.Variable(tf.fill([n], -np.inf), trainable=False, name="gradscope_acc_max")
                self._acc_n = tf.Variable(tf.constant(0, tf.int64), trainable=False, name="gradscope_acc_n")
                self._var_index = tf.range(n)
        self._make_buffer(capacity)

    # --- buffer ------------------------------------------------------------------------

    def _make_buffer(self, capacity: int) -> None:
        self.capacity = max(int(capacity), 1)
        n = max(len(self.variables), 1)
        # A row holds sum(x**2)/2 of each value in ``columns`` for every variable (column-major:
        # all variables' first column, then the second, ...), plus the window length when
        # aggregating; square roots are taken on the host.
        width = n * len(self.columns) + (1 if self.every_n_steps > 1 else 0)
        with tf.init_scope():
            self._buf = tf.Variable(
                tf.zeros([self.capacity, width], tf.float32), trainable=False, name="gradscope_buffer"
            )

    def read(self):
        """Return ``(rows, values, lost)`` recorded since the last read and clear the buffer.

        ``values`` has shape ``(rows, n_variables, len(columns))`` (norms); ``rows`` is the row
        count (steps, or windows when aggregating); ``lost`` counts rows that did not fit (the
        earliest ones; the buffer then grows so that the next period fits: re-trace the step).
        """
        n = int(self._count.numpy())
        k = min(n, self.capacity)
        raw = self._buf[:k].numpy().astype(np.float64)
        self._count.assign(0)
        lost = max(n - self.capacity, 0)
        if lost:  # a ring: the oldest rows were overwritten; put the rest in order
            start = n % self.capacity
            raw = np.concatenate([raw[start:], raw[:start]])
            self._make_buffer(n)
        nv, nc = len(self.variables), len(self.columns)
        values = self._to_norms(raw[:, : nv * nc].reshape(len(raw), nc, nv).transpose(0, 2, 1))
        if self.every_n_steps == 1 and len(values):
            # Rows hold the weights before each step; after step k they are those before k+1,
            # and after the last step they are the variables as they are now.
            w = self.columns.index("weight_norm")
            values[:-1, :, w] = values[1:, :, w]
            values[-1, :, w] = self.current_weight_norms()
        if self.every_n_steps > 1:
            values = values.copy()
            window = raw[:, -1][:, None]
            values[:, :, 0] = values[:, :, 0] / window  # sum of norms -> mean
            self.window_lengths = raw[:, -1].astype(np.int64)
        return k, values, lost

    def current_weight_norms(self) -> np.ndarray:
        """L2 norm of every variable now, computed on the host in float64."""
        return np.array([np.linalg.norm(np.asarray(v.numpy(), dtype=np.float64)) for v in self.variables])

    def _to_norms(self, half_sq):
        if self.every_n_steps > 1:
            # grad_norm column holds a plain sum of norms, grad_norm_max a plain max
            out = np.sqrt(2.0 * half_sq)
            out[:, :, 0] = half_sq[:, :, 0]
            out[:, :, 1] = half_sq[:, :, 1]
            return out
        return np.sqrt(2.0 * half_sq)

    def read_partial_window(self):
        """For ``every_n_steps > 1``: the unfinished window as ``(length, mean, max)`` or None."""
        if self.every_n_steps == 1:
            return None
        n = int(self._acc_n.numpy())
        if n == 0:
            return None
        total, peak = self._acc_sum.numpy().astype(np.float64), self._acc_max.numpy().astype(np.float64)
        self._acc_n.assign(0)
        self._acc_sum.assign(tf.zeros_like(self._acc_sum))
        self._acc_max.assign(tf.fill(tf.shape(self._acc_max), -np.inf))
        return n, total / n, peak

    # --- patching ----------------------------------------------------------------------

    def attach(self, optimizer) -> None:
        """Wrap ``optimizer``'s methods (on this instance only) so that its steps are recorded."""
        if self._optimizer is not None:
            raise RuntimeError("StepRecorder is already attached")
        self._optimizer = optimizer
        accumulating = bool(getattr(optimizer, "gradient_accumulation_steps", None))
        self._wrap("apply", self._make_apply(optimizer.apply))
        if accumulating:
            # The update runs inside a cond branch whose tensors cannot be used outside it.
            self.grad_source = "apply"
        elif hasattr(optimizer, "_all_reduce_sum_gradients"):
            self._wrap("_all_reduce_sum_gradients", self._make_capture_grads(optimizer._all_reduce_sum_gradients))
        else:  # pragma: no cover - other backends' optimizers
            self.grad_source = "apply"
        if not self.exact_copy:
            for name, sign in (("assign_add", 1.0), ("assign_sub", -1.0), ("assign", None)):
                self._wrap(name, self._make_capture_delta(getattr(optimizer, name), sign))
        self.grad_from_update = _is_plain_sgd(optimizer) and not self.exact_copy and self.grad_source == "update_step"
        if self.grad_from_update:
            self._wrap("_backend_update_step", self._make_capture_lr(optimizer._backend_update_step))

    def detach(self) -> None:
        """Restore the optimizer's own methods."""
        for name in self._patched:
            try:
                delattr(self._optimizer, name)
            except AttributeError:  # pragma: no cover
                pass
        self._patched = []
        self._optimizer = None

    def _wrap(self, name, fn):
        setattr(self._optimizer, name, fn)
        self._patched.append(name)

    def _ctx(self):
        return getattr(self._local, "ctx", None)

    def _make_capture_lr(self, original):
        def backend_update_step(grads, trainable_variables, learning_rate):
            ctx = self._ctx()
            if ctx is not None:
                ctx.learning_rate = learning_rate
            return original(grads, trainable_variables, learning_rate)

        return backend_update_step

    def _make_capture_grads(self, original):
        def all_reduce_sum_gradients(grads_and_vars):
            reduced = original(grads_and_vars)
            ctx = self._ctx()
            if ctx is not None:
                for g, v in reduced:
                    i = self._pos.get(id(v))
                    if i is not None and g is not None:
                        ctx.grads[i] = g
            return reduced

        return all_reduce_sum_gradients

    def _make_capture_delta(self, original, sign):
        def capture(variable, value):
            ctx = self._ctx()
            if ctx is not None:
                var = tf_variable(variable)
                i = self._pos.get(id(var))
                if i is not None:
                    if sign is None:  # assign: the change is new - old
                        delta = tf.convert_to_tensor(_dense(value)) - tf.cast(var.read_value(), value.dtype)
                    elif isinstance(value, tf.IndexedSlices):
                        delta = value
                    else:
                        delta = tf.convert_to_tensor(tf_variable(value))
                    ctx.deltas.setdefault(i, []).append((1.0 if sign is None else sign, delta))
            return original(variable, value)

        return capture

    def _make_apply(self, original):
        def apply(grads, trainable_variables=None):
            grads = list(grads)
            if not grads:
                return original(grads, trainable_variables)
            opt = self._optimizer
            tvars = list(trainable_variables) if trainable_variables is not None else list(opt._trainable_variables)
            ctx = _StepContext()
            if self.every_n_steps == 1 or self.exact_copy:
                # Read before the update: nothing waits for these reads, so their norms are
                # computed alongside the forward and backward passes, not after the update.
                ctx.before = [var.read_value() for var in self._tf_vars]
            if self.grad_source == "apply":
                for g, v in zip(grads, tvars):
                    i = self._pos.get(id(tf_variable(v)))
                    if i is not None and g is not None:
                        ctx.grads[i] = g
            outer, self._local.ctx = self._ctx(), ctx
            try:
                result = original(grads, trainable_variables)
            finally:
                self._local.ctx = outer
            if _is_primary_replica():
                self._write(ctx)
            return result

        return apply

    # --- the in-graph statistics -------------------------------------------------------

    def _update_half_sq(self, i, ctx, after):
        if self.exact_copy:  # a variable the step did not update gives after - before = 0
            return _half_sq(after - ctx.before[i])
        deltas = ctx.deltas.get(i)
        if not deltas:
            return tf.constant(0.0)
        if len(deltas) == 1:
            return _half_sq(deltas[0][1])
        return _half_sq(tf.add_n([sign * tf.cast(_dense(d), tf.float32) for sign, d in deltas]))

    def _grad_half_sq(self, ctx):
        zero = tf.constant(0.0)
        return [(_half_sq(ctx.grads[i]) if i in ctx.grads else zero) for i in range(len(self._tf_vars))]

    def _weight_update_half_sq(self, ctx):
        """sum(x**2)/2 of every variable's value, then of every variable's update."""
        afters = [var.read_value() for var in self._tf_vars]
        weights = [_half_sq(a) for a in afters]
        updates = [self._update_half_sq(i, ctx, a) for i, a in enumerate(afters)]
        return weights + updates

    def _append_row(self, row):
        pos = tf.math.floormod(self._count.read_value(), self.capacity)
        tf.raw_ops.ResourceScatterUpdate(resource=self._buf.handle, indices=pos, updates=row)
        self._count.assign_add(1)

    def _write(self, ctx):
        n = len(self._tf_vars)
        if n == 0:
            return
        if self.every_n_steps == 1:
            # weight_norm column: the weights *before* this step; read() shifts it by one row.
            weights = [_half_sq(b) for b in ctx.before]
            if self.exact_copy:
                updates = [self._update_half_sq(i, ctx, var.read_value()) for i, var in enumerate(self._tf_vars)]
            else:
                updates = [self._update_half_sq(i, ctx, None) for i in range(n)]
            if self.grad_from_update and ctx.learning_rate is not None:
                # Plain SGD applies exactly lr * g: reading g once more would cost an extra pass
                # and stop TensorFlow from reusing g's buffer for lr * g (measured: ~7% of a step).
                updates_t = tf.stack(updates)
                lr = tf.cast(ctx.learning_rate, tf.float32)
                grads_t = updates_t / (lr * lr)
                self._append_row(tf.concat([grads_t, tf.stack(weights), updates_t], 0))
                return
            self._append_row(tf.stack([*self._grad_half_sq(ctx), *weights, *updates]))
            return
        g = tf.sqrt(2.0 * tf.stack(self._grad_half_sq(ctx)))
        new_sum = self._acc_sum.assign_add(g)
        tf.raw_ops.ResourceScatterMax(resource=self._acc_max.handle, indices=self._var_index, updates=g)
        count = self._acc_n.assign_add(1)
        window_end = tf.equal(tf.math.floormod(count, self.every_n_steps), 0)

        def close_window():
            wu = self._weight_update_half_sq(ctx)
            peak = self._acc_max.read_value()
            self._append_row(tf.concat([new_sum, peak, tf.stack(wu), tf.cast(tf.reshape(count, [1]), tf.float32)], 0))
            self._acc_sum.assign(tf.zeros_like(g))
            self._acc_max.assign(tf.fill([n], -np.inf))
            self._acc_n.assign(0)
            return tf.constant(True)

        tf.cond(window_end, close_window, lambda: tf.constant(False))
