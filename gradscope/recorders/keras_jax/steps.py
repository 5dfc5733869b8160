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

from gradscope.recorders import keras_compat as compat
from gradscope.recorders.returned_rows import ReturnedRows, row_values

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


class JaxStepRecorder(ReturnedRows):
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
        problem = unrecordable(model)
        if problem is not None:
            raise compat.UnsupportedStack(problem)
        super().__init__(variables, capacity, plan, _JaxGradients())
        self.model = model
        self._last_weights = None  # the trainable values after the last step run (the model's are purged in fit)
        self._first_step = 0  # the optimizer's step counter when this fit began
        self._steps_run = 0  # steps run since (counted on the host: nothing waits for the device)
        self._local = threading.local()
        self._optimizer = None
        self._iteration_index = None

    # --- host side ---------------------------------------------------------------------------

    def next_step(self, optimizer) -> int:
        """The optimizer's step counter after the last step run (readable even while ``fit`` holds the state)."""
        return self._first_step + self._steps_run

    def _to_host(self, pending) -> tuple:
        import jax.numpy as jnp

        return np.asarray(jnp.stack([s for s, _ in pending])), np.asarray(jnp.stack([r for _, r in pending]))

    def _weights_now(self) -> list:
        return self._last_weights if self._last_weights is not None else [v.value for v in self.variables]

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
        """The step's row, laid out as :mod:`~gradscope.recorders.step_rows` lays it out."""
        import jax.numpy as jnp

        values = row_values(self.rows, grads, list(state[0]), list(new_state[0]), JAX_GRAPH, self.variables)
        return jnp.stack(values).astype(jnp.float32)
