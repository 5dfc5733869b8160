"""Gradient through time: per recurrent layer, a time step x epoch heatmap of ``||dL/dh_t||``.

Each row is one probe (an epoch end), normalised by its last step's gradient, in decades
(0 = as much as the last step gets; -2 = 1% of it, where the reach ends). A gradient that
vanishes through time is a dark left side that stays dark; a gated cell that learns to carry it
brightens from the bottom rows (early epochs) to the top ones.
"""

from __future__ import annotations

import numpy as np

from gradscope.report.style import NOTE_LINE_PT, grid, layout, note_lines, short, spread

LOWEST_DECADE = -8  #: darker than this is drawn as this


def time_heatmaps(views):
    """One panel per (run, recurrent layer); None when no run recorded gradients through time."""
    panels = [(view, layer, table, view.reach.loc[view.reach["layer"] == layer])
              for view in views for layer, table in view.time_tables().items()]
    if not panels:
        return None
    key_width = 1.3
    fig, axes = grid(len(panels), width=6.0, height=min(4.2, 2.6 + 0.04 * max(len(t) for _, _, t, _ in panels)),
                     extra_width=key_width)
    image = None
    for ax, (view, layer, table, reach) in zip(axes, panels):
        values = table.to_numpy(dtype=float)
        with np.errstate(divide="ignore", invalid="ignore"):
            decades = np.log10(values / values[:, -1:])
        decades = np.clip(np.nan_to_num(decades, nan=LOWEST_DECADE, neginf=LOWEST_DECADE), LOWEST_DECADE, 2)
        image = ax.imshow(decades, aspect="auto", cmap="magma", vmin=LOWEST_DECADE, vmax=0, origin="lower",
                          interpolation="nearest", extent=(-0.5, values.shape[1] - 0.5, -0.5, values.shape[0] - 0.5))
        epochs = [int(e) for e in table.index.get_level_values("epoch")]
        ticks = spread(len(epochs), 6)
        ax.set_yticks(ticks, [str(epochs[i]) for i in ticks], fontsize=7)
        ax.tick_params(axis="x", labelsize=7)
        ax.set_xlabel("time step (0 = first; the loss reads the last)", fontsize=8)
        ax.set_ylabel("epoch (0-based)", fontsize=8)
        notes = []
        if len(reach):
            first, last = reach.iloc[0], reach.iloc[-1]
            notes.append(f"reach (steps back to 1%): {int(first['reach'])} -> {int(last['reach'])} "
                         f"of {int(last['length'])}")
        note_lines(ax, notes)
        ax.set_title(f"{short(view.name, 30)}: {short(str(layer), 20)}", fontsize=9, loc="left",
                     pad=4 + NOTE_LINE_PT * len(notes))
    fig.suptitle("Gradient through time: ||dL/dh_t|| / ||dL/dh_T|| per epoch (log10)", fontsize=11)
    layout(fig, right=0.2 + key_width, top=0.9, gap_h=1.2)
    width, height = fig.get_size_inches()
    bar = fig.add_axes([1 - (key_width - 0.25) / width, 0.75 / height, 0.15 / width, 1 - 1.65 / height])
    cbar = fig.colorbar(image, cax=bar)
    cbar.set_label("log10 (share of the last step's)", fontsize=7)
    cbar.ax.tick_params(labelsize=7)
    return fig
