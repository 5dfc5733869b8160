"""How report figures look: colours, panel grids, ranges, legends, margins, PNG encoding (Agg).

Colours: a run's colour comes from what it is, not from its place in a report, so it is the
same in every figure and every report. The hue encodes the run's factor, its activation and init
(``relu-he`` is always blue, ``sigmoid-normal`` always vermilion; other pairs get a colour by a
stable hash), and the shade encodes its depth (shallower lighter, deeper darker than the seed's
three hidden layers). Layers use the sequential ``viridis`` map (dark = input side, light =
output side).

Ranges: panels share one log range unless a run's values sit orders of magnitude away from the
others; that run gets its own range, and its title says so (:func:`log_ranges`).
"""

from __future__ import annotations

import base64
import io
import re
import zlib

import matplotlib

matplotlib.use("Agg")
# Titles at a fixed height above their axes (their pad leaves room for the notes there): matplotlib's
# automatic placement measures every tick label of every panel, a third of a report's drawing time.
matplotlib.rcParams["axes.titley"] = 1.0
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.colors import to_rgb  # noqa: E402

from gradscope.report.step_tables import MAX_POINTS, LogSpread  # noqa: E402
from gradscope.storage.run_dir import natural_key  # noqa: E402

#: A colour-blind-safe palette (the hues of seaborn's "colorblind"), in the order colours are given.
PALETTE = ("#0173b2", "#de8f05", "#029e73", "#d55e00", "#cc78bc", "#ca9161", "#fbafe4", "#949494",
           "#ece133", "#56b4e9")
#: Fixed hues for the factors people compare most, so the classic contrast always looks the same.
FACTOR_COLORS = {"relu-he": "#0173b2", "sigmoid-normal": "#d55e00", "sigmoid-he": "#de8f05",
                 "relu-normal": "#029e73", "tanh-xavier": "#cc78bc", "relu-xavier": "#56b4e9",
                 "sigmoid-xavier": "#ca9161", "tanh-normal": "#949494"}
LAYER_MAP = "viridis"
SHADE_DEPTH = 3  #: the depth drawn in the factor's own hue (the seed MLP's hidden layers)
OWN_RANGE_DECADES = 3.0  #: a run whose typical value is this many decades from the others' gets its own range
SHARED_SPAN_DECADES = 6.0  #: a shared range reaches at most this many decades either side of the typical value
LEGEND_FONT = 7


def factor_of(item) -> str:
    """A run's factor, ``"<act>-<init>"``, from a view's config or from a run name (its ``-dN`` depth
    suffix dropped); the name itself when it says neither.

    Example:
        >>> factor_of("relu-he-d10"), factor_of("my-model")
        ('relu-he', 'my-model')
    """
    if isinstance(item, str):
        return re.sub(r"-d\d+$", "", item)
    config = getattr(item, "config", None) or {}
    act, init = config.get("act"), config.get("init")
    if act and init:
        return f"{act}-{init}"
    return factor_of(item.name)


def _depth_of(item) -> int | None:
    if isinstance(item, str):
        match = re.search(r"-d(\d+)$", item)
        return int(match.group(1)) if match else None
    hidden = (getattr(item, "config", None) or {}).get("hidden")
    return len(hidden) if hidden else None


def _shade(rgb, depth: int | None):
    """Lighter for shallower, darker for deeper nets than :data:`SHADE_DEPTH` (fixed per depth)."""
    rgb = np.array(rgb)
    if depth is None or depth == SHADE_DEPTH:
        return tuple(rgb)
    if depth < SHADE_DEPTH:
        mix = min(0.5, 0.2 * (SHADE_DEPTH - depth))
        return tuple(rgb + (1 - rgb) * mix)
    return tuple(rgb * (1 - min(0.5, 0.07 * (depth - SHADE_DEPTH))))


