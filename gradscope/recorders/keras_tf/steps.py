"""In-graph recording of per-variable norms for every optimizer step (Keras 3, TensorFlow backend).

:class:`StepRecorder` wraps methods of one Keras optimizer *instance* so that the train step
that Keras traces also computes, from the tensors the optimizer already has,

* the norm of the gradient it applies (after loss-scale unscaling, clipping and cross-replica
  reduction: captured where Keras all-reduces the gradients, right before ``update_step``),
* the norm of each variable after the step,
* the norm of the change the step made (captured from the optimizer's own ``assign_add`` /
  ``assign_sub`` / ``assign`` calls, or, when something else may also change the variables,
  as the difference to a copy taken before the step),

and writes them into a device-side ring (:mod:`gradscope.recorders.keras_tf.rows`). Nothing leaves
the device per step; the host reads the ring once per epoch (:meth:`StepRecorder.read`).

Three choices are made once, when the recorder attaches, each by one small object:

* where the gradients come from (:class:`AllReducedGradients`, :class:`AppliedGradients`, or,
  for plain SGD, :class:`SgdUpdateGradients`, which reads ``g`` off the ``lr * g`` update);
* how the update is measured (:class:`CapturedUpdates` or :class:`CopiedUpdates`);
* how rows are laid out (:class:`~gradscope.recorders.step_rows.EveryStepRows` or
  :class:`~gradscope.recorders.step_rows.WindowRows`).
"""

from __future__ import annotations

import contextlib
import threading

import numpy as np
import tensorflow as tf

from gradscope.recorders import keras_compat as compat
from gradscope.recorders.keras_compat import tf_variable
from gradscope.recorders.keras_tf.rows import DeviceRing, write_row
from gradscope.recorders.reductions import REDUCTIONS, host_value, reduction_of
from gradscope.recorders.step_rows import EveryStepRows, WindowRows
from gradscope.recorders.tf_ops import graph, is_primary_replica
from gradscope.vocabulary import METRICS


def _dense(x):
    return tf.convert_to_tensor(x) if isinstance(x, tf.IndexedSlices) else x


#: Learning rates for which a plain SGD step's gradient norm is read off its update ``lr * g``:
#: above 1 the update's squared norm leaves float32's range before the gradient's does (lr 1e30
#: would record a finite gradient as inf), far below it the update's squares underflow to 0.
READ_OFF_UPDATE_LR = (1e-6, 1.0)


def is_plain_sgd(optimizer) -> bool:
    """Keras SGD without momentum and with a constant learning rate in :data:`READ_OFF_UPDATE_LR`:
    its update is exactly lr * g, and its norm over lr is the gradient's."""
    import keras

    if type(optimizer) is not keras.optimizers.SGD or optimizer.momentum or optimizer.nesterov:
        return False
    if compat.has_schedule(optimizer):
        return False
    low, high = READ_OFF_UPDATE_LR
    return low <= float(np.asarray(optimizer.learning_rate)) <= high


class _StepContext:
    """What one optimizer step showed us while it ran (Python-side, during tracing)."""

    def __init__(self):
        self.grads: dict[int, object] = {}
        self.deltas: dict[int, list] = {}
        self.before: list = []
        self.learning_rate = None
        self.step = None  # the optimizer's step counter before the update


# --- where the gradients come from ----------------------------------------------------------


class AllReducedGradients:
    """The gradients Keras hands to its all-reduce, right before ``update_step``: unscaled,
    clipped and summed across replicas."""

    def install(self, recorder, optimizer) -> None:
        original = getattr(optimizer, compat.ALL_REDUCE)

        def all_reduce_sum_gradients(grads_and_vars):
            reduced = original(grads_and_vars)
            ctx = recorder.context()
            if ctx is not None:
                with recorder.guard():
                    for g, v in reduced:
                        i = recorder.position(v)
                        if i is not None and g is not None:
                            ctx.grads[i] = g
            return reduced

        recorder.wrap(compat.ALL_REDUCE, all_reduce_sum_gradients)

    def from_apply(self, recorder, ctx, grads, variables) -> None:
        """Nothing to take from ``apply``'s arguments."""

    def reduced(self, measured, reduction) -> tf.Tensor:
        grads, zero = measured.ctx.grads, tf.constant(0.0)
        return tf.stack([(graph(reduction)(grads[i]) if i in grads else zero) for i in range(measured.n_vars)])


