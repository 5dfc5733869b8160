"""A run's records summarised window by window: what the rules judge, and when.

A window is one epoch, or as many consecutive epochs as make at least
``DiagnosisSettings.window_min_steps`` steps (full-batch training makes every step an epoch).
Each window is summarised once, from its own records only, so that diagnosing during training
costs the same at epoch 300 as at epoch 3, and the same code reads a saved run. Rules say in
which windows a problem held, so a finding keeps its history: when it began, and when (if
ever) it went away.

Example:
    >>> import numpy as np
    >>> from gradscope import records as rec
    >>> meta = [("dense_0", 0, "kernel"), ("output", 1, "kernel")]
    >>> frames = [rec.from_step_arrays("r", np.array([s]), s // 10, meta,
    ...           {"grad_norm": np.array([[0.01, 1.0]]), "weight_norm": np.array([[30.0, 4.0]]),
    ...            "update_norm": np.array([[0.001, 0.1]])}) for s in range(30)]
    >>> t = Timeline.from_records(rec.concat(frames))
    >>> [(w.first_step, w.last_step) for w in t.windows], t.layers
    ([(0, 9), (10, 19), (20, 29)], ['dense_0', 'output'])
    >>> t.windows[0].speed.round(4).to_dict()
    {'dense_0': 0.0, 'output': 0.025}
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from gradscope.diagnosis.settings import DEFAULT_SETTINGS, DiagnosisSettings
from gradscope.vocabulary import TIME_METRIC

_FINITE_METRICS = ("grad_norm", "weight_norm", "loss")


@dataclass
class Window:
    """The summary of one window of steps (per-layer series are indexed by kernel layer)."""

    index: int
    first_step: int
    last_step: int
    first_epoch: int
    last_epoch: int
    n_steps: int
    speed: pd.Series = field(repr=False)          # median update_ratio
    rel: pd.Series = field(repr=False)            # median grad_norm / weight_norm
    grad_first: pd.Series = field(repr=False)     # grad_norm at the window's first step
    grad_max: pd.Series = field(repr=False)
    weight_first: pd.Series = field(repr=False)
    weight_last: pd.Series = field(repr=False)
    update_ratio_max: pd.Series = field(repr=False)
    update_max: pd.Series = field(repr=False)     # largest update_norm
    losses: list = field(default_factory=list)    # (epoch, loss) of the epochs it closes
    accuracies: list = field(default_factory=list)
    saturated: pd.Series = field(default_factory=lambda: pd.Series(dtype=float), repr=False)
    dead: pd.Series = field(default_factory=lambda: pd.Series(dtype=float), repr=False)
    non_finite: dict | None = None                # the first NaN/inf: step, metric, layer

    @property
    def steps(self) -> list:
        return [self.first_step, self.last_step]


class _Names:
    """A column of names as integer codes (``pandas.factorize``: no Python string made per record)."""

    def __init__(self, column):
        self.codes, names = pd.factorize(column, use_na_sentinel=False)
        self.names = np.asarray(names, dtype=object)

    def __eq__(self, name) -> np.ndarray:  # a mask, as NumPy's == gives
        hit = np.flatnonzero(self.names == name)
        return self.codes == hit[0] if len(hit) else np.zeros(len(self.codes), dtype=bool)

    def isin(self, names) -> np.ndarray:
        return np.isin(self.codes, np.flatnonzero(np.isin(self.names, list(names))))

    def __getitem__(self, i):
        return self.names[self.codes[i]]


class _Columns:
    """A window's records as NumPy arrays, split once by metric (the rules' numbers from few passes)."""

    def __init__(self, records: pd.DataFrame):
        self.metric = _Names(records["metric"])
        self.layer = _Names(records["layer"])
        self.variable = _Names(records["variable"])
        self.step = records["step"].to_numpy(dtype=np.int64)
        self.epoch = records["epoch"].to_numpy(dtype=np.int64)
        self.depth = records["depth"].to_numpy(dtype=np.int64)
        self.value = records["value"].to_numpy(dtype=float)
        self.kernel = self.variable == "kernel"
        self._rows: dict = {}

    def rows(self, metric: str, kernel: bool = True) -> np.ndarray:
        """Indices of a metric's records (of kernels only, by default), in record order."""
        key = (metric, kernel)
        if key not in self._rows:
            mask = self.metric == metric
            self._rows[key] = np.flatnonzero(mask & self.kernel if kernel else mask)
        return self._rows[key]

    def groups(self, rows: np.ndarray) -> dict:
        """layer -> indices of its rows, in record order (layers in order of first appearance)."""
        if not len(rows):
            return {}
        codes = self.layer.codes[rows]
        present, first = np.unique(codes, return_index=True)
        sorter = np.argsort(codes, kind="stable")
        ordered = codes[sorter]
        starts, ends = np.searchsorted(ordered, present, "left"), np.searchsorted(ordered, present, "right")
        return {self.layer.names[present[k]]: rows[sorter[starts[k]:ends[k]]] for k in np.argsort(first)}

    def per_layer(self, metric: str, how: str) -> dict:
        """Per kernel layer: the median, max, or first/last (by step) value of a metric, NaN skipped as pandas does."""
        rows = self.rows(metric)
        out: dict = {}
        if not len(rows):
            return out
        for layer, idx in self.groups(rows).items():
            v = self.value[idx]
            finite = v[~np.isnan(v)]
            if how == "median":
                out[layer] = float(np.median(finite)) if len(finite) else np.nan
            elif how == "max":
                out[layer] = float(finite.max()) if len(finite) else np.nan
            else:
                by_step = v[np.argsort(self.step[idx], kind="stable")]
                by_step = by_step[~np.isnan(by_step)]
                out[layer] = float(by_step[0 if how == "first" else -1]) if len(by_step) else np.nan
        return out

    def grad_over_weight(self) -> dict:
        """Per kernel layer: the median of grad_norm / weight_norm (:func:`gradscope.records.metric_rows`'s
        definition: a weight norm recorded less often is taken at its latest reading at or before each
        step, and before the first at ``weight_norm_initial``)."""
        num, den = self.rows("grad_norm"), self.rows("weight_norm")
        out: dict = {}
        if not len(num) or not len(den):
            return out
        asof = len(np.unique(self.step[den])) < len(np.unique(self.step[num]))
        initial = {}
        for i in self.rows("weight_norm_initial"):  # the first value that is not NaN
            if not np.isnan(self.value[i]):
                initial.setdefault(self.layer[i], self.value[i])
        dens = self.groups(den)
        for layer, idx in self.groups(num).items():
            d = dens.get(layer, np.zeros(0, dtype=int))
            n_steps, n_values = self.step[idx], self.value[idx]
            order = np.argsort(self.step[d], kind="stable")
            d_steps, d_values = self.step[d][order], self.value[d][order]
            if asof:
                at = np.searchsorted(d_steps, n_steps, side="right") - 1
                values = (np.where(at >= 0, d_values[np.maximum(at, 0)], initial.get(layer, np.nan)) if len(d)
                          else np.full(len(idx), initial.get(layer, np.nan)))
                pairs = [(n_values, values)]
            else:  # the same steps on both sides (an inner join on step)
                matches = [(n_values[k], d_values[j]) for k, s in enumerate(n_steps)
                           for j in np.flatnonzero(d_steps == s)]
                if not matches:
                    continue
                pairs = [(np.array([a for a, _ in matches]), np.array([b for _, b in matches]))]
            with np.errstate(divide="ignore", invalid="ignore"):
                ratio = pairs[0][0] / pairs[0][1]
            ratio = ratio[~np.isnan(ratio)]
            if len(ratio):
                out[layer] = float(np.median(ratio))
        return out


