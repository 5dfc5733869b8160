"""How far back in time the gradient reaches, from ``time_grad_norm`` records.

The **reach** of a recurrent layer at one probe (an epoch end) is the number of steps back from
the last one before ``||dL/dh_t||`` first falls below :data:`REACH_FRACTION` of the last step's:
a layer whose gradient reaches 12 of 100 steps cannot learn a dependency 50 steps long. A
gradient that never falls that low reaches the whole sequence (reach = its length).

Example:
    >>> reach([1e-6, 1e-4, 0.02, 0.5, 1.0])
    3
    >>> reach([0.5, 0.8, 1.0])
    3
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from gradscope.vocabulary import REACH_FRACTION, TIME_METRIC


def reach(norms) -> int:
    """Steps back from the last before ``norms`` (per time step, first step first) falls below
    :data:`REACH_FRACTION` of the last step's; the sequence's length when it never does."""
    g = np.asarray(norms, dtype=float)
    if not len(g) or not np.isfinite(g[-1]) or g[-1] <= 0:
        return 0
    below = np.flatnonzero(~(g[::-1] >= REACH_FRACTION * g[-1]))  # lag 0 = the last step; NaN counts as below
    return int(below[0]) if len(below) else len(g)


def time_profiles(records: pd.DataFrame, variable: str = "h") -> pd.DataFrame:
    """``||dL/d<variable>_t||`` as a table: one row per (layer, epoch, step), one column per time step."""
    if not len(records) or "variable" not in records.columns:
        return pd.DataFrame()
    sel = records[(records["metric"] == TIME_METRIC) & (records["variable"] == variable)]
    if not len(sel):
        return pd.DataFrame()
    table = sel.pivot_table(index=["layer", "epoch", "step"], columns="time", values="value", aggfunc="last",
                            observed=True)
    return table.sort_index()


def reached_steps(norms) -> np.ndarray:
    """The time steps a gradient reaches: ``norms`` without a tail of exact zeros (padding that a
    mask hides at the end of every sequence of the probe batch: no gradient comes from there).

    Example:
        >>> reached_steps([0.1, 0.5, 1.0, 0.0, 0.0]).tolist()
        [0.1, 0.5, 1.0]
    """
    g = np.asarray(norms, dtype=float)
    nonzero = np.flatnonzero(g != 0)  # NaN counts as nonzero: it is evidence
    return g[: nonzero[-1] + 1] if len(nonzero) else g[:0]


def reach_table(records: pd.DataFrame, variable: str = "h", profiles: pd.DataFrame | None = None) -> pd.DataFrame:
    """Per recurrent layer and probe: ``layer``, ``epoch``, ``step``, ``length`` (time steps the
    gradient reaches, see :func:`reached_steps`), ``reach``, ``first_over_last``
    (``||dL/dh_1|| / ||dL/dh_T||``, NaN when no gradient reached any step) and ``finite`` (every
    norm finite), in order (from ``profiles``, the :func:`time_profiles` of the records, when they
    are at hand)."""
    profiles = time_profiles(records, variable) if profiles is None else profiles
    rows = []
    for (layer, epoch, step), row in profiles.iterrows():
        values = row.dropna().to_numpy(dtype=float)
        g = reached_steps(values)
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = float(g[0] / g[-1]) if len(g) else np.nan
        rows.append({"layer": layer, "epoch": int(epoch), "step": int(step), "length": len(g), "reach": reach(g),
                     "first_over_last": ratio, "finite": bool(np.isfinite(values).all())})
    return pd.DataFrame(rows, columns=["layer", "epoch", "step", "length", "reach", "first_over_last", "finite"])
