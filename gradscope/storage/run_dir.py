"""Run directories: ``run.json`` (what the run is and how it went) and its records, written while it trains.

Layout of one ``gradscope analyze`` invocation::

    <out>/report.html
    <out>/runs/<run>/run.json
    <out>/runs/<run>/records/part-000000.parquet   # one part per flush, each written whole
    <out>/runs/<run>/summaries/part-000000.parquet # the windows the rules judge, as they close
    <out>/runs/<run>/.lock          # held by the one process writing the run

Records are written at every epoch end (a Parquet part each, renamed into place when whole:
:mod:`gradscope.storage.records_parquet`), so a run that is killed keeps what it recorded and
never a torn file. Runs written by earlier versions as one ``records.csv`` still load. The
window summaries the rules judge (:mod:`gradscope.diagnosis.summaries`) are written beside them
the same way (:mod:`gradscope.storage.summaries_parquet`), so diagnosing a run reads its
summaries, not its records; a run read back reads its records only when asked for them.
``run.json`` says ``"status": "running"`` until the run finishes, and carries the writing
process and a heartbeat, so that a reader can tell a run still training from one whose process
died (:attr:`Run.status` is then ``interrupted``).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import threading
import weakref
from pathlib import Path

import pandas as pd

from gradscope import records as rec
from gradscope.errors import GradscopeError
from gradscope.storage import records_csv, records_parquet, summaries_parquet
from gradscope.storage.lock import LOCK_FILE, RunLock
from gradscope.storage.process import HEARTBEAT_SECONDS, is_alive, now_iso, this_process

RUN_JSON = "run.json"
RECORDS_CSV = "records.csv"
RECORDS_DIR = records_parquet.PARTS_DIR
SUMMARIES_DIR = summaries_parquet.SUMMARIES_DIR
RUNS_DIR = "runs"
STATUSES = ("running", "complete", "interrupted", "failed")


def _write_json_atomic(path: Path, data: dict) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
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
    return str(obj)


#: The writers of this process whose run is not finished, by folder: a new writer of a folder whose
#: earlier writer here never finished (a notebook cell run again after its fit raised) takes over.
_OPEN_WRITERS: "weakref.WeakValueDictionary[str, RunWriter]" = weakref.WeakValueDictionary()


class RunWriter:
    """Writes one run directory while a run trains; holds its lock until :meth:`finish`.

    Args:
        path: the run directory (created if missing).
        config: the run's configuration, stored under ``"config"`` in ``run.json``.
        name: the run's name (default: the folder's name).
        heartbeat_seconds: how often ``run.json``'s heartbeat is refreshed while running (0: never).

    Raises:
        GradscopeError: when another process writes the run directory. An earlier writer of the
            same folder in this process that never finished (its ``fit`` raised and the monitor
            was left behind) is finished as ``interrupted`` and stops writing: the new one takes over.

    Example:
        >>> import tempfile
        >>> w = RunWriter(tempfile.mkdtemp() + "/sigmoid-normal", {"act": "sigmoid"})
        >>> w.append(rec.from_logs("sigmoid-normal", 0, 0, {"loss": 2.3}))
        >>> w.finish(metrics={"test_accuracy": 0.58})
        >>> run = load_run(w.path)
        >>> run.status, run.meta["records"]["rows"], len(run.records)
        ('complete', 1, 1)
    """

    def __init__(self, path, config: dict, name: str | None = None, heartbeat_seconds: float = HEARTBEAT_SECONDS):
        self.path = Path(path)
        self.superseded = False
        key = str(self.path.resolve())
        earlier = _OPEN_WRITERS.get(key)
        if earlier is not None and not earlier.finished:
            earlier.finish("interrupted", error="a new writer of this folder in the same process took over")
            earlier.superseded = True
        self._lock = RunLock(self.path)
        self.records_path = self.path / RECORDS_DIR
        if (self.path / RECORDS_CSV).exists():  # an earlier run of this name, as earlier versions wrote it
            (self.path / RECORDS_CSV).unlink()
        for earlier_files in (self.records_path, self.path / SUMMARIES_DIR):
            if earlier_files.exists():
                shutil.rmtree(earlier_files)
        self._meta_lock = threading.Lock()
        self.meta = {
            "run": name or self.path.name,
            "status": "running",
            "config": dict(config),
            "metrics": {},
            "timings": {},
            "diagnosis": [],
            "process": this_process(),
            "started": now_iso(),
            "heartbeat": now_iso(),
            "records": {"format": "parquet", "folder": RECORDS_DIR, "rows": 0, "parts": 0},
            "summaries": {"folder": SUMMARIES_DIR, "parts": 0},
        }
        self._write_meta()
        self.records_path.mkdir(parents=True, exist_ok=True)
        self._heartbeat_seconds = heartbeat_seconds
        self._stop = None
        self._start_heartbeat()
        _OPEN_WRITERS[key] = self

    # --- run.json ---------------------------------------------------------------------------

    def _write_meta(self) -> None:
        if self.superseded:  # the folder is another writer's now
            return
        with self._meta_lock:
            _write_json_atomic(self.path / RUN_JSON, self.meta)

    def _start_heartbeat(self) -> None:
        if self._heartbeat_seconds <= 0:
            return
        stop = self._stop = threading.Event()

        def beat():
            while not stop.wait(self._heartbeat_seconds):
                self.meta["heartbeat"] = now_iso()
                try:
                    self._write_meta()
                except OSError:  # the folder went away: nothing to keep alive
                    return

        threading.Thread(target=beat, name=f"gradscope-heartbeat-{self.path.name}", daemon=True).start()

    def _stop_heartbeat(self) -> None:
        if self._stop is not None:
            self._stop.set()
            self._stop = None

    # --- while running ------------------------------------------------------------------------

    def append(self, records: pd.DataFrame) -> None:
        """Write records as the next part (whole, then renamed into place), and count them in ``run.json``."""
        if not len(records) or self.superseded:
            return
        counts = self.meta["records"]
        records_parquet.write_part(self.records_path, counts["parts"], records)
        counts["parts"] += 1
        counts["rows"] += len(records)
        self.meta["heartbeat"] = now_iso()
        self._write_meta()

    def append_summaries(self, rows: pd.DataFrame) -> None:
        """Write window summaries as the next part of ``summaries/``, covering every record part written so far."""
        if not len(rows) or self.superseded:
            return
        counts = self.meta["summaries"]
        summaries_parquet.write_part(self.path / SUMMARIES_DIR, counts["parts"], rows, self.meta["records"]["parts"])
        counts["parts"] += 1

    def read(self, columns=None, metrics=None) -> pd.DataFrame:
        """The records written so far (only ``columns``, only the rows of ``metrics``, when given)."""
        return records_parquet.read(self.records_path, columns=columns, metrics=metrics)

    def update(self, **sections) -> None:
        """Merge ``sections`` (e.g. ``timings={...}``) into ``run.json`` and write it."""
        for key, value in sections.items():
            if isinstance(self.meta.get(key), dict) and isinstance(value, dict):
                self.meta[key].update(value)
            else:
                self.meta[key] = value
        self.meta["heartbeat"] = now_iso()
        self._write_meta()

    def forget(self, section: str, keys) -> None:
        """Drop ``keys`` from a section of ``run.json`` (written with the next update)."""
        part = self.meta.get(section)
        if isinstance(part, dict):
            for key in keys:
                part.pop(key, None)

    def finish(self, status: str = "complete", **sections) -> None:
        """Write the final ``run.json`` with ``status`` (complete, interrupted or failed) and let go of the run."""
        if status not in STATUSES[1:]:
            raise ValueError(f"a run finishes as one of {STATUSES[1:]}; got {status!r}")
        self._stop_heartbeat()
        self.update(status=status, ended=now_iso(), **sections)
        self._lock.release()

    def reopen(self) -> None:
        """Continue a finished run (another ``fit`` of the same monitor): running again, locked again."""
        if self.superseded:
            raise GradscopeError(f"{self.path} was taken over by a newer writer in this process; give this "
                                 "monitor another run_dir")
        if not self._lock.held:
            self._lock = RunLock(self.path)
        self.meta.pop("ended", None)
        self.update(status="running", process=this_process())
        self._start_heartbeat()

    @property
    def finished(self) -> bool:
        return self.meta["status"] != "running"


class Run:
    """A saved run: its metadata from ``run.json`` and its records.

    Args:
        path: its run directory (None for a run made in memory).
        meta: what ``run.json`` holds.
        records: its records; or ``read_records``, a function that reads them the first time
            :attr:`records` is asked for (a run read back keeps its records on disk until then).
        notes: what reading it noticed without refusing it (a last line cut short).
        label: how reports name it: the run's name, or ``<folder>/<name>`` when several runs
            read together share a name.
    """

    def __init__(self, path, meta: dict, records: pd.DataFrame | None = None, notes=None, label: str = "",
                 read_records=None):
        self.path = path
        self.meta = meta
        self._records = records
        self._read_records = read_records
        self.notes = list(notes or [])
        self.label = label

    def __repr__(self) -> str:
        from gradscope.display import run_text

        return run_text(self)

    def _repr_html_(self) -> str:
        """In Jupyter: its status, what it trained, its metrics and what was found when it ended."""
        from gradscope.display import run_html

        return run_html(self)

    @property
    def records(self) -> pd.DataFrame:
        """Its records (read from the run directory the first time they are asked for, then kept)."""
        if self._records is None:
            read, self._read_records = self._read_records, None
            self._records = read() if read is not None else rec.empty()
        return self._records

    @records.setter
    def records(self, value: pd.DataFrame) -> None:
        self._records, self._read_records = value, None

    @property
    def records_read(self) -> bool:
        """Whether its records are in memory (read, or given)."""
        return self._records is not None

    def _parts_folder(self) -> Path | None:
        """Its records' Parquet folder, when its records are read from there (not in memory)."""
        folder = Path(self.path) / RECORDS_DIR if self.path is not None else None
        return folder if folder is not None and not self.records_read and folder.is_dir() else None

    def summaries(self):
        """``(window summary rows, record parts they cover)`` of its run directory, or ``(None, 0)``."""
        if self.path is None or self.records_read:
            return None, 0
        return summaries_parquet.read(Path(self.path) / SUMMARIES_DIR)

    def records_from_part(self, first: int) -> pd.DataFrame:
        """Its records in the record parts from ``first`` on (all records when they are in memory)."""
        folder = self._parts_folder()
        return self.records if folder is None else records_parquet.read(folder, first_part=first)

    def record_parts(self, columns=None):
        """Its records (only ``columns``, when given), one part at a time, as Arrow tables of the
        storage schema (:func:`~gradscope.storage.records_parquet.scan`): a reader that aggregates
        holds one part, not the run. When they are in memory: the records DataFrame, whole."""
        folder = self._parts_folder()
        if folder is None:
            yield self.records[list(columns)] if columns else self.records
            return
        yield from records_parquet.scan(folder, columns)

    @property
    def name(self) -> str:
        return self.label or self.meta.get("run") or (self.path.name if self.path else "run")

    @property
    def recorded_status(self) -> str:
        """The status ``run.json`` holds."""
        return self.meta.get("status", "unknown")

    @property
    def status(self) -> str:
        """``complete``, ``interrupted``, ``failed``, or ``running`` only while its writer still lives."""
        status = self.recorded_status
        if status == "running" and not is_alive(self.meta.get("process"), self.meta.get("heartbeat")):
            return "interrupted"
        return status

    @property
    def complete(self) -> bool:
        return self.status == "complete"

    @property
    def progress_note(self) -> str:
        """How far a run that is not complete got, in words ('' for a complete run)."""
        status = self.status
        if status == "complete":
            return ""
        progress = self.meta.get("progress") or {}
        done, planned = progress.get("epochs_done"), progress.get("epochs")
        where = ""
        if done:
            where = f" after epoch {done}" + (f" of {planned}" if planned else "")
        elif planned:
            where = f" during epoch 1 of {planned}"
        if status == "running":
            return f"still running{where}"
        if self.recorded_status == "running":
            return f"ended without finishing{where} (its process is gone)"
        return f"{status}{where}"

    @property
    def config(self) -> dict:
        return self.meta.get("config", {})

    @property
    def metrics(self) -> dict:
        return self.meta.get("metrics", {})


