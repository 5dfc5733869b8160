"""Per-layer metrics over steps, reduced while they are read: what the report's step figures draw.

A report draws a metric of every layer over a run's steps as at most :data:`MAX_POINTS` points a
line: each point a bucket of consecutive recorded steps, drawn as the mean of its positive
values with their min-max band. Those buckets, and the few exact rows the figures and headline
ratios need (the first step, the first and last steps where every layer is finite, the mean over
the last epoch), are computed here as the records go by, one part at a time: memory is bounded by
the buckets and the layers, not by the records, so a report of 64M records holds what a report
of 64k does.

The buckets double as they fill: a run of ``n`` recorded steps is drawn in buckets of the
smallest power of two ``k`` with ``n / k <= MAX_POINTS`` consecutive steps (``k = 1``: every step
drawn, no band). The log-axis ranges come from a histogram of the values' logarithms
(1/1000 of a decade a bin), so they are the ranges all the values call for, not the buckets.

Example:
    >>> import numpy as np
    >>> from gradscope import records as rec
    >>> frames = [rec.from_step_arrays("r", np.arange(s, s + 3), 0, [("a", 0, "kernel"), ("b", 1, "kernel")],
    ...           {"grad_norm": np.full((3, 2), 2.0), "weight_norm": np.full((3, 2), 4.0)}) for s in (0, 3)]
    >>> tables = step_tables(frames, ["grad_norm", "grad_over_weight"])
    >>> t = tables["grad_over_weight"]
    >>> t.layers, t.n_steps, t.first.tolist(), t.mean.shape
    (['a', 'b'], 6, [0.5, 0.5], (6, 2))
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from gradscope.vocabulary import METRICS

MAX_POINTS = 1500  #: points per line at most: longer runs are drawn in buckets of steps (records keep every step)
_LOG_BIN = 1000  # histogram bins a decade, for the log ranges' medians
_LOG_LOW, _LOG_HIGH = -330, 310  # float64's decades, with room


@dataclass(frozen=True)
class LogSpread:
    """How a set of positive values spreads on a log axis: their count, and the log10 of their
    smallest, largest and median value (what :func:`gradscope.report.style.log_ranges` reads).

    Example:
        >>> LogSpread.of([0.1, 1.0, 100.0, 0.0, float("nan")])
        LogSpread(count=3, low=-1.0, high=2.0, median=0.0)
    """

    count: int
    low: float
    high: float
    median: float

    @classmethod
    def of(cls, values) -> LogSpread:
        v = np.asarray(values, dtype=float).ravel()
        v = v[np.isfinite(v) & (v > 0)]
        if not len(v):
            return cls(0, math.nan, math.nan, math.nan)
        logs = np.log10(v)
        return cls(len(v), float(logs.min()), float(logs.max()), float(np.median(logs)))


class _Spread:
    """A :class:`LogSpread` kept as values go by: a histogram of their logarithms, and min/max."""

    def __init__(self):
        self.counts = np.zeros((_LOG_HIGH - _LOG_LOW) * _LOG_BIN, np.int64)
        self.low, self.high = math.inf, -math.inf

    def add(self, values: np.ndarray) -> None:
        v = values[np.isfinite(values) & (values > 0)]
        if not len(v):
            return
        logs = np.log10(v)
        self.low, self.high = min(self.low, float(logs.min())), max(self.high, float(logs.max()))
        bins = np.clip(((logs - _LOG_LOW) * _LOG_BIN).astype(np.int64), 0, len(self.counts) - 1)
        low = int(bins.min())
        counts = np.bincount(bins - low)
        self.counts[low:low + len(counts)] += counts

    def spread(self) -> LogSpread:
        total = int(self.counts.sum())
        if not total:
            return LogSpread(0, math.nan, math.nan, math.nan)
        middle = int(np.searchsorted(np.cumsum(self.counts), (total + 1) / 2))
        median = min(max(_LOG_LOW + (middle + 0.5) / _LOG_BIN, self.low), self.high)
        return LogSpread(total, self.low, self.high, median)


@dataclass
class StepTable:
    """One metric of every layer over a run's recorded steps, as the figures draw it.

    Attributes:
        layers: the layers, input side first.
        x: the first step of each drawn point.
        mean, low, high: (point x layer) mean, min and max of each bucket's positive finite values
            (NaN where a bucket has none); ``low``/``high`` are None when every step is a point.
        bucket: recorded steps a point (1: every step drawn).
        n_steps, first_step, last_step: the recorded steps.
        first: each layer's value at the first recorded step.
        first_finite, last_finite: the first and last steps' values where every layer is finite
            (None without such a step).
        last_epoch_mean: each layer's mean over the last recorded epoch (NaN values left out).
        first_bad_step: the first step where some layer is not finite (None: none).
        last_finite_step: the last step where some layer is finite (None: none).
        spread: the positive finite values' :class:`LogSpread`.
    """

    layers: list
    x: np.ndarray
    mean: np.ndarray
    low: np.ndarray | None
    high: np.ndarray | None
    bucket: int
    n_steps: int
    first_step: int | None
    last_step: int | None
    first: pd.Series
    first_finite: pd.Series | None
    last_finite: pd.Series | None
    last_epoch_mean: pd.Series
    first_bad_step: int | None
    last_finite_step: int | None
    spread: LogSpread

    @property
    def empty(self) -> bool:
        return not self.layers or not self.n_steps

    @property
    def any_finite(self) -> bool:
        return self.last_finite_step is not None

    def column(self, layer: str):
        """``(x, mean, low, high)`` of one layer, as drawn (``low``/``high`` None without buckets)."""
        i = self.layers.index(layer)
        if self.low is None:
            return self.x, self.mean[:, i], None, None
        return self.x, self.mean[:, i], self.low[:, i], self.high[:, i]


class _Builder:
    """Reduces (step x layer) rows, fed in step order, to a :class:`StepTable`."""

    def __init__(self):
        self.columns: dict = {}  # layer -> column
        self.depths: dict = {}
        self.k = 1
        self.used = 0  # buckets holding steps
        self.n = 0
        self._alloc(0)
        self.pending = None  # the last step fed: (step, epoch, sums, counts), merged with a repeat of it
        self.first = self.first_finite = self.last_finite = None
        self.first_step = self.last_step = self.first_bad = self.last_finite_step = None
        self.epoch, self.epoch_sum, self.epoch_count = None, None, None
        self.spread = _Spread()

    def _alloc(self, width: int):
        self.x = np.zeros(2 * MAX_POINTS, np.int64)
        self.sum = np.zeros((2 * MAX_POINTS, width))
        self.count = np.zeros((2 * MAX_POINTS, width), np.int64)
        self.min = np.full((2 * MAX_POINTS, width), np.inf)
        self.max = np.full((2 * MAX_POINTS, width), -np.inf)

    def column_of(self, names, depths) -> np.ndarray:
        """Each layer's column (new layers get one, every array widened)."""
        out = np.empty(len(names), np.int64)
        for i, (name, depth) in enumerate(zip(names, depths)):
            if name not in self.columns:
                self.columns[name] = len(self.columns)
                self.depths[name] = int(depth)
                self._widen()
            out[i] = self.columns[name]
        return out

    def _widen(self):
        width = len(self.columns)
        pad = width - self.sum.shape[1]
        for name, fill in (("sum", 0.0), ("count", 0), ("min", np.inf), ("max", -np.inf)):
            a = getattr(self, name)
            setattr(self, name, np.concatenate([a, np.full((a.shape[0], pad), fill, a.dtype)], axis=1))
        for name in ("first", "first_finite", "last_finite", "epoch_sum"):
            a = getattr(self, name)
            if a is not None:
                setattr(self, name, np.concatenate([a, np.full(pad, np.nan if name != "epoch_sum" else 0.0)]))
        if self.epoch_count is not None:
            self.epoch_count = np.concatenate([self.epoch_count, np.zeros(pad, np.int64)])
        if self.pending is not None:
            step, epoch, sums, counts = self.pending
            self.pending = (step, epoch, np.concatenate([sums, np.zeros(pad)]),
                            np.concatenate([counts, np.zeros(pad, np.int64)]))

    def feed(self, steps: np.ndarray, epochs: np.ndarray, sums: np.ndarray, counts: np.ndarray) -> None:
        """Rows of whole steps, in step order: each cell's sum of values and their count (a layer
        not recorded at a step: count 0)."""
        if not len(steps):
            return
        if self.pending is not None:
            step, epoch, psum, pcount = self.pending
            if steps[0] == step:  # a step whose records two parts share
                sums, counts = sums.copy(), counts.copy()
                sums[0] += psum
                counts[0] += pcount
            else:
                self._commit(np.array([step]), np.array([epoch]), psum[None], pcount[None])
        self.pending = (int(steps[-1]), int(epochs[-1]), sums[-1], counts[-1])
        if len(steps) > 1:
            self._commit(steps[:-1], epochs[:-1], sums[:-1], counts[:-1])

    def _commit(self, steps, epochs, sums, counts):
        with np.errstate(divide="ignore", invalid="ignore"):
            values = np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)
        finite = np.isfinite(values)
        all_finite, any_finite = finite.all(axis=1), finite.any(axis=1)
        if self.first is None:
            self.first, self.first_step = values[0].copy(), int(steps[0])
        self.last_step = int(steps[-1])
        if self.first_bad is None and not all_finite.all():
            self.first_bad = int(steps[np.argmin(all_finite)])
        if any_finite.any():
            self.last_finite_step = int(steps[np.flatnonzero(any_finite)[-1]])
        if all_finite.any():
            rows = np.flatnonzero(all_finite)
            if self.first_finite is None:
                self.first_finite = values[rows[0]].copy()
            self.last_finite = values[rows[-1]].copy()
        self._epochs(epochs, values)
        self.spread.add(values)
        self._buckets(steps, values)

    def _epochs(self, epochs, values):
        last = int(epochs.max())
        if self.epoch is None or last > self.epoch:
            self.epoch = last
            self.epoch_sum, self.epoch_count = np.zeros(values.shape[1]), np.zeros(values.shape[1], np.int64)
        rows = values[epochs == self.epoch]
        present = ~np.isnan(rows)
        self.epoch_sum += np.where(present, rows, 0.0).sum(axis=0)
        self.epoch_count += present.sum(axis=0)

    def _buckets(self, steps, values):
        positive = np.isfinite(values) & (values > 0)
        start = self.n
        self.n += len(steps)
        while (self.n - 1) // self.k >= MAX_POINTS:
            self._halve()
        ids = np.arange(start, self.n) // self.k
        cuts = np.flatnonzero(np.diff(ids)) + 1
        heads = np.concatenate([[0], cuts])
        where = ids[heads]
        v = np.where(positive, values, 0.0)
        self.sum[where] += np.add.reduceat(v, heads, axis=0)
        self.count[where] += np.add.reduceat(positive.astype(np.int64), heads, axis=0)
        self.min[where] = np.minimum(self.min[where], np.minimum.reduceat(np.where(positive, values, np.inf), heads, axis=0))
        self.max[where] = np.maximum(self.max[where], np.maximum.reduceat(np.where(positive, values, -np.inf), heads, axis=0))
        fresh = where >= self.used
        self.x[where[fresh]] = steps[heads[fresh]]
        self.used = int(where[-1]) + 1

    def _halve(self):
        """Buckets twice as long: each pair of buckets becomes one."""
        half = (self.used + 1) // 2
        pairs = 2 * half
        for name, join in (("sum", np.add), ("count", np.add), ("min", np.minimum), ("max", np.maximum)):
            a = getattr(self, name)
            joined = join(a[0:pairs:2], a[1:pairs:2])
            a[:half] = joined
            a[half:] = 0 if name in ("sum", "count") else (np.inf if name == "min" else -np.inf)
        self.x[:half] = self.x[0:pairs:2]
        self.used = half
        self.k *= 2

    def table(self) -> StepTable:
        if self.pending is not None:
            step, epoch, sums, counts = self.pending
            self.pending = None
            self._commit(np.array([step]), np.array([epoch]), sums[None], counts[None])
        names = sorted(self.columns, key=lambda n: (self.depths[n], n))
        order = [self.columns[n] for n in names]
        used = slice(0, self.used)
        count = self.count[used][:, order]
        with np.errstate(divide="ignore", invalid="ignore"):
            mean = np.where(count > 0, self.sum[used][:, order] / np.maximum(count, 1), np.nan)
        low = np.where(count > 0, self.min[used][:, order], np.nan)
        high = np.where(count > 0, self.max[used][:, order], np.nan)

        def row(values):
            return None if values is None else pd.Series(values[order], index=names, dtype=float)

        with np.errstate(divide="ignore", invalid="ignore"):
            epoch_mean = (self.epoch_sum / self.epoch_count)[order] if self.epoch_sum is not None else \
                np.full(len(names), np.nan)
        return StepTable(
            layers=names, x=self.x[used].copy(), mean=mean, low=low if self.k > 1 else None,
            high=high if self.k > 1 else None, bucket=self.k, n_steps=self.n, first_step=self.first_step,
            last_step=self.last_step, first=row(self.first) if self.first is not None else
            pd.Series(np.nan, index=names, dtype=float), first_finite=row(self.first_finite),
            last_finite=row(self.last_finite), last_epoch_mean=pd.Series(epoch_mean, index=names, dtype=float),
            first_bad_step=self.first_bad, last_finite_step=self.last_finite_step, spread=self.spread.spread())


