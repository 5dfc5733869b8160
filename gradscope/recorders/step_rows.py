"""How a step source lays out what it measures in a step: named rows, turned back into records on the host.

A row holds, per measured metric of the plan (in :data:`gradscope.vocabulary.MEASURED_METRICS`
order) and variable, the graph value of the metric's reduction (for the L2 norm:
``sum(x**2) / 2``), column-major (every variable's first metric, then the second, ...); the host
finishes them (square roots) when it turns rows back into named ``(rows, variables)`` arrays.

Rows are indexed by the optimizer's own step counter, so nothing but the row itself is written
per step: no counter of ours, no read-modify-write. This module is the host side and knows no
framework; each step source writes the rows with its own (:mod:`gradscope.recorders.keras_tf.rows`
into a TensorFlow device ring, :mod:`gradscope.recorders.keras_jax.steps` as the compiled step's
output).

* :class:`EveryStepRows`: a row per recorded step (every step, or every N-th).
* :class:`WindowRows`: the same rows, made into a record per window of N steps on the host.
"""

from __future__ import annotations

import numpy as np

from gradscope.recorders.reductions import reduction_of
from gradscope.vocabulary import METRICS


def _blocks(raw: np.ndarray, columns, n_vars: int) -> dict[str, np.ndarray]:
    """Column-major row blocks -> ``{column: (rows, variables)}``."""
    return {name: raw[:, j * n_vars:(j + 1) * n_vars] for j, name in enumerate(columns)}


#: Variables of at most this many values (biases, norms' scales, small heads) have their weight
#: norm measured at every step even when the plan leaves weights to the host: it costs nothing,
#: and their norms, often growing from zero, are what interpolation would get wrong.
SMALL_VARIABLE = 4096
SMALL_WEIGHTS = "_small_weight_norm"


