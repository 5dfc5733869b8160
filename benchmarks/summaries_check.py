"""Do the findings stay the same when they are judged from window summaries? Checked on stored runs.

Every stored run (default: ``benchmarks/results/*/``, whatever ``trials_suite.py`` and
``public_cases.py`` left there) is recorded again through a real recording session: its record
parts are handed to a :class:`~gradscope.recorders.session.RecordingSession` writing a run
directory in a temporary folder, part by part as its recorder handed them over, so the session
summarises the windows as they close and writes them beside the records. The findings read from
that copy (summaries, no records read) are compared with the findings judged from the original's
records, field by field. Then the copy loses its last summary parts (a run killed before it
summarised its last windows): the findings must still be the same (the records after the
summaries are summarised when read).

    python benchmarks/summaries_check.py
    python benchmarks/summaries_check.py --limit 20

No training.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
RESULTS = Path(__file__).resolve().parent / "results"


def differences(a, b, path=""):
    """Where two findings lists differ (paths of the fields)."""
    if type(a) is not type(b):
        return [path]
    if isinstance(a, dict):
        return [d for k in sorted(set(a) | set(b), key=str) for d in differences(a.get(k), b.get(k), f"{path}.{k}")]
    if isinstance(a, list):
        if len(a) != len(b):
            return [path]
        return [d for i, (u, v) in enumerate(zip(a, b)) for d in differences(u, v, f"{path}[{i}]")]
    same = a == b or (isinstance(a, float) and a != a and b != b)
    return [] if same else [path]


def recorded_again(run, folder: Path) -> Path:
    """``run`` recorded again through a session into ``folder`` (its parts handed over one by one)."""
    from gradscope.recorders.session import RecordingSession
    from gradscope.storage import records_parquet

    session = RecordingSession(run=run.meta.get("run", "run"), run_dir=folder, config=run.config, findings_copy=False)
    session.open()
    for p in records_parquet.parts(Path(run.path) / "records"):
        import pyarrow.parquet as pq

        session.add(records_parquet.frame_of([pq.read_table(p)]))
    session.finish("complete")
    written = json.loads((folder / "run.json").read_text())
    meta = {**run.meta, "records": written["records"], "summaries": written["summaries"]}
    (folder / "run.json").write_text(json.dumps(meta))
    return folder


def main(argv=None) -> int:
    from gradscope.diagnosis import findings_of
    from gradscope.storage import Run, load_run

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", type=Path, default=RESULTS)
    parser.add_argument("--limit", type=int, default=0)
    args = parser.parse_args(argv)
    dirs = sorted(p.parent for p in args.results.rglob("run.json") if (p.parent / "records").is_dir())
    if args.limit:
        dirs = dirs[:args.limit]
    if not dirs:
        print(f"no stored runs below {args.results}: run benchmarks/trials_suite.py or public_cases.py first")
        return 1
    same = same_killed = 0
    seconds = {"records": 0.0, "summaries": 0.0}
    failures = []
    for d in dirs:
        original = load_run(d)
        t0 = time.perf_counter()
        expected = findings_of(Run(None, original.meta, records=original.records))
        seconds["records"] += time.perf_counter() - t0
        tmp = Path(tempfile.mkdtemp())
        try:
            copy = recorded_again(original, tmp / "run")
            t0 = time.perf_counter()
            read = load_run(copy)
            got = findings_of(read)
            seconds["summaries"] += time.perf_counter() - t0
            assert not read.records_read or not len(read.records), "summaries were not used"
            diff = differences(expected, got)
            same += not diff
            parts = sorted((copy / "summaries").glob("part-*.parquet"))
            for p in parts[len(parts) // 2:]:  # killed before it summarised its last windows
                p.unlink()
            killed = differences(expected, findings_of(load_run(copy)))
            same_killed += not killed
            if diff or killed:
                failures.append((d, diff[:3], killed[:3]))
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    n = len(dirs)
    print(f"runs: {n}; findings identical from summaries: {same}/{n}; with the last half of the summary parts "
          f"lost: {same_killed}/{n}")
    print(f"time to judge: from records {seconds['records']:.1f} s, from summaries (records not read) "
          f"{seconds['summaries']:.1f} s")
    for d, diff, killed in failures[:10]:
        print(f"  {d}: differs at {diff} / killed: {killed}")
    return 0 if not failures else 1


if __name__ == "__main__":
    sys.exit(main())
