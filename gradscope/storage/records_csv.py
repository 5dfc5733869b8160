"""Records as CSV: appended while a run trains, read back with every problem named by file and line.

Example:
    >>> import tempfile, numpy as np
    >>> from pathlib import Path
    >>> from gradscope import records as rec
    >>> path = Path(tempfile.mkdtemp()) / "records.csv"
    >>> start(path)
    >>> append(path, rec.from_logs("r", 3, 0, {"loss": float("nan")}))
    >>> read(path)[0].value.isna().tolist()
    [True]
    >>> _ = path.write_text(path.read_text().replace("nan", "many"))
    >>> read(path)
    Traceback (most recent call last):
    ...
    gradscope.errors.GradscopeError: ...records.csv, line 2: column 'value' holds 'many', not a number
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
import pandas as pd

from gradscope import records as rec
from gradscope.errors import GradscopeError

_INTEGER_COLUMNS = ("step", "epoch", "depth", "time", "bin")
_NON_FINITE = {"nan", "NaN", "inf", "-inf", "Infinity", "-Infinity"}


def start(path: Path) -> None:
    """Write the header, so that a run that dies before its first records is still readable."""
    rec.empty().to_csv(path, index=False)


def append(path: Path, records: pd.DataFrame) -> None:
    """Append records and flush them to disk."""
    with open(path, "a", encoding="utf-8", newline="") as f:
        records[rec.COLUMNS].to_csv(f, header=False, index=False, float_format="%.9g", na_rep="nan")
        f.flush()
        os.fsync(f.fileno())


def read(path: Path) -> tuple[pd.DataFrame, list[str]]:
    """Read a records file: ``(records, notes)``.

    A last line cut short (a run killed while appending) is left out and noted; anything else
    wrong is an error.

    Raises:
        GradscopeError: naming the file, the line and what is wrong with it.
    """
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        raise GradscopeError(f"cannot read {path}: {exc.strerror or exc}") from None
    notes = []
    if raw and not raw.endswith(b"\n"):
        cut = raw.rfind(b"\n") + 1
        line = raw[:cut].count(b"\n") + 1
        raw = raw[:cut]
        notes.append(f"{path}, line {line}: cut short (the run was stopped while writing it); left out")
    if not raw.strip():
        raise GradscopeError(f"{path} is empty: it has not even its header line {','.join(rec.COLUMNS)}")
    try:
        df = pd.read_csv(io.BytesIO(raw), dtype=str, keep_default_na=False)
    except (ValueError, pd.errors.ParserError) as exc:
        raise GradscopeError(f"{path}: {str(exc).strip().splitlines()[-1]}") from None
    if list(df.columns) not in (rec.COLUMNS, rec.COLUMNS[:-1], rec.COLUMNS[:-2]):  # written before ``bin``, ``time``
        raise GradscopeError(f"{path}, line 1: the header is {','.join(df.columns)}; expected {','.join(rec.COLUMNS)}")
    out = {c: df[c] for c in ("run", "layer", "variable", "metric")}
    for column in (*_INTEGER_COLUMNS, "value"):
        if column not in df.columns:
            continue
        text = df[column]
        numbers = pd.to_numeric(text, errors="coerce")
        bad = numbers.isna() & ~text.isin(_NON_FINITE if column == "value" else set())
        if column != "value":
            bad |= ~np.isfinite(numbers.fillna(0)) | (numbers.fillna(0) % 1 != 0)
        if bad.any():
            row = int(np.flatnonzero(bad.to_numpy())[0])
            kind = "a number" if column == "value" else "a whole number"
            raise GradscopeError(f"{path}, line {row + 2}: column {column!r} holds {text.iloc[row]!r}, not {kind}")
        out[column] = numbers
    return rec.coerce(pd.DataFrame(out)), notes
