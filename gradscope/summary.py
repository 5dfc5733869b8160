"""Per-run summary numbers computed from records (pure pandas; no TensorFlow).

The headline numbers are first-to-last layer ratios of the kernel ``grad_norm`` and of
``grad_norm / weight_norm`` (how fast a layer learns relative to its weights), at the first
recorded step and averaged over the last recorded epoch.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from gradscope.records import layer_metric


def _ratio_first_last(row: pd.Series) -> float:
    values = row.to_numpy(dtype=float)
    if len(values) < 2:
        return math.nan
    first, last = values[0], values[-1]
    with np.errstate(divide="ignore", invalid="ignore"):
        return float(np.float64(first) / np.float64(last))


def layer_ratios(records: pd.DataFrame) -> dict:
    """First-to-last layer ratios of kernel ``grad_norm`` and ``grad_norm / weight_norm``.

    Returns:
        A dict with ``grad_start``, ``grad_end``, ``rel_start``, ``rel_end`` (NaN when the run
        has fewer than two layers or no steps), and ``grad_norm_start``/``rel_start_layers``
        listing the per-layer values at the first step, input layer first.
    """
    grad = layer_metric(records, "grad_norm")
    weight = layer_metric(records, "weight_norm")
    out = {k: math.nan for k in ("grad_start", "grad_end", "rel_start", "rel_end")}
    out.update(grad_norm_start=[], rel_start_layers=[], layers=list(grad.columns))
    if grad.empty:
        return out
    rel = grad / weight
    steps = records.loc[records["metric"] == "grad_norm", ["step", "epoch"]].drop_duplicates()
    last_epoch_steps = steps.loc[steps["epoch"] == steps["epoch"].max(), "step"]
    first = grad.index.min()
    out["grad_start"] = _ratio_first_last(grad.loc[first])
    out["rel_start"] = _ratio_first_last(rel.loc[first])
    out["grad_end"] = _ratio_first_last(grad.loc[grad.index.isin(last_epoch_steps)].mean())
    out["rel_end"] = _ratio_first_last(rel.loc[rel.index.isin(last_epoch_steps)].mean())
    out["grad_norm_start"] = [float(v) for v in grad.loc[first]]
    out["rel_start_layers"] = [float(v) for v in rel.loc[first]]
    return out


def fmt(x: float, digits: int = 3) -> str:
    """Format a number compactly for tables (``nan``/``inf`` spelled out)."""
    if x is None:
        return "-"
    x = float(x)
    if math.isnan(x):
        return "nan"
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    if x != 0 and (abs(x) < 1e-3 or abs(x) >= 1e4):
        return f"{x:.{digits - 1}e}"
    return f"{x:.{digits}g}"


def run_table(runs) -> pd.DataFrame:
    """One row per run: settings, test accuracy and the layer ratios (for the CLI and report)."""
    rows = []
    for run in runs:
        cfg = run.config
        ratios = layer_ratios(run.records)
        rows.append(
            {
                "run": run.name,
                "status": run.status,
                "act": cfg.get("act"),
                "init": cfg.get("init"),
                "optimizer": f"{cfg.get('optimizer')} lr={cfg.get('lr')}",
                "data": (cfg.get("data") or {}).get("source"),
                "test_accuracy": run.metrics.get("test_accuracy"),
                **{k: ratios[k] for k in ("grad_start", "grad_end", "rel_start", "rel_end")},
            }
        )
    return pd.DataFrame(rows)


def format_table(table: pd.DataFrame) -> str:
    """The compact text table ``gradscope analyze`` prints at the end."""
    header = (
        f"{'run':<22} {'test acc':>8}  {'grad first/last':>19}  {'(grad/weight) first/last':>24}"
    )
    lines = [header, " " * 33 + f"{'start -> end':>19}  {'start -> end':>24}"]
    for _, r in table.iterrows():
        acc = "-" if r["test_accuracy"] is None else f"{r['test_accuracy']:.4f}"
        grad = f"{fmt(r['grad_start'])} -> {fmt(r['grad_end'])}"
        rel = f"{fmt(r['rel_start'])} -> {fmt(r['rel_end'])}"
        name = r["run"] + ("" if r["status"] == "complete" else f" ({r['status']})")
        lines.append(f"{name:<22} {acc:>8}  {grad:>19}  {rel:>24}")
    return "\n".join(lines)
