"""GradientMonitor: per-layer gradient, weight and update norms of every optimizer step."""

from __future__ import annotations

import warnings

import keras
import numpy as np
import tensorflow as tf

from gradscope import records as rec
from gradscope.storage import RunWriter

_N_STEP_VALUES = 3  # grad_norm, weight_norm, update_norm; update_ratio is derived on the host
DEFAULT_BUFFER_STEPS = 1024


def _innermost_optimizer(optimizer):
    while hasattr(optimizer, "inner_optimizer"):  # LossScaleOptimizer and friends
        optimizer = optimizer.inner_optimizer
    return optimizer


def _as_tensor(variable):
    value = variable.value if isinstance(variable, keras.Variable) else variable
    return tf.convert_to_tensor(value)


def _norm(x) -> tf.Tensor:
    """L2 norm in float32 of a dense tensor or of the dense sum of an IndexedSlices."""
    if isinstance(x, tf.IndexedSlices):
        unique, segments = tf.unique(x.indices)
        x = tf.math.unsorted_segment_sum(x.values, segments, tf.shape(unique)[0])
    x = tf.cast(x, tf.float32)
    return tf.sqrt(tf.reduce_sum(tf.square(x)))


def layer_table(model) -> dict[int, tuple[str, int, str]]:
    """Map ``id(variable)`` of each trainable variable to ``(layer, depth, variable)``.

    ``layer`` is the Keras layer name, prefixed with the names of enclosing models for nested
    ones (``encoder/dense``); ``depth`` counts layers that own trainable variables from the
    input (0) toward the output, in the model's own layer order.
    """
    table: dict[int, tuple[str, int, str]] = {}
    depths: dict[str, int] = {}

    def add(layer_name, variable):
        if id(variable) in table:  # a shared layer is reported where it first appears
            return
        depth = depths.setdefault(layer_name, len(depths))
        table[id(variable)] = (layer_name, depth, variable.name)

    def walk(layer, name):
        for v in getattr(layer, "_trainable_variables", []):
            if v.trainable:
                add(name, v)
        for sub in getattr(layer, "_layers", []) or []:
            walk(sub, f"{name}/{sub.name}")

    for sub in getattr(model, "_layers", []) or []:
        walk(sub, sub.name)
    for v in getattr(model, "_trainable_variables", []):
        if v.trainable:
            add(model.name, v)
    # Anything tracked some other way: fall back to the variable's path.
    for v in model.trainable_variables:
        if id(v) not in table:
            path = getattr(v, "path", v.name)
            add(path.rsplit("/", 1)[0] if "/" in path else model.name, v)
    return table


