"""What the TF1 hook and session recorder fetched, turned into records: the Python side they share."""

from __future__ import annotations

import sys

import numpy as np

from gradscope import records as rec
from gradscope.recorders.exit_guard import ExitGuard
from gradscope.recorders.record_log import RecordLog
from gradscope.recorders.schedule import EveryNSteps
from gradscope.recorders.weight_readings import WeightReadings
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
        self._pending: list[tuple] = []  # (step, stats, loss, weight norms or None, small weight norms or None)
        self._weights = WeightReadings()
        self._measures_weights = "weight_norm" in stats.columns
        self._weights_read = False
        self._fetches: dict = {}
        self._exit_guard = ExitGuard(self, "_at_exit")

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
        self.log.add(records)

    def flush(self) -> None:
        """Turn what was fetched into records (and append them to the run directory)."""
        if not self._pending:
            return
        pending, self._pending = self._pending, []
        norms = None if self._measures_weights else self._interpolated_weights(pending)
        epochs = np.array([self.epoch_of(p[0]) for p in pending])
        for epoch in np.unique(epochs):
            rows = [i for i, e in enumerate(epochs) if e == epoch]
            chunk = [pending[i] for i in rows]
            values = np.stack([p[1] for p in chunk])  # (steps, variables, columns)
            steps = np.array([p[0] for p in chunk])
            named = {name: values[:, :, j] for j, name in enumerate(self.stats.columns)}
            between = None
            if norms is not None:  # weights read now and then: the ratio uses the norm in between
                if self.stats.small:  # small variables' norms were fetched at every step: exact
                    norms[np.ix_(rows, self.stats.small)] = np.stack([p[4] for p in chunk])
                between = {"weight_norm": norms[rows]}
            self.log.add(rec.from_step_arrays(self.run, steps, int(epoch), self.stats.meta, named, derive_with=between))
            read = [(p[0], p[3]) for p in chunk if p[3] is not None]
            if read:
                self.log.add(rec.from_step_arrays(self.run, np.array([s for s, _ in read]), int(epoch),
                                                  self.stats.meta, {"weight_norm": np.stack([w for _, w in read])}))
            for p in chunk:
                if p[2] is not None:
                    self.log.add(rec.from_logs(self.run, p[0], int(epoch), {"loss": p[2]}))

    def _interpolated_weights(self, pending) -> np.ndarray:
        """The weight norm after each pending step, between the readings around it (after the last
        reading: that reading)."""
        out, start = [], 0
        for i, (step, _, _, weights, _) in enumerate(pending):
            if weights is not None:
                out.append(self._weights.between(np.array([p[0] for p in pending[start:i + 1]]), step, weights))
                start = i + 1
        if start < len(pending):
            last = self._weights.last_norms
            tail = np.full((len(pending) - start, len(self.stats.meta)), np.nan) if last is None \
                else np.repeat(last[None], len(pending) - start, axis=0)
            out.append(tail)
        return np.concatenate(out) if out else np.zeros((0, len(self.stats.meta)))

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
