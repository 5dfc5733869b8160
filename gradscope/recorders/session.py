"""One run being recorded, whoever trains it: the part of recording that knows no framework.

A step source (the Keras monitor, the TF1 hook and session recorder) measures the steps and hands
them over as named per-step arrays; the session turns them into records and owns everything
about the run itself:

* the run directory's writer (made from ``run_dir``, or one it is given) and the record log;
* records from per-step arrays: the weight norm of each step interpolated between exact readings
  (:class:`~gradscope.recorders.weight_readings.WeightReadings`), small variables exact, at most
  :data:`RECORDS_PER_BATCH` records built at once;
* the epoch end: its logs as records, progress and the last epoch's metrics in ``run.json``, and
  the online diagnosis (``diagnose=True``);
* the run's window summaries (:mod:`gradscope.diagnosis.summaries`): each epoch's records are
  summarised when the epoch is over and the windows written beside the records as they close, so
  that the findings at the end, and every reader's, come from the summaries, never from reading
  every record back (an epoch of more than :data:`SUMMARY_EPOCH_RECORDS` records is not held to
  be summarised: such a run is diagnosed from its records);
* the end: :meth:`RecordingSession.finish` (``complete``, ``interrupted`` or ``failed``, with the
  findings copied into ``run.json``), also at interpreter exit and, during training, on SIGTERM.

Every run therefore ends with the same statuses and the same ``run.json``, whoever records it.

Example:
    >>> import numpy as np
    >>> session = RecordingSession(run="r", variables=[("dense", 0, "kernel")])
    >>> session.start_weights(0, 0, np.array([2.0]))
    >>> session.add_steps(np.array([0, 1]), 0, {"update_norm": np.array([[0.2], [0.2]])},
    ...                   weights=(1, np.array([2.0])))
    5
    >>> session.records.query("metric == 'update_ratio'").value.round(6).tolist()
    [0.1, 0.1]
    >>> session.finish("complete")
"""

from __future__ import annotations

import sys
import time
import warnings

import numpy as np

from gradscope import records as rec
from gradscope.display import say_finding
from gradscope.recorders.exit_guard import ExitGuard
from gradscope.recorders.record_log import RecordLog
from gradscope.recorders.sinks import GuardedSink, check_sinks, check_writer
from gradscope.recorders.weight_readings import WeightReadings

#: At most this many records are built and written at once (a part of the run directory each).
RECORDS_PER_BATCH = 1_000_000
#: An epoch's records are held until it ends, to be summarised: at most this many (about 90 bytes a record in memory).
SUMMARY_EPOCH_RECORDS = 2_000_000


class UnreadableGradients(RuntimeError):
    """Every gradient a step source read was exactly 0 while the weights moved: it cannot read them."""


def check_gradients_read(values: dict, weights_moved: bool = False) -> None:
    """Refuse per-step arrays whose gradients cannot be real: exactly 0 for every variable at every step
    while the weights moved (an update above 0, or weight norms that changed between exact readings).
    An output bias alone has a gradient of exactly 0 only at a perfect fit.

    Raises:
        UnreadableGradients: saying so, so that zeros are never recorded as data.

    Example:
        >>> check_gradients_read({"grad_norm": np.zeros((2, 3)), "update_norm": np.zeros((2, 3))}, weights_moved=True)
        Traceback (most recent call last):
        ...
        gradscope.recorders.session.UnreadableGradients: every gradient read was exactly 0 while the weights moved: ...
        >>> check_gradients_read({"grad_norm": np.zeros((2, 3)), "update_norm": np.zeros((2, 3))})  # nothing moved
    """
    grads = values.get("grad_norm")
    if grads is None or np.size(grads) < 2 or np.any(grads):
        return
    updates = values.get("update_norm")
    norms = values.get("weight_norm")
    moved = (weights_moved or (updates is not None and np.any(np.asarray(updates) > 0))
             or (norms is not None and len(norms) > 1 and np.any(np.asarray(norms) != np.asarray(norms)[:1])))
    if moved:
        raise UnreadableGradients(
            "every gradient read was exactly 0 while the weights moved: this trainer hands gradscope gradients it "
            "cannot read, so none of these steps is recorded")


