"""Layer x epoch heatmaps of saturated and dead units on the probe batch."""

from __future__ import annotations

import numpy as np

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
        values = table.to_numpy(dtype=float)
        image = ax.imshow(values, vmin=0, vmax=1, cmap="cividis_r", aspect="auto", interpolation="nearest")
        if values.shape[1] <= 12 and values.shape[0] <= 20:  # few cells: write the numbers in them
            for (i, j), v in np.ndenumerate(values):
                if np.isfinite(v):
                    ax.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=7,
                            color="white" if v > 0.55 else "black")
        ax.set_xticks(np.arange(values.shape[1]), [str(c) for c in table.columns],
                      fontsize=7 if values.shape[1] <= 20 else 6, rotation=0 if values.shape[1] <= 20 else 90)
        ax.set_yticks(np.arange(len(table.index)), list(table.index), rotation=0, fontsize=8)
        ax.set_title(f"{name}: {metric.replace('_', ' ')}")
        ax.set_xlabel("epoch (0-based)")
        if ax.get_subplotspec().is_first_col():
            ax.set_ylabel("layer (input first)")
    fig.suptitle(f"Saturated units (sigmoid/tanh: output within {SATURATION_MARGIN:g} of an asymptote) and dead "
                 "units (ReLU: 0 for every probe sample)", fontsize=10)
    layout(fig, left=1.3, right=1.0)
    width, height = fig.get_size_inches()
    bar = fig.add_axes([1 - 0.75 / width, 0.75 / height, 0.15 / width, 1 - 1.4 / height])  # one scale for all
    fig.colorbar(image, cax=bar, label="fraction (saturated or dead)")
    return fig