class AppliedGradients(AllReducedGradients):
    """The gradients passed to ``apply`` (with gradient accumulation the update runs inside a
    ``cond`` branch whose tensors cannot be used outside it)."""

    def install(self, recorder, optimizer) -> None:
        """Nothing to wrap besides ``apply``."""

    def from_apply(self, recorder, ctx, grads, variables) -> None:
        for g, v in zip(grads, variables):
            i = recorder.position(v)
            if i is not None and g is not None:
                ctx.grads[i] = g


class SgdUpdateGradients(AllReducedGradients):
    """Plain SGD applies exactly ``lr * g``: the gradient's norm is the update's over ``lr``
    (generally: a homogeneous reduction's value over ``lr ** power``).

    Reading ``g`` once more would cost an extra pass and stop TensorFlow from reusing ``g``'s
    buffer for ``lr * g`` (measured: ~7% of a step). Falls back to the all-reduced gradients
    when the learning rate was not seen.
    """

    def install(self, recorder, optimizer) -> None:
        super().install(recorder, optimizer)
        original = getattr(optimizer, compat.UPDATE_STEP)

        def backend_update_step(grads, trainable_variables, learning_rate):
            ctx = recorder.context()
            if ctx is not None:
                ctx.learning_rate = learning_rate
            return original(grads, trainable_variables, learning_rate)  # (nothing of ours can fail here)

        recorder.wrap(compat.UPDATE_STEP, backend_update_step)

    def reduced(self, measured, reduction) -> tf.Tensor:
        if measured.ctx.learning_rate is None:
            return super().reduced(measured, reduction)
        updates = measured.reduced_source("update", reduction)
        lr = tf.cast(measured.ctx.learning_rate, tf.float32)
        return updates / (lr * lr if reduction.power == 2 else tf.abs(lr) ** reduction.power)


# --- how the update is measured -----------------------------------------------------------------


class CapturedUpdates:
    """The changes the optimizer itself asks for, through its ``assign_add``/``assign_sub``/``assign``."""

    takes_copy = False

    def install(self, recorder, optimizer) -> None:
        for name, sign in (("assign_add", 1.0), ("assign_sub", -1.0), ("assign", None)):
            recorder.wrap(name, self._capture(recorder, getattr(optimizer, name), sign))

    @staticmethod
    def _capture(recorder, original, sign):
        def capture(variable, value):
            ctx = recorder.context()
            if ctx is not None:
                with recorder.guard():
                    var = tf_variable(variable)
                    i = recorder.position(var)
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

    def reduced(self, i, measured, reduction) -> tf.Tensor:
        deltas = measured.ctx.deltas.get(i)
        if not deltas:
            return tf.constant(0.0)
        if len(deltas) == 1:
            return graph(reduction)(deltas[0][1])
        return graph(reduction)(tf.add_n([sign * tf.cast(_dense(d), tf.float32) for sign, d in deltas]))


class CopiedUpdates:
    """The difference to a copy taken before the step: exact when something besides the
    optimizer's update also changes the variables (weight decay, EMA, constraints,
    distribution strategies, optimizers from outside Keras); a variable the step did not
    update gives 0."""

    takes_copy = True

    def install(self, recorder, optimizer) -> None:
        """Nothing to wrap: the copy is taken in ``apply``."""

    def reduced(self, i, measured, reduction) -> tf.Tensor:
        return graph(reduction)(measured.weights_after()[i] - measured.ctx.before[i])


