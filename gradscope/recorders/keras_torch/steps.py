"""Recording of per-variable norms for every optimizer step of Keras 3 on the PyTorch backend.

Keras' PyTorch trainer runs each step eagerly: ``loss.backward()`` fills each weight's ``.grad``
and the optimizer's ``apply`` updates the weights in place, under ``torch.no_grad()``. So
:class:`TorchStepRecorder` measures each step as it happens, with torch operations on the
tensors the step already has:

* it wraps the innermost optimizer's ``apply`` on the instance: the weights are copied before the
  step, and after it the row is computed (the weights and the update as their difference: exact
  whatever changed them, weight decay, EMA and constraints included);
* it wraps the optimizer's ``_backend_update_step``, where Keras hands the gradients over after
  loss-scale unscaling and clipping (the same place the TensorFlow and JAX recorders read them).

The rows have the layout of :mod:`gradscope.recorders.step_rows` (the same host code turns them
into records) and stay torch tensors (on the weights' device) until the epoch end. With
``every_n_steps=N`` the steps in between are not measured at all.

Not recorded (said in one line when ``fit`` starts): ``jit_compile=True`` (``torch.compile``
traces the step, and the recorder's Python code with it) and gradient accumulation.
"""

from __future__ import annotations

import numpy as np

from gradscope.recorders import keras_compat as compat
from gradscope.recorders.returned_rows import ReturnedRows, row_values


def _half_sq(x):
    """``sum(x**2)/2`` in float32: the graph value of the L2 reduction (its host side is shared)."""
    x = x.detach()
    return 0.5 * (x.float() ** 2).sum()


#: The graph side of each reduction on PyTorch (:data:`gradscope.recorders.reductions.REDUCTIONS` names them).
TORCH_GRAPH = {"l2": _half_sq}


def unrecordable(model) -> str | None:
    """Why this PyTorch model's steps cannot be recorded, in one line with what to do, or None."""
    if getattr(model, "jit_compile", False) is True:
        return ("gradscope does not record a torch.compile'd train step (jit_compile=True on the PyTorch backend): "
                "compile the model with jit_compile=False")
    optimizer = compat.innermost_optimizer(model.optimizer)
    if getattr(optimizer, "gradient_accumulation_steps", None):
        return ("gradscope does not record gradient accumulation on the PyTorch backend: "
                "leave gradient_accumulation_steps unset")
    return None


class _TorchGradients:
    """Where the gradients are read on PyTorch: the optimizer's ``_backend_update_step`` (after unscaling and
    clipping). A class of its own so that a monitor can tell whether a recorder reads them alike."""


class TorchStepRecorder(ReturnedRows):
    """Records per-variable norms of the steps of one Keras optimizer on PyTorch (host interface of
    :class:`gradscope.recorders.keras_tf.steps.StepRecorder`).

    Args:
        model: the compiled Keras model whose ``fit`` is recorded.
        variables: its trainable variables, in record order (``model.trainable_variables``).
        capacity: unused on PyTorch (rows are kept in a list until read); kept for the interface.
        plan: what is measured in the step, and when (:class:`gradscope.recorders.schedule.Plan`).

    Raises:
        UnsupportedStack: when :func:`unrecordable` says the model's steps cannot be recorded.
    """

    def __init__(self, model, variables, capacity: int = 0, plan=None):
        problem = unrecordable(model)
        if problem is not None:
            raise compat.UnsupportedStack(problem)
        super().__init__(variables, capacity, plan, _TorchGradients())
        self.model = model
        self._grads: dict | None = None  # the gradients of the step being applied
        self._optimizer = None

    # --- host side ---------------------------------------------------------------------------

    def next_step(self, optimizer) -> int:
        """The optimizer's step counter now (the step the next call of the train function runs)."""
        return int(np.asarray(compat.to_numpy(optimizer.iterations.value)))

    def outer_step(self, train_function):
        """The train function ``fit`` calls: the trainer's own (the optimizer's steps are measured as they run)."""
        return train_function

    def _to_host(self, pending) -> tuple:
        import torch

        return np.array([s for s, _ in pending]), torch.stack([r for _, r in pending]).cpu().numpy()

    def _weights_now(self) -> list:
        return [compat.to_numpy(v.value) for v in self.variables]

    # --- patching ----------------------------------------------------------------------------

    def attach(self, optimizer) -> None:
        """Wrap the optimizer's ``apply`` and ``_backend_update_step`` (on the instance)."""
        if self._optimizer is not None:
            raise RuntimeError("TorchStepRecorder is already attached")
        self._optimizer = optimizer
        compat.wrap(optimizer, compat.UPDATE_STEP, self._make_update_step(getattr(optimizer, compat.UPDATE_STEP)))
        compat.wrap(optimizer, "apply", self._make_apply(optimizer.apply))

    def detach(self) -> None:
        """Give the optimizer its own methods back."""
        if self._optimizer is not None:
            compat.unwrap(self._optimizer, compat.UPDATE_STEP)
            compat.unwrap(self._optimizer, "apply")
        self._optimizer = None

    def _make_update_step(self, original):
        def backend_update_step(grads, trainable_variables, learning_rate):
            if self._grads is not None and self.error is None:
                try:
                    for g, v in zip(grads, trainable_variables):
                        i = self._pos.get(id(v))
                        if i is not None and g is not None:
                            self._grads[i] = g.detach().clone()
                except Exception as exc:
                    self.error = exc
            return original(grads, trainable_variables, learning_rate)

        return backend_update_step

    def _make_apply(self, original):
        def apply(grads, trainable_variables=None):
            if self.error is not None or not len(grads):
                return original(grads, trainable_variables)
            step = before = None
            try:
                step = self.next_step(self._optimizer)
                if step % self._every == 0:
                    before = [v.value.detach().clone() for v in self.variables]
                    self._grads = {}
            except Exception as exc:  # the step goes on without recording; the monitor warns and stops
                self.error, before = exc, None
            try:
                result = original(grads, trainable_variables)
            finally:
                grads_seen, self._grads = self._grads, None
            if before is not None and self.error is None:
                try:
                    self._pending.append((step, self._row(before, grads_seen)))
                except Exception as exc:
                    self.error = exc
            return result

        return apply

    def _row(self, before, grads):
        """The step's row, laid out as :mod:`~gradscope.recorders.step_rows` lays it out."""
        import torch

        after = [v.value.detach() for v in self.variables]
        return torch.stack(row_values(self.rows, grads, before, after, TORCH_GRAPH, self.variables)).float()