def summarize(records: pd.DataFrame, index: int, layers: list) -> Window | None:
    """One window from the records of the epochs it covers (None without any step)."""
    c = _Columns(records)
    grad_rows = np.flatnonzero(c.metric == "grad_norm")
    if not len(grad_rows):
        return None
    steps = c.step[grad_rows]

    def ordered(values: dict) -> pd.Series:
        return pd.Series({layer: values[layer] for layer in layers if layer in values}, dtype=float)

    # NaN anywhere, or an inf loss; an inf gradient or weight *norm* may be a float32 overflow of
    # finite, huge values (a sum of squares beyond 3e38): that is an explosion, not a NaN yet
    judged = c.metric.isin(_FINITE_METRICS)
    bad = judged & (np.isnan(c.value) | (np.isinf(c.value) & (c.metric == "loss")))
    non_finite = None
    if bad.any():
        rows = np.flatnonzero(bad)
        first = rows[np.lexsort((c.depth[rows], c.step[rows]))[0]]
        non_finite = {"step": int(c.step[first]), "metric": str(c.metric[first]), "layer": str(c.layer[first]),
                      "variable": str(c.variable[first])}
    logs = c.layer == ""

    def per_epoch(metric):
        rows = np.flatnonzero(logs & (c.metric == metric))
        last: dict = {}
        for i in rows:  # the last value of each epoch that is not NaN (NaN when all are)
            if c.epoch[i] not in last or not np.isnan(c.value[i]):
                last[c.epoch[i]] = c.value[i]
        return [(int(e), float(last[e])) for e in sorted(last)]

    def last_activation(metric):
        rows = c.rows(metric, kernel=False)
        if not len(rows):
            return pd.Series(dtype=float)
        rows = rows[c.step[rows] == c.step[rows].max()]
        out = {layer: float(np.nanmean(c.value[idx])) if (~np.isnan(c.value[idx])).any() else np.nan
               for layer, idx in c.groups(rows).items()}
        return pd.Series(out, dtype=float)

    return Window(
        index=index, first_step=int(steps.min()), last_step=int(steps.max()),
        first_epoch=int(c.epoch.min()), last_epoch=int(c.epoch.max()), n_steps=int(len(np.unique(steps))),
        speed=ordered(c.per_layer("update_ratio", "median")), rel=ordered(c.grad_over_weight()),
        grad_first=ordered(c.per_layer("grad_norm", "first")), grad_max=ordered(c.per_layer("grad_norm", "max")),
        weight_first=ordered(c.per_layer("weight_norm", "first")),
        weight_last=ordered(c.per_layer("weight_norm", "last")),
        update_ratio_max=ordered(c.per_layer("update_ratio", "max")),
        update_max=ordered(c.per_layer("update_norm", "max")),
        losses=per_epoch("loss"), accuracies=per_epoch("accuracy"),
        saturated=last_activation("saturated_frac"), dead=last_activation("dead_frac"), non_finite=non_finite,
    )


