"""Depth sweeps: how the gradient reaching the input layer, and accuracy, change with depth."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from gradscope.report.style import (grid, layer_colors, layout, legend_outside, legend_width, log_scale, positive,
                                    run_colors)


def sweep_groups(views):
    """Views grouped by (act, init), each group sorted by depth; None unless some group has several depths."""
    if len({v.depth for v in views}) < 2:
        return None
    groups: dict = {}
    for view in views:
        groups.setdefault((view.config.get("act"), view.config.get("init")), []).append(view)
    if not any(len({v.depth for v in members}) > 1 for members in groups.values()):
        return None  # different models side by side (the seed's table), not a sweep
    return {key: sorted(members, key=lambda v: v.depth) for key, members in groups.items()}


def depth_sweep(views):
    """Input-layer gradient and learning speed at the first step, and accuracy, against depth; None without a sweep."""
    groups = sweep_groups(views)
    if groups is None:
        return None
    colors = run_colors([f"{a}-{i}" for a, i in groups])
    labels = [f"{a}/{i}" for a, i in groups]
    key_width = legend_width(labels)
    fig, axes = plt.subplots(1, 3, figsize=(15 + key_width, 3.8))
    for (act, init), members in groups.items():
        xs, grad0, rel0, acc = [], [], [], []
        for view in members:
            grad = view.table("grad_norm")
            if grad.empty:
                continue
            xs.append(view.depth)
            grad0.append(grad.first.iloc[0])
            rel0.append(view.table("grad_over_weight").first.iloc[0])
            acc.append(view.metrics.get("test_accuracy") or np.nan)
        color = colors[f"{act}-{init}"]
        axes[0].plot(xs, positive(pd.Series(grad0)).to_numpy(), "o-", color=color, label=f"{act}/{init}")
        axes[1].plot(xs, positive(pd.Series(rel0)).to_numpy(), "o-", color=color, label=f"{act}/{init}")
        axes[2].plot(xs, acc, "o-", color=color, label=f"{act}/{init}")
    for ax, ylabel in zip(axes[:2], ("input-layer grad_norm, step 0", "input-layer grad/weight, step 0")):
        log_scale(ax)
        ax.set_ylabel(ylabel)
    axes[2].set_ylabel("test accuracy")
    axes[2].set_ylim(0, 1)
    for ax in axes:
        ax.set_xlabel("hidden layers (depth)")
        ax.grid(True, which="major", alpha=0.3)
    fig.suptitle("Depth sweep: how the gradient reaching the input layer, and accuracy, change with depth")
    layout(fig, top=0.75, right=0.2 + key_width)
    legend_outside(fig, axes[0], key_width, title="activation/init")
    return fig


def depth_profiles(views):
    """Per-layer learning speed at the first step, one panel per act/init, one line per depth."""
    groups = sweep_groups(views)
    if groups is None:
        return None
    depths = sorted({v.depth for members in groups.values() for v in members})
    key_width = legend_width([f"{d} hidden" for d in depths])
    fig, axes = grid(len(groups), width=6.0, height=3.4, extra_width=key_width)
    for ax, ((act, init), members) in zip(axes, groups.items()):
        shade = dict(zip(depths, layer_colors(len(depths))))
        for view in members:
            color = shade[view.depth]
            rel = view.table("grad_over_weight")
            if rel.empty:
                continue
            row = positive(rel.first)
            ax.plot(np.arange(len(row)), row.to_numpy(dtype=float), "o-", ms=3, color=color,
                    label=f"{view.depth} hidden")
        log_scale(ax)
        ax.set_title(f"{act}/{init}")
        ax.set_xlabel("layer index (0 = input side; last = output)")
        ax.set_ylabel("grad_norm / weight_norm, first step")
        ax.grid(True, which="major", alpha=0.3)
    fig.suptitle("Per-layer learning speed at initialisation for each depth")
    layout(fig, right=0.2 + key_width)
    handles = {}
    for ax in axes:  # every depth once, shallow first, whichever panel drew it
        handles.update(zip(*reversed(ax.get_legend_handles_labels())))
    labels = [f"{d} hidden" for d in depths if f"{d} hidden" in handles]
    legend_outside(fig, axes[0], key_width, title="depth", handles=[handles[k] for k in labels], labels=labels)
    return fig


def save_depth_png(views, path) -> bool:
    """Write the depth-sweep figure of ``views`` to ``path`` (a PNG); False when they are not a sweep."""
    from gradscope.report.style import save_png

    fig = depth_sweep(views)
    if fig is None:
        return False
    save_png(fig, path)
    return True
