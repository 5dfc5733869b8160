"""Distributions per layer, drawn with seaborn from the runs' histogram records (:mod:`gradscope.histograms`).

* :func:`layer_histograms`: one column per run, one row per layer (input side on top), the
  histogram before the first step beside the last epoch's, on one shared axis: Glorot & Bengio's
  view (2010, Figs. 6-7) of any model. Under a vanishing gradient the input-side rows sit decades
  to the left of the output side's.
* :func:`epoch_ridges`: one panel per run, the input-side layer's gradient histogram at each epoch
  end stacked upward (a ridge plot): how its distribution moves while it trains.

seaborn is imported here, when a report draws one of these, not before; the ``gradscope report``
command has it imported without the part it needs only for kernel density estimates (:func:`_seaborn`).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from gradscope.histograms import bin_bounds, scale_of
from gradscope.report.style import decade_label, layout, short, spread

MAX_RUNS = 6
MAX_LAYERS = 6
MAX_EPOCHS = 8
_WHEN = ("before training", "last epoch")
_AXIS = {"grad_hist": "|gradient| (log scale)", "weight_hist": "|weight| (log scale)",
         "act_hist": "output (linear in [-1, 1], decades beyond)"}


#: Set by a process that only draws reports (the ``gradscope report`` command): seaborn is then imported
#: without ``scipy.stats`` (:func:`_seaborn`).
WITHOUT_KDE = False


def _seaborn():
    """seaborn, imported when a figure draws. With :data:`WITHOUT_KDE` (and neither seaborn nor
    ``scipy.stats`` imported yet), without ``scipy.stats``.

    These figures draw step histograms of counts already binned: no kernel density estimate. seaborn
    imports ``scipy.stats`` only for its KDEs and falls back to a copy of its own when it cannot
    (scipy is an optional dependency of seaborn), and that import is most of seaborn's (0.52 s of
    0.73 s here). seaborn keeps that fallback for the rest of the process (its KDEs use its own copy,
    a cumulative KDE is refused), which is why only the report command asks for it; ``scipy.stats``
    itself stays importable. Where seaborn or ``scipy.stats`` is already imported (a notebook, a
    training process: TensorFlow imports ``scipy.stats``) nothing changes.
    """
    import sys

    if not WITHOUT_KDE or "seaborn" in sys.modules or "scipy.stats" in sys.modules:
        import seaborn

        return seaborn
    sys.modules["scipy.stats"] = None  # seaborn's `from scipy.stats import gaussian_kde` fails: its own copy
    try:
        import seaborn
    finally:
        if sys.modules.get("scipy.stats", 0) is None:
            del sys.modules["scipy.stats"]
    return seaborn


def _panels(views, metric):
    """``[(view, densities)]`` of the runs with histograms of ``metric``, at most :data:`MAX_RUNS`."""
    found = [(view, table) for view in views if len(table := view.histograms(metric))]
    return [found[i] for i in spread(len(found), MAX_RUNS)], len(found)


def _x_range(tables, metric):
    """The drawing-axis range holding every non-empty bin of ``tables`` (whole units, one to spare)."""
    filled = [t[t["count"] > 0] for t in tables]
    lows = [f["left"].min() for f in filled if len(f)]
    highs = [f["right"].max() for f in filled if len(f)]
    if not lows:
        return None
    low, high = np.floor(min(lows)) - 0.5, np.ceil(max(highs)) + 0.5
    if scale_of(metric) == "signed":
        low, high = min(low, -1.1), max(high, 1.1)
    return low, high


def _x_ticks(ax, metric, x_range):
    low, high = x_range
    if scale_of(metric) == "magnitude":
        left, right = bin_bounds(metric)
        zero_at = (left[0] + right[0]) / 2  # the underflow bin: exact zeros and |x| under the first edge
        zeros = low < zero_at  # in range: marked "0", the decades start one clear of it
        ticks = np.arange(max(np.ceil(low), np.ceil(right[0]) + 1) if zeros else np.ceil(low), np.floor(high) + 1)
        step = max(1, int(np.ceil(len(ticks) / 6)))
        ticks = list(ticks[::step])
        labels = [decade_label(t) for t in ticks]
        if zeros:
            ticks, labels = [zero_at, *ticks], ["0", *labels]
        ax.set_xticks(ticks, labels, fontsize=7)
    else:
        ticks = [t for t in (-3, -2, -1, 0, 1, 2, 3) if low <= t <= high]
        ax.set_xticks(ticks, [_signed_label(t) for t in ticks], fontsize=7)
    ax.set_xlim(low, high)


def _signed_label(t: float) -> str:
    """A tick of the signed axis: itself within [-1, 1], beyond it the power of ten drawn there."""
    if abs(t) <= 1:
        return f"{t:g}"
    return ("-" if t < 0 else "") + decade_label(int(abs(t)) - 1)


def _draw(ax, hists, palette, sns) -> list[str]:
    """A panel's histograms (``[(when, rows of one histogram's densities)]``, the same bins) as one
    seaborn step histogram, a hue per histogram, each of area 1 (one call per panel: seaborn's cost is
    per call); returns the ``when`` of those drawn (an all-non-finite histogram has nothing to draw)."""
    drawn = [(when, t) for when, t in hists if len(t) and t["count"].sum() > 0]
    if not drawn:
        return []
    first = drawn[0][1]
    edges = np.concatenate([first["left"].to_numpy(), first["right"].to_numpy()[-1:]])
    centers = (first["left"].to_numpy() + first["right"].to_numpy()) / 2
    data = pd.DataFrame({"x": np.tile(centers, len(drawn)),
                         "count": np.concatenate([t["count"].to_numpy(dtype=float) for _, t in drawn]),
                         "when": np.repeat([when for when, _ in drawn], len(centers))})
    sns.histplot(data, x="x", weights="count", hue="when", bins=edges.tolist(), stat="density", common_norm=False,
                 element="step", fill=True, alpha=0.25, palette=palette, hue_order=[w for w, _ in drawn],
                 legend=False, ax=ax, linewidth=1.1)
    return [when for when, _ in drawn]


def _share(hist) -> float:
    """A histogram's share of non-finite values."""
    bad = hist["non_finite"].iloc[0]
    return bad / (hist["count"].sum() + bad)


