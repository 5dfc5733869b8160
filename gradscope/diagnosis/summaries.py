"""A run's window summaries as tidy rows: what the rules judge, kept beside the records.

The rules judge a :class:`~gradscope.diagnosis.timeline.Timeline`: per-layer numbers of each window
(an epoch, or enough epochs for ``window_min_steps`` steps), the losses of its epochs, and the
gradients per time step of recurrent layers. A window is summarised once, when it closes; its
summary is a few rows a layer, so a run of 64M records has a summary of some thousands of rows.
Recorders write them while the run trains (the run directory's ``summaries/`` parts,
:mod:`gradscope.storage.summaries_parquet`); the end of a fit, ``gradscope diagnose`` and the
report judge them without reading the records.

Each row is one number with its coordinates, in the columns of :data:`COLUMNS`:

* ``window`` >= 0, ``field`` one of the window's numbers: ``first_step`` ... ``n_steps`` (its
  extent); a per-layer series (``speed``, ``rel``, ``grad_first``, ... with ``layer``); ``loss`` and
  ``accuracy`` (with ``epoch``); ``non_finite`` (the first NaN: ``step``, ``layer``, ``variable``,
  and the metric in ``text``);
* ``window`` = -1 for the run: ``depth`` of each kernel layer, ``zero_start`` layers,
  ``window_min_steps`` (the setting the windows were cut with), and ``time_grad_norm`` records (``layer``, ``variable``, ``step``, ``epoch``,
  ``time``, ``depth``, ``value``).

Rows of a per-layer series keep the series' order. Every number is a float64 (the windows'
medians are not float32), so a timeline read back judges exactly as the one that wrote it.

Example:
    >>> import numpy as np
    >>> from gradscope import records as rec
    >>> from gradscope.diagnosis.timeline import Timeline
    >>> meta = [("dense_0", 0, "kernel"), ("output", 1, "kernel")]
    >>> frames = [rec.from_step_arrays("r", np.array([s]), s // 10, meta,
    ...           {"grad_norm": np.array([[0.01, 1.0]]), "weight_norm": np.array([[30.0, 4.0]]),
    ...            "update_norm": np.array([[0.001, 0.1]])}) for s in range(30)]
    >>> t = Timeline.from_records(rec.concat(frames))
    >>> rows = take_rows(t)
    >>> back = timeline_of_rows(rows)
    >>> [(w.first_step, w.last_step) for w in back.windows], back.layers
    ([(0, 9), (10, 19), (20, 29)], ['dense_0', 'output'])
    >>> back.windows[2].speed.equals(t.windows[2].speed)
    True
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from gradscope import records as rec
from gradscope.diagnosis.settings import DEFAULT_SETTINGS, DiagnosisSettings
from gradscope.diagnosis.timeline import Timeline, Window
from gradscope.vocabulary import TIME_METRIC

COLUMNS = ["window", "field", "layer", "variable", "step", "epoch", "time", "depth", "value", "text"]
RUN = -1  # the ``window`` of rows about the whole run

_EXTENT = ("first_step", "last_step", "first_epoch", "last_epoch", "n_steps")
_SERIES = ("speed", "rel", "grad_first", "grad_max", "weight_first", "weight_last", "update_ratio_max",
           "update_max", "saturated", "dead")
_PAIRS = {"loss": "losses", "accuracy": "accuracies"}


def _row(window, field, layer="", variable="", step=-1, epoch=-1, time=-1, depth=-1, value=np.nan, text=""):
    return (window, field, layer, variable, step, epoch, time, depth, value, text)


def window_rows(w: Window) -> list[tuple]:
    """The rows of one window's summary."""
    rows = [_row(w.index, name, value=float(getattr(w, name))) for name in _EXTENT]
    for name in _SERIES:
        rows += [_row(w.index, name, layer=str(layer), value=float(v)) for layer, v in getattr(w, name).items()]
    for field, attribute in _PAIRS.items():
        rows += [_row(w.index, field, epoch=int(e), value=float(v)) for e, v in getattr(w, attribute)]
    if w.non_finite is not None:
        nf = w.non_finite
        rows.append(_row(w.index, "non_finite", layer=nf["layer"], variable=nf.get("variable", ""),
                         step=nf["step"], text=nf["metric"]))
    return rows


