"""Storage: run directories, written while a run trains and read back by diagnosis and report.

* :mod:`~gradscope.storage.run_dir`: ``RunWriter`` (one run, as it trains), ``Run``,
  ``load_run`` and ``find_runs``;
* :mod:`~gradscope.storage.records_parquet`: the records, a Parquet part per flush, each
  written whole and renamed into place;
* :mod:`~gradscope.storage.summaries_parquet`: the window summaries the diagnosis judges, written
  like the records' parts as windows close;
* :mod:`~gradscope.storage.records_csv`: the records file of runs written by earlier versions,
  read back with every problem named by file and line;
* :mod:`~gradscope.storage.lock`: one writer per run directory;
* :mod:`~gradscope.storage.process`: who writes a run, and whether it still lives.
"""

from gradscope.storage.run_dir import (
    LOCK_FILE,
    RECORDS_CSV,
    RECORDS_DIR,
    RUN_JSON,
    RUNS_DIR,
    STATUSES,
    Run,
    RunWriter,
    find_runs,
    has_records,
    load_run,
)

__all__ = ["RunWriter", "Run", "load_run", "find_runs", "has_records", "RUN_JSON", "RECORDS_CSV", "RECORDS_DIR",
           "RUNS_DIR", "LOCK_FILE", "STATUSES"]