def layer_histograms(views, metric: str = "grad_hist"):
    """Per run (columns) and layer (rows, input side on top): the ``metric`` histogram before training
    and at the last epoch end; None when no run recorded ``metric``."""
    import matplotlib.pyplot as plt
    sns = _seaborn()
    from matplotlib.patches import Patch

    panels, found = _panels(views, metric)
    if not panels:
        return None
    layer_lists = []
    for _, table in panels:
        layers = table.drop_duplicates(["depth", "layer", "variable"]).sort_values("depth")
        layer_lists.append(list(zip(layers["layer"], layers["variable"])))
    rows = max(min(len(layers), MAX_LAYERS) for layers in layer_lists)
    x_range = _x_range([t for _, t in panels], metric)
    palette = dict(zip(_WHEN, sns.color_palette("colorblind", 2)))
    shown_whens = set()
    fig, axes = plt.subplots(rows, len(panels), figsize=(1.2 + 2.6 * len(panels), 0.9 + 1.05 * rows),
                             sharex=True, squeeze=False)
    for col, ((view, table), layers) in enumerate(zip(panels, layer_lists)):
        shown = [layers[i] for i in spread(len(layers), MAX_LAYERS)]
        steps = sorted(table["step"].unique())
        for row in range(rows):
            ax = axes[row][col]
            ax.set_yticks([])
            ax.set_ylabel("")
            if row >= len(shown):
                ax.set_visible(False)
                continue
            layer, variable = shown[row]
            one = table[(table["layer"] == layer) & (table["variable"] == variable)]
            hists = [(when, one[one["step"] == step])
                     for when, step in zip(_WHEN, (steps[0], steps[-1]) if len(steps) > 1 else (steps[0],))]
            shown_whens.update(_draw(ax, hists, palette, sns))
            bad = [f"{when}: {_share(hist):.0%} non-finite" for when, hist in hists
                   if len(hist) and hist["non_finite"].iloc[0] > 0]
            ax.set_xlabel(_AXIS[metric] if row == min(rows, len(shown)) - 1 else "", fontsize=8)
            if bad:
                ax.text(0.98, 0.92, "\n".join(bad), transform=ax.transAxes, fontsize=6, va="top", ha="right",
                        color="#b2182b", bbox={"facecolor": "white", "alpha": 0.7, "lw": 0, "pad": 1})
            ax.text(0.02, 0.92, short(layer, 18), transform=ax.transAxes, fontsize=7, va="top",
                    bbox={"facecolor": "white", "alpha": 0.7, "lw": 0, "pad": 1})
            if row == 0:
                ax.set_title(short(view.label, 30), fontsize=9)
            _x_ticks(ax, metric, x_range)
        axes[min(rows, len(shown)) - 1][col].tick_params(labelbottom=True)
    what = {"grad_hist": "|gradient| of each kernel on the probe batch",
            "weight_hist": "|weight| of each kernel",
            "act_hist": "output of each layer on the probe batch"}[metric]
    more = f" ({len(panels)} of {found} runs)" if found > len(panels) else ""
    fig.suptitle(f"Distribution of the {what}, input side on top{more}", fontsize=10)
    handles = [Patch(facecolor=palette[w], edgecolor=palette[w], alpha=0.5, label=w) for w in _WHEN if w in shown_whens]
    if handles:
        fig.legend(handles=handles, loc="lower center", ncol=2, fontsize=8, frameon=False)
    layout(fig, left=0.3, right=0.2, bottom=0.75, top=0.55, gap_w=0.25, gap_h=0.15)
    return fig


