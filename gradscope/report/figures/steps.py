"""Per-layer metrics over optimizer steps, one panel per run, each with its own layers.

Panels share one log range unless a run sits orders of magnitude away (it gets its own range,
said in its title); what a range cuts off, and where values stop being finite, is written under
the panel's title, never on the data. The layer key sits outside the axes: the layers' names
when every run has the same layers, else each panel's own names (up to four runs) or a
colour scale from input to output side.
"""

from __future__ import annotations

from matplotlib.lines import Line2D

from gradscope.report.style import (LEGEND_FONT, NOTE_LINE_PT, beyond, grid, layer_colors, layout, legend_outside,
                                    legend_width, log_ranges, log_scale, note_count, note_lines, short)

MIXED_LEGENDS_UP_TO = 4  #: runs with different layers each keep a legend of their own up to this many


def _notes(table, limits) -> tuple[list[str], tuple | None]:
    """Words for a panel (non-finite steps, cut values, own range) and the step range to show."""
    notes = []
    xlim = None
    if table.n_steps:
        first, last = table.first_step, table.last_step
        if not table.any_finite:
            notes.append(f"every value NaN/inf (steps {first}-{last})")
            xlim = (first, max(last, first + 1))
        elif table.first_bad_step is not None:
            notes.append(f"NaN/inf from step {table.first_bad_step} (of {last})")
            end = max(table.last_finite_step, table.first_bad_step)
            xlim = (first, end + max(1, 0.05 * (end - first)))
    cut = beyond(table.spread, limits)
    if cut:
        notes.append(cut)
    if limits is not None and limits[2]:
        notes.append("own y-range")
    return notes, xlim


def _same_layers(tables) -> bool:
    return len({tuple(t.layers) for t in tables if t.layers}) <= 1


def over_steps(views, metric, title, ylabel):
    """One panel per run: ``metric`` of every layer's kernel over the recorded steps."""
    tables = [view.table(metric) for view in views]
    same = _same_layers(tables)
    names = next((list(t.layers) for t in tables if t.layers), [])
    own_legends = not same and len(views) <= MIXED_LEGENDS_UP_TO
    if own_legends:
        key_width = legend_width([short(c) for t in tables for c in t.layers] + ["layer (input first)"])
        fig, axes = grid(len(views), width=7.5, height=3.0, cols=1, extra_width=key_width)
    else:
        key_width = legend_width([short(n) for n in names] + ["layer (input first)"]) if same else 1.3
        fig, axes = grid(len(views), extra_width=key_width)
    ranges = log_ranges([t.spread for t in tables])
    small = len(views) > 6
    for ax, view, table, limits in zip(axes, views, tables, ranges):
        for color, layer in zip(layer_colors(len(table.layers)), table.layers):
            x, mean, low, high = table.column(layer)
            ax.plot(x, mean, color=color, lw=1.1, label=short(str(layer)))
            if high is not None:  # a long run: each point is a bucket of steps, its range shaded
                ax.fill_between(x, low, high, color=color, alpha=0.25, lw=0)
        notes, xlim = _notes(table, limits)
        if limits is not None:
            log_scale(ax)
            ax.set_ylim(limits[0], limits[1])
            if limits[2]:
                ax.tick_params(axis="y", colors="crimson")
        else:
            ax.set_yticks([])
            if table.layers and table.any_finite:
                notes.append("every value is 0: nothing to draw on a log scale")
        if xlim is None and limits is None and table.n_steps > 1:  # nothing drawn: still the steps recorded
            xlim = (table.first_step, table.last_step)
        if xlim is not None:
            ax.set_xlim(*xlim)
        if not table.layers:
            notes.append("no steps recorded")
        name = short(view.name, 28 if small else 48) + ("" if view.status == "complete" else f" ({view.status})")
        note_lines(ax, notes)
        ax.set_title(name, fontsize=9 if small else 10, loc="left", pad=4 + NOTE_LINE_PT * len(notes))
        ax.set_xlabel("optimizer step", fontsize=8 if small else 10)
        if not small or ax.get_subplotspec().is_first_col():
            ax.set_ylabel(ylabel, fontsize=8 if small else 10)
        ax.tick_params(labelsize=7 if small else 9)
        ax.grid(True, which="major", alpha=0.3)
        if own_legends and table.layers:
            ax.legend(title="layer (input first)", fontsize=LEGEND_FONT, title_fontsize=LEGEND_FONT,
                      loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0)
    fig.suptitle(title)
    lines = note_count(axes)
    layout(fig, right=0.2 + key_width, left=0.8 if not small else 0.7, top=0.75 + 0.13 * lines,
           gap_h=(0.85 if small else 1.0) + 0.13 * lines)
    if not own_legends:
        _layer_key(fig, names if same else None, key_width)
    return fig


def _layer_key(fig, names, key_width):
    """The layer colours, outside the axes on the right: the names when every run has them, else
    a scale from the input side to the output side."""
    width, height = fig.get_size_inches()
    if names:
        handles = [Line2D([], [], color=c, lw=1.5) for c in layer_colors(len(names))]
        legend_outside(fig, fig.axes[0], key_width, title="layer (input first)", handles=handles,
                       labels=[short(str(n)) for n in names])
        return
    import matplotlib as mpl

    bar = fig.add_axes([1 - (key_width - 0.25) / width, 0.5 - 1.0 / height, 0.15 / width, 2.0 / height])
    mappable = mpl.cm.ScalarMappable(cmap=mpl.colors.ListedColormap(layer_colors(64)))
    cbar = fig.colorbar(mappable, cax=bar, ticks=[0.02, 0.98])
    cbar.ax.set_yticklabels(["input", "output"], fontsize=LEGEND_FONT)
    cbar.ax.invert_yaxis()
    cbar.set_label("layer position", fontsize=LEGEND_FONT)


def gradient_flow(views):
    """Kernel ``grad_norm`` per layer over training steps, one panel per run."""
    return over_steps(views, "grad_norm", "Gradient flow: per-layer kernel gradient norm over training",
                      "kernel gradient L2 norm")


def weight_norms(views):
    """Kernel ``weight_norm`` per layer over training steps."""
    return over_steps(views, "weight_norm", "Weight norms over training", "kernel L2 norm")


def update_ratios(views):
    """Kernel ``update_ratio`` (update norm / weight norm) per layer over training steps."""
    return over_steps(views, "update_ratio", "Update ratio: how much each step changes a layer, "
                      "relative to its weights", "update_norm / weight_norm")
