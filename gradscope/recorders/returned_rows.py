"""The host side shared by step sources whose rows come back out of the step (JAX, PyTorch).

Where the train step cannot write a device ring of its own (JAX's trainer is stateless; PyTorch's
runs eagerly), the step source computes each step's row with its framework's operations and hands
it back to the host, which keeps it, unread, until the epoch ends. :class:`ReturnedRows` holds
what such a source shares: the row layout (:mod:`gradscope.recorders.step_rows`), the rows kept
and how they are read, and :func:`row_values`, one step's row in the layout's order from the
step's gradients and weights before and after, each reduced by the framework's own functions.
It knows no framework.
"""

from __future__ import annotations

import numpy as np

from gradscope.errors import GradscopeError
from gradscope.recorders.reductions import host_value
from gradscope.recorders.step_rows import EveryStepRows, WindowRows
from gradscope.vocabulary import METRICS


def row_values(rows, grads: dict, before: list, after: list, graph: dict, variables) -> list:
    """The values of one step's row, in the order ``rows`` (a layout of :mod:`~gradscope.recorders.step_rows`)
    lays them out, each a scalar of the framework's.

    Args:
        grads: variable index -> the gradient the optimizer applied.
        before, after: every variable's value before and after the step.
        graph: reduction name -> the framework's function from a tensor to its graph-unit value.
        variables: the recorded variables (to name one that had no gradient).

    Raises:
        GradscopeError: when the optimizer was handed no gradient for some variable: only what was read
            is recorded.
    """
    layout = rows.per_step if isinstance(rows, WindowRows) else rows
    weights_before = layout.every == 1  # (then the host shifts them to the weights after each step)
    n_vars = len(before)
    values = []
    for metric in layout.columns:
        spec = METRICS[metric]
        reduce = graph[spec.reduction]
        if spec.source == "grad":
            missing = [i for i in range(n_vars) if i not in grads]
            if missing:
                raise GradscopeError(
                    f"the optimizer was handed no gradient for {len(missing)} of {n_vars} variables "
                    f"(first: {variables[missing[0]].path}); gradscope records only what it can read")
            values += [reduce(grads[i]) for i in range(n_vars)]
        elif spec.source == "weight":
            values += [reduce(w) for w in (before if weights_before else after)]
        elif spec.source == "update":
            values += [reduce(a - b) for a, b in zip(after, before)]
        else:  # pragma: no cover - vocabulary defines the sources
            raise ValueError(f"unknown metric source {spec.source!r}")
    if layout.small:
        values += [graph["l2"](before[i]) for i in layout.small]
    return values


class ReturnedRows:
    """Rows handed back by the step, kept until read (host interface of
    :class:`gradscope.recorders.keras_tf.steps.StepRecorder`, less what depends on the framework).

    Args:
        variables: the trainable variables to record, in record order.
        capacity: unused (rows are kept in a list); kept for the interface.
        plan: what is measured in the step, and when (:class:`gradscope.recorders.schedule.Plan`).
        gradients: the object that says where this framework reads the gradients (compared, not called).
    """

    #: A call of the train function that finds no batch trains nothing and counts no step here.
    counts_empty_calls = False

    def __init__(self, variables, capacity: int, plan, gradients):
        from gradscope.recorders.schedule import Plan

        self.variables = list(variables)
        self.n_vars = len(self.variables)
        self._pos = {id(v): i for i, v in enumerate(self.variables)}
        self.plan = (plan or Plan()).with_measured("update_norm")
        self.capacity = capacity
        self.gradients = gradients
        self.error: Exception | None = None
        sizes = [int(np.prod(v.shape)) for v in self.variables]
        layout = WindowRows if self.plan.window.aggregates else EveryStepRows
        self.rows = layout(self.n_vars, self.plan, sizes)
        self._every = self.plan.sample.n_steps if not self.plan.window.aggregates else 1
        self._pending: list = []  # (step, row) of the steps not read yet, as the framework holds them

    def gradient_source(self, optimizer):
        """Where this optimizer's gradients are read (always the same for a framework)."""
        return self.gradients

    def read(self, first_step: int, next_step: int):
        """The records of steps ``first_step .. next_step - 1``: ``(steps, {metric: (rows, variables)}, 0)``."""
        pending, self._pending = self._pending, []
        if not pending:
            steps, raw = np.zeros(0, np.int64), np.zeros((0, self.rows.width))
        else:
            steps, raw = self._to_host(pending)
            steps, raw = np.asarray(steps).astype(np.int64), np.asarray(raw).astype(np.float64)
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
        weights = [np.asarray(w, dtype=np.float64) for w in self._weights_now()]
        if METRICS[metric].reduction == "l2":
            return np.array([np.linalg.norm(w) for w in weights])
        return np.array([host_value(metric, w) for w in weights])

    # --- what each framework says ------------------------------------------------------------

    def _to_host(self, pending) -> tuple:
        """``(steps, rows)`` of the pending rows, as arrays."""
        raise NotImplementedError

    def _weights_now(self) -> list:
        """Every recorded variable's value now, as arrays."""
        raise NotImplementedError
