"""Run directories: ``run.json`` (config, timings, metrics, diagnosis) and ``records.csv``.

Layout of one ``gradscope analyze`` invocation::

    <out>/report.html
    <out>/runs/<run>/run.json
    <out>/runs/<run>/records.csv    # appended while training

``records.csv`` is appended at every epoch end, so a run that is killed keeps what it recorded;
``run.json`` says ``"status": "running"`` until the run finishes.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from gradscope import records as rec
from gradscope.errors import GradscopeError

RUN_JSON = "run.json"
RECORDS_CSV = "records.csv"
RUNS_DIR = "runs"


def _write_json_atomic(path: Path, data: dict) -> None:
    tmp = path.with_suffix(".json.tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(data, f, indent=2, sort_keys=False, default=_json_default, allow_nan=True)
        f.write("\n")
    os.replace(tmp, path)


def _json_default(obj):
    try:
        import numpy as np

        if isinstance(obj, np.generic):
            return obj.item()
        if isinstance(obj, np.ndarray):
            return obj.tolist()
    except ImportError:  # pragma: no cover
        pass
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"{type(obj).__name__} is not JSON serialisable")


class RunWriter:
    """Writes one run directory while a run trains.

    Args:
        path: the run directory (created if missing).
        config: the run's configuration, stored under ``"config"`` in ``run.json``.

    Example:
        >>> import tempfile
        >>> w = RunWriter(tempfile.mkdtemp() + "/sigmoid-normal", {"act": "sigmoid"})
        >>> w.append(rec.empty())
        >>> w.finish(metrics={"test_accuracy": 0.58})
        >>> load_run(w.path).status
        'complete'
    """

    def __init__(self, path, config: dict):
        self.path = Path(path)
        self.path.mkdir(parents=True, exist_ok=True)
        self.records_path = self.path / RECORDS_CSV
        if self.records_path.exists():
            self.records_path.unlink()
        self.meta = {
            "run": self.path.name,
            "status": "running",
            "config": dict(config),
            "metrics": {},
            "timings": {},
            "diagnosis": [],
        }
        self._write_meta()
        # Header now, so a run that dies before its first epoch end is still a readable run.
        rec.empty().to_csv(self.records_path, index=False)

    def _write_meta(self) -> None:
        _write_json_atomic(self.path / RUN_JSON, self.meta)

    def append(self, records: pd.DataFrame) -> None:
        """Append records to ``records.csv`` and flush them to disk."""
        if not len(records):
            return
        with open(self.records_path, "a", encoding="utf-8", newline="") as f:
            records[rec.COLUMNS].to_csv(
                f, header=False, index=False, float_format="%.9g", na_rep="nan"
            )
            f.flush()
            os.fsync(f.fileno())

    def update(self, **sections) -> None:
        """Merge ``sections`` (e.g. ``timings={...}``) into ``run.json`` and write it."""
        for key, value in sections.items():
            if isinstance(self.meta.get(key), dict) and isinstance(value, dict):
                self.meta[key].update(value)
            else:
                self.meta[key] = value
        self._write_meta()

    def finish(self, status: str = "complete", **sections) -> None:
        """Write the final ``run.json`` with ``status`` (complete, interrupted or failed)."""
        self.update(status=status, **sections)


@dataclass
class Run:
    """A saved run: its metadata from ``run.json`` and its records."""

    path: Path
    meta: dict
    records: pd.DataFrame = field(repr=False)

    @property
    def name(self) -> str:
        return self.meta.get("run", self.path.name)

    @property
    def status(self) -> str:
        return self.meta.get("status", "unknown")

    @property
    def config(self) -> dict:
        return self.meta.get("config", {})

    @property
    def metrics(self) -> dict:
        return self.meta.get("metrics", {})


def load_run(path) -> Run:
    """Read one run directory.

    Raises:
        GradscopeError: if ``path`` is not a run directory or its files are unreadable.
    """
    path = Path(path)
    meta_path = path / RUN_JSON
    if not meta_path.is_file():
        raise GradscopeError(
            f"{path} is not a gradscope run: it has no {RUN_JSON}. "
            "Pass a folder written by 'gradscope analyze' (or one of its runs/<run> folders)."
        )
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise GradscopeError(f"cannot read {meta_path}: {exc}") from None
    if not isinstance(meta, dict) or "config" not in meta:
        raise GradscopeError(f"{meta_path} is not a gradscope run.json (it has no 'config')")
    records_path = path / RECORDS_CSV
    if records_path.is_file():
        try:
            df = pd.read_csv(
                records_path,
                keep_default_na=False,
                na_values={"value": ["nan", "NaN", ""]},
                dtype={"layer": str, "variable": str, "run": str, "metric": str},
            )
        except (OSError, ValueError, pd.errors.ParserError) as exc:
            raise GradscopeError(f"cannot read {records_path}: {exc}") from None
        records = rec.coerce(df)
    else:
        records = rec.empty()
    return Run(path=path, meta=meta, records=records)


def find_runs(paths) -> list[Run]:
    """Load every run below the given folders.

    Each path may be an output folder (with ``runs/<run>/``) or a single run folder.

    Raises:
        GradscopeError: if a path holds no run.
    """
    runs = []
    for p in paths:
        p = Path(p)
        if not p.exists():
            raise GradscopeError(f"{p} does not exist")
        if (p / RUN_JSON).is_file():
            runs.append(load_run(p))
            continue
        children = sorted(d for d in (p / RUNS_DIR).glob("*") if (d / RUN_JSON).is_file())
        if not children:
            raise GradscopeError(
                f"{p} is not a gradscope output folder: it has no {RUNS_DIR}/<run>/{RUN_JSON}. "
                "Pass a folder written by 'gradscope analyze'."
            )
        runs.extend(load_run(d) for d in children)
    return runs
