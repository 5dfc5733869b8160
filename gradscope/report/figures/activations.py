"""Layer x epoch heatmaps of saturated and dead units on the probe batch."""

from __future__ import annotations

import numpy as np
import seaborn as sns

from gradscope.report.style import grid, layout
from gradscope.vocabulary import SATURATION_MARGIN


def activation_heatmaps(views):
    """Heatmaps of ``saturated_frac`` or ``dead_frac`` per run; None if nothing was recorded."""
    panels = [(view.name, metric, table) for view in views for metric in ("saturated_frac", "dead_frac")
              if (table := view.activation_table(metric)) is not None]
    if not panels:
        return None
    fig, axes = grid(len(panels), width=6.0, height=2.2 + 0.25 * max(t.shape[0] for _, _, t in panels), sharey=False)
    for ax, (name, metric, table) in zip(axes, panels):
        if table.shape[1] > 40:  # long full-batch runs: show at most 40 epoch columns
            table = table.iloc[:, np.linspace(0, table.shape[1] - 1, 40).astype(int)]
        sns.heatmap(table, ax=ax, vmin=0, vmax=1, cmap="mako_r", cbar_kws={"label": metric},
                    annot=table.shape[1] <= 12, fmt=".2f", annot_kws={"fontsize": 7})
        ax.set_yticks(np.arange(len(table.index)) + 0.5, list(table.index), rotation=0, fontsize=8)
        ax.set_title(f"{name}: {metric.replace('_', ' ')}")
        ax.set_xlabel("epoch (0-based)")
        ax.set_ylabel("layer (input first)")
    fig.suptitle(f"Saturated units (sigmoid/tanh: output within {SATURATION_MARGIN:g} of an asymptote) and dead "
                 "units (ReLU: 0 for every probe sample)", fontsize=10)
    layout(fig, left=1.3)
    return fig
