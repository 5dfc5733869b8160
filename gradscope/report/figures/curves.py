"""Training (and validation, when recorded) loss and accuracy per epoch of every run, overlaid.

The loss axis is shared; a run whose loss sits orders of magnitude above the others is cut at
the top and its legend entry says how high it went, and a run with no finite loss says so in
the legend instead of vanishing.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.lines import Line2D
from matplotlib.ticker import MaxNLocator

from gradscope.report.style import beyond, layout, legend_outside, legend_width, log_ranges, log_scale, short, thin


def has_validation(views) -> bool:
    """Whether any run recorded a validation loss or accuracy."""
    return any(len(v.epoch_series("val_loss")) or len(v.epoch_series("val_accuracy")) for v in views)


def training_curves(views, colors):
    """Loss (log scale) and accuracy per epoch; dashed lines are validation when there is any."""
    val = has_validation(views)
    losses = [v.epoch_series("loss") for v in views]
    ranges = log_ranges([s.to_numpy(dtype=float) for s in losses])
    shared = next((r for r in ranges if r is not None and not r[2]), None)
    labels = []
    for view, loss, limits in zip(views, losses, ranges):
        label = short(view.name, 32)
        values = loss.to_numpy(dtype=float)
        if len(values) and not np.isfinite(values).any():
            label += " (no finite loss)"
        elif limits is not None and shared is not None and (cut := beyond(values, shared)):
            label += f" (loss {cut.replace('off the scale: ', '')})"
        labels.append(label)
    ncol = 1 if len(labels) <= 14 else 2
    keys = labels + (["training", "validation"] if val else [])
    key_width = legend_width(keys, ncol=ncol)
    fig, axes = plt.subplots(1, 2, figsize=(12 + key_width, max(3.6, 0.75 + 0.16 * len(keys) / ncol + 1.0)))
    for ax, metric, ylabel in zip(axes, ("loss", "accuracy"), ("loss", "accuracy")):
        for view in views:
            for m, style in ((metric, "-"), (f"val_{metric}", "--")):
                sel = view.epoch_series(m)
                if len(sel):
                    sel = thin(sel)
                    ax.plot(sel.index + 1, sel.to_numpy(), style, marker="o" if len(sel) <= 30 else None, ms=3,
                            color=colors[view.name])
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylabel(ylabel)
        ax.grid(True, alpha=0.3)
    if shared is not None:
        log_scale(axes[0])
        axes[0].set_ylim(shared[0], shared[1])
    axes[0].set_title("training loss" + (" (dashed: validation)" if val else ""), fontsize=10)
    axes[1].set_title("training accuracy" + (" (dashed: validation)" if val else ""), fontsize=10)
    fig.suptitle("Training curves")
    layout(fig, right=0.2 + key_width, gap_w=0.8)
    handles = [Line2D([], [], color=colors[v.name], lw=2) for v in views]
    if val:
        handles += [Line2D([], [], color="0.3", ls="-"), Line2D([], [], color="0.3", ls="--")]
    legend_outside(fig, axes[0], key_width, title="run", handles=handles, labels=keys, ncol=ncol)
    return fig