def json_number(value):
    """A log value as a JSON number (non-finite as text), or as it is when it is not a number."""
    try:
        value = float(value)
    except (TypeError, ValueError):
        return value
    return value if np.isfinite(value) else str(value)


class RecordingSession:
    """The records and the run directory of one run, and how the run ends.

    Args:
        run: run id written in the ``run`` column.
        run_dir: a run directory to write (made at :meth:`open`).
        config: your configuration, stored in ``run.json``.
        writer: an existing :class:`gradscope.storage.RunWriter` instead of ``run_dir``: whoever
            made it finishes it (the session never does).
        variables: ``(layer, depth, variable)`` of each recorded variable (or :meth:`set_variables`).
        diagnose: judge each epoch as it ends (:meth:`end_epoch`); ``stop_on``: kinds that stop training.
        findings_copy: at the end, copy the run's findings into ``run.json``.
        exit_status: what an unfinished session is marked at a clean interpreter exit: ``"interrupted"``
            for a source that knows its end (``fit`` returns), ``"complete"`` for a loop that has no
            end to see (a ``sess.run`` loop). After an uncaught exception it is ``"failed"``, after
            Ctrl-C ``"interrupted"``.
        name: the run's name in ``run.json`` (default: the directory's).
        sinks: more places for every record batch (:mod:`gradscope.recorders.sinks`: TensorBoard, MLflow,
            a store of one's own): started, flushed at each epoch end and closed with the findings.
    """

    def __init__(self, run="run", run_dir=None, config=None, writer=None, variables=(),
                 diagnose=False, stop_on=(), findings_copy=True, exit_status="interrupted", name=None, sinks=()):
        check_writer(writer)
        self.sinks = [GuardedSink(sink) for sink in check_sinks(sinks)]  # (gradscope.recorders.sinks)
        self.run = run
        self.run_dir = run_dir
        self.config = dict(config or {})
        self.writer = writer
        self.owns_writer = False
        self.findings_copy = findings_copy
        self.exit_status = exit_status
        self.name = name
        self.variables = list(variables)
        self.log = RecordLog([writer, *self.sinks])
        self._weights = WeightReadings()
        from gradscope.diagnosis.timeline import Timeline

        #: The run's windows, summarised as epochs end (None when they cannot be: see :meth:`_stop_summaries`).
        self.timeline: Timeline | None = Timeline()
        self._epoch_frames: list = []  # the records of the epoch under way, until it is summarised
        self._epoch_rows = 0
        self._recorded = False  # whether records came through this session (not only through its writer)
        self._online = None
        if diagnose or stop_on:
            from gradscope.diagnosis.online import OnlineDiagnosis

            self._online = OnlineDiagnosis(self.config, stop_on=tuple(stop_on), timeline=self.timeline)
        self._log_keys: set = set()
        self._exit_guard: ExitGuard | None = None
        self.train_seconds = 0.0
        self._started: float | None = None
        #: Called as ``on_exit(status, error)`` at interpreter exit before the run is finished: a step
        #: source that still holds steps (on the device, pending) sets it to bring them in.
        self.on_exit = None

    # --- the run directory ------------------------------------------------------------

    def open(self) -> None:
        """Start (or continue) recording: the run directory is made, or reopened after an earlier
        finish, and the session is finished at interpreter exit if nobody finishes it."""
        from gradscope.storage import RunWriter

        if self.writer is None and self.run_dir is not None:
            self.writer = RunWriter(self.run_dir, self.config, name=self.name or self.run)
            self.owns_writer = True
        elif self.owns_writer and self.writer.finished:
            self.writer.reopen()  # another fit continues the run
        self.log.add_output(self.writer)
        if self._exit_guard is None:
            self._exit_guard = ExitGuard(self, "_finish_at_exit")
        self._started = time.perf_counter()

    def update(self, **sections) -> None:
        """Merge sections into ``run.json`` (nothing without a run directory)."""
        if self.writer is not None:
            self.writer.update(**sections)

    @property
    def meta(self) -> dict:
        """What ``run.json`` holds so far (the config alone without a run directory)."""
        return self.writer.meta if self.writer is not None else {"config": self.config}

    # --- records ----------------------------------------------------------------------

    def set_variables(self, variables) -> None:
        """``(layer, depth, variable)`` of each column of the per-step arrays to come."""
        self.variables = list(variables)

    def add(self, frame) -> None:
        """Records made elsewhere (logs, activation statistics): kept, written and summarised with the epoch."""
        if not len(frame):
            return
        self._recorded = True
        epochs = frame["epoch"].to_numpy()
        if self._epoch_frames and epochs.min() > self._epoch_frames[-1]["epoch"].max():
            self._summarise()  # an earlier epoch is over (a loop without epoch ends: TF1)
        self.log.add(frame)  # (after the summaries of the parts before it: they cover those parts)
        if self.timeline is None:
            return
        histograms = frame["bin"].to_numpy() != rec.NO_BIN  # (no rule reads histograms: the summaries leave them out)
        if histograms.any():
            frame = frame[~histograms]
            if not len(frame):
                return
        self._epoch_frames.append(frame)
        self._epoch_rows += len(frame)
        if self._epoch_rows > SUMMARY_EPOCH_RECORDS:
            self._stop_summaries(None)

    def _summarise(self) -> None:
        """Summarise the records held (whole epochs), and write the windows that closed."""
        frames, self._epoch_frames, self._epoch_rows = self._epoch_frames, [], 0
        if self.timeline is None or not frames:
            return
        try:
            chunk = rec.concat(frames) if len(frames) > 1 else frames[0].copy()
            del frames  # (the epoch's frames are not held twice)
            chunk["value"] = chunk["value"].to_numpy(dtype=np.float32).astype(np.float64)  # as stored: float32
            self.timeline.add(chunk)
        except Exception as exc:  # our error: the run goes on, its readers summarise its records
            self._stop_summaries(exc)
            return
        self._write_closed()

    def _write_closed(self) -> None:
        """Write the windows that closed since the last write beside the records."""
        try:
            from gradscope.diagnosis.summaries import take_rows

            rows = take_rows(self.timeline)
            if len(rows) and callable(getattr(self.writer, "append_summaries", None)):
                self.writer.append_summaries(rows)
        except Exception as exc:
            self._stop_summaries(exc)

    def _stop_summaries(self, exc) -> None:
        """Summarise no more: the run's findings are then read from its records (as they are for a run
        written by an earlier version)."""
        self.timeline, self._epoch_frames, self._epoch_rows = None, [], 0
        if exc is not None:
            warnings.warn(f"gradscope could not summarise this run's windows ({type(exc).__name__}: {exc}); "
                          "recording goes on, and its findings are read from its records", RuntimeWarning,
                          stacklevel=3)

    def start_weights(self, step: int, epoch: int, norms) -> None:
        """The exact weight norms before ``step`` (``weight_norm_initial``): the first reading."""
        norms = np.asarray(norms, dtype=np.float64)
        self._weights = WeightReadings(step - 1, norms)
        self.add(rec.from_step_arrays(self.run, np.array([step]), epoch, self.variables,
                                          {"weight_norm_initial": norms[None]}))

    @property
    def weights_read_at(self):
        """The step after which the weight norms were last read exactly (None: never)."""
        return self._weights.last_step

    def add_steps(self, steps, epoch, values: dict, weights=None, small=None) -> int:
        """Records of recorded steps from named ``(n_steps, n_variables)`` arrays, at most
        :data:`RECORDS_PER_BATCH` records a batch (and one epoch); returns how many.

        Args:
            steps: the steps, shape ``(n_steps,)``, in order.
            epoch: the epoch they belong to, or each step's epoch (shape ``(n_steps,)``): the weight
                norms are interpolated across an epoch's end as within an epoch.
            values: metric name -> array (``weight_norm`` among them when measured at every step).
            weights: ``(step, norms)``: the weight norms read exactly after ``step`` (the last of
                ``steps``, usually). The steps in between get the norm interpolated from the last
                reading, and the reading is recorded as ``weight_norm``. None, or the step of the
                last reading: no new reading, the last one holds (not a number before any).
            small: ``(columns, norms)``: weight norms of some variables measured at every step
                (exact, so not interpolated), ``norms`` of shape ``(n_steps, len(columns))``.

        Raises:
            UnreadableGradients: gradients of exactly 0 everywhere while the weights moved; nothing is recorded.
        """
        steps = np.asarray(steps)
        if not len(steps):
            return 0
        last = self._weights.last_norms
        check_gradients_read(values, weights_moved=bool(
            weights is not None and last is not None and np.any(np.asarray(weights[1], dtype=np.float64) != last)))
        interpolated = reading = None
        if "weight_norm" not in values:
            if weights is not None and weights[0] != self._weights.last_step:
                after, norms = weights[0], np.asarray(weights[1], dtype=np.float64)
                interpolated = self._weights.between(steps, after, norms)
                last_epoch = int(np.asarray(epoch).flat[-1])  # the reading's step is the last one
                reading = rec.from_step_arrays(self.run, np.array([after]), last_epoch, self.variables,
                                               {"weight_norm": norms[None]})
            elif self._weights.last_norms is not None:
                interpolated = np.repeat(self._weights.last_norms[None], len(steps), axis=0)
            else:
                interpolated = np.full((len(steps), len(self.variables)), np.nan)
            if small is not None:
                columns, exact = small
                interpolated[:, columns] = exact
        per_step = max(len(self.variables) * (len(values) + ("update_ratio" not in values)), 1)
        rows = max(RECORDS_PER_BATCH // per_step, 1)
        epochs = np.broadcast_to(np.asarray(epoch), steps.shape)
        ends = [*np.flatnonzero(epochs[1:] != epochs[:-1]) + 1, len(steps)]
        added, first = 0, 0
        for end in ends:  # one epoch's steps at a time ...
            for start in range(first, end, rows):  # ... and a long epoch in several batches, never one huge frame
                part = slice(start, min(start + rows, end))
                between = None if interpolated is None else {"weight_norm": interpolated[part]}
                frame = rec.from_step_arrays(self.run, steps[part], int(epochs[start]), self.variables,
                                             {name: v[part] for name, v in values.items()}, derive_with=between)
                if part.stop == len(steps) and reading is not None:
                    frame = rec.concat([frame, reading])  # one part of the run directory per batch
                self.add(frame)
                added += len(frame)
            first = end
        return added

    @property
    def records(self):
        """Everything recorded so far, with the schema columns of :mod:`gradscope.records`."""
        return self.log.records

    # --- the epoch end and online diagnosis ---------------------------------------------

    def end_epoch(self, step: int, epoch: int, logs=None, records=None, progress=None, **sections) -> bool:
        """The epoch's logs as records, and ``records`` measured at its end (activation statistics);
        ``run.json``'s progress and metrics (the last epoch's logs only) and ``sections``; judges the
        epoch when diagnosing. Returns True when a finding asks to stop training (``stop_on``)."""
        self.add(rec.from_logs(self.run, step, epoch, logs or {}))
        if records is not None:
            self.add(records)
        if self.writer is not None:
            metrics = {k: json_number(v) for k, v in (logs or {}).items()}
            self.writer.forget("metrics", self._log_keys - set(metrics))  # the last epoch's logs, not an older one's
            self._log_keys = set(metrics)
            self.writer.update(**({"progress": progress} if progress is not None else {}), metrics=metrics, **sections)
        self._summarise()
        for sink in self.sinks:
            sink.flush()
        if self._online is None or self.timeline is None:
            return False
        stop = self._online.check(None, epoch)
        if self.writer is not None and self._online.warned:
            self.writer.update(warned=self._online.warned)  # what was warned stays in the run's history
        return bool(stop)

    def describe_for_diagnosis(self, description: dict) -> None:
        """What the online diagnosis needs to know of the model (``run.json``'s sections)."""
        if self._online is not None:
            self._online.describe({"config": self.config, **description})

    @property
    def windows(self) -> list:
        """The run's windows summarised so far (an epoch, or at least 10 steps, each), oldest first."""
        return self.timeline.windows if self.timeline is not None else []

    @property
    def findings(self) -> list:
        """With ``diagnose=True``: the findings seen so far, one per kind, in the order they appeared."""
        return self._online.findings if self._online is not None else []

    def say_end_findings(self) -> None:
        """The online diagnosis' last look at the whole run: one message per kind not said yet."""
        if self._online is None or self.timeline is None:
            return
        self._summarise()
        seen = {f.kind for f in self._online.findings}
        for finding in self._online.finish():
            if finding.kind not in seen:
                say_finding(finding.to_dict(), "end of training")

    # --- the end ----------------------------------------------------------------------

    def pause(self) -> None:
        """Training stopped for now (a ``fit`` returned): the time inside it is counted."""
        if self._started is not None:
            self.train_seconds += time.perf_counter() - self._started
            self._started = None

    def finish(self, status: str = "complete", error: str | None = None, **sections) -> None:
        """End the run as ``status``: ``run.json`` gets it (with ``error``, the training time, the
        findings copy and ``sections``) when the session made the run directory itself."""
        self.pause()
        if self._exit_guard is not None:
            self._exit_guard.cancel()
            self._exit_guard = None
        self._summarise()
        if self.timeline is not None:
            self.timeline.finish()  # the last window, however short
            self._write_closed()
        if not self.owns_writer or self.writer.finished:
            self._close_sinks(status, None, error)
            return
        timings = {"train_seconds": round(self.train_seconds, 3), **sections.pop("timings", {})}
        findings = self.final_findings(status, error) if self.findings_copy else []
        self.writer.finish(status, error=error, diagnosis=findings, timings=timings, **sections)
        self._close_sinks(status, findings if self.findings_copy else None, error)

    def start_sinks(self, info: dict) -> None:
        """A fit begins: each sink's ``start(info)`` (run, planned epochs, config, model, optimizer)."""
        for sink in self.sinks:
            sink.start(info)

    def _close_sinks(self, status: str, findings, error) -> None:
        """The run ended (for now: a later fit continues it): each sink's ``close``, with the findings."""
        if not self.sinks:
            return
        findings = self.final_findings(status, error) if findings is None else findings
        path = getattr(self.writer, "path", None)
        for sink in self.sinks:
            sink.close(status, findings, path)

    def final_findings(self, status: str, error=None) -> list:
        """What readers will find (the one path, ``findings_of``), for ``run.json``'s copy."""
        from gradscope.diagnosis import findings_of
        from gradscope.storage import Run

        try:
            meta = {**self.meta, "status": status, "error": error}
            if self.timeline is not None and self._recorded:
                return findings_of(Run(path=None, meta=meta, records=rec.empty()), timeline=self.timeline)
            if getattr(self.writer, "path", None) is not None:  # others recorded into it: their summaries
                return findings_of(Run(path=self.writer.path, meta=meta, read_records=self.log.read))
            return findings_of(Run(path=None, meta=meta, records=self.log.read()))  # (not kept in memory)
        except Exception:  # the run's records are on disk: readers diagnose them again
            return []

    def _finish_at_exit(self) -> None:
        """The interpreter exits and nobody finished the run: say how the program ended."""
        failed = getattr(sys, "last_type", None)
        if failed is None:
            status, error = self.exit_status, None
        elif issubclass(failed, (KeyboardInterrupt, SystemExit)):
            status, error = "interrupted", None
        else:
            status, error = "failed", f"{failed.__name__}: {getattr(sys, 'last_value', '')}"
        if self.on_exit is not None:  # the step source brings in what it still holds, and ends the run
            self.on_exit(status, error)
        self.finish(status, error=error)
