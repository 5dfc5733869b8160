"""Figures for the report: functions from runs (records) to matplotlib Figures.

No computing beyond reshaping records happens here, and nothing here imports TensorFlow.
Colours: one colour per run (seaborn's colour-blind palette), the same in every figure;
layers use the sequential ``viridis`` map (dark = input side, light = output side).
"""

from __future__ import annotations

import base64
import io

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

from gradscope.records import layer_metric  # noqa: E402

PALETTE = "colorblind"
LAYER_MAP = "viridis"
MAX_POINTS = 1500  # per line: longer series are thinned for drawing (records keep every step)


def run_colors(names) -> dict:
    """One colour per run, the same in every figure (seaborn's colour-blind palette)."""
    colors = sns.color_palette(PALETTE, n_colors=max(len(names), 1))
    return {name: colors[i] for i, name in enumerate(names)}


def layer_colors(n: int):
    return sns.color_palette(LAYER_MAP, n_colors=max(n, 1))


def _layout(fig, left=0.8, right=0.2, bottom=0.75, top=0.65):
    """Fixed margins in inches (tight_layout measures every tick label: seconds per report)."""
    width, height = fig.get_size_inches()
    fig.subplots_adjust(left=left / width, right=1 - right / width, bottom=bottom / height,
                        top=1 - top / height, wspace=0.28, hspace=0.6)
    if fig._suptitle is not None:
        fig._suptitle.set_y(1 - 0.12 / height)