class _Part:
    """One part of a run's records as NumPy columns: ``step``, ``epoch``, ``depth``, ``value``, and
    each name column (``layer``, ``variable``, ``metric``) as codes into its names. Made from an
    Arrow table of the storage schema (names dictionary-encoded: the codes are read as stored) or
    from a records DataFrame."""

    def __init__(self, frame):
        self.names: dict = {}
        if isinstance(frame, pd.DataFrame):
            for name in ("layer", "variable", "metric"):
                codes, uniques = pd.factorize(frame[name], sort=False)
                self.names[name] = (codes, [str(u) for u in uniques])
            self.numbers = {c: frame[c].to_numpy() for c in ("step", "epoch", "depth", "value")}
            return
        from gradscope.storage.records_parquet import name_codes

        for name in ("layer", "variable", "metric"):
            self.names[name] = name_codes(frame.column(name))
        self.numbers = {c: frame.column(c).to_numpy() for c in ("step", "epoch", "depth", "value")}

    def slots(self, name: str, values) -> np.ndarray:
        """Per row: the index in ``values`` of what the name column ``name`` holds (-1: none of them)."""
        codes, names = self.names[name]
        lookup = np.array([values.index(n) if n in values else -1 for n in names] + [-1], np.int64)
        return lookup[codes] if len(codes) else np.zeros(0, np.int64)

    def cells(self, metrics: list, variable: str) -> dict:
        """Each of ``metrics``' rows of ``variable`` in this part, as a :class:`_Cells` (a metric
        without rows here is left out), all of them counted in one pass."""
        slot = np.where(self.slots("variable", [variable]) == 0, self.slots("metric", metrics), -1)
        rows = slot >= 0
        if not rows.any():
            return {}
        slot = slot[rows]
        layer_codes, layer_names = self.names["layer"]
        codes = layer_codes[rows]
        present = np.flatnonzero(np.bincount(codes, minlength=len(layer_names)))
        local = np.zeros(len(layer_names), np.int64)
        local[present] = np.arange(len(present))
        a_row = np.zeros(len(layer_names), np.int64)
        a_row[codes] = np.arange(len(codes))  # a row of each layer (any: a layer has one depth)
        depths = self.numbers["depth"][rows][a_row[present]]
        steps, row = _unique_sorted(self.numbers["step"][rows])
        shape = (len(metrics), len(steps), len(present))
        cell = (slot * len(steps) + row) * len(present) + local[codes]
        size = int(np.prod(shape))
        sums = np.bincount(cell, weights=self.numbers["value"][rows].astype(float), minlength=size).reshape(shape)
        counts = np.bincount(cell, minlength=size).reshape(shape)
        epochs = np.zeros(len(steps), np.int64)
        epochs[row] = self.numbers["epoch"][rows]
        out = {}
        for i, metric in enumerate(metrics):
            at, of = counts[i].any(axis=1), counts[i].any(axis=0)
            if at.any():
                out[metric] = _Cells(steps[at], epochs[at], sums[i][at][:, of], counts[i][at][:, of],
                                     [layer_names[c] for c in present[of]], depths[of])
        return out


