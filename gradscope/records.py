"""The one record schema that flows from recorders to storage, diagnosis and report.

A record is one row per (run, step, layer, variable, metric) in long ("tidy") format. Metric
names and definitions are in :mod:`gradscope.vocabulary`; ``docs/architecture.md`` shows the
schema. Recorders hand over *named* arrays (``{"grad_norm": array, ...}``), never positional
columns, so a new metric flows through by its name.

Example:
    >>> import numpy as np
    >>> df = from_step_arrays("r", np.array([0]), 0, [("dense", 0, "kernel")],
    ...                       {"grad_norm": np.array([[2.0]]), "weight_norm": np.array([[4.0]]),
    ...                        "update_norm": np.array([[0.2]])})
    >>> df.metric.tolist()
    ['grad_norm', 'weight_norm', 'update_norm', 'update_ratio']
    >>> layer_metric(df, "grad_over_weight").loc[0, "dense"]
    np.float64(0.5)
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from gradscope.errors import GradscopeError
from gradscope.vocabulary import (ACTIVATION_METRICS, EPOCH_METRICS, HISTOGRAM_METRICS, METRICS, STEP_METRICS,
                                  WINDOW_METRICS)

__all__ = ["COLUMNS", "STEP_METRICS", "WINDOW_METRICS", "ACTIVATION_METRICS", "EPOCH_METRICS", "empty", "coerce",
           "concat", "from_step_arrays", "from_logs", "from_rows", "validate", "metric_rows", "layer_metric"]

COLUMNS = ["run", "step", "epoch", "layer", "depth", "variable", "metric", "value", "time", "bin"]
#: ``time``: the time step of a per-time-step record (``time_grad_norm`` of a recurrent layer, 0 =
#: the first step the layer reads); -1 for every other record. After the first eight columns, so
#: that rows of those (and files written before it existed) still read.
NO_TIME = -1
#: ``bin``: the bin of a histogram record (``grad_hist``, ``weight_hist``, ``act_hist``: ``value`` is
#: the count of that bin, :mod:`gradscope.histograms`); -1 for every other record. Last, for the
#: same reason as ``time``.
NO_BIN = -1
#: The ``step`` (and ``epoch``) of the histograms measured before a run's first step (only they have it).
NO_STEP = -1

DTYPES = {
    "run": str,
    "step": "int64",
    "epoch": "int64",
    "layer": str,
    "depth": "int64",
    "variable": str,
    "metric": str,
    "value": "float64",
    "time": "int32",
    "bin": "int16",
}

#: Stored metrics derived from measured ones when a recorder hands them over.
_STORED_DERIVED = [m for m in METRICS.values() if m.derived_from and m.stored]


#: The dtype each column has once coerced (``str`` is pandas' string dtype with pandas 3, object before).
_RESOLVED = {c: pd.Series([], dtype=d).dtype for c, d in DTYPES.items()}
_EMPTY = None


def empty() -> pd.DataFrame:
    """Return an empty records DataFrame with the schema's columns and dtypes."""
    global _EMPTY
    if _EMPTY is None:
        _EMPTY = coerce(pd.DataFrame({c: [] for c in COLUMNS}))
    return _EMPTY.copy()


def coerce(df: pd.DataFrame) -> pd.DataFrame:
    """Return ``df`` with exactly the schema columns, in order, with the schema dtypes.

    Columns that already have their dtype are taken as they are (the recorders build them so).

    Raises:
        GradscopeError: if a column is missing or a value cannot be converted.
    """
    if "time" not in df.columns:
        df = df.assign(time=NO_TIME)
    if "bin" not in df.columns:
        df = df.assign(bin=NO_BIN)
    missing = [c for c in COLUMNS if c not in df.columns]
    if missing:
        raise GradscopeError(
            f"records are missing the column(s) {missing}; expected the columns {COLUMNS}"
        )
    out = df[COLUMNS].copy(deep=False)
    for col in ("layer", "variable"):
        if out[col].hasnans:
            out[col] = out[col].fillna("")
    convert = {c: DTYPES[c] for c in COLUMNS if out[c].dtype != _RESOLVED[c]}
    if convert:
        try:
            out = out.astype(convert)
        except (ValueError, TypeError) as exc:
            raise GradscopeError(f"records have a value of the wrong type: {exc}") from None
    return out.reset_index(drop=True)


def concat(frames: list[pd.DataFrame]) -> pd.DataFrame:
    """Concatenate record frames (an empty list gives an empty frame)."""
    frames = [f for f in frames if len(f)]
    if not frames:
        return empty()
    return coerce(pd.concat(frames, ignore_index=True))


def _ratio(numerator, denominator):
    with np.errstate(divide="ignore", invalid="ignore"):
        return numerator / denominator


