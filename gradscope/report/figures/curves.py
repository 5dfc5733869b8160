"""Training (and validation) loss and accuracy per epoch of every run, overlaid."""

from __future__ import annotations

import matplotlib.pyplot as plt

from gradscope.report.style import layout, thin


def training_curves(views, colors):
    """Loss (log scale) and accuracy per epoch; dashed lines are validation."""
    fig, axes = plt.subplots(1, 2, figsize=(12, 3.6))
    for ax, metric, label in zip(axes, ("loss", "accuracy"), ("loss (cross-entropy)", "accuracy")):
        for view in views:
            for m, style in ((metric, "-"), (f"val_{metric}", "--")):
                sel = view.epoch_series(m)
                if len(sel):
                    sel = thin(sel)
                    ax.plot(sel.index + 1, sel.to_numpy(), style, marker="o" if len(sel) <= 30 else None, ms=3,
                            color=colors[view.name], label=f"{view.name}{' (val)' if style == '--' else ''}")
        ax.set_xlabel("epoch")
        ax.set_ylabel(label)
        ax.grid(True, alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8)
    axes[0].set_yscale("log")
    fig.suptitle("Training curves (dashed: validation)")
    layout(fig)
    return fig