@dataclass
class _Cells:
    """One metric's rows of a part, per (step, layer): the sum of values and their count."""

    steps: np.ndarray
    epochs: np.ndarray
    sums: np.ndarray
    counts: np.ndarray
    layers: list
    depths: np.ndarray


def _unique_sorted(values: np.ndarray):
    """``np.unique(values, return_inverse=True)``, without a sort when ``values`` never decrease
    (the steps of a part, as written)."""
    change = np.diff(values)
    if len(values) and (change >= 0).all():
        heads = np.concatenate([[True], change > 0])
        return values[heads], np.cumsum(heads) - 1
    return np.unique(values, return_inverse=True)


def _spread_over(builder: _Builder, cells: _Cells | None):
    """``cells`` over every column of ``builder`` (its new layers given columns):
    ``(steps, epochs, sums, counts)``, or None."""
    if cells is None:
        return None
    columns = builder.column_of(cells.layers, cells.depths)
    width = len(builder.columns)
    sums = np.zeros((len(cells.steps), width))
    counts = np.zeros((len(cells.steps), width), np.int64)
    sums[:, columns], counts[:, columns] = cells.sums, cells.counts
    return cells.steps, cells.epochs, sums, counts


class _Ratio:
    """A metric computed on read (``grad_over_weight``): its numerator over its denominator at the
    latest recording at or before each step, and before the first at ``<denominator>_initial``
    (as :func:`gradscope.records.metric_rows` computes it)."""

    def __init__(self, numerator: str, denominator: str):
        self.numerator, self.denominator = numerator, denominator
        self.builder = _Builder()
        self.carry: dict = {}  # layer -> the denominator's latest value so far
        self.initial: dict = {}
        self.held = None  # the numerator's last step, until the next part (its denominator may be there)

    @property
    def inputs(self) -> list:
        return [self.numerator, self.denominator, f"{self.denominator}_initial"]

    def feed(self, cells: dict | None) -> None:
        """A part's cells (None: there are no more parts, and the step held back is computed)."""
        b = self.builder
        num = den = None
        if cells is not None:
            initial = cells.get(f"{self.denominator}_initial")
            if initial is not None:
                first = initial.sums[0] / np.maximum(initial.counts[0], 1)
                for layer, value, n in zip(initial.layers, first, initial.counts[0]):
                    if n:
                        self.initial.setdefault(layer, float(value))
            num = _spread_over(b, cells.get(self.numerator))
            den = _spread_over(b, cells.get(self.denominator))
        width = len(b.columns)
        carry = np.array([self.carry.get(n, self.initial.get(n, np.nan)) for n in b.columns], dtype=float)
        num = self._hold_last(num, width, last=cells is None)
        if num is not None:
            steps, epochs, sums, counts = num
            with np.errstate(divide="ignore", invalid="ignore"):
                values = sums / np.maximum(counts, 1)
            below = np.full((len(steps), width), np.nan)
            if den is not None:
                d_steps, _, d_sums, d_counts = den  # (as wide as every column: spread over them last)
                with np.errstate(divide="ignore", invalid="ignore"):
                    d_values = d_sums / np.maximum(d_counts, 1)
                recorded = d_counts > 0
                latest = np.maximum.accumulate(np.where(recorded, np.arange(len(d_steps))[:, None], -1), axis=0)
                at = np.searchsorted(d_steps, steps, side="right") - 1  # the latest denominator row <= step
                rows = np.where((at >= 0)[:, None], latest[np.maximum(at, 0)], -1)
                cols = np.broadcast_to(np.arange(width), rows.shape)
                below = np.where(rows >= 0, d_values[np.maximum(rows, 0), cols], np.nan)
                missing = rows < 0
            else:
                missing = np.ones((len(steps), width), bool)
            below = np.where(missing, carry[None, :], below)
            with np.errstate(divide="ignore", invalid="ignore"):
                ratio = values / below
            b.feed(steps, epochs, np.where(counts > 0, ratio, 0.0), (counts > 0).astype(np.int64))
        if den is not None:
            d_steps, _, d_sums, d_counts = den
            for i, name in enumerate(b.columns):
                rows = np.flatnonzero(d_counts[:, i] > 0)
                if len(rows):
                    self.carry[name] = d_sums[rows[-1], i] / d_counts[rows[-1], i]

    def _hold_last(self, num, width: int, last: bool):
        """The numerator's rows to compute now: those held back from the part before, and this part's
        but its last step, whose denominator may come in the next part (all of them at the end)."""
        held, self.held = self.held, None
        if held is not None:
            h_steps, h_epochs, h_sums, h_counts = held
            if num is None:
                num = (h_steps, h_epochs, _pad(h_sums, width), _pad(h_counts, width))
            else:
                steps, epochs, sums, counts = num
                num = (np.concatenate([h_steps, steps]), np.concatenate([h_epochs, epochs]),
                       np.concatenate([_pad(h_sums, width), _pad(sums, width)]),
                       np.concatenate([_pad(h_counts, width), _pad(counts, width)]))
        elif num is not None:
            num = (num[0], num[1], _pad(num[2], width), _pad(num[3], width))
        if num is None or last:
            return num
        steps, epochs, sums, counts = num
        self.held = (steps[-1:], epochs[-1:], sums[-1:], counts[-1:])
        return None if len(steps) == 1 else (steps[:-1], epochs[:-1], sums[:-1], counts[:-1])