class GradientMonitor(keras.callbacks.Callback):
    """Records per-layer gradient, weight and update norms of every optimizer step.

    The norms are computed inside the compiled train step from the gradients the optimizer
    applies (after loss-scale unscaling and clipping), kept on the device in a buffer and
    brought to the host once per epoch, so Keras keeps dispatching steps asynchronously.

    For each trainable variable and step it records ``grad_norm``, ``weight_norm`` (after the
    step), ``update_norm`` (norm of the change the step made) and ``update_ratio``
    (``update_norm / weight_norm``); at each epoch end it records the Keras logs (``loss``,
    ``accuracy``, ``val_*``).

    Args:
        run: run id written in the ``run`` column.
        run_dir: if given, a run directory whose ``records.csv`` is appended at each epoch end.
        config: configuration stored in ``run.json`` when ``run_dir`` is given.
        writer: an existing :class:`gradscope.storage.RunWriter` (instead of ``run_dir``).
        buffer_steps: steps kept on the device between epoch ends (default: the epoch's
            number of steps, or 1024 when Keras does not know it). If an epoch has more steps,
            the buffer grows for the next epoch and the earliest steps of that epoch are lost
            with a warning.

    Example:
        >>> monitor = GradientMonitor(run="relu-he")
        >>> model.fit(x, y, epochs=2, callbacks=[monitor])      # doctest: +SKIP
        >>> monitor.records.query("metric == 'grad_norm'")       # doctest: +SKIP
    """

    def __init__(self, run="run", run_dir=None, config=None, writer=None, buffer_steps=None):
        super().__init__()
        self.run = run
        self.run_dir = run_dir
        self.config = dict(config or {})
        self.writer = writer
        self.buffer_steps = buffer_steps
        self._frames: list = []
        self._records_cache = None
        self._patched = None
        self._epoch = 0
        self._capacity = 0
        self._variables: list = []
        self._index: dict[int, int] = {}
        self._meta: list[tuple[str, int, str]] = []

    # --- public -------------------------------------------------------------------------

    @property
    def records(self):
        """All records so far as a DataFrame with the schema columns (see ``gradscope.records``)."""
        if self._records_cache is None:
            self._records_cache = rec.concat(self._frames)
        return self._records_cache

    def flush(self):
        """Bring the steps recorded since the last epoch end to the host (and to ``run_dir``).

        Called automatically at each epoch end and at the end of training; call it yourself
        after an interrupted ``fit`` to keep the steps of the unfinished epoch.
        """
        if self._capacity == 0:
            return rec.empty()
        n = int(self._count.numpy())
        if n == 0:
            return rec.empty()
        k = min(n, self._capacity)
        values = self._buf[:k].numpy()
        steps = self._steps[:k].numpy()
        self._count.assign(0)
        if n > self._capacity:
            warnings.warn(
                f"GradientMonitor kept {self._capacity} of the {n} steps of epoch {self._epoch}; "
                f"pass buffer_steps>={n} to keep them all (the buffer now grows to {n}).",
                stacklevel=2,
            )
            self._make_buffer(n)
            self._retrace()
        order = np.argsort(steps, kind="stable")
        frame = rec.from_step_arrays(
            self.run,
            steps[order],
            self._epoch,
            self._meta,
            values[order, :, 0],
            values[order, :, 1],
            values[order, :, 2],
        )
        self._add(frame)
        return frame

    # --- Keras lifecycle ----------------------------------------------------------------

    def on_train_begin(self, logs=None):
        if self.writer is None and self.run_dir is not None:
            self.writer = RunWriter(self.run_dir, self.config)
        model = self.model
        table = layer_table(model)
        self._variables = list(model.trainable_variables)
        self._index = {id(v): i for i, v in enumerate(self._variables)}
        self._meta = [table[id(v)] for v in self._variables]
        steps = (self.params or {}).get("steps")
        self._make_buffer(self.buffer_steps or steps or DEFAULT_BUFFER_STEPS)
        self._patch(model.optimizer)
        self._retrace()

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def on_epoch_end(self, epoch, logs=None):
        frame = self.flush()
        last_step = int(frame["step"].max()) if len(frame) else int(self._iterations()) - 1
        self._add(rec.from_logs(self.run, max(last_step, 0), epoch, logs or {}))

    def on_train_end(self, logs=None):
        self.close()

    def close(self):
        """Flush what is left and restore the optimizer; safe to call more than once."""
        if self._patched is not None:
            self.flush()
            optimizer, _ = self._patched
            try:
                del optimizer._backend_update_step
            except AttributeError:  # pragma: no cover
                pass
            self._patched = None
            if self.model is not None:
                self.model.train_function = None  # the next fit traces a clean step

    # --- internals ----------------------------------------------------------------------

    def _add(self, frame):
        if not len(frame):
            return
        self._frames.append(frame)
        self._records_cache = None
        if self.writer is not None:
            self.writer.append(frame)

    def _iterations(self):
        return _innermost_optimizer(self.model.optimizer).iterations.numpy()

    def _make_buffer(self, capacity):
        self._capacity = int(capacity)
        n = max(len(self._variables), 1)
        with tf.init_scope():
            self._buf = tf.Variable(
                tf.zeros([self._capacity, n, _N_STEP_VALUES], tf.float32), trainable=False,
                name="gradscope_buffer",
            )
            self._steps = tf.Variable(
                tf.zeros([self._capacity], tf.int64), trainable=False, name="gradscope_steps"
            )
            self._count = tf.Variable(
                tf.constant(0, tf.int64), trainable=False, name="gradscope_count"
            )

    def _retrace(self):
        if self.model is not None:
            self.model.make_train_function(force=True)

    def _patch(self, optimizer):
        optimizer = _innermost_optimizer(optimizer)
        if self._patched is not None:
            return
        original = optimizer._backend_update_step
        monitor = self

        def recording_update_step(grads, trainable_variables, learning_rate):
            trainable_variables = list(trainable_variables)
            grads = list(grads)
            step = tf.cast(tf.identity(_as_tensor(optimizer.iterations)), tf.int64)
            before = [tf.identity(_as_tensor(v)) for v in trainable_variables]
            result = original(grads, trainable_variables, learning_rate)
            monitor._record(step, grads, trainable_variables, before)
            return result

        optimizer._backend_update_step = recording_update_step
        self._patched = (optimizer, original)

    def _record(self, step, grads, variables, before):
        given = {}
        for g, v, b in zip(grads, variables, before):
            i = self._index.get(id(v))
            if i is None:
                continue
            after = _as_tensor(v)
            grad_norm = _norm(g) if g is not None else tf.constant(0.0)
            given[i] = tf.stack([grad_norm, _norm(after), _norm(after - b)])
        rows = []
        for i, v in enumerate(self._variables):
            if i in given:
                rows.append(given[i])
            else:  # no gradient reached this variable in this step: nothing was applied
                rows.append(tf.stack([tf.constant(0.0), _norm(_as_tensor(v)), tf.constant(0.0)]))
        row = tf.stack(rows)
        pos = tf.math.floormod(self._count, self._capacity)
        self._buf.scatter_nd_update([[pos]], [row])
        self._steps.scatter_nd_update([[pos]], [step])
        self._count.assign_add(1)
