"""Where recorders put their records: kept in memory and appended to a run directory."""

from __future__ import annotations

import pandas as pd

from gradscope import records as rec


class RecordSink:
    """Collects record frames; appends each to ``writer`` (a RunWriter) when there is one.

    Example:
        >>> sink = RecordSink()
        >>> sink.add(rec.from_logs("r", 0, 0, {"loss": 1.0}))
        >>> sink.records.metric.tolist()
        ['loss']
    """

    def __init__(self, writer=None):
        self.writer = writer
        self._frames: list[pd.DataFrame] = []
        self._cache = None

    def add(self, frame: pd.DataFrame) -> None:
        if not len(frame):
            return
        self._frames.append(frame)
        self._cache = None
        if self.writer is not None:
            self.writer.append(frame)

    @property
    def records(self) -> pd.DataFrame:
        """Everything added so far as one DataFrame with the schema columns."""
        if self._cache is None:
            self._cache = rec.concat(self._frames)
            self._frames = [self._cache] if len(self._cache) else []
        return self._cache
