"""What a recorder has recorded: handed, batch by batch, to its outputs, and read back on demand.

An output is anything with ``append(records)``: a :class:`gradscope.storage.RunWriter` (the
run directory), a sink (:mod:`gradscope.recorders.sinks`: TensorBoard, MLflow, one's own). The log
itself keeps nothing that a run directory keeps: with one, :attr:`RecordLog.records` reads the
run back; without, each batch is kept encoded as a compressed Parquet buffer (a few bytes a
record), so memory does not grow by a DataFrame per epoch.
"""

from __future__ import annotations

import pandas as pd

from gradscope import records as rec


def _encoded(frame: pd.DataFrame) -> bytes:
    import pyarrow as pa
    import pyarrow.parquet as pq

    from gradscope.storage.records_parquet import table_of

    sink = pa.BufferOutputStream()
    pq.write_table(table_of(frame), sink, compression="zstd", write_statistics=False)  # (read back whole)
    return sink.getvalue()


def _decoded(chunks) -> pd.DataFrame:
    import pyarrow as pa
    import pyarrow.parquet as pq

    from gradscope.storage.records_parquet import frame_of

    return frame_of(pq.read_table(pa.BufferReader(chunk)) for chunk in chunks)


class RecordLog:
    """Hands record batches to every output; :attr:`records` gives them all back.

    Example:
        >>> log = RecordLog()
        >>> log.add(rec.from_logs("r", 0, 0, {"loss": 1.0}))
        >>> log.records.metric.tolist()
        ['loss']
    """

    def __init__(self, outputs=()):
        self.outputs = [o for o in outputs if o is not None]
        self._chunks: list = []  # batches no output keeps, Parquet-encoded
        self._cache = None

    @property
    def _store(self):
        """The output that keeps every record and reads them back (a run directory), or None."""
        return next((o for o in self.outputs if callable(getattr(o, "read", None))), None)

    def add_output(self, output) -> None:
        """Also hand every later batch to ``output``."""
        if output is not None and output not in self.outputs:
            self.outputs.append(output)

    def add(self, frame: pd.DataFrame) -> None:
        """Hand a batch of records to every output (and keep it, encoded, when none keeps it)."""
        if not len(frame):
            return
        self._cache = None
        for output in self.outputs:
            output.append(frame)
        if self._store is None:
            self._chunks.append(_encoded(frame))

    def read(self) -> pd.DataFrame:
        """Everything added so far, read back now (not kept)."""
        store = self._store
        if store is None:
            return _decoded(self._chunks) if self._chunks else rec.empty()
        if not self._chunks:
            return store.read()
        return rec.concat([_decoded(self._chunks), store.read()])

    @property
    def records(self) -> pd.DataFrame:
        """Everything added so far as one DataFrame with the schema columns (read back once per batch added)."""
        if self._cache is None:
            self._cache = self.read()
        return self._cache