def epoch_ridges(views, metric: str = "grad_hist"):
    """Per run: the input-side layer's ``metric`` histogram at each epoch end (at most
    :data:`MAX_EPOCHS`), stacked upward from before training (a ridge plot); None without histograms."""
    import matplotlib.pyplot as plt
    sns = _seaborn()

    panels, found = _panels(views, metric)
    if not panels:
        return None
    x_range = _x_range([t for _, t in panels], metric)
    fig, axes = plt.subplots(1, len(panels), figsize=(1.0 + 2.6 * len(panels), 3.6), sharex=True, squeeze=False)
    for ax, (view, table) in zip(axes[0], panels):
        first = table.sort_values("depth").iloc[0]
        one = table[(table["layer"] == first["layer"]) & (table["variable"] == first["variable"])]
        steps = sorted(one["step"].unique())
        shown = [steps[i] for i in spread(len(steps), MAX_EPOCHS)]
        palette = sns.color_palette("rocket_r", len(shown) + 1)[1:]
        for k, step in enumerate(shown):
            hist = one[one["step"] == step]
            density = hist["density"].to_numpy()
            peak = density.max() if density.max() > 0 else 1.0
            centers = (hist["left"].to_numpy() + hist["right"].to_numpy()) / 2
            base = k * 0.8
            ax.fill_between(centers, base, base + density / peak, step="mid", color=palette[k], alpha=0.75,
                            edgecolor="white", lw=0.5)
        epochs = [int(one.loc[one["step"] == s, "epoch"].iloc[0]) for s in shown]
        ax.set_yticks([k * 0.8 for k in range(len(shown))],
                      ["init" if e < 0 else f"ep {e}" for e in epochs], fontsize=7)
        ax.set_ylim(-0.1, (len(shown) - 1) * 0.8 + 1.15)
        ax.set_title(f"{short(view.label, 22)}: {short(str(first['layer']), 12)}", fontsize=9)
        _x_ticks(ax, metric, x_range)
        ax.set_xlabel(_AXIS[metric], fontsize=8)
        sns.despine(ax=ax, left=True)
    more = f" ({len(panels)} of {found} runs)" if found > len(panels) else ""
    fig.suptitle(f"Input-side layer's |gradient| distribution, epoch by epoch (each scaled to its peak){more}",
                 fontsize=10)
    layout(fig, left=0.6, right=0.2, bottom=0.55, top=0.6, gap_w=0.55)
    return fig