class StepMeasures:
    """The tensors of one traced step, reduced as the row layouts ask (each at most once)."""

    def __init__(self, recorder: StepRecorder, ctx: _StepContext):
        self.recorder = recorder
        self.ctx = ctx
        self.n_vars = recorder.n_vars
        self._after = None
        self._cache: dict = {}

    def weights_after(self) -> list:
        """The variables' values after the step (read once)."""
        if self._after is None:
            self._after = [var.read_value() for var in self.recorder.tf_variables]
        return self._after

    def small_weights_before(self, indexes) -> tf.Tensor:
        """``sum(w**2)/2`` of the given variables before the step, stacked."""
        l2 = graph(REDUCTIONS["l2"])
        return tf.stack([l2(self.ctx.before[i]) for i in indexes])

    def reduced(self, metric: str, weights_before: bool = False) -> tf.Tensor:
        """A measured metric of every variable, in graph units, stacked (``weights_before``: weight
        metrics of the weights before the step)."""
        spec = METRICS[metric]
        return self.reduced_source(spec.source, reduction_of(metric), weights_before and spec.source == "weight")

    def reduced_source(self, source: str, reduction, before: bool = False) -> tf.Tensor:
        key = (source, id(reduction), before)
        if key not in self._cache:
            if source == "grad":
                value = self.recorder.gradients.reduced(self, reduction)
            elif source == "weight":
                weights = self.ctx.before if before else self.weights_after()
                value = tf.stack([graph(reduction)(w) for w in weights])
            elif source == "update":
                value = tf.stack([self.recorder.updates.reduced(i, self, reduction) for i in range(self.n_vars)])
            else:  # pragma: no cover - vocabulary defines the sources
                raise ValueError(f"unknown metric source {source!r}")
            self._cache[key] = value
        return self._cache[key]


