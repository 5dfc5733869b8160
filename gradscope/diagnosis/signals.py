"""The numbers the rules look at, computed once per run from its records.

The signals are relative, because absolute gradient norms mislead: with N(0, 1) weights the
input layer's gradient norm is large (it sums over 401,408 weights) while the layer learns
~70x more slowly, relative to its weights, than the output layer.

* learning speed of a layer: ``update_ratio`` (how much one step changes its kernel) and
  ``grad_over_weight``, early in training and over the last epoch;
* growth of ``grad_norm`` over the first steps: explosion;
* ``saturated_frac`` and ``dead_frac`` on the probe batch: saturated and dead units;
* the loss and accuracy per epoch: stalled training; and non-finite values anywhere.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from gradscope.diagnosis.settings import DEFAULT_SETTINGS, DiagnosisSettings
from gradscope.records import metric_rows


@dataclass
class Signals:
    """The numbers the rules look at (per-layer series are indexed by layer, input side first)."""

    layers: list                 # kernel layers, input side first
    first_step: int | None
    last_step: int | None
    rel_first: pd.Series         # grad_norm / weight_norm per layer early in training (median)
    rel_last: pd.Series          # ... over the last epoch
    grad_first: pd.Series        # grad_norm at the first step
    growth: pd.Series            # max grad_norm early in training / grad_norm at the first step
    update_ratio_first: pd.Series  # median update_ratio early in training
    saturated: pd.Series         # last recorded saturated_frac per layer
    saturated_first: pd.Series
    dead: pd.Series              # last recorded dead_frac per layer
    loss: pd.Series              # epoch -> loss
    accuracy: pd.Series
    non_finite_step: int | None
    non_finite_layers: list

    @property
    def steps(self) -> list:
        """``[first, last]`` recorded step."""
        return [self.first_step, self.last_step]


def _median_by_layer(df, steps):
    sel = df[df["step"].isin(steps)]
    return sel.groupby("layer", sort=False)["value"].median()


def decay_per_layer(rel: pd.Series) -> float:
    """Geometric-mean factor by which learning speed shrinks per layer toward the input."""
    values = rel.to_numpy(dtype=float)
    if len(values) < 2 or not np.all(np.isfinite(values)) or np.any(values <= 0):
        return math.nan
    slope = np.polyfit(np.arange(len(values)), np.log(values), 1)[0]  # log-speed per layer
    return float(np.exp(-slope))


def signals(records: pd.DataFrame, settings: DiagnosisSettings = DEFAULT_SETTINGS) -> Signals:
    """Compute the diagnosis signals of one run."""
    kern = records[records["variable"] == "kernel"]
    order = kern.drop_duplicates("layer").sort_values("depth")["layer"].tolist()

    grad, upd = metric_rows(records, "grad_norm"), metric_rows(records, "update_ratio")
    rel = metric_rows(records, "grad_over_weight")
    steps = grad[["step", "epoch"]].drop_duplicates()
    first_step = int(steps["step"].min()) if len(steps) else None
    last_step = int(steps["step"].max()) if len(steps) else None
    # The early window: the first epoch, or the first 10% of the steps when an epoch is short
    # (full-batch training makes every step an epoch).
    if len(steps):
        end_first_epoch = steps.loc[steps["epoch"] == steps["epoch"].min(), "step"].max()
        horizon = max(end_first_epoch, first_step + settings.early_fraction * (last_step - first_step))
        first_epoch_steps = steps.loc[steps["step"] <= horizon, "step"]
    else:
        first_epoch_steps = []
    last_epoch_steps = steps.loc[steps["epoch"] == steps["epoch"].max(), "step"] if len(steps) else []

    def ordered(s):
        return s.reindex([layer for layer in order if layer in s.index])

    g_first = ordered(grad[grad["step"] == first_step].set_index("layer")["value"]) if first_step is not None else pd.Series(dtype=float)
    g_max = ordered(grad[grad["step"].isin(first_epoch_steps)].groupby("layer")["value"].max())
    with np.errstate(divide="ignore", invalid="ignore"):
        growth = g_max / g_first

    acts = records[records["metric"].isin(["saturated_frac", "dead_frac"])]

    def act_metric(metric, last=True):
        sel = acts[acts["metric"] == metric]
        if not len(sel):
            return pd.Series(dtype=float)
        pick = sel["step"].max() if last else sel["step"].min()
        return sel[sel["step"] == pick].groupby("layer", sort=False)["value"].mean()

    epoch_logs = records[records["layer"] == ""]
    loss = epoch_logs[epoch_logs["metric"] == "loss"].groupby("epoch")["value"].last()
    accuracy = epoch_logs[epoch_logs["metric"] == "accuracy"].groupby("epoch")["value"].last()

    finite_check = records[records["metric"].isin(["grad_norm", "weight_norm", "loss"])]
    bad = finite_check[~np.isfinite(finite_check["value"].to_numpy(dtype=float))]
    non_finite_step = int(bad["step"].min()) if len(bad) else None
    non_finite_layers = [layer for layer in order if layer in set(bad["layer"])]

    return Signals(
        layers=order,
        first_step=first_step,
        last_step=last_step,
        rel_first=ordered(_median_by_layer(rel, first_epoch_steps)),
        rel_last=ordered(_median_by_layer(rel, last_epoch_steps)),
        grad_first=g_first,
        growth=growth,
        update_ratio_first=ordered(_median_by_layer(upd, first_epoch_steps)),
        saturated=act_metric("saturated_frac"),
        saturated_first=act_metric("saturated_frac", last=False),
        dead=act_metric("dead_frac"),
        loss=loss,
        accuracy=accuracy,
        non_finite_step=non_finite_step,
        non_finite_layers=non_finite_layers,
    )
