"""Python-side bookkeeping shared by the TF1 hook and the plain-loop recorder."""

from __future__ import annotations

import atexit
import sys
import weakref

import numpy as np

from gradscope import records as rec
from gradscope.sink import RecordSink
from gradscope.storage import RunWriter


class StepLog:
    """Counts train steps, says which to record, and turns fetched stats into records.

    Args:
        stats: the :class:`gradscope.tf1.graph.StepStats` of the graph.
        run: run id.
        run_dir, config, writer: where records go (see :class:`gradscope.storage.RunWriter`).
        every_n_steps: record every N-th step (the first step is always recorded).
        steps_per_epoch: to fill the ``epoch`` column (otherwise 0).
        flush_every: append to ``records.csv`` after this many recorded steps.
    """

    def __init__(self, stats, run="run", run_dir=None, config=None, writer=None, every_n_steps=1,
                 steps_per_epoch=None, flush_every=100):
        if int(every_n_steps) < 1:
            raise ValueError(f"every_n_steps must be a positive integer; got {every_n_steps!r}")
        self.stats = stats
        self.run = run
        if writer is None and run_dir is not None:
            writer = RunWriter(run_dir, config or {})
        self.sink = RecordSink(writer)
        self._owns_writer = writer is not None and run_dir is not None
        self.every_n_steps = int(every_n_steps)
        self.steps_per_epoch = steps_per_epoch
        self.flush_every = flush_every
        self.step = 0
        self._pending: list[tuple[int, np.ndarray, float | None]] = []
        ref = weakref.ref(self)
        self._exit = lambda: ref() is not None and ref()._at_exit()
        atexit.register(self._exit)

    def due(self) -> bool:
        """Whether the current step is one to record."""
        return self.step % self.every_n_steps == 0

    def epoch_of(self, step: int) -> int:
        return step // self.steps_per_epoch if self.steps_per_epoch else 0

    def add(self, stats: np.ndarray, loss=None) -> None:
        """Keep the fetched stats of the current step."""
        self._pending.append((self.step, np.asarray(stats, dtype=np.float64), loss))
        if len(self._pending) >= self.flush_every:
            self.flush()

    def flush(self) -> None:
        """Turn what was fetched into records (and append them to the run directory)."""
        if not self._pending:
            return
        pending, self._pending = self._pending, []
        epochs = np.array([self.epoch_of(s) for s, _, _ in pending])
        for epoch in np.unique(epochs):
            chunk = [p for p, e in zip(pending, epochs) if e == epoch]
            values = np.stack([v for _, v, _ in chunk])  # (steps, variables, 3)
            steps = np.array([s for s, _, _ in chunk])
            self.sink.add(rec.from_step_arrays(self.run, steps, int(epoch), self.stats.meta,
                                               values[:, :, 0], values[:, :, 1], values[:, :, 2]))
            for s, _, loss in chunk:
                if loss is not None:
                    self.sink.add(rec.from_logs(self.run, s, int(epoch), {"loss": loss}))

    def close(self, status: str = "complete") -> None:
        """Write what is pending; a run directory this log created is marked ``status``."""
        self.flush()
        if self._owns_writer:
            self.sink.writer.finish(status, timings={"steps": self.step})
            self._owns_writer = False
        atexit.unregister(self._exit)

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
        return self.sink.records