def run_colors(items) -> dict:
    """One colour per run (views, or run names), keyed by name: the hue from its factor, the shade
    from its depth. Factors outside :data:`FACTOR_COLORS` take a palette colour by a stable hash,
    moving to the next free one when two would share a hue in one report; a second run of the
    same factor and depth takes a free hue of its own, so no two runs of a report look alike.

    Example:
        >>> colors = run_colors(["sigmoid-normal", "relu-he"])
        >>> [matplotlib.colors.to_hex(colors[n]) for n in ("relu-he", "sigmoid-normal")]
        ['#0173b2', '#d55e00']
    """
    items = list(items)
    names = [i if isinstance(i, str) else i.name for i in items]
    factors = sorted({factor_of(i) for i in items})
    hues, taken = {}, set()

    def free_hue(key: str) -> str:
        start = zlib.crc32(key.encode()) % len(PALETTE)
        for k in range(len(PALETTE)):
            hue = PALETTE[(start + k) % len(PALETTE)]
            if hue not in taken:
                return hue
        return PALETTE[start]  # more factors than colours: shades still tell depths apart

    for f in factors:
        if f in FACTOR_COLORS:
            hues[f] = FACTOR_COLORS[f]
            taken.add(FACTOR_COLORS[f])
    for f in factors:
        if f not in hues:
            hues[f] = free_hue(f)
            taken.add(hues[f])
    colors, seen = {}, set()
    for item, name in sorted(zip(items, names), key=lambda pair: natural_key(pair[1])):
        hue, depth = hues[factor_of(item)], _depth_of(item)
        if (hue, depth) in seen:  # the same factor and depth twice: a hue of its own
            hue = free_hue(name)
            taken.add(hue)
        seen.add((hue, depth))
        colors[name] = _shade(to_rgb(hue), depth)
    return colors


def layer_colors(n: int):
    """``n`` colours of :data:`LAYER_MAP`, input side (dark) first."""
    cmap = matplotlib.colormaps[LAYER_MAP]
    return [cmap(x)[:3] for x in (np.linspace(0, 0.9, n) if n > 1 else [0.0])]


def legend_width(labels, fontsize: float = LEGEND_FONT, ncol: int = 1) -> float:
    """Inches a legend of ``labels`` needs beside the axes (a handle, the longest label, padding)."""
    longest = max((len(str(label)) for label in labels), default=0)
    return ncol * (0.55 + longest * fontsize * 0.0085) + 0.15


def legend_outside(fig, ax, key_width: float, title: str | None = None, handles=None, labels=None, ncol: int = 1):
    """One legend for the whole figure, outside the axes on the right, in the ``key_width`` inches
    :func:`layout` left there (``handles``/``labels`` default to those of ``ax``)."""
    if handles is None:
        handles, labels = ax.get_legend_handles_labels()
    width, height = fig.get_size_inches()
    return fig.legend(handles, labels, title=title, fontsize=LEGEND_FONT, title_fontsize=LEGEND_FONT, ncol=ncol,
                      loc="upper left", bbox_to_anchor=(1 - (key_width - 0.05) / width, 1 - 0.7 / height),
                      borderaxespad=0)


def short(label: str, limit: int = 24) -> str:
    """``label`` cut to ``limit`` characters (an ellipsis marks the cut)."""
    return label if len(label) <= limit else label[: limit - 1] + "\u2026"


def layout(fig, left=0.95, right=0.2, bottom=0.75, top=0.65, gap_w=0.9, gap_h=1.1):
    """Fixed margins and gaps between panels, in inches (tight_layout measures every tick label:
    seconds per report)."""
    width, height = fig.get_size_inches()
    rows, cols = 1, 1
    for ax in fig.axes:
        spec = ax.get_subplotspec() if hasattr(ax, "get_subplotspec") else None
        if spec is not None:
            rows, cols = spec.get_gridspec().get_geometry()
            break
    ax_w = max((width - left - right - (cols - 1) * gap_w) / cols, 0.5)
    ax_h = max((height - top - bottom - (rows - 1) * gap_h) / rows, 0.5)
    fig.subplots_adjust(left=left / width, right=1 - right / width, bottom=bottom / height,
                        top=1 - top / height, wspace=gap_w / ax_w, hspace=gap_h / ax_h)
    if fig._suptitle is not None:
        fig._suptitle.set_y(1 - 0.12 / height)