class Timeline:
    """Windows of a run, added epoch by epoch (online) or all at once (a saved run).

    Attributes:
        layers: the kernel layers, input side first.
        windows: closed windows, in order.
        zero_start: layers whose kernel started at zero (``weight_norm_initial`` is 0): their
            relative speed is left out of comparisons between layers.
    """

    def __init__(self, settings: DiagnosisSettings = DEFAULT_SETTINGS):
        self.settings = settings
        self.layers: list = []
        self.windows: list[Window] = []
        self.zero_start: set = set()
        self._pending: list[pd.DataFrame] = []
        self._pending_steps = 0
        self._depths: dict = {}
        self.memo: dict = {}  # (rule, window index) -> what the rule found in that window
        self._time: list[pd.DataFrame] = []  # time_grad_norm records (a few hundred per epoch)
        # what closed since take_unsaved() last ran (a recorder writes it as the run's summaries)
        self._unsaved_windows: list[Window] = []
        self._unsaved_logs: list = []  # (window index, losses, accuracies) added to a closed window
        self._unsaved_time: list[pd.DataFrame] = []
        self._pending_time: list[pd.DataFrame] = []

    @classmethod
    def from_records(cls, records: pd.DataFrame, settings: DiagnosisSettings = DEFAULT_SETTINGS) -> Timeline:
        timeline = cls(settings)
        timeline.add_epochs(records)
        timeline.finish()
        return timeline

    def add_epochs(self, records: pd.DataFrame) -> None:
        """Records of any number of whole epochs after those added before, added epoch by epoch."""
        if len(records):
            for _, chunk in records.groupby("epoch", sort=True):
                self.add(chunk)

    def add(self, records: pd.DataFrame) -> None:
        """Records of one or more whole epochs, after those added before."""
        if not len(records):
            return
        time = records[records["metric"] == TIME_METRIC]
        if len(time):
            self._time.append(time)
            self._pending_time.append(time)
        self._learn_layers(records)
        self._pending.append(records)
        self._pending_steps += records.loc[records["metric"] == "grad_norm", "step"].nunique()
        if self._pending_steps >= self.settings.window_min_steps:
            self._close()

    def finish(self) -> None:
        """Close the last window, however short."""
        if self._pending:
            self._close()

    def _close(self) -> None:
        chunk = pd.concat(self._pending, ignore_index=True) if len(self._pending) > 1 else self._pending[0]
        self._pending, self._pending_steps = [], 0
        self._unsaved_time += self._pending_time
        self._pending_time = []
        window = summarize(chunk, len(self.windows), self.layers)
        if window is None:  # epoch logs without steps: keep them for the next window's losses
            if self.windows:
                losses, accuracies = summarize_logs(chunk)
                self.windows[-1].losses += losses
                self.windows[-1].accuracies += accuracies
                self._unsaved_logs.append((self.windows[-1].index, losses, accuracies))
            return
        if not self.windows:
            initial = chunk[(chunk["metric"] == "weight_norm_initial") & (chunk["variable"] == "kernel")]
            self.zero_start = set(initial.loc[initial["value"] == 0, "layer"])
        self.windows.append(window)
        self._unsaved_windows.append(window)

    def take_unsaved(self):
        """What closed since the last call: ``(windows, logs added to earlier windows, time records)``;
        taken, so that each is saved once (:func:`gradscope.diagnosis.summaries.take_rows`)."""
        taken = (self._unsaved_windows, self._unsaved_logs, self._unsaved_time)
        self._unsaved_windows, self._unsaved_logs, self._unsaved_time = [], [], []
        return taken

    def depth_of(self, layer: str) -> int:
        return self._depths[layer]

    def learn_depths(self, depths: dict) -> None:
        """Kernel layers and their depths (as summaries read back hold them)."""
        for layer, d in depths.items():
            self._depths.setdefault(layer, int(d))
        self.layers = sorted(self._depths, key=lambda layer: (self._depths[layer], layer))

    def add_time(self, records: pd.DataFrame) -> None:
        """``time_grad_norm`` records of windows already summarised (as summaries read back hold them)."""
        if len(records):
            self._time.append(records)

    def _learn_layers(self, records) -> None:
        kern = records.loc[records["variable"] == "kernel", ["layer", "depth"]]  # (two columns, not a copy of all)
        if not len(kern):
            return
        new = kern.drop_duplicates("layer")
        if set(new["layer"]) - set(self.layers):
            self.learn_depths(dict(zip(new["layer"], new["depth"])))

    # --- whole-run views ------------------------------------------------------------------

    @property
    def time_records(self) -> pd.DataFrame:
        """The run's ``time_grad_norm`` records (gradients per time step of recurrent layers)."""
        return pd.concat(self._time, ignore_index=True) if self._time else pd.DataFrame(columns=["metric"])

    @property
    def first_step(self):
        return self.windows[0].first_step if self.windows else None

    @property
    def last_step(self):
        return self.windows[-1].last_step if self.windows else None

    @property
    def losses(self) -> pd.Series:
        """Training loss by epoch."""
        pairs = [p for w in self.windows for p in w.losses]
        return pd.Series(dict(pairs), dtype=float).sort_index()

    @property
    def accuracies(self) -> pd.Series:
        pairs = [p for w in self.windows for p in w.accuracies]
        return pd.Series(dict(pairs), dtype=float).sort_index()

    @property
    def non_finite(self) -> dict | None:
        for w in self.windows:
            if w.non_finite is not None:
                return w.non_finite
        return None

    def fitted(self, window: Window, facts) -> bool:
        """Whether the training data is already fitted by this window: its epochs' loss is below
        ``settings.fitted_loss`` (cross-entropy), or below ``settings.fitted_loss_fraction`` of the
        first epoch's (other losses).
        A fitted model has nothing left to learn, so relative speeds say nothing then."""
        losses = [v for _, v in window.losses if math.isfinite(v)]
        if not losses:
            return False
        if facts is not None and facts.classification:
            floor = self.settings.fitted_loss
        else:
            first = self.losses
            floor = self.settings.fitted_loss_fraction * float(first.iloc[0]) if len(first) and math.isfinite(first.iloc[0]) else -math.inf
        return max(losses) < floor

    def usable(self, window: Window, zeros: bool = False) -> pd.Series:
        """A window's per-layer speeds, without layers that started at zero (their speed relative to
        weights that are still growing from nothing says nothing) and without non-finite speeds or
        (unless ``zeros``: a layer that no gradient reaches at all) zero ones."""
        speed = window.speed
        if self.zero_start:
            speed = speed.drop([layer for layer in self.zero_start if layer in speed.index])
        speed = speed.replace([np.inf, -np.inf], np.nan).dropna()
        return speed[speed >= 0] if zeros else speed[speed > 0]

    def flags(self, rule: str, predicate) -> list:
        """What ``predicate(window)`` says of every window, each window judged once."""
        out = []
        for w in self.windows:
            key = (rule, w.index)
            if key not in self.memo:
                self.memo[key] = predicate(w)
            out.append(self.memo[key])
        return out


