"""A run's window summaries as Parquet parts, written like the records' parts.

``summaries/part-000000.parquet``, ``part-000001.parquet``, ...: one part each time windows close
(the rows of :mod:`gradscope.diagnosis.summaries`), written whole to a hidden temporary file, then
renamed into place, so a run killed while writing never leaves a torn part. Each part's Parquet
metadata says how many record parts the summaries cover (``gradscope.records_parts``): a reader
summarises only the record parts after those, so a run killed between two summaries still reads
whole. A run written by an earlier version has no summaries: it is summarised from its records.

Example:
    >>> import tempfile
    >>> from pathlib import Path
    >>> from gradscope.diagnosis.summaries import frame_of
    >>> folder = Path(tempfile.mkdtemp()) / "summaries"
    >>> _ = write_part(folder, 0, frame_of([(-1, "window_min_steps", "", "", -1, -1, -1, -1, 10.0, "")]), 7)
    >>> frame, covered = read(folder)
    >>> frame["value"].tolist(), covered
    ([10.0], 7)
    >>> read(folder.parent / "nothing")
    (None, 0)
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from gradscope.errors import GradscopeError
from gradscope.storage.records_parquet import arrow_table, parts, write_whole

SUMMARIES_DIR = "summaries"
_COVERED = b"gradscope.records_parts"
_NAMES = ("field", "layer", "variable")


def _schema():
    import pyarrow as pa

    names = pa.dictionary(pa.int32(), pa.string())
    return pa.schema([("window", pa.int32()), ("field", names), ("layer", names), ("variable", names),
                      ("step", pa.int64()), ("epoch", pa.int32()), ("time", pa.int32()), ("depth", pa.int32()),
                      ("value", pa.float64()), ("text", pa.string())])


def write_part(folder: Path, index: int, frame: pd.DataFrame, records_parts: int) -> Path:
    """Write summary rows as part ``index`` of ``folder`` (whole, then renamed into place), saying that
    they cover the run's first ``records_parts`` record parts."""
    table = arrow_table(frame, _schema(), _NAMES)
    table = table.replace_schema_metadata({_COVERED: str(int(records_parts)).encode()})
    return write_whole(folder, index, table)


def read(folder: Path):
    """``(rows, record parts covered)`` of a summaries folder, or ``(None, 0)`` when it has none."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    found = parts(folder) if Path(folder).is_dir() else []
    if not found:
        return None, 0
    tables, covered = [], 0
    for p in found:
        try:
            table = pq.ParquetFile(p).read()
        except Exception as exc:
            raise GradscopeError(f"cannot read {p}: {exc}") from None
        covered = max(covered, int((table.schema.metadata or {}).get(_COVERED, b"0")))
        tables.append(table.replace_schema_metadata(None))
    frame = pa.concat_tables(tables).to_pandas()  # converted once, not part by part
    for name in _NAMES:
        frame[name] = frame[name].astype(object)
    return frame, covered