def load_run(path) -> Run:
    """Read one run directory.

    Raises:
        GradscopeError: if ``path`` is not a run directory, or its files are unreadable, cut
            short or wrongly typed (naming the file and line).
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
    if not isinstance(meta, dict) or not isinstance(meta.get("config"), dict):
        raise GradscopeError(f"{meta_path} is not a gradscope run.json (it has no 'config' object)")
    written = (meta.get("records") or {}).get("rows")
    notes = []
    parts_path, csv_path = path / RECORDS_DIR, path / RECORDS_CSV
    records, read_records = None, None
    if parts_path.is_dir():
        held, records_path = records_parquet.count(parts_path), parts_path

        def read_records():
            return records_parquet.read(parts_path)
    elif csv_path.is_file():  # written by an earlier version
        records, notes = records_csv.read(csv_path)
        held, records_path = len(records), csv_path
    elif written:
        raise GradscopeError(f"{parts_path} is missing, but {RUN_JSON} says {written} records were written")
    else:
        records, records_path, held = rec.empty(), None, 0
    if records_path is not None and written is not None and held < int(written):
        raise GradscopeError(
            f"{records_path} holds {held} records but {RUN_JSON} says {written} were written: "
            "records were lost (copied while being written, or damaged)"
        )
    return Run(path=path, meta=meta, records=records, notes=notes, read_records=read_records)


def natural_key(name: str) -> tuple:
    """Sort key that orders numbers inside names by value.

    Example:
        >>> sorted(["relu-d10", "relu-d2", "relu-d4", "elu-d3"], key=natural_key)
        ['elu-d3', 'relu-d2', 'relu-d4', 'relu-d10']
    """
    return tuple((0, int(part), "") if part.isdigit() else (1, 0, part) for part in re.split(r"(\d+)", name))


def _run_dirs(p: Path) -> list[Path]:
    if (p / RUN_JSON).is_file():
        return [p]
    children = sorted((d for d in (p / RUNS_DIR).glob("*") if (d / RUN_JSON).is_file()), key=lambda d: natural_key(d.name))
    if not children:
        raise GradscopeError(
            f"{p} is not a gradscope output folder: it has no {RUNS_DIR}/<run>/{RUN_JSON}. "
            "Pass a folder written by 'gradscope analyze'."
        )
    return children


def find_runs(paths, skipped: list | None = None) -> list[Run]:
    """Load every run below the given folders.

    Each path may be an output folder (with ``runs/<run>/``) or a single run folder. Runs that
    share a name get labels with their folder (``a/sigmoid-normal``, ``b/sigmoid-normal``).

    Args:
        skipped: when given, a run that cannot be read is left out and one line saying which
            and why is appended here; otherwise it raises.

    Raises:
        GradscopeError: if a path does not exist or holds no run (or, without ``skipped``,
            a run cannot be read).
    """
    runs = []
    for p in map(Path, paths):
        if not p.exists():
            raise GradscopeError(f"{p} does not exist")
        for d in _run_dirs(p):
            try:
                runs.append(load_run(d))
            except GradscopeError as exc:
                if skipped is None:
                    raise
                skipped.append(f"skipped {d}: {exc}")
    names = [r.name for r in runs]
    for run in runs:
        if names.count(run.name) > 1:
            run.label = f"{run.path.parent.parent.name if run.path.parent.name == RUNS_DIR else run.path.parent.name}/{run.name}"
    return runs


__all__ = ["RunWriter", "Run", "load_run", "find_runs", "RUN_JSON", "RECORDS_CSV", "RECORDS_DIR", "RUNS_DIR",
           "LOCK_FILE", "STATUSES", "has_records"]


def has_records(path) -> bool:
    """Whether a run directory keeps its records (as parts, or as an earlier version's CSV)."""
    path = Path(path)
    return (path / RECORDS_DIR).is_dir() or (path / RECORDS_CSV).is_file()
