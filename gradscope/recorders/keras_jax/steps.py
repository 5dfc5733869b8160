"""Recording of per-variable norms for every optimizer step of Keras 3 on the JAX backend.

Keras' JAX trainer is stateless: its ``train_step(state, data)`` takes the values of the
trainable, non-trainable, optimizer and metric variables and returns ``(logs, new_state)``,
compiled by ``jax.jit``. Nothing can be written to a device variable from inside it, so
:class:`JaxStepRecorder` makes the compiled step *return* what it measured:

* it wraps ``train_step`` on the model instance: the step runs as Keras wrote it (or as the
  user overrode it), and the wrapper adds one row of reductions to its logs, under a private key,
  computed from the state the step was given and the state it returns (weights before the step,
  and the update as their difference: exact whatever changed them, weight decay, EMA or
  constraints included);
* it wraps the innermost optimizer's ``_backend_update_step`` on the instance, where Keras hands
  the gradients over after unscaling and clipping, to take the gradient of each variable into the
  row (the same place the TensorFlow recorder reads them);
* it wraps the train function ``fit`` calls, taking the row out of the logs before any callback
  sees them. Rows stay on the device (JAX dispatches asynchronously: nothing waits for them) until
  the host reads an epoch's rows at once (:meth:`JaxStepRecorder.read`).

The rows have exactly the layout of :mod:`gradscope.recorders.step_rows` (the same host code
turns them into records), so a run recorded on JAX is the same run as one recorded on TensorFlow.

Not recorded (said in one line when ``fit`` starts): ``steps_per_execution > 1`` (the trainer keeps
only the last step's logs of a group), gradient accumulation (its update runs inside a ``cond``),
and Flax NNX models (their trainer calls the class's ``train_step``, not the instance's).
"""

from __future__ import annotations

import threading

import numpy as np

from gradscope.errors import GradscopeError
from gradscope.recorders import keras_compat as compat
from gradscope.recorders.reductions import host_value
from gradscope.recorders.step_rows import EveryStepRows, WindowRows
from gradscope.vocabulary import METRICS

#: The key under which the compiled step hands its row to the host (removed before callbacks run).
ROW_KEY = "_gradscope_row"
STEP_KEY = "_gradscope_step"


def _half_sq(x):
    """``sum(x**2)/2`` in float32: the graph value of the L2 reduction (its host side is shared)."""
    import jax.numpy as jnp

    x = jnp.asarray(x)
    return 0.5 * jnp.sum(jnp.square(x.astype(jnp.float32)))


#: The graph side of each reduction on JAX (:data:`gradscope.recorders.reductions.REDUCTIONS` names them).
JAX_GRAPH = {"l2": _half_sq}


def unrecordable(model) -> str | None:
    """Why this JAX model's steps cannot be recorded, in one line with what to do, or None."""
    from keras.src.backend.config import is_nnx_enabled

    if is_nnx_enabled():
        return ("gradscope does not record Flax NNX models on JAX (their trainer calls the class's train_step); "
                "unset KERAS_NNX_ENABLED")
    if int(getattr(model, "steps_per_execution", 1) or 1) > 1:
        return ("gradscope records every step on JAX only with steps_per_execution=1 (Keras keeps the logs of the "
                "last step of each group): compile with steps_per_execution=1")
    optimizer = compat.innermost_optimizer(model.optimizer)
    if getattr(optimizer, "gradient_accumulation_steps", None):
        return ("gradscope does not record gradient accumulation on JAX (its update runs inside a cond): "
                "leave gradient_accumulation_steps unset")
    return None


class _JaxGradients:
    """Where the gradients are read on JAX: the optimizer's ``_backend_update_step`` (after unscaling and
    clipping). A class of its own so that a monitor can tell whether a step traced before reads them alike."""


