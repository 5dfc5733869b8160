"""Storage: run directories, written while a run trains and read back by diagnosis and report.

* :mod:`~gradscope.storage.run_dir`: ``RunWriter`` (one run, as it trains), ``Run``,
  ``load_run`` and ``find_runs``;
* :mod:`~gradscope.storage.records_csv`: the records file, appended and read back with every
  problem named by file and line;
* :mod:`~gradscope.storage.lock`: one writer per run directory;
* :mod:`~gradscope.storage.process`: who writes a run, and whether it still lives.
"""

from gradscope.storage.run_dir import (
    LOCK_FILE,
    RECORDS_CSV,
    RUN_JSON,
    RUNS_DIR,
    STATUSES,
    Run,
    RunWriter,
    find_runs,
    load_run,
)

__all__ = ["RunWriter", "Run", "load_run", "find_runs", "RUN_JSON", "RECORDS_CSV", "RUNS_DIR", "LOCK_FILE", "STATUSES"]