def _grid(n, width=6.0, height=3.4, sharey=True):
    cols = min(n, 2)
    if n > 6:  # sweeps: smaller panels, four to a row
        cols, width, height = 4, 3.6, 2.6
    rows = int(np.ceil(n / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(width * cols, height * rows), sharey=sharey, squeeze=False)
    for ax in list(axes.flat)[n:]:
        ax.set_visible(False)
    return fig, list(axes.flat)[:n]


def _thin(series: pd.Series) -> pd.Series:
    if len(series) <= MAX_POINTS:
        return series
    step = int(np.ceil(len(series) / MAX_POINTS))
    return series.iloc[::step]


def _positive(series: pd.Series) -> pd.Series:
    values = series.replace([np.inf, -np.inf], np.nan)
    return values.where(values > 0)


def _mark_non_finite(ax, table: pd.DataFrame):
    bad = table.index[~np.isfinite(table.to_numpy(dtype=float)).all(axis=1)]
    if len(bad):
        ax.axvline(bad[0], color="crimson", ls="--", lw=1)
        ax.annotate(f"NaN/inf from step {bad[0]}", (bad[0], 0.95), xycoords=("data", "axes fraction"),
                    color="crimson", fontsize=8, ha="left", va="top")


def _shared_limits(tables):
    """Log-axis limits shared by all panels; runs that explode go off the top, marked."""
    values = np.concatenate([t.to_numpy(dtype=float).ravel() for t in tables if t.size] or [np.ones(1)])
    values = values[np.isfinite(values) & (values > 0)]
    if not len(values):
        return None
    low, high, typical = values.min(), values.max(), np.median(values)
    return low / 2, min(high * 2, typical * 1e6)


def _over_steps(runs, metric, title, ylabel, variable="kernel"):
    fig, axes = _grid(len(runs))
    tables = [layer_metric(run.records, metric, variable) for run in runs]
    limits = _shared_limits(tables)
    for ax, run, table in zip(axes, runs, tables):
        for color, (layer, series) in zip(layer_colors(table.shape[1]), table.items()):
            s = _thin(_positive(series))
            ax.plot(s.index, s.to_numpy(), color=color, lw=1.1, label=layer)
        ax.set_yscale("log")
        if limits:
            ax.set_ylim(*limits)
            peak = np.nanmax(_positive(table.stack()).to_numpy(dtype=float)) if table.size else np.nan
            if np.isfinite(peak) and peak > limits[1]:
                ax.annotate(f"off the scale: up to {peak:.1e}", (0.02, 0.97), xycoords="axes fraction",
                            color="crimson", fontsize=8, va="top")
        ax.set_title(run.name + ("" if run.status == "complete" else f" ({run.status})"))
        ax.set_xlabel("optimizer step")
        ax.set_ylabel(ylabel)
        ax.grid(True, which="major", alpha=0.3)
        if table.shape[1]:
            _mark_non_finite(ax, table)
            ax.legend(title="layer (input first)", fontsize=7, title_fontsize=7, loc="best")
        else:
            ax.text(0.5, 0.5, "no steps recorded", transform=ax.transAxes, ha="center")
    fig.suptitle(title)
    _layout(fig)
    return fig


def gradient_flow(runs) -> plt.Figure:
    """Kernel ``grad_norm`` per layer over training steps, one panel per run, shared log y."""
    return _over_steps(runs, "grad_norm", "Gradient flow: per-layer kernel gradient norm over training",
                       "kernel gradient L2 norm")


def weight_norms(runs) -> plt.Figure:
    """Kernel ``weight_norm`` per layer over training steps."""
    return _over_steps(runs, "weight_norm", "Weight norms over training", "kernel L2 norm")


def update_ratios(runs) -> plt.Figure:
    """Kernel ``update_ratio`` (update norm / weight norm) per layer over training steps."""
    return _over_steps(runs, "update_ratio", "Update ratio: how much each step changes a layer, "
                       "relative to its weights", "update_norm / weight_norm")


def _relative(run) -> pd.DataFrame:
    return layer_metric(run.records, "grad_norm") / layer_metric(run.records, "weight_norm")


def layer_bars(runs, colors, relative=False) -> plt.Figure:
    """The classic gradient-flow picture: per-layer bars, input to output, first vs last step."""
    fig, axes = plt.subplots(1, 2, figsize=(12, 3.8), sharey=True)
    width = 0.8 / max(len(runs), 1)
    for ax, which in zip(axes, ("first", "last")):
        labels = []
        for i, run in enumerate(runs):
            table = _relative(run) if relative else layer_metric(run.records, "grad_norm")
            finite = table[np.isfinite(table.to_numpy(dtype=float)).all(axis=1)] if len(table) else table
            if finite.empty:
                continue
            row = finite.iloc[0] if which == "first" else finite.iloc[-1]
            x = np.arange(len(row)) + (i - (len(runs) - 1) / 2) * width
            ax.bar(x, _positive(row).to_numpy(dtype=float), width=width, color=colors[run.name], label=run.name)
            if len(row) > len(labels):
                labels = list(row.index)
        ax.set_xticks(range(len(labels)), labels, rotation=20)
        ax.set_yscale("log")
        ax.set_title(f"{which} (finite) recorded step")
        ax.set_xlabel("layer (input -> output)")
        ax.set_ylabel("grad_norm / weight_norm (per step)" if relative else "kernel gradient L2 norm")
        ax.grid(True, axis="y", which="major", alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8)
    fig.suptitle("How fast each layer learns relative to its weights" if relative
                 else "Gradient norm per layer, input to output")
    _layout(fig)
    return fig


def activation_heatmaps(runs):
    """Layer x epoch heatmaps of ``saturated_frac`` or ``dead_frac``; None if nothing recorded."""
    panels = []
    for run in runs:
        df = run.records
        for metric in ("saturated_frac", "dead_frac"):
            sel = df[df["metric"] == metric]
            if len(sel):
                table = sel.pivot_table(index=["depth", "layer"], columns="epoch", values="value", aggfunc="mean")
                table.index = [layer for _, layer in table.index]
                panels.append((run.name, metric, table))
    if not panels:
        return None
    fig, axes = _grid(len(panels), width=6.0, height=2.2 + 0.25 * max(t.shape[0] for _, _, t in panels), sharey=False)
    for ax, (name, metric, table) in zip(axes, panels):
        if table.shape[1] > 40:  # long full-batch runs: show at most 40 epoch columns
            table = table.iloc[:, np.linspace(0, table.shape[1] - 1, 40).astype(int)]
        sns.heatmap(table, ax=ax, vmin=0, vmax=1, cmap="mako_r", cbar_kws={"label": metric},
                    annot=table.shape[1] <= 12, fmt=".2f", annot_kws={"fontsize": 7})
        ax.set_yticks(np.arange(len(table.index)) + 0.5, list(table.index), rotation=0, fontsize=8)
        ax.set_title(f"{name}: {metric.replace('_', ' ')}")
        ax.set_xlabel("epoch (0-based)")
        ax.set_ylabel("layer (input first)")
    fig.suptitle("Saturated units (sigmoid/tanh: output within 0.01 of an asymptote) and dead units "
                 "(ReLU: 0 for every probe sample)", fontsize=10)
    _layout(fig, left=1.3)
    return fig


def training_curves(runs, colors) -> plt.Figure:
    """Training (and validation) loss and accuracy per epoch of every run, overlaid."""
    fig, axes = plt.subplots(1, 2, figsize=(12, 3.6))
    for ax, metric, label in zip(axes, ("loss", "accuracy"), ("loss (cross-entropy)", "accuracy")):
        for run in runs:
            df = run.records
            for m, style in ((metric, "-"), (f"val_{metric}", "--")):
                sel = df[(df["metric"] == m) & (df["layer"] == "")].groupby("epoch")["value"].last()
                if len(sel):
                    sel = _thin(sel)
                    ax.plot(sel.index + 1, sel.to_numpy(), style, marker="o" if len(sel) <= 30 else None, ms=3,
                            color=colors[run.name], label=f"{run.name}{' (val)' if style == '--' else ''}")
        ax.set_xlabel("epoch")
        ax.set_ylabel(label)
        ax.grid(True, alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8)
    axes[0].set_yscale("log")
    fig.suptitle("Training curves (dashed: validation)")
    _layout(fig)
    return fig


def _depth(run):
    return len(run.config.get("hidden") or [])


def _sweep_groups(runs):
    """Runs grouped by (act, init), each group sorted by depth; None unless depths differ."""
    if len({_depth(r) for r in runs}) < 2:
        return None
    groups: dict = {}
    for run in runs:
        groups.setdefault((run.config.get("act"), run.config.get("init")), []).append(run)
    return {key: sorted(members, key=_depth) for key, members in groups.items()}


def depth_sweep(runs):
    """Input-layer gradient and learning speed, and accuracy, against depth; None without a sweep."""
    groups = _sweep_groups(runs)
    if groups is None:
        return None
    colors = run_colors([f"{a}/{i}" for a, i in groups])
    fig, axes = plt.subplots(1, 3, figsize=(15, 3.8))
    for (act, init), members in groups.items():
        xs, grad0, rel0, acc = [], [], [], []
        for run in members:
            grad = layer_metric(run.records, "grad_norm")
            if grad.empty:
                continue
            rel = _relative(run)
            xs.append(_depth(run))
            grad0.append(grad.iloc[0, 0])
            rel0.append(rel.iloc[0, 0])
            acc.append(run.metrics.get("test_accuracy") or np.nan)
        color = colors[f"{act}/{init}"]
        axes[0].plot(xs, _positive(pd.Series(grad0)).to_numpy(), "o-", color=color, label=f"{act}/{init}")
        axes[1].plot(xs, _positive(pd.Series(rel0)).to_numpy(), "o-", color=color, label=f"{act}/{init}")
        axes[2].plot(xs, acc, "o-", color=color, label=f"{act}/{init}")
    for ax, ylabel in zip(axes[:2], ("input-layer grad_norm, step 0", "input-layer grad/weight, step 0")):
        ax.set_yscale("log")
        ax.set_ylabel(ylabel)
    axes[2].set_ylabel("test accuracy")
    axes[2].set_ylim(0, 1)
    for ax in axes:
        ax.set_xlabel("hidden layers (depth)")
        ax.grid(True, which="major", alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle("Depth sweep: how the gradient reaching the input layer, and accuracy, change with depth")
    _layout(fig, top=0.75)
    return fig


def depth_profiles(runs):
    """Per-layer learning speed at the first step, one panel per act/init, one line per depth."""
    groups = _sweep_groups(runs)
    if groups is None:
        return None
    fig, axes = _grid(len(groups), width=6.0, height=3.4)
    for ax, ((act, init), members) in zip(axes, groups.items()):
        for color, run in zip(layer_colors(len(members)), members):
            rel = _relative(run)
            if rel.empty:
                continue
            row = _positive(rel.iloc[0])
            ax.plot(np.arange(len(row)), row.to_numpy(dtype=float), "o-", ms=3, color=color,
                    label=f"{_depth(run)} hidden")
        ax.set_yscale("log")
        ax.set_title(f"{act}/{init}")
        ax.set_xlabel("layer index (0 = input side; last = output)")
        ax.set_ylabel("grad_norm / weight_norm, first step")
        ax.grid(True, which="major", alpha=0.3)
        ax.legend(fontsize=7, title="depth", title_fontsize=7)
    fig.suptitle("Per-layer learning speed at initialisation for each depth")
    _layout(fig)
    return fig


def to_data_uri(fig, dpi: int = 80) -> str:
    """Encode a figure as an embedded PNG ``data:`` URI and close it."""
    buf = io.BytesIO()
    try:
        fig.savefig(buf, format="png", dpi=dpi)
    finally:
        plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")