def summarize_logs(records):
    logs = records[records["layer"] == ""]
    loss = logs[logs["metric"] == "loss"].groupby("epoch")["value"].last()
    acc = logs[logs["metric"] == "accuracy"].groupby("epoch")["value"].last()
    return [(int(e), float(v)) for e, v in loss.items()], [(int(e), float(v)) for e, v in acc.items()]


@dataclass
class Episode:
    """Consecutive windows in which a problem held."""

    first: Window
    last: Window
    worst: Window
    detail: object = None

    @property
    def steps(self) -> list:
        return [self.first.first_step, self.last.last_step]


def episodes(timeline: Timeline, flags: list, severity=lambda detail: 0.0) -> list[Episode]:
    """Runs of windows whose flag is truthy (the flag is the window's detail), worst by ``severity``.

    An episode shorter than ``settings.min_episode_windows`` is a passing moment, not a problem
    of the run, and is left out, unless it starts at the run's first window: then, when it
    ended, it had spanned every window the run had, which is when diagnosis during training
    warns of it, and what was warned stays in the run's history.
    """
    out, current = [], None
    for window, detail in zip(timeline.windows, flags):
        if detail:
            if current is None:
                current = Episode(window, window, window, detail)
            else:
                current.last = window
                if severity(detail) > severity(current.detail):
                    current.worst, current.detail = window, detail
        elif current is not None:
            out.append(current)
            current = None
    if current is not None:
        out.append(current)
    shortest = timeline.settings.min_episode_windows
    return [e for e in out if e.last.index - e.first.index + 1 >= shortest or e.first.index == 0]