def from_step_arrays(
    run: str,
    steps: np.ndarray,
    epoch: int,
    variables: list[tuple[str, int, str]],
    metrics: Mapping[str, np.ndarray],
    derive_with: Mapping[str, np.ndarray] | None = None,
) -> pd.DataFrame:
    """Build per-variable step records from named arrays of shape ``(n_steps, n_variables)``.

    Stored derived metrics (``update_ratio``) are added when both their inputs are given, in
    ``metrics`` or in ``derive_with`` (inputs that are not stored themselves, e.g. the weight
    norm interpolated between exact readings).

    Args:
        run: run id.
        steps: global step of each row, shape ``(n_steps,)``.
        epoch: epoch the steps belong to.
        variables: ``(layer, depth, variable)`` for each column.
        metrics: metric name -> array, in the order the records should list them.
        derive_with: metric name -> array, used only to derive the stored derived metrics.

    Example:
        >>> frame = from_step_arrays("r", np.array([0]), 0, [("dense", 0, "kernel")],
        ...                          {"update_norm": np.array([[0.5]])}, derive_with={"weight_norm": np.array([[10.0]])})
        >>> frame[["metric", "value"]].values.tolist()
        [['update_norm', 0.5], ['update_ratio', 0.05]]
    """
    named = dict(metrics)
    inputs = {**(derive_with or {}), **named}
    for m in _STORED_DERIVED:
        numerator, denominator = m.derived_from
        if m.name not in named and numerator in inputs and denominator in inputs:
            named[m.name] = _ratio(inputs[numerator], inputs[denominator])
    names = list(named)
    n_steps, n_vars = next(iter(named.values())).shape
    values = np.stack([named[name] for name in names], axis=-1)
    layer = np.array([v[0] for v in variables], dtype=object)
    depth = np.array([v[1] for v in variables], dtype=np.int64)
    var = np.array([v[2] for v in variables], dtype=object)
    n_metrics = len(names)
    df = pd.DataFrame(
        {
            "run": run,
            "step": np.repeat(np.asarray(steps, dtype=np.int64), n_vars * n_metrics),
            "epoch": epoch,
            "layer": np.tile(np.repeat(layer, n_metrics), n_steps),
            "depth": np.tile(np.repeat(depth, n_metrics), n_steps),
            "variable": np.tile(np.repeat(var, n_metrics), n_steps),
            "metric": np.tile(np.array(names, dtype=object), n_steps * n_vars),
            "value": values.astype(np.float64).reshape(-1),
        }
    )
    return coerce(df)


def from_logs(run: str, step: int, epoch: int, logs: dict) -> pd.DataFrame:
    """Build per-epoch records from a Keras ``logs`` dict (non-numeric entries are skipped)."""
    rows = []
    for name, value in sorted((logs or {}).items()):
        try:
            value = float(value)
        except (TypeError, ValueError):
            continue
        rows.append((run, step, epoch, "", -1, "", name, value))
    return from_rows(rows)


def from_rows(rows) -> pd.DataFrame:
    """Build records from tuples in :data:`COLUMNS` order (8- and 9-tuples without ``time`` or ``bin`` get -1)."""
    rows = list(rows)
    width = len(rows[0]) if rows else len(COLUMNS)
    return coerce(pd.DataFrame(rows, columns=COLUMNS[:width]))


def validate(df: pd.DataFrame) -> None:
    """Check that ``df`` follows the record schema.

    Raises:
        GradscopeError: naming the first problem found.
    """
    if list(df.columns) != COLUMNS:
        raise GradscopeError(f"records have the columns {list(df.columns)}; expected {COLUMNS}")
    for col, dtype in DTYPES.items():
        if dtype == str:  # strings, or (read back from a run, with pandas 3) categories that are strings
            column = df[col]
            names = pd.Series(column.cat.categories) if isinstance(column.dtype, pd.CategoricalDtype) else column
            if len(names) and not names.map(lambda x: isinstance(x, str)).all():
                raise GradscopeError(f"records column {col!r} must hold strings")
        elif str(df[col].dtype) != dtype:
            raise GradscopeError(f"records column {col!r} has dtype {df[col].dtype}; expected {dtype}")
    if len(df) and (df["step"] < NO_STEP).any():
        raise GradscopeError("records column 'step' has values below -1")
    if len(df) and ((df["step"] == NO_STEP) & ~df["metric"].isin(HISTOGRAM_METRICS)).any():
        raise GradscopeError("records column 'step' is -1 (before the first step) in a record that is not a histogram")


def metric_rows(df: pd.DataFrame, metric: str, variable: str = "kernel") -> pd.DataFrame:
    """The records of one metric of one variable kind (all columns), in long format.

    A derived metric that records do not store (``grad_over_weight``) is computed here, row by
    row, from its parts: the one place where it is computed. A denominator recorded less often
    than the numerator (weight norms, read at epoch ends by default) is taken at its latest
    recording at or before each step, and before its first at its ``<name>_initial`` value
    (weights move ~1e-4 of their norm per step).
    """
    spec = METRICS.get(metric)
    if spec is not None and spec.derived_from and not spec.stored:
        numerator, denominator = spec.derived_from
        num = metric_rows(df, numerator, variable)
        den = metric_rows(df, denominator, variable)[["step", "layer", "value"]]
        if len(den) and den["step"].nunique() < num["step"].nunique():
            merged = pd.merge_asof(num.sort_values("step", kind="stable"),
                                   den.sort_values("step", kind="stable").rename(columns={"value": "value_den"}),
                                   on="step", by="layer", direction="backward").rename(columns={"value": "value_num"})
            initial = df[(df["metric"] == f"{denominator}_initial") & (df["variable"] == variable)]
            if len(initial):
                first = initial.groupby("layer", sort=False)["value"].first()
                merged["value_den"] = merged["value_den"].fillna(merged["layer"].map(first))
        else:
            merged = num.merge(den, on=["step", "layer"], suffixes=("_num", "_den"))
        merged["value"] = _ratio(merged["value_num"], merged["value_den"])
        return merged.drop(columns=["value_num", "value_den"]).assign(metric=metric)
    return df[(df["metric"] == metric) & (df["variable"] == variable)]


def layer_metric(df: pd.DataFrame, metric: str, variable: str = "kernel") -> pd.DataFrame:
    """One metric of one variable kind as a (step x layer) table, layers ordered by depth.

    A layer whose values are all NaN keeps its column (NaN is evidence).
    """
    sel = metric_rows(df, metric, variable)
    order = sel[["depth", "layer"]].drop_duplicates().sort_values(["depth", "layer"])["layer"].tolist()
    table = sel.pivot_table(index="step", columns="layer", values="value", aggfunc="mean", dropna=False)
    table = table.reindex(columns=order)
    table.columns = list(order)
    return table
