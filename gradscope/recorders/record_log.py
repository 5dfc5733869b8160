"""What a recorder has recorded: kept in memory and handed, batch by batch, to its outputs.

An output is anything with ``append(records)``: a :class:`gradscope.storage.RunWriter` (the
run directory), a :class:`gradscope.recorders.tensorboard_export.TensorBoardExport`.
"""

from __future__ import annotations

import pandas as pd

from gradscope import records as rec


class RecordLog:
    """Collects record frames and appends each to every output.

    Example:
        >>> log = RecordLog()
        >>> log.add(rec.from_logs("r", 0, 0, {"loss": 1.0}))
        >>> log.records.metric.tolist()
        ['loss']
    """

    def __init__(self, outputs=()):
        self.outputs = [o for o in outputs if o is not None]
        self._frames: list[pd.DataFrame] = []
        self._cache = None

    def add_output(self, output) -> None:
        """Also hand every later batch to ``output``."""
        if output is not None and output not in self.outputs:
            self.outputs.append(output)

    def add(self, frame: pd.DataFrame) -> None:
        """Keep a batch of records and append it to every output."""
        if not len(frame):
            return
        self._frames.append(frame)
        self._cache = None
        for output in self.outputs:
            output.append(frame)

    @property
    def records(self) -> pd.DataFrame:
        """Everything added so far as one DataFrame with the schema columns."""
        if self._cache is None:
            self._cache = rec.concat(self._frames)
            self._frames = [self._cache] if len(self._cache) else []
        return self._cache