class JaxStepRecorder:
    """Records per-variable norms of the steps of one Keras model on JAX (host interface of
    :class:`gradscope.recorders.keras_tf.steps.StepRecorder`).

    Args:
        model: the compiled Keras model whose ``fit`` is recorded.
        variables: its trainable variables, in record order (``model.trainable_variables``).
        capacity: unused on JAX (rows are kept on the host's list of device arrays); kept for the interface.
        plan: what is measured in the step, and when (:class:`gradscope.recorders.schedule.Plan`).

    Raises:
        UnsupportedStack: when :func:`unrecordable` says the model's steps cannot be recorded.
    """

    def __init__(self, model, variables, capacity: int = 0, plan=None):
        from gradscope.recorders.schedule import Plan

        problem = unrecordable(model)
        if problem is not None:
            raise compat.UnsupportedStack(problem)
        self.model = model
        self.variables = list(variables)
        self.n_vars = len(self.variables)
        self._pos = {id(v): i for i, v in enumerate(self.variables)}
        self.plan = (plan or Plan()).with_measured("update_norm")
        self.capacity = capacity
        self.gradients = _JaxGradients()
        self.error: Exception | None = None
        sizes = [int(np.prod(v.shape)) for v in self.variables]
        layout = WindowRows if self.plan.window.aggregates else EveryStepRows
        self.rows = layout(self.n_vars, self.plan, sizes)
        self._every = self.plan.sample.n_steps if not self.plan.window.aggregates else 1
        self._pending: list = []  # (step, row) device arrays of steps not read yet
        self._last_weights = None  # the trainable values after the last step run (the model's are purged in fit)
        self._first_step = 0  # the optimizer's step counter when this fit began
        self._steps_run = 0  # steps run since (counted on the host: nothing waits for the device)
        self._local = threading.local()
        self._optimizer = None
        self._iteration_index = None

    #: A call of the train function that finds no batch trains nothing and counts no step on JAX.
    counts_empty_calls = False

    # --- host side ---------------------------------------------------------------------------

    def gradient_source(self, optimizer):
        """Where this optimizer's gradients are read (always the same on JAX)."""
        return self.gradients

    def next_step(self, optimizer) -> int:
        """The optimizer's step counter after the last step run (readable even while ``fit`` holds the state)."""
        return self._first_step + self._steps_run

    def read(self, first_step: int, next_step: int):
        """The records of steps ``first_step .. next_step - 1``: ``(steps, {metric: (rows, variables)}, 0)``."""
        import jax.numpy as jnp

        pending, self._pending = self._pending, []
        if not pending:
            steps = np.zeros(0, np.int64)
            raw = np.zeros((0, self.rows.width))
        else:
            steps = np.asarray(jnp.stack([s for s, _ in pending])).astype(np.int64)
            raw = np.asarray(jnp.stack([r for _, r in pending])).astype(np.float64)
        keep = (steps >= first_step) & (steps < next_step)
        if self._every > 1:
            keep &= steps % self._every == 0
        steps, raw = steps[keep], raw[keep]
        order = np.argsort(steps, kind="stable")
        steps, values = self.rows.values(raw[order], self.current_weight_values, steps[order])
        return steps, values, 0

    def read_partial_window(self):
        """With windows: the record of the window still open, as ``(steps, values)``, or None."""
        return self.rows.take_partial()

    def current_weight_values(self, metric: str = "weight_norm") -> np.ndarray:
        """A weight metric of every variable now, on the host in float64 (the L2 norm for ``l2``)."""
        weights = self._last_weights
        if weights is None:
            weights = [v.value for v in self.variables]
        weights = [np.asarray(w, dtype=np.float64) for w in weights]
        if METRICS[metric].reduction == "l2":
            return np.array([np.linalg.norm(w) for w in weights])
        return np.array([host_value(metric, w) for w in weights])

    # --- patching ----------------------------------------------------------------------------

    def attach(self, optimizer) -> None:
        """Wrap the model's ``train_step`` and the optimizer's ``_backend_update_step`` (on the instances)."""
        if self._optimizer is not None:
            raise RuntimeError("JaxStepRecorder is already attached")
        self._optimizer = optimizer
        self._iteration_index = next(i for i, v in enumerate(optimizer.variables) if v is optimizer.iterations)
        self._last_weights = None
        self._first_step, self._steps_run = int(np.asarray(optimizer.iterations.value)), 0
        compat.wrap(optimizer, compat.UPDATE_STEP, self._make_update_step(getattr(optimizer, compat.UPDATE_STEP)))
        compat.wrap(self.model, "train_step", self._make_train_step(self.model.train_step))

    def detach(self) -> None:
        """Give the optimizer and the model their own methods back."""
        if self._optimizer is not None:
            compat.unwrap(self._optimizer, compat.UPDATE_STEP)
        compat.unwrap(self.model, "train_step")
        self._optimizer = None

    def outer_step(self, train_function):
        """The train function ``fit`` calls: ``train_function`` with the row taken out of its logs."""
        if getattr(train_function, "gradscope_rows", None) is self:
            return train_function

        def train_function_with_rows(state, iterator):
            logs, state = train_function(state, iterator)
            row, step = logs.pop(ROW_KEY, None), logs.pop(STEP_KEY, None)
            if row is not None:
                self._pending.append((step, row))
                self._last_weights = state[0]
                self._steps_run += 1
            return logs, state

        train_function_with_rows.gradscope_rows = self
        return train_function_with_rows

    def _make_update_step(self, original):
        def backend_update_step(grads, trainable_variables, learning_rate):
            ctx = getattr(self._local, "ctx", None)
            if ctx is not None and self.error is None:
                try:
                    for g, v in zip(grads, trainable_variables):
                        i = self._pos.get(id(v))
                        if i is not None and g is not None:
                            ctx[i] = g
                except Exception as exc:
                    self.error = exc
            return original(grads, trainable_variables, learning_rate)

        return backend_update_step

    def _make_train_step(self, original):
        def train_step(state, data):
            if self.error is not None:
                return original(state, data)
            ctx = self._local.ctx = {}
            try:
                logs, new_state = original(state, data)
            finally:
                self._local.ctx = None
            try:
                logs = dict(logs)
                logs[ROW_KEY] = self._row(state, new_state, ctx)
                logs[STEP_KEY] = state[2][self._iteration_index]
            except Exception as exc:  # the step goes on without recording; the monitor warns and stops
                if self.error is None:
                    self.error = exc
                logs.pop(ROW_KEY, None)
            return logs, new_state

        return train_step

    def _row(self, state, new_state, grads):
        """The step's row, laid out as :class:`~gradscope.recorders.step_rows.EveryStepRows` writes it."""
        import jax.numpy as jnp

        before, after = list(state[0]), list(new_state[0])
        weights_before = self._every == 1
        parts = []
        for metric in self.rows.columns if isinstance(self.rows, EveryStepRows) else self.rows.per_step.columns:
            spec = METRICS[metric]
            graph = JAX_GRAPH[spec.reduction]
            if spec.source == "grad":
                missing = [i for i in range(self.n_vars) if i not in grads]
                if missing:
                    raise GradscopeError(
                        f"the optimizer was handed no gradient for {len(missing)} of {self.n_vars} variables "
                        f"(first: {self.variables[missing[0]].path}); gradscope records only what it can read")
                values = [graph(grads[i]) for i in range(self.n_vars)]
            elif spec.source == "weight":
                values = [graph(w) for w in (before if weights_before else after)]
            elif spec.source == "update":
                values = [graph(jnp.asarray(a) - jnp.asarray(b)) for a, b in zip(after, before)]
            else:  # pragma: no cover - vocabulary defines the sources
                raise ValueError(f"unknown metric source {spec.source!r}")
            parts.append(jnp.stack(values))
        if self.rows.small:
            parts.append(jnp.stack([_half_sq(before[i]) for i in self.rows.small]))
        return jnp.concatenate(parts).astype(jnp.float32)
