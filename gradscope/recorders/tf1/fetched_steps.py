"""What the TF1 hook and session recorder fetched, turned into records: the Python side they share.

The records, the run directory and how the run ends belong to a
:class:`~gradscope.recorders.session.RecordingSession`, as for the Keras monitor: the same
interpolated weight norms, the same statuses and the same ``run.json`` (findings included).
"""

from __future__ import annotations

import numpy as np

from gradscope import records as rec
from gradscope.recorders.run_description import versions
from gradscope.recorders.schedule import EveryNSteps
from gradscope.recorders.session import RecordingSession


class FetchedSteps:
    """Counts train steps, says which to record, and hands the fetched stats to the run's session.

    Args:
        stats: the :class:`gradscope.recorders.tf1.graph.StepStats` of the graph.
        run: run id.
        run_dir, config, writer: where records go (see :class:`gradscope.storage.RunWriter`).
        every_n_steps: record every N-th step (the first step is always recorded).
        steps_per_epoch: to fill the ``epoch`` column (otherwise 0).
        flush_every: hand records to the run directory after this many recorded steps.

    A ``sess.run`` loop has no end to see, so a run nobody closed is ``complete`` at a clean
    interpreter exit (``failed`` after an uncaught exception, ``interrupted`` after Ctrl-C).
    """

    def __init__(self, stats, run="run", run_dir=None, config=None, writer=None, every_n_steps=1,
                 steps_per_epoch=None, flush_every=100):
        self.schedule = EveryNSteps(every_n_steps)
        self.stats = stats
        self.run = run
        self.session = RecordingSession(run=run, run_dir=run_dir, config=config, writer=writer,
                                        variables=stats.meta, exit_status="complete")
        self.session.open()
        self.session.update(versions=versions(framework="tf1"))
        self.session.on_exit = lambda status, error: self.flush()  # a script that never called close()
        self.steps_per_epoch = steps_per_epoch
        self.flush_every = flush_every
        self.step = 0
        self._pending: list[tuple] = []  # (step, stats, loss, weight norms or None, small weight norms or None)
        self._measures_weights = "weight_norm" in stats.columns
        self._weights_read = False
        self._fetches: dict = {}

    @property
    def writer(self):
        return self.session.writer

    @property
    def log(self):
        return self.session.log

    def due(self) -> bool:
        """Whether the current step is one to record."""
        return self.schedule.due(self.step)

    def fetches(self, loss=None) -> dict:
        """What to fetch with the train op on a recorded step: the stats, the weight norms on the
        first recorded step and on the step that fills a flush, and the loss when given."""
        key = (not self._measures_weights and (not self._weights_read or len(self._pending) + 1 >= self.flush_every),
               loss is not None)
        out = self._fetches.get(key)
        if out is None:  # built once per kind of step: a step costs a dict lookup
            out = {"stats": self.stats.stats}
            if self.stats.small:
                out["small"] = self.stats.small_weights
            if key[0]:
                out["weights"] = self.stats.weights
            if loss is not None:
                out["loss"] = loss
            self._fetches[key] = out
        return out

    def epoch_of(self, step: int) -> int:
        return step // self.steps_per_epoch if self.steps_per_epoch else 0

    def add(self, stats: np.ndarray, loss=None, weights=None, small=None) -> None:
        """Keep the fetched stats (and weight norms, when they were read) of the current step."""
        self._pending.append((self.step, np.asarray(stats, dtype=np.float64), loss,
                              None if weights is None else np.asarray(weights, dtype=np.float64),
                              None if small is None else np.asarray(small, dtype=np.float64)))
        self._weights_read = self._weights_read or weights is not None
        if len(self._pending) >= self.flush_every:
            self.flush()

    def add_records(self, records) -> None:
        """Add records measured elsewhere (epoch logs, activation statistics) to this run, after what is pending."""
        self.flush()
        self.session.add(records)

    def flush(self) -> None:
        """Hand what was fetched to the session as records (appended to the run directory)."""
        if not self._pending:
            return
        pending, self._pending = self._pending, []
        small = self.stats.small
        start = 0
        for i, (step, _, _, weights, _) in enumerate(pending):
            if weights is not None or i == len(pending) - 1:  # a weight reading ends a stretch
                self._add(pending[start:i + 1], None if weights is None else (step, weights), small)
                start = i + 1

    def _add(self, chunk, weights, small) -> None:
        steps = np.array([p[0] for p in chunk])
        values = np.stack([p[1] for p in chunk])  # (steps, variables, columns)
        named = {name: values[:, :, j] for j, name in enumerate(self.stats.columns)}
        exact = (small, np.stack([p[4] for p in chunk])) if small and not self._measures_weights else None
        self.session.add_steps(steps, np.array([self.epoch_of(s) for s in steps]), named,
                               weights=None if self._measures_weights else weights, small=exact)
        for p in chunk:
            if p[2] is not None:
                self.session.add(rec.from_logs(self.run, p[0], self.epoch_of(p[0]), {"loss": p[2]}))

    def close(self, status: str = "complete") -> None:
        """Write what is pending; a run directory this recorder made is finished as ``status`` (with the
        findings copied into ``run.json``)."""
        self.flush()
        self.session.finish(status, timings={"steps": self.step})

    @property
    def records(self):
        self.flush()
        return self.log.records
