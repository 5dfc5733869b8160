"""The classic gradient-flow picture: per-layer bars, input to output, at the first and last step."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

from gradscope.report.style import layout, log_scale_or_note, positive


def layer_bars(views, colors, metric="grad_norm"):
    """Bars of ``metric`` (``grad_norm`` or ``grad_over_weight``) per layer, one colour per run."""
    relative = metric == "grad_over_weight"
    fig, axes = plt.subplots(1, 2, figsize=(12, 3.8), sharey=True)
    width = 0.8 / max(len(views), 1)
    for ax, which in zip(axes, ("first", "last")):
        labels, drawn = [], []
        for i, view in enumerate(views):
            table = view.table(metric)
            finite = table[np.isfinite(table.to_numpy(dtype=float)).all(axis=1)] if len(table) else table
            if finite.empty:
                continue
            row = finite.iloc[0] if which == "first" else finite.iloc[-1]
            x = np.arange(len(row)) + (i - (len(views) - 1) / 2) * width
            heights = positive(row).to_numpy(dtype=float)
            drawn.append(heights)
            ax.bar(x, np.nan_to_num(heights), width=width, color=colors[view.name], label=view.name)
            if len(row) > len(labels):
                labels = list(row.index)
        ax.set_xticks(range(len(labels)), labels, rotation=20)
        log_scale_or_note(ax, np.concatenate(drawn) if drawn else [])
        ax.set_title(f"{which} (finite) recorded step")
        ax.set_xlabel("layer (input -> output)")
        ax.set_ylabel("grad_norm / weight_norm (per step)" if relative else "kernel gradient L2 norm")
        ax.grid(True, axis="y", which="major", alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8)
    fig.suptitle("How fast each layer learns relative to its weights" if relative
                 else "Gradient norm per layer, input to output")
    layout(fig)
    return fig
