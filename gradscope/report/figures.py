"""Figures for the report: each function takes records (or runs) and returns a Figure.

No computing beyond reshaping records happens here, and nothing here imports TensorFlow.
"""

from __future__ import annotations

import base64
import io

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import seaborn as sns  # noqa: E402

from gradscope.records import layer_metric  # noqa: E402

PALETTE = "colorblind"


def run_colors(names) -> dict:
    """One colour per run, the same in every figure (seaborn's colour-blind palette)."""
    colors = sns.color_palette(PALETTE, n_colors=max(len(names), 1))
    return {name: colors[i] for i, name in enumerate(names)}


def layer_colors(n: int):
    return sns.color_palette("viridis", n_colors=max(n, 1))


def gradient_flow(runs) -> plt.Figure:
    """Kernel ``grad_norm`` per layer over training steps, one panel per run, shared log y."""
    n = len(runs)
    cols = min(n, 2)
    rows = int(np.ceil(n / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(6.2 * cols, 3.6 * rows), sharey=True, squeeze=False)
    for ax, run in zip(axes.flat, runs):
        table = layer_metric(run.records, "grad_norm")
        colors = layer_colors(table.shape[1])
        for color, (layer, series) in zip(colors, table.items()):
            values = series.replace([np.inf, -np.inf], np.nan).where(series > 0)
            ax.plot(series.index, values, color=color, lw=1.2, label=layer)
        ax.set_yscale("log")
        ax.set_title(run.name)
        ax.set_xlabel("optimizer step")
        ax.set_ylabel("kernel gradient L2 norm")
        ax.grid(True, which="major", alpha=0.3)
        if table.shape[1]:
            ax.legend(title="layer (input first)", fontsize=8, title_fontsize=8, loc="best")
        if table.empty:
            ax.text(0.5, 0.5, "no steps recorded", transform=ax.transAxes, ha="center")
    for ax in list(axes.flat)[n:]:
        ax.set_visible(False)
    fig.suptitle("Gradient flow: per-layer kernel gradient norm over training")
    fig.tight_layout()
    return fig


def layer_profile(runs, colors) -> plt.Figure:
    """``grad_norm / weight_norm`` per layer (input to output) at the first and last step."""
    fig, axes = plt.subplots(1, 2, figsize=(12, 3.8), sharey=True)
    for ax, which in zip(axes, ("first", "last")):
        for run in runs:
            rel = layer_metric(run.records, "grad_norm") / layer_metric(run.records, "weight_norm")
            if rel.empty:
                continue
            row = rel.iloc[0] if which == "first" else rel.iloc[-1]
            ax.plot(range(len(row)), row.where(row > 0).to_numpy(dtype=float), marker="o",
                    color=colors[run.name], label=run.name)
            ax.set_xticks(range(len(row)), list(row.index), rotation=20)
        ax.set_yscale("log")
        ax.set_title(f"{which} recorded step")
        ax.set_xlabel("layer (input -> output)")
        ax.set_ylabel("grad_norm / weight_norm (1/step)")
        ax.grid(True, which="major", alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8)
    fig.suptitle("How fast each layer learns relative to its weights")
    fig.tight_layout()
    return fig


def training_curves(runs, colors) -> plt.Figure:
    """Training loss and accuracy per epoch of every run, overlaid."""
    fig, axes = plt.subplots(1, 2, figsize=(12, 3.6))
    for ax, metric, label in zip(axes, ("loss", "accuracy"), ("loss (cross-entropy)", "accuracy")):
        for run in runs:
            df = run.records
            for m, style in ((metric, "-"), (f"val_{metric}", "--")):
                sel = df[df["metric"] == m]
                if len(sel):
                    ax.plot(sel["epoch"] + 1, sel["value"], style, marker="o", ms=3,
                            color=colors[run.name], label=f"{run.name} {'(val)' if style == '--' else ''}".strip())
        ax.set_xlabel("epoch")
        ax.set_ylabel(label)
        ax.grid(True, alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8)
    axes[0].set_yscale("log")
    fig.suptitle("Training curves")
    fig.tight_layout()
    return fig


def to_data_uri(fig, dpi: int = 90) -> str:
    """Encode a figure as an embedded PNG ``data:`` URI and close it."""
    buf = io.BytesIO()
    try:
        fig.savefig(buf, format="png", dpi=dpi)
    finally:
        plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")
