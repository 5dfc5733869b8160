"""The one record schema that flows from recorders to storage, diagnosis and report.

A record is one row per (run, step, layer, variable, metric) in long ("tidy") format;
see ``docs/architecture.md`` for the meaning of every metric.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from gradscope.errors import GradscopeError

COLUMNS = ["run", "step", "epoch", "layer", "depth", "variable", "metric", "value"]

#: Per-variable metrics recorded for every optimizer step.
STEP_METRICS = ["grad_norm", "weight_norm", "update_norm", "update_ratio"]

#: With ``every_n_steps > 1``: the largest ``grad_norm`` of each window.
AGGREGATE_METRICS = ["grad_norm_max"]

#: Per-layer activation metrics on a probe batch, at each epoch end.
ACTIVATION_METRICS = ["act_mean", "act_std", "saturated_frac", "dead_frac"]

#: Per-epoch metrics taken from the Keras logs (``layer`` and ``variable`` are empty).
EPOCH_METRICS = ["loss", "accuracy", "val_loss", "val_accuracy"]

_DTYPES = {
    "run": str,
    "step": "int64",
    "epoch": "int64",
    "layer": str,
    "depth": "int64",
    "variable": str,
    "metric": str,
    "value": "float64",
}


def empty() -> pd.DataFrame:
    """Return an empty records DataFrame with the schema's columns and dtypes."""
    return coerce(pd.DataFrame({c: [] for c in COLUMNS}))


def coerce(df: pd.DataFrame) -> pd.DataFrame:
    """Return ``df`` with exactly the schema columns, in order, with the schema dtypes.

    Raises:
        GradscopeError: if a column is missing or a value cannot be converted.
    """
    missing = [c for c in COLUMNS if c not in df.columns]
    if missing:
        raise GradscopeError(
            f"records are missing the column(s) {missing}; expected the columns {COLUMNS}"
        )
    out = df[COLUMNS].copy()
    for col in ("layer", "variable"):
        out[col] = out[col].fillna("")
    try:
        out = out.astype(_DTYPES)
    except (ValueError, TypeError) as exc:
        raise GradscopeError(f"records have a value of the wrong type: {exc}") from None
    return out.reset_index(drop=True)


def concat(frames: list[pd.DataFrame]) -> pd.DataFrame:
    """Concatenate record frames (an empty list gives an empty frame)."""
    frames = [f for f in frames if len(f)]
    if not frames:
        return empty()
    return coerce(pd.concat(frames, ignore_index=True))


def from_step_arrays(
    run: str,
    steps: np.ndarray,
    epoch: int,
    variables: list[tuple[str, int, str]],
    grad_norm: np.ndarray,
    weight_norm: np.ndarray,
    update_norm: np.ndarray,
    grad_norm_max: np.ndarray | None = None,
) -> pd.DataFrame:
    """Build step records from arrays of shape ``(n_steps, n_variables)``.

    Args:
        run: run id.
        steps: global step of each row, shape ``(n_steps,)``.
        epoch: epoch the steps belong to.
        variables: ``(layer, depth, variable)`` for each column.
        grad_norm, weight_norm, update_norm: the measured norms.
        grad_norm_max: for aggregated records, the largest ``grad_norm`` of the window.
    """
    n_steps, n_vars = grad_norm.shape
    with np.errstate(divide="ignore", invalid="ignore"):
        update_ratio = update_norm / weight_norm
    metrics = list(STEP_METRICS)
    columns = [grad_norm, weight_norm, update_norm, update_ratio]
    if grad_norm_max is not None:
        metrics.insert(1, "grad_norm_max")
        columns.insert(1, grad_norm_max)
    values = np.stack(columns, axis=-1)
    layer = np.array([v[0] for v in variables], dtype=object)
    depth = np.array([v[1] for v in variables], dtype=np.int64)
    var = np.array([v[2] for v in variables], dtype=object)
    n_metrics = len(metrics)
    df = pd.DataFrame(
        {
            "run": run,
            "step": np.repeat(np.asarray(steps, dtype=np.int64), n_vars * n_metrics),
            "epoch": epoch,
            "layer": np.tile(np.repeat(layer, n_metrics), n_steps),
            "depth": np.tile(np.repeat(depth, n_metrics), n_steps),
            "variable": np.tile(np.repeat(var, n_metrics), n_steps),
            "metric": np.tile(np.array(metrics, dtype=object), n_steps * n_vars),
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
    return coerce(pd.DataFrame(rows, columns=COLUMNS))


def validate(df: pd.DataFrame) -> None:
    """Check that ``df`` follows the record schema.

    Raises:
        GradscopeError: naming the first problem found.
    """
    if list(df.columns) != COLUMNS:
        raise GradscopeError(f"records have the columns {list(df.columns)}; expected {COLUMNS}")
    for col, dtype in _DTYPES.items():
        if dtype == str:
            if len(df) and not df[col].map(lambda x: isinstance(x, str)).all():
                raise GradscopeError(f"records column {col!r} must hold strings")
        elif str(df[col].dtype) != dtype:
            raise GradscopeError(f"records column {col!r} has dtype {df[col].dtype}; expected {dtype}")
    if len(df) and (df["step"] < 0).any():
        raise GradscopeError("records column 'step' has negative values")


def layer_metric(df: pd.DataFrame, metric: str, variable: str = "kernel") -> pd.DataFrame:
    """Pivot one metric of one variable kind to a (step x layer) table, layers ordered by depth."""
    sel = df[(df["metric"] == metric) & (df["variable"] == variable)]
    table = sel.pivot_table(index="step", columns=["depth", "layer"], values="value", aggfunc="mean")
    table = table.sort_index(axis=1, level=0)
    table.columns = [layer for _, layer in table.columns]
    return table