class StepRecorder:
    """Records per-variable norms of the steps of one optimizer into a device ring.

    Args:
        variables: the trainable variables to record, in record order.
        capacity: rows kept on the device between two :meth:`read` calls.
        plan: what is measured in the step, and when (:class:`gradscope.recorders.schedule.Plan`).
        exact_copy: measure the update against a copy taken before each step, instead of
            capturing the optimizer's own updates (see :class:`CopiedUpdates`).
    """

    def __init__(self, variables, capacity: int, plan=None, exact_copy: bool = False):
        from gradscope.recorders.schedule import Plan

        self.variables = list(variables)
        self.tf_variables = [tf_variable(v) for v in self.variables]
        self.n_vars = len(self.variables)
        self._pos = {id(v): i for i, v in enumerate(self.tf_variables)}
        self.plan = plan or Plan()
        self.capacity = capacity
        self.updates = CopiedUpdates() if exact_copy else CapturedUpdates()
        self.gradients = AllReducedGradients()
        self._local = threading.local()
        self._optimizer = None
        self._patched: list[str] = []
        self.error: Exception | None = None  # the first error of ours while tracing
        self.rows = None
        self.ring = None

    #: A call of the train function that finds no batch is counted by ``iterations`` on TensorFlow.
    counts_empty_calls = True

    # --- host side ---------------------------------------------------------------------------

    def next_step(self, optimizer) -> int:
        """The optimizer's step counter now (the step the next call of the train function runs)."""
        return int(optimizer.iterations.numpy())

    def outer_step(self, train_function):
        """The train function ``fit`` calls: on TensorFlow the traced one itself (its ops write the ring)."""
        return train_function

    def read(self, first_step: int, next_step: int):
        """The records of steps ``first_step .. next_step - 1``: ``(steps, {metric: (rows, variables)}, lost)``.

        ``steps`` are the recorded steps (with windows: each window's last step); ``lost`` counts
        rows that did not fit (the earliest; the ring then grows so that the next period fits:
        re-trace the step).
        """
        start, stop, steps = self.rows.indexes(first_step, next_step)
        raw, lost = self.ring.take(start, stop)
        steps, values = self.rows.values(raw, self.current_weight_values, steps[lost:])
        return steps, values, lost

    def read_partial_window(self):
        """With windows: the record of the window still open, as ``(steps, values)`` like :meth:`read`, or None."""
        return self.rows.take_partial()

    def current_weight_values(self, metric: str = "weight_norm") -> np.ndarray:
        """A weight metric of every variable now, computed on the host in float64 (the L2 norm for ``l2``)."""
        weights = [np.asarray(v.numpy(), dtype=np.float64) for v in self.variables]
        if reduction_of(metric) is REDUCTIONS["l2"]:
            return np.array([np.linalg.norm(w) for w in weights])
        return np.array([host_value(metric, w) for w in weights])

    # --- patching ----------------------------------------------------------------------------

    def attach(self, optimizer) -> None:
        """Wrap ``optimizer``'s methods (on this instance only) so that its steps are recorded."""
        if self._optimizer is not None:
            raise RuntimeError("StepRecorder is already attached")
        compat.check_optimizer(optimizer)
        self._prepare(optimizer)
        self.wrap("apply", self._make_apply(optimizer.apply))
        self.gradients.install(self, optimizer)
        self.updates.install(self, optimizer)

    def _prepare(self, optimizer) -> None:
        """Choose where the gradients come from and lay out the rows (once: a reused recorder keeps its ring)."""
        self._optimizer = optimizer
        self.gradients = self.gradient_source(optimizer)
        # The update is measured in the step: for plain SGD it is the very reduction the gradient's
        # norm is read from (lr * g), so it costs nothing more.
        self.plan = self.plan.with_measured("update_norm")
        if self.rows is None:
            sizes = [int(np.prod(v.shape)) for v in self.variables]
            layout = WindowRows if self.plan.window.aggregates else EveryStepRows
            self.rows = layout(self.n_vars, self.plan, sizes)
            self.ring = DeviceRing(self.rows.width, self.capacity)

    def gradient_source(self, optimizer):
        """Where this optimizer's gradients are read (a step traced with another source cannot record it)."""
        if getattr(optimizer, "gradient_accumulation_steps", None) or not compat.has_all_reduce(optimizer):
            return AppliedGradients()
        if is_plain_sgd(optimizer) and not self.updates.takes_copy:
            return SgdUpdateGradients()
        return AllReducedGradients()

    def detach(self) -> None:
        """Restore the optimizer's own methods."""
        for name in self._patched:
            compat.unwrap(self._optimizer, name)
        self._patched = []
        self._optimizer = None

    def wrap(self, name, fn) -> None:
        """Replace one of the optimizer's methods (restored by :meth:`detach`)."""
        compat.wrap(self._optimizer, name, fn)
        self._patched.append(name)

    def context(self):
        """The step being traced on this thread, or None."""
        return getattr(self._local, "ctx", None)

    def position(self, variable):
        """The record column of a variable (Keras or TF), or None for one that is not recorded."""
        return self._pos.get(id(tf_variable(variable)))

    def _make_apply(self, original):
        def apply(grads, trainable_variables=None):
            grads = list(grads)
            if not grads or self.error is not None:
                return original(grads, trainable_variables)
            tvars = None
            with self.guard():
                tvars = (list(trainable_variables) if trainable_variables is not None
                         else compat.optimizer_variables(self._optimizer))
            return self.recorded(lambda: original(grads, trainable_variables), grads, tvars)

        return apply

    def recorded(self, step, grads, tvars):
        """Run one optimizer step (``step()``, which applies ``grads`` to ``tvars``) with its row written
        into the ring after it; the step runs as it is when anything of ours fails."""
        ctx = None
        with self.guard():
            ctx = _StepContext()
            ctx.step = tf_variable(self._optimizer.iterations).read_value()
            if self.rows.takes_weights_before or self.updates.takes_copy:
                # Read before the update: nothing waits for these reads, so their norms are
                # computed alongside the forward and backward passes, not after the update.
                which = None if self.updates.takes_copy else self.rows.reads_before
                ctx.before = [var.read_value() if which is None or i in which else None
                              for i, var in enumerate(self.tf_variables)]
            self.gradients.from_apply(self, ctx, grads, tvars)
        if ctx is None or self.error is not None:
            return step()
        outer, self._local.ctx = self.context(), ctx
        try:
            result = step()
        finally:
            self._local.ctx = outer
        if is_primary_replica() and self.n_vars and self.error is None:
            with self.guard():
                write_row(self.rows, StepMeasures(self, ctx), self.ring, ctx.step)
        return result

    @contextlib.contextmanager
    def guard(self):
        """Recording code run while Keras traces the step: an error of ours is kept in
        :attr:`error` (the monitor warns and stops) and the step goes on without recording."""
        try:
            yield
        except Exception as exc:
            if self.error is None:
                self.error = exc