def _pad(a: np.ndarray, width: int) -> np.ndarray:
    return a if a.shape[1] == width else np.concatenate([a, np.zeros((a.shape[0], width - a.shape[1]), a.dtype)], 1)


def step_tables(frames, metrics, variable: str = "kernel") -> dict:
    """A :class:`StepTable` of each of ``metrics`` for ``variable``, from ``frames`` of records
    (the parts of a run, in order, as Arrow tables of the storage schema or DataFrames; or one
    frame), each read once.

    Example:
        >>> import numpy as np
        >>> from gradscope import records as rec
        >>> g = np.exp(np.linspace(0, 5, 4000))[:, None]
        >>> frame = rec.from_step_arrays("r", np.arange(4000), 0, [("a", 0, "kernel")], {"grad_norm": g})
        >>> t = step_tables([frame], ["grad_norm"])["grad_norm"]
        >>> t.bucket, len(t.x), t.x[:2].tolist(), round(float(t.high[-1, 0]), 1)
        (4, 1000, [0, 4], 148.4)
    """
    plain = {m: _Builder() for m in metrics if not (METRICS.get(m) and METRICS[m].derived_from
                                                     and not METRICS[m].stored)}
    ratios = {m: _Ratio(*METRICS[m].derived_from) for m in metrics if m not in plain}
    read = list(dict.fromkeys([*plain, *(name for r in ratios.values() for name in r.inputs)]))
    for frame in frames:
        if not len(frame):
            continue
        cells = _Part(frame).cells(read, variable)
        for metric, builder in plain.items():
            spread = _spread_over(builder, cells.get(metric))
            if spread is not None:
                builder.feed(*spread)
        for ratio in ratios.values():
            ratio.feed(cells)
    for ratio in ratios.values():
        ratio.feed(None)
    out = {m: b.table() for m, b in plain.items()}
    out.update({m: r.builder.table() for m, r in ratios.items()})
    return {m: out[m] for m in metrics}
