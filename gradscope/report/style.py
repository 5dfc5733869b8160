"""How report figures look: colours, panel grids, fixed margins, PNG encoding (matplotlib, Agg).

Colours: one colour per run (seaborn's colour-blind palette), the same in every figure of a
report; layers use the sequential ``viridis`` map (dark = input side, light = output side).
"""

from __future__ import annotations

import base64
import io
import warnings

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

PALETTE = "colorblind"
LAYER_MAP = "viridis"
MAX_POINTS = 1500  # per line: longer series are drawn as buckets (records keep every step)


def run_colors(names) -> dict:
    """One colour per run, the same in every figure (seaborn's colour-blind palette)."""
    colors = sns.color_palette(PALETTE, n_colors=max(len(names), 1))
    return {name: colors[i] for i, name in enumerate(names)}


def layer_colors(n: int):
    return sns.color_palette(LAYER_MAP, n_colors=max(n, 1))


def layout(fig, left=0.8, right=0.2, bottom=0.75, top=0.65):
    """Fixed margins in inches (tight_layout measures every tick label: seconds per report)."""
    width, height = fig.get_size_inches()
    fig.subplots_adjust(left=left / width, right=1 - right / width, bottom=bottom / height,
                        top=1 - top / height, wspace=0.28, hspace=0.6)
    if fig._suptitle is not None:
        fig._suptitle.set_y(1 - 0.12 / height)


def grid(n, width=6.0, height=3.4, sharey=True):
    """A figure of ``n`` panels, two to a row (four smaller ones to a row for sweeps)."""
    cols = min(n, 2)
    if n > 6:  # sweeps: smaller panels, four to a row
        cols, width, height = 4, 3.6, 2.6
    rows = int(np.ceil(n / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(width * cols, height * rows), sharey=sharey, squeeze=False)
    for ax in list(axes.flat)[n:]:
        ax.set_visible(False)
    return fig, list(axes.flat)[:n]


def thin(series: pd.Series) -> pd.Series:
    """At most MAX_POINTS points of a series, evenly spaced, for drawing (short per-epoch series)."""
    if len(series) <= MAX_POINTS:
        return series
    step = int(np.ceil(len(series) / MAX_POINTS))
    return series.iloc[::step]


def envelope(series: pd.Series, max_points: int = MAX_POINTS):
    """A long series for the eye: ``(x, mean, low, high)`` of at most ``max_points`` buckets of
    consecutive points (``low``/``high`` are None when the series is short enough to draw whole).

    The bucket's min and max keep every spike visible; NaN points are left out of the bucket's
    numbers (the figures mark non-finite steps from the full data).

    Example:
        >>> x, mean, low, high = envelope(pd.Series([1.0, 1.0, 9.0, 1.0, 1.0, 1.0]), max_points=3)
        >>> x.tolist(), mean.tolist(), low.tolist(), high.tolist()
        ([0, 2, 4], [1.0, 5.0, 1.0], [1.0, 1.0, 1.0], [1.0, 9.0, 1.0])
    """
    n = len(series)
    if n <= max_points:
        return series.index.to_numpy(), series.to_numpy(dtype=float), None, None
    k = int(np.ceil(n / max_points))
    values = np.full(-(-n // k) * k, np.nan)
    values[:n] = series.to_numpy(dtype=float)
    buckets = values.reshape(-1, k)
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN buckets stay NaN
        mean, low, high = np.nanmean(buckets, 1), np.nanmin(buckets, 1), np.nanmax(buckets, 1)
    return series.index.to_numpy()[::k], mean, low, high


def positive(series: pd.Series) -> pd.Series:
    """A series with non-finite and non-positive values blanked, for log axes."""
    values = series.replace([np.inf, -np.inf], np.nan)
    return values.where(values > 0)


def log_scale_or_note(ax, values) -> bool:
    """Put ``ax`` on a log scale when ``values`` hold a positive finite number; else keep it linear
    and say on the axes that every value is zero (or not finite). Returns whether it is log."""
    values = np.asarray(values, dtype=float).ravel()
    if np.any(np.isfinite(values) & (values > 0)):
        ax.set_yscale("log")
        return True
    ax.text(0.5, 0.5, "every value is 0 (or not finite): nothing to draw on a log scale", transform=ax.transAxes,
            ha="center", va="center", fontsize=8, color="crimson")
    return False


def to_data_uri(fig, dpi: int = 80) -> str:
    """Encode a figure as an embedded PNG ``data:`` URI (256 colours: a third of the bytes of a
    full-colour PNG for these plots) and close it."""
    from PIL import Image

    raw, out = io.BytesIO(), io.BytesIO()
    try:
        fig.savefig(raw, format="png", dpi=dpi)
    finally:
        plt.close(fig)
    raw.seek(0)
    Image.open(raw).convert("RGB").quantize(256, method=Image.Quantize.FASTOCTREE).save(out, format="PNG")
    return "data:image/png;base64," + base64.b64encode(out.getvalue()).decode("ascii")


def save_png(fig, path, dpi: int = 80) -> None:
    """Write a figure to a PNG file and close it."""
    try:
        fig.savefig(path, dpi=dpi)
    finally:
        plt.close(fig)
