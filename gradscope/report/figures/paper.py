"""Figures for paper reproductions, from the probes in ``paper.json`` (see :mod:`gradscope.experiments.papers`)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

import matplotlib.pyplot as plt

from gradscope.report.style import layer_colors, layout, log_scale, run_colors, save_png, spread

MAX_LAYERS_DRAWN = 6


def gradient_std_by_layer(paper: dict):
    """Std of back-propagated gradients dL/dz per hidden layer at initialisation, one line per run."""
    probes = paper["probes"]
    colors = run_colors(list(probes))
    fig, axes = plt.subplots(1, 2, figsize=(12, 3.8), sharey=True)
    for ax, when in zip(axes, ("at_init", "after_training")):
        for name, p in probes.items():
            std = np.array(p[when]["gradient_std"], dtype=float)
            ax.plot(np.arange(1, len(std) + 1), np.where(std > 0, std, np.nan), "o-", ms=3, color=colors[name], label=name)
        log_scale(ax)
        ax.set_xlabel("hidden layer (1 = input side)")
        ax.set_ylabel("std of back-propagated gradient dL/dz")
        ax.set_title("at initialisation" if when == "at_init" else "after training")
        ax.grid(True, which="major", alpha=0.3)
        ax.legend(fontsize=7)
    fig.suptitle("Back-propagated gradient per layer (probe batch of 500 training images)")
    layout(fig)
    return fig


def histograms(paper: dict):
    """Per run: activation and back-propagated-gradient histograms per layer, at init and after."""
    probes = paper["probes"]
    fig, axes = plt.subplots(len(probes), 4, figsize=(16, 2.4 * len(probes)), squeeze=False)
    panels = (("at_init", "activation_hist", "activations at init"),
              ("after_training", "activation_hist", "activations after training"),
              ("at_init", "gradient_hist", "dL/dz at init"),
              ("after_training", "gradient_hist", "dL/dz after training"))
    for row, (name, p) in zip(axes, probes.items()):
        for ax, (when, key, label) in zip(row, panels):
            hists = p[when][key]
            keep = spread(len(hists), MAX_LAYERS_DRAWN)
            for color, i in zip(layer_colors(len(keep)), keep):
                edges = np.array(hists[i]["edges"])
                centers = (edges[:-1] + edges[1:]) / 2
                ax.plot(centers, hists[i]["density"], color=color, lw=1.2, label=f"layer {i + 1}")
            ax.set_title(f"{name}: {label}", fontsize=9)
            ax.set_ylabel("fraction")
            ax.tick_params(labelsize=7)
            if key == "gradient_hist":
                ax.ticklabel_format(axis="x", style="sci", scilimits=(-2, 2))
        row[0].legend(fontsize=6)
    fig.suptitle("Histograms per hidden layer (dark: input side; light: output side)")
    layout(fig)
    return fig


def save_summary_pngs(paper: dict, folder) -> None:
    """Write the per-layer gradient figure and the histograms (Glorot & Bengio 2010's Figs. 6-7 view) to
    ``folder`` as ``gradients.png`` and ``histograms.png`` (for READMEs and notes)."""
    save_png(gradient_std_by_layer(paper), Path(folder) / "gradients.png")
    save_png(histograms(paper), Path(folder) / "histograms.png")
