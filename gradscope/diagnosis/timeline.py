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
from gradscope.records import metric_rows
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


def _per_layer(df, metric, how):
    sel = df[df["metric"] == metric]
    if not len(sel):
        return pd.Series(dtype=float)
    grouped = sel.groupby("layer", sort=False)["value"]
    if how == "median":
        return grouped.median()
    if how == "max":
        return grouped.max()
    ordered = sel.sort_values("step", kind="stable").groupby("layer", sort=False)["value"]
    return ordered.first() if how == "first" else ordered.last()


def summarize(records: pd.DataFrame, index: int, layers: list) -> Window | None:
    """One window from the records of the epochs it covers (None without any step)."""
    steps = records.loc[records["metric"] == "grad_norm", "step"]
    if not len(steps):
        return None
    kern = records[records["variable"] == "kernel"]

    def ordered(s):
        return s.reindex([layer for layer in layers if layer in s.index])

    rel_rows = metric_rows(records, "grad_over_weight").dropna(subset=["value"])
    rel = rel_rows.groupby("layer", sort=False)["value"].median() if len(rel_rows) else pd.Series(dtype=float)
    # NaN anywhere, or an inf loss; an inf gradient or weight *norm* may be a float32 overflow of
    # finite, huge values (a sum of squares beyond 3e38): that is an explosion, not a NaN yet
    finite = records[records["metric"].isin(_FINITE_METRICS)]
    values = finite["value"].to_numpy(dtype=float)
    bad = finite[np.isnan(values) | (np.isinf(values) & (finite["metric"] == "loss").to_numpy())]
    non_finite = None
    if len(bad):
        first = bad.sort_values(["step", "depth"], kind="stable").iloc[0]
        non_finite = {"step": int(first["step"]), "metric": str(first["metric"]), "layer": str(first["layer"]),
                      "variable": str(first["variable"])}
    logs = records[records["layer"] == ""]
    loss = logs[logs["metric"] == "loss"].groupby("epoch")["value"].last()
    acc = logs[logs["metric"] == "accuracy"].groupby("epoch")["value"].last()
    acts = records[records["metric"].isin(("saturated_frac", "dead_frac"))]

    def last_activation(metric):
        sel = acts[acts["metric"] == metric]
        if not len(sel):
            return pd.Series(dtype=float)
        return sel[sel["step"] == sel["step"].max()].groupby("layer", sort=False)["value"].mean()

    epochs = records["epoch"]
    return Window(
        index=index, first_step=int(steps.min()), last_step=int(steps.max()),
        first_epoch=int(epochs.min()), last_epoch=int(epochs.max()), n_steps=int(steps.nunique()),
        speed=ordered(_per_layer(kern, "update_ratio", "median")), rel=ordered(rel),
        grad_first=ordered(_per_layer(kern, "grad_norm", "first")), grad_max=ordered(_per_layer(kern, "grad_norm", "max")),
        weight_first=ordered(_per_layer(kern, "weight_norm", "first")),
        weight_last=ordered(_per_layer(kern, "weight_norm", "last")),
        update_ratio_max=ordered(_per_layer(kern, "update_ratio", "max")),
        update_max=ordered(_per_layer(kern, "update_norm", "max")),
        losses=[(int(e), float(v)) for e, v in loss.items()], accuracies=[(int(e), float(v)) for e, v in acc.items()],
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

    @classmethod
    def from_records(cls, records: pd.DataFrame, settings: DiagnosisSettings = DEFAULT_SETTINGS) -> Timeline:
        timeline = cls(settings)
        if len(records):
            for _, chunk in records.groupby("epoch", sort=True):
                timeline.add(chunk)
        timeline.finish()
        return timeline

    def add(self, records: pd.DataFrame) -> None:
        """Records of one or more whole epochs, after those added before."""
        if not len(records):
            return
        time = records[records["metric"] == TIME_METRIC]
        if len(time):
            self._time.append(time)
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
        window = summarize(chunk, len(self.windows), self.layers)
        if window is None:  # epoch logs without steps: keep them for the next window's losses
            if self.windows:
                self.windows[-1].losses += summarize_logs(chunk)[0]
                self.windows[-1].accuracies += summarize_logs(chunk)[1]
            return
        if not self.windows:
            initial = chunk[(chunk["metric"] == "weight_norm_initial") & (chunk["variable"] == "kernel")]
            self.zero_start = set(initial.loc[initial["value"] == 0, "layer"])
        self.windows.append(window)

    def _learn_layers(self, records) -> None:
        kern = records[records["variable"] == "kernel"]
        if not len(kern):
            return
        new = kern.drop_duplicates("layer")[["layer", "depth"]]
        if set(new["layer"]) - set(self.layers):
            for layer, d in zip(new["layer"], new["depth"]):
                self._depths.setdefault(layer, int(d))
            self.layers = sorted(self._depths, key=lambda layer: (self._depths[layer], layer))

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
    of the run, and is left out, unless it spans every window the run has.
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
    n = len(timeline.windows)
    return [e for e in out if e.last.index - e.first.index + 1 >= shortest or (e.first.index == 0 and e.last.index == n - 1)]


@dataclass
class LayerEpisodes:
    """Where a per-layer fraction (``saturated``, ``dead``) of the windows exceeded a threshold."""

    found: list        # the episodes; each one's detail is {layer: fraction} of its worst window
    worst: Episode     # the episode with the largest fraction
    layer: str         # the layer of that fraction
    fraction: float
    layers: list       # every layer over the threshold in some episode, in layer order


def layers_above(timeline: Timeline, kind: str, attribute: str, threshold: float) -> LayerEpisodes | None:
    """Episodes of windows in which some layer's ``attribute`` (a per-layer Series) exceeds ``threshold``."""

    def over(w):
        values = getattr(w, attribute)
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