@dataclass
class LayerEpisodes:
    """Where a per-layer fraction (``saturated``, ``dead``) of the windows exceeded a threshold."""

    found: list        # the episodes; each one's detail is {layer: fraction} of its worst window
    worst: Episode     # the episode with the largest fraction
    layer: str         # the layer of that fraction
    fraction: float
    layers: list       # every layer over the threshold in some episode, in layer order


def layers_above(timeline: Timeline, kind: str, attribute: str, threshold: float, skip=()) -> LayerEpisodes | None:
    """Episodes of windows in which some layer's ``attribute`` (a per-layer Series) exceeds ``threshold``
    (the layers in ``skip`` left out)."""

    def over(w):
        values = getattr(w, attribute)
        values = values[~values.index.isin(list(skip))] if len(skip) else values
        hit = values[values > threshold]
        return dict(hit) if len(hit) else None

    found = episodes(timeline, timeline.flags(kind, over), severity=lambda d: max(d.values()))
    if not found:
        return None
    worst = max(found, key=lambda e: max(e.detail.values()))
    layer, fraction = max(worst.detail.items(), key=lambda kv: kv[1])
    layers = [name for name in getattr(worst.worst, attribute).index if any(name in e.detail for e in found)]
    return LayerEpisodes(found, worst, layer, float(fraction), layers)


def history(timeline: Timeline, found: list[Episode]) -> dict:
    """When a problem held: its episodes' steps, and the step it was last seen gone (None: still there)."""
    if not found:
        return {}
    last = found[-1]
    resolved = None
    if last.last.index < len(timeline.windows) - 1:
        resolved = timeline.windows[last.last.index + 1].first_step
    return {"held_in_steps": [e.steps for e in found], "resolved_at_step": resolved}


def history_text(hist: dict, form: str = "; {}") -> str:
    """``held in steps 0-99; gone from step 100``-style words, put into ``form``; ``""`` with nothing to say.

    Example:
        >>> history_text({"held_in_steps": [[0, 99]], "resolved_at_step": 100})
        '; held in steps 0-99; gone from step 100'
        >>> history_text({"held_in_steps": [[0, 0]], "resolved_at_step": None})  # one probe (audit): no when
        ''
    """
    if not hist:
        return ""
    spans = hist["held_in_steps"]
    if len(spans) == 1 and spans[0][0] == spans[0][1]:
        return ""  # one step only (audit's one probe): nothing to say about when
    held = ", ".join(f"{a}-{b}" for a, b in spans)
    gone = hist.get("resolved_at_step")
    return form.format(f"held in steps {held}"
                       + (f"; gone from step {gone}" if gone is not None else "; still there at the end"))


def decay_per_layer(speed: pd.Series) -> float:
    """Geometric-mean factor by which learning speed shrinks per layer toward the input."""
    values = speed.to_numpy(dtype=float)
    if len(values) < 2 or not np.all(np.isfinite(values)) or np.any(values <= 0):
        return math.nan
    slope = np.polyfit(np.arange(len(values)), np.log(values), 1)[0]  # log-speed per layer
    return float(np.exp(-slope))