def take_rows(timeline: Timeline) -> pd.DataFrame:
    """The summary rows of what ``timeline`` closed since the last call (empty: nothing new); they
    are taken, so each window is written once."""
    windows, extra_logs, time = timeline.take_unsaved()
    if not windows and not extra_logs and not time:
        return frame_of([])
    rows = [r for w in windows for r in window_rows(w)]
    for index, losses, accuracies in extra_logs:  # logs of epochs without steps, added to a written window
        rows += [_row(index, "loss", epoch=int(e), value=float(v)) for e, v in losses]
        rows += [_row(index, "accuracy", epoch=int(e), value=float(v)) for e, v in accuracies]
    rows += [_row(RUN, "depth", layer=layer, depth=int(timeline.depth_of(layer))) for layer in timeline.layers]
    rows += [_row(RUN, "zero_start", layer=layer) for layer in sorted(timeline.zero_start)]
    rows.append(_row(RUN, "window_min_steps", value=float(timeline.settings.window_min_steps)))
    for frame in time:
        rows += [_row(RUN, TIME_METRIC, layer=str(r.layer), variable=str(r.variable), step=int(r.step),
                      epoch=int(r.epoch), time=int(r.time), depth=int(r.depth), value=float(r.value))
                 for r in frame.itertuples(index=False)]
    return frame_of(rows)


def frame_of(rows) -> pd.DataFrame:
    """Rows as a DataFrame of :data:`COLUMNS` (typed)."""
    frame = pd.DataFrame(list(rows), columns=COLUMNS)
    return frame.astype({"window": "int32", "step": "int64", "epoch": "int32", "time": "int32", "depth": "int32",
                         "value": "float64", "field": object, "layer": object, "variable": object, "text": object})


def window_min_steps_of(frame: pd.DataFrame) -> int | None:
    """The ``window_min_steps`` the summaries were cut with (None: no summary)."""
    rows = frame[(frame["window"] == RUN) & (frame["field"] == "window_min_steps")]
    return int(rows["value"].iloc[-1]) if len(rows) else None


def timeline_of_rows(frame: pd.DataFrame, settings: DiagnosisSettings = DEFAULT_SETTINGS) -> Timeline:
    """A :class:`Timeline` from summary rows (as :func:`take_rows` made them, several takes in order).
    It is not finished: records of later epochs may still be added."""
    timeline = Timeline(settings)
    if not len(frame):
        return timeline
    run = frame[frame["window"] == RUN]
    depths = run[run["field"] == "depth"]
    timeline.learn_depths(dict(zip(depths["layer"], depths["depth"].astype(int))))
    timeline.zero_start = set(run.loc[run["field"] == "zero_start", "layer"])
    time = run[run["field"] == TIME_METRIC]
    if len(time):
        timeline.add_time(rec.coerce(pd.DataFrame({
            "run": "", "step": time["step"], "epoch": time["epoch"], "layer": time["layer"], "depth": time["depth"],
            "variable": time["variable"], "metric": TIME_METRIC, "value": time["value"], "time": time["time"]})))
    rows = frame[frame["window"] != RUN]
    if len(rows):
        columns = _Columns(rows)
        fields: dict[int, dict] = {}  # window -> field -> positions of its rows, in their order
        for (index, field), where in rows.groupby(["window", "field"], sort=False).indices.items():
            fields.setdefault(int(index), {})[field] = where
        for index in sorted(fields):
            timeline.windows.append(_window(index, fields[index], columns))
    return timeline


class _Columns:
    """The columns of summary rows as NumPy arrays, read out of the frame once."""

    def __init__(self, rows: pd.DataFrame):
        self.value = rows["value"].to_numpy(dtype=float)
        self.step, self.epoch = rows["step"].to_numpy(), rows["epoch"].to_numpy()
        self.layer, self.variable = rows["layer"].to_numpy(dtype=object), rows["variable"].to_numpy(dtype=object)
        self.text = rows["text"].to_numpy(dtype=object)


def _window(index: int, by_field: dict, c: _Columns) -> Window:
    """A window from its rows: ``by_field`` maps each field to the positions of its rows in ``c``."""

    def scalar(name):
        return int(c.value[by_field[name][0]])

    def series(name):
        where = by_field.get(name)
        if where is None:
            return pd.Series(dtype=float)
        return pd.Series(c.value[where], index=list(c.layer[where]), dtype=float)

    def pairs(name):
        where = by_field.get(name)
        return [] if where is None else [(int(e), float(v)) for e, v in zip(c.epoch[where], c.value[where])]

    nf = by_field.get("non_finite")
    non_finite = None if nf is None else {"step": int(c.step[nf[0]]), "metric": str(c.text[nf[0]]),
                                          "layer": str(c.layer[nf[0]]), "variable": str(c.variable[nf[0]])}
    return Window(index=index, **{name: scalar(name) for name in _EXTENT},
                  **{name: series(name) for name in _SERIES},
                  losses=pairs("loss"), accuracies=pairs("accuracy"), non_finite=non_finite)