def grid(n, width=6.0, height=3.4, sharey=False, cols=None, extra_width=0.0):
    """A figure of ``n`` panels, two to a row (four smaller ones to a row past six panels).

    Args:
        cols: panels per row (default 2, or 4 past six panels).
        extra_width: inches added on the right (for a legend outside the axes).
    """
    if cols is None:
        cols = min(n, 2)
        if n > 6:  # sweeps: smaller panels, four to a row
            cols, width, height = 4, 3.6, 2.7
    cols = max(1, min(cols, n))
    rows = int(np.ceil(n / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(width * cols + extra_width, height * rows), sharey=sharey,
                             squeeze=False)
    for ax in list(axes.flat)[n:]:
        ax.set_visible(False)
    return fig, list(axes.flat)[:n]


def log_ranges(tables) -> list:
    """Log-axis limits for panels of ``tables`` (arrays, frames, or the
    :class:`~gradscope.report.step_tables.LogSpread` of their values), one ``(low, high, own)`` per
    table (None when it holds no positive finite value).

    Panels share one range, except a table whose median lies more than
    :data:`OWN_RANGE_DECADES` decades from the median of all tables' medians and outside the
    others' range: it gets a range of its own (``own`` is True; say so on the panel). When such tables are not a minority (two runs
    far apart), every table gets its own range. A shared range reaches at most
    :data:`SHARED_SPAN_DECADES` decades either side of the typical value: a run that goes past it
    is cut at the edge (see :func:`beyond`).

    Example:
        >>> ranges = log_ranges([np.array([0.1, 1.0]), np.array([0.2, 2.0]), np.array([1e20, 1e22])])
        >>> [(f"{lo:.0e}", f"{hi:.0e}", own) for lo, hi, own in ranges]
        [('1e-02', '1e+01', False), ('1e-02', '1e+01', False), ('1e+19', '1e+23', True)]
    """
    logs = [t if isinstance(t, LogSpread) else LogSpread.of(t) for t in tables]
    logs = [t if t.count else None for t in logs]
    centers = np.array([v.median for v in logs if v is not None])
    if not len(centers):
        return [None] * len(logs)
    typical = float(np.median(centers))
    own = [v is not None and abs(v.median - typical) > OWN_RANGE_DECADES for v in logs]
    if sum(own) * 2 >= len(centers):  # no majority to call "the others": two runs far apart get one each
        if centers.max() - centers.min() > OWN_RANGE_DECADES:
            return [None if v is None else _decades(v.low, v.high, True) for v in logs]
        own = [False] * len(logs)
    shared = [v for v, o in zip(logs, own) if v is not None and not o]
    low = max(min(v.low for v in shared), typical - SHARED_SPAN_DECADES)
    high = min(max(v.high for v in shared), typical + SHARED_SPAN_DECADES)
    # a far run whose typical value still lies inside the others' range shares it (cut where it must be)
    own = [o and not (low <= v.median <= high) for v, o in zip(logs, own)]
    joined = [v for v, o in zip(logs, own) if v is not None and not o]
    low = max(min(v.low for v in joined), typical - SHARED_SPAN_DECADES)
    high = min(max(v.high for v in joined), typical + SHARED_SPAN_DECADES)
    return [None if v is None else _decades(v.low, v.high, True) if o else _decades(low, high, False)
            for v, o in zip(logs, own)]


def _decades(log_low: float, log_high: float, own: bool) -> tuple:
    """Limits on whole decades around ``10**log_low .. 10**log_high`` with a margin (so every
    panel has at least two labelled powers of ten and no crowded minor labels)."""
    return 10.0 ** np.floor(log_low - 0.5), 10.0 ** np.ceil(log_high + 0.5), own


NOTE_LINE_PT = 9  #: points per line of notes above a panel


def spread(count: int, most: int) -> list[int]:
    """At most ``most`` of the indices ``0 .. count - 1``, spread evenly, the first and last among them.

    Example:
        >>> spread(10, 4), spread(3, 6), spread(0, 6)
        ([0, 3, 6, 9], [0, 1, 2], [])
    """
    return sorted({int(i) for i in np.linspace(0, count - 1, min(count, most))}) if count else []


def decade_label(exponent: int) -> str:
    """The label of the power of ten ``10**exponent`` on a log axis, as plain text.

    Example:
        >>> [decade_label(e) for e in (-3, 0, 1, 6)]
        ['1e-3', '1', '10', '1e6']
    """
    return {0: "1", 1: "10"}.get(int(exponent), f"1e{int(exponent)}")


def log_scale(ax, axis: str = "y") -> None:
    """Put ``ax``'s ``axis`` on a log scale whose powers of ten are labelled as plain text (``1e-3``:
    matplotlib's ``$10^{-3}$`` is typeset by its mathtext parser, a fifth of a report's drawing time),
    with minor ticks at 2 and 5 times each power of ten instead of eight per decade (each tick is an
    object drawn on its own: the default minor ticks were a third of the time a report spent writing
    its step and layer figures).

    Example:
        >>> fig, ax = plt.subplots()
        >>> log_scale(ax)
        >>> ax.get_yscale(), ax.yaxis.get_minor_locator()._subs.tolist(), ax.yaxis.get_major_formatter()(1e-3)
        ('log', [2.0, 5.0], '1e-3')
        >>> plt.close(fig)
    """
    from matplotlib.ticker import FuncFormatter, LogLocator

    (ax.set_yscale if axis == "y" else ax.set_xscale)("log")
    which = ax.yaxis if axis == "y" else ax.xaxis
    which.set_minor_locator(LogLocator(base=10.0, subs=(2.0, 5.0)))
    which.set_major_formatter(FuncFormatter(lambda v, _: decade_label(round(np.log10(v))) if v > 0 else ""))


def note_lines(ax, notes) -> None:
    """Write ``notes`` (cut values, NaN steps, own range) just above ``ax``, under its title,
    never on the data; the title's ``pad`` must leave :data:`NOTE_LINE_PT` points per line."""
    if notes:
        ax.text(0.0, 1.0, "\n".join(notes), transform=ax.transAxes, fontsize=7, color="crimson", ha="left",
                va="bottom", linespacing=1.15, gid="notes")


def note_count(axes) -> int:
    """The most lines of notes above any of ``axes`` (for the margins above them)."""
    return max((len(t.get_text().split("\n")) for ax in axes for t in ax.texts if t.get_gid() == "notes"),
               default=0)


def beyond(values, limits) -> str:
    """Words for the values of ``values`` a range ``(low, high, own)`` cuts off ('' when none).

    Example:
        >>> beyond([1.0, 3e23], (0.1, 10.0, False))
        'off the scale: up to 3e+23'
    """
    v = values if isinstance(values, LogSpread) else LogSpread.of(values)
    if limits is None or not v.count:
        return ""
    words = []
    if 10.0 ** v.high > limits[1]:
        words.append(f"up to {10.0 ** v.high:.0e}")
    if 10.0 ** v.low < limits[0]:
        words.append(f"down to {10.0 ** v.low:.0e}")
    return ("off the scale: " + ", ".join(words)) if words else ""


def thin(series: pd.Series) -> pd.Series:
    """At most MAX_POINTS points of a series, evenly spaced, for drawing (short per-epoch series)."""
    if len(series) <= MAX_POINTS:
        return series
    step = int(np.ceil(len(series) / MAX_POINTS))
    return series.iloc[::step]


def positive(series: pd.Series) -> pd.Series:
    """A series with non-finite and non-positive values blanked, for log axes."""
    values = series.replace([np.inf, -np.inf], np.nan)
    return values.where(values > 0)


def png_bytes(fig, dpi: int = 80) -> bytes:
    """A figure as PNG bytes in 256 colours (a third of the bytes of a full-colour PNG for these
    plots); the figure is closed."""
    from PIL import Image

    raw, out = io.BytesIO(), io.BytesIO()
    try:
        fig.savefig(raw, format="png", dpi=dpi)
    finally:
        plt.close(fig)
    raw.seek(0)
    Image.open(raw).convert("RGB").quantize(256, method=Image.Quantize.FASTOCTREE).save(out, format="PNG")
    return out.getvalue()


def data_uri(png: bytes) -> str:
    """PNG bytes as a ``data:`` URI a page embeds."""
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def to_data_uri(fig, dpi: int = 80) -> str:
    """Encode a figure as an embedded PNG ``data:`` URI (see :func:`png_bytes`) and close it."""
    return data_uri(png_bytes(fig, dpi))


def save_png(fig, path, dpi: int = 80) -> None:
    """Write a figure to a PNG file and close it."""
    try:
        fig.savefig(path, dpi=dpi)
    finally:
        plt.close(fig)
