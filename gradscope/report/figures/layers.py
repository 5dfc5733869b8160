"""The classic gradient-flow picture: a value per layer, input to output, at the first and last step.

Up to :data:`GROUPED_UP_TO` runs with the same layers: grouped bars, one colour per run. Past
that, or when the runs' layers differ (a CNN beside an MLP), small multiples: one panel per run
over its own layers, the first step hollow and the last filled.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.lines import Line2D

from gradscope.report.style import (NOTE_LINE_PT, beyond, grid, layout, legend_outside, legend_width, log_ranges,
                                    log_scale, note_count, note_lines, positive, short)

GROUPED_UP_TO = 4  #: runs drawn as grouped bars; more become one panel per run
NAMED_TICKS_UP_TO = 8  #: layers whose names label the x-axis of a small panel; more are numbered


def _first_last(table):
    """The first and last rows where every layer is finite (None, None without one)."""
    if table.first_finite is None:
        return None, None
    return table.first_finite, table.last_finite


def _ylabel(metric):
    return "grad_norm / weight_norm (per step)" if metric == "grad_over_weight" else "kernel gradient L2 norm"


def _title(metric):
    return ("How fast each layer learns relative to its weights" if metric == "grad_over_weight"
            else "Gradient norm per layer, input to output")


def layer_bars(views, colors, metric="grad_norm"):
    """``metric`` (``grad_norm`` or ``grad_over_weight``) per layer at the first and last finite step."""
    tables = [view.table(metric) for view in views]
    rows = [_first_last(t) for t in tables]
    if grouped(views, tables, rows):
        return _grouped(views, tables, rows, colors, metric)
    return _small_multiples(views, rows, colors, metric)


def grouped(views, tables=None, rows=None) -> bool:
    """Whether the runs are drawn as grouped bars: few runs, the same layers, one shared range."""
    tables = tables if tables is not None else [view.table("grad_norm") for view in views]
    if len(views) > GROUPED_UP_TO or len({tuple(t.layers) for t in tables if t.layers}) > 1:
        return False
    rows = rows if rows is not None else [_first_last(t) for t in tables]
    ranges = log_ranges([np.concatenate([r.to_numpy(dtype=float) for r in pair]) for pair in rows
                         if pair[0] is not None])
    return not any(r is not None and r[2] for r in ranges)


def _grouped(views, tables, rows, colors, metric):
    labels = [short(v.name, 32) for v in views]
    key_width = legend_width(labels)
    fig, axes = plt.subplots(1, 2, figsize=(12 + key_width, 3.8), sharey=True)
    width = 0.8 / max(len(views), 1)
    drawn = np.concatenate([positive(r).to_numpy(dtype=float) for pair in rows for r in pair if r is not None]
                           or [np.array([])])
    has_positive = bool(np.any(np.isfinite(drawn) & (drawn > 0)))
    names = next((list(t.layers) for t in tables if t.layers), [])
    for ax, which in zip(axes, (0, 1)):
        notes = []
        for i, (view, pair) in enumerate(zip(views, rows)):
            row = pair[which]
            if row is None:
                notes.append(f"{short(view.name, 32)}: no step where every layer is finite")
                continue
            x = np.arange(len(row)) + (i - (len(views) - 1) / 2) * width
            heights = positive(row).to_numpy(dtype=float)
            ax.bar(x, np.nan_to_num(heights, nan=0.0), width=width, color=colors[view.name], label=labels[i])
        if has_positive:
            log_scale(ax)
            ax.set_ylim(*log_ranges([drawn])[0][:2])
        else:
            notes.append("every value is 0 (or not finite): nothing to draw on a log scale")
        ax.set_xticks(range(len(names)), [short(str(n), 16) for n in names], rotation=20, fontsize=8)
        note_lines(ax, notes)
        ax.set_title(f"{'first' if which == 0 else 'last'} (finite) recorded step", pad=4 + NOTE_LINE_PT * len(notes))
        ax.set_xlabel("layer (input -> output)")
        ax.grid(True, axis="y", which="major", alpha=0.3)
    axes[0].set_ylabel(_ylabel(metric))
    fig.suptitle(_title(metric))
    layout(fig, right=0.2 + key_width, bottom=1.0, top=0.75 + 0.13 * note_count(axes), gap_w=0.4)
    handles = [plt.Rectangle((0, 0), 1, 1, color=colors[v.name]) for v in views]
    legend_outside(fig, axes[0], key_width, title="run", handles=handles, labels=labels)
    return fig


def _small_multiples(views, rows, colors, metric):
    key_width = 1.3
    fig, axes = grid(len(views), width=4.0 if len(views) <= 6 else 3.6, height=2.9, cols=min(len(views), 4),
                     extra_width=key_width)
    ranges = log_ranges([np.concatenate([r.to_numpy(dtype=float) for r in pair]) if pair[0] is not None
                         else np.array([]) for pair in rows])
    for ax, view, (first, last), limits in zip(axes, views, rows, ranges):
        notes = []
        if first is None:
            notes.append("no step where every layer is finite")
        else:
            x = np.arange(len(first))
            color = colors[view.name]
            ax.plot(x, positive(first).to_numpy(dtype=float), "o--", color=color, mfc="white", ms=4, lw=1)
            ax.plot(x, positive(last).to_numpy(dtype=float), "o-", color=color, ms=4, lw=1.2)
            if len(x) <= NAMED_TICKS_UP_TO:
                ax.set_xticks(x, [short(str(n), 12) for n in first.index], rotation=35, ha="right", fontsize=6)
            else:
                ax.set_xticks(x, [str(i) for i in x], fontsize=6)
            ax.set_xlim(-0.5, len(x) - 0.5)
        if limits is not None:
            log_scale(ax)
            ax.set_ylim(limits[0], limits[1])
            cut = beyond(np.concatenate([first.to_numpy(dtype=float), last.to_numpy(dtype=float)]), limits)
            if cut:
                notes.append(cut)
            if limits[2]:
                notes.append("own y-range")
                ax.tick_params(axis="y", colors="crimson")
        elif first is not None:
            notes.append("every value is 0: nothing on a log scale")
            ax.set_yticks([])
        ax.tick_params(axis="y", labelsize=7)
        note_lines(ax, notes)
        name = short(view.name, 26) + ("" if view.status == "complete" else f" ({view.status})")
        ax.set_title(name, fontsize=9, loc="left", pad=4 + NOTE_LINE_PT * len(notes))
        ax.grid(True, axis="y", which="major", alpha=0.3)
        if ax.get_subplotspec().is_first_col():
            ax.set_ylabel(_ylabel(metric), fontsize=8)
    fig.suptitle(_title(metric) + ": one panel per run, over its own layers (input side left)")
    lines = note_count(axes)
    layout(fig, right=0.2 + key_width, left=0.8, bottom=0.8, top=0.75 + 0.13 * lines, gap_w=0.6, gap_h=1.0 + 0.13 * lines)
    handles = [Line2D([], [], color="0.3", marker="o", mfc="white", ls="--", ms=4),
               Line2D([], [], color="0.3", marker="o", ls="-", ms=4)]
    legend_outside(fig, axes[0], key_width, handles=handles, labels=["first step", "last step"])
    return fig
