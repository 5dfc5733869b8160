"""What the TF1 hook and session recorder fetched, turned into records: the Python side they share."""

from __future__ import annotations

import sys

import numpy as np

from gradscope import records as rec
from gradscope.recorders.exit_guard import ExitGuard
from gradscope.recorders.record_log import RecordLog
from gradscope.recorders.schedule import EveryNSteps
from gradscope.storage import RunWriter


class FetchedSteps:
    """Counts train steps, says which to record, and turns fetched stats into records.

    Args:
        stats: the :class:`gradscope.recorders.tf1.graph.StepStats` of the graph.
        run: run id.
        run_dir, config, writer: where records go (see :class:`gradscope.storage.RunWriter`).
        every_n_steps: record every N-th step (the first step is always recorded).
        steps_per_epoch: to fill the ``epoch`` column (otherwise 0).
        flush_every: hand records to the run directory after this many recorded steps.
    """

    def __init__(self, stats, run="run", run_dir=None, config=None, writer=None, every_n_steps=1,
                 steps_per_epoch=None, flush_every=100):
        self.schedule = EveryNSteps(every_n_steps)
        self.stats = stats
        self.run = run
        if writer is None and run_dir is not None:
            writer = RunWriter(run_dir, config or {})
        self.log = RecordLog([writer])
        self.writer = writer
        self._owns_writer = writer is not None and run_dir is not None
        self.steps_per_epoch = steps_per_epoch
        self.flush_every = flush_every
        self.step = 0
        self._pending: list[tuple[int, np.ndarray, float | None]] = []
        self._exit_guard = ExitGuard(self, "_at_exit")

    def due(self) -> bool:
        """Whether the current step is one to record."""
        return self.schedule.due(self.step)

    def epoch_of(self, step: int) -> int:
        return step // self.steps_per_epoch if self.steps_per_epoch else 0

    def add(self, stats: np.ndarray, loss=None) -> None:
        """Keep the fetched stats of the current step."""
        self._pending.append((self.step, np.asarray(stats, dtype=np.float64), loss))
        if len(self._pending) >= self.flush_every:
            self.flush()

    def add_records(self, records) -> None:
        """Add records measured elsewhere (epoch logs, activation statistics) to this run, after what is pending."""
        self.flush()
        self.log.add(records)

    def flush(self) -> None:
        """Turn what was fetched into records (and append them to the run directory)."""
        if not self._pending:
            return
        pending, self._pending = self._pending, []
        epochs = np.array([self.epoch_of(s) for s, _, _ in pending])
        for epoch in np.unique(epochs):
            chunk = [p for p, e in zip(pending, epochs) if e == epoch]
            values = np.stack([v for _, v, _ in chunk])  # (steps, variables, columns)
            steps = np.array([s for s, _, _ in chunk])
            named = {name: values[:, :, j] for j, name in enumerate(self.stats.columns)}
            self.log.add(rec.from_step_arrays(self.run, steps, int(epoch), self.stats.meta, named))
            for s, _, loss in chunk:
                if loss is not None:
                    self.log.add(rec.from_logs(self.run, s, int(epoch), {"loss": loss}))

    def close(self, status: str = "complete") -> None:
        """Write what is pending; a run directory this log created is marked ``status``."""
        self.flush()
        if self._owns_writer:
            self.writer.finish(status, timings={"steps": self.step})
            self._owns_writer = False
        self._exit_guard.cancel()

    def _at_exit(self):
        # A script that never called close(): keep everything, and say how the program ended.
        failed = getattr(sys, "last_type", None)
        if failed is None:
            self.close("complete")
        else:
            self.close("interrupted" if issubclass(failed, KeyboardInterrupt) else "failed")

    @property
    def records(self):
        self.flush()
        return self.log.records
