"""Per-layer metrics over optimizer steps, one panel per run, on a shared log scale."""

from __future__ import annotations

import numpy as np

from gradscope.report.style import envelope, grid, layer_colors, layout, positive


def _mark_non_finite(ax, table):
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


def over_steps(views, metric, title, ylabel):
    """One panel per run: ``metric`` of every layer's kernel over the recorded steps."""
    fig, axes = grid(len(views))
    tables = [view.table(metric) for view in views]
    limits = _shared_limits(tables)
    for ax, view, table in zip(axes, views, tables):
        for color, (layer, series) in zip(layer_colors(table.shape[1]), table.items()):
            x, mean, low, high = envelope(positive(series))
            ax.plot(x, mean, color=color, lw=1.1, label=layer)
            if high is not None:  # a long run: each point is a bucket of steps, its range shaded
                ax.fill_between(x, low, high, color=color, alpha=0.25, lw=0)
        ax.set_yscale("log")
        if limits:
            ax.set_ylim(*limits)
            peak = np.nanmax(positive(table.stack()).to_numpy(dtype=float)) if table.size else np.nan
            if np.isfinite(peak) and peak > limits[1]:
                ax.annotate(f"off the scale: up to {peak:.1e}", (0.02, 0.97), xycoords="axes fraction",
                            color="crimson", fontsize=8, va="top")
        ax.set_title(view.name + ("" if view.status == "complete" else f" ({view.status})"))
        ax.set_xlabel("optimizer step")
        ax.set_ylabel(ylabel)
        ax.grid(True, which="major", alpha=0.3)
        if table.shape[1]:
            _mark_non_finite(ax, table)
            if len(views) <= 6 or ax is axes[0]:  # a sweep: layer colours mean depth in every panel, one legend
                ax.legend(title="layer (input first)", fontsize=7, title_fontsize=7, loc="best")
        else:
            ax.text(0.5, 0.5, "no steps recorded", transform=ax.transAxes, ha="center")
    fig.suptitle(title)
    layout(fig)
    return fig


def gradient_flow(views):
    """Kernel ``grad_norm`` per layer over training steps, one panel per run, shared log y."""
    return over_steps(views, "grad_norm", "Gradient flow: per-layer kernel gradient norm over training",
                      "kernel gradient L2 norm")


def weight_norms(views):
    """Kernel ``weight_norm`` per layer over training steps."""
    return over_steps(views, "weight_norm", "Weight norms over training", "kernel L2 norm")


def update_ratios(views):
    """Kernel ``update_ratio`` (update norm / weight norm) per layer over training steps."""
    return over_steps(views, "update_ratio", "Update ratio: how much each step changes a layer, "
                      "relative to its weights", "update_norm / weight_norm")