class EveryStepRows:
    """A row per recorded step: the plan's every-step metrics of every variable.

    With ``every_n_steps=1``, weight metrics are taken from the weights *before* the step (read
    before the update, so that their reductions run alongside the forward and backward passes)
    and :meth:`values` shifts them by one row, so that each step reports the weights after it.
    When the plan leaves weights to the host, the small variables' weight norms are still
    measured (under :data:`SMALL_WEIGHTS`). With sampling, nothing is computed on the steps in
    between (a ``cond`` skips them), and weights are read after the sampled step.
    """

    def __init__(self, n_vars: int, plan, sizes=()):
        self.n_vars = n_vars
        self.columns = tuple(plan.every_step)
        self.every = plan.sample.n_steps
        weights_measured = any(METRICS[m].source == "weight" for m in self.columns)
        self.small = [i for i, size in enumerate(sizes) if size <= SMALL_VARIABLE] \
            if self.every == 1 and not weights_measured else []
        self.width = n_vars * len(self.columns) + len(self.small)
        self.takes_weights_before = self.every == 1 and (weights_measured or bool(self.small))
        self.reads_before = None if weights_measured else self.small  # None: every variable

    def indexes(self, first_step: int, next_step: int) -> tuple[int, int, np.ndarray]:
        """Ring indexes and recorded steps of the steps ``first_step .. next_step - 1``."""
        steps = np.arange(first_step, next_step, dtype=np.int64)
        steps = steps[steps % self.every == 0]
        if not len(steps):
            return 0, 0, steps
        return int(steps[0] // self.every), int(steps[-1] // self.every) + 1, steps

    def values(self, raw: np.ndarray, weight_values, steps: np.ndarray):
        """``(steps, {metric: (rows, variables)})``: the metrics of each recorded step from its rows.

        Args:
            weight_values: ``weight_values(metric)``: the metric of the variables as they are now.
        """
        values = {name: reduction_of(name).host(block) for name, block in _blocks(raw, self.columns, self.n_vars).items()}
        if self.small:
            small = reduction_of("weight_norm").host(raw[:, self.n_vars * len(self.columns):])
            if len(raw):  # weights before each step -> after it (the last: as they are now)
                small[:-1] = small[1:].copy()
                small[-1] = weight_values("weight_norm")[self.small]
            values[SMALL_WEIGHTS] = small
        if self.takes_weights_before and len(raw):
            for name in self.columns:
                if METRICS[name].source == "weight" and name in values:
                    # Rows hold the weights before each step; after step k they are those before
                    # k+1, and after the last step they are the variables as they are now.
                    w = values[name]
                    w[:-1] = w[1:].copy()
                    w[-1] = weight_values(name)
        return steps, values

    def take_partial(self):
        """No window is ever unfinished."""
        return None


class WindowRows:
    """A record per window of ``n_steps`` steps of the optimizer's step counter, made on the host.

    The device holds exactly what :class:`EveryStepRows` holds for every step (so a window costs
    no more in the step than recording every step, and no accumulator, counter or ``cond`` of
    its own); the host turns the steps into windows when it reads them: gradient metrics as the
    mean of the window's steps under the metric's name and their max under ``<name>_max`` (so no
    spike or NaN is hidden), every other metric as that of the window's last step. Steps of a
    window still open when the rows are read wait on the host for the next read;
    :meth:`take_partial` makes a record of them.
    """

    def __init__(self, n_vars: int, plan, sizes=()):
        from gradscope.recorders.schedule import EveryNSteps, Plan

        self.n_vars = n_vars
        self.n_steps = plan.window.n_steps
        self.per_step = EveryStepRows(n_vars, Plan(plan.every_step, EveryNSteps(1)), sizes)
        self.width = self.per_step.width
        self.small = self.per_step.small
        self.takes_weights_before = self.per_step.takes_weights_before
        self.reads_before = self.per_step.reads_before
        self.aggregated = {m: METRICS[m].window_max for m in plan.every_step if METRICS[m].window_max}
        self._open_steps = np.zeros(0, np.int64)  # steps read whose window has not closed yet
        self._open_values: dict[str, np.ndarray] = {}

    def indexes(self, first_step: int, next_step: int) -> tuple[int, int, np.ndarray]:
        """Ring indexes and steps of the steps ``first_step .. next_step - 1`` (every step is kept)."""
        return self.per_step.indexes(first_step, next_step)

    def values(self, raw: np.ndarray, weight_values, steps: np.ndarray):
        """``(window_last_steps, {metric: (windows, variables)})`` of the windows that closed by
        the last of ``steps``; the steps of an open window wait for the next call."""
        values = self.per_step.values(raw, weight_values, steps)[1]
        steps = np.concatenate([self._open_steps, np.asarray(steps, np.int64)])
        values = {k: np.concatenate([self._open_values[k], v]) if k in self._open_values else v
                  for k, v in values.items()}
        closed = int(np.searchsorted(steps, (steps[-1] + 1) // self.n_steps * self.n_steps)) if len(steps) else 0
        self._open_steps = steps[closed:]
        self._open_values = {k: v[closed:] for k, v in values.items()}
        return self._windows(steps[:closed], {k: v[:closed] for k, v in values.items()})

    def _windows(self, steps: np.ndarray, values: dict):
        if not len(steps):
            return steps, {k: v[:0] for k, v in values.items()}
        window = steps // self.n_steps
        starts = np.flatnonzero(np.r_[True, window[1:] != window[:-1]])
        ends = np.r_[starts[1:], len(steps)] - 1
        lengths = ends - starts + 1
        out = {}
        for m, v in values.items():
            if m in self.aggregated:
                out[m] = np.add.reduceat(v, starts, axis=0) / lengths[:, None]
                out[self.aggregated[m]] = np.maximum.reduceat(v, starts, axis=0)  # NaN stays NaN
            else:
                out[m] = v[ends]
        return steps[ends], out

    def take_partial(self):
        """The open window's record as ``(last_steps, values)``, or None when none is open; then forgotten."""
        steps, values = self._open_steps, self._open_values
        self._open_steps, self._open_values = np.zeros(0, np.int64), {}
        return self._windows(steps, values) if len(steps) else None
