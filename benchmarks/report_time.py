"""How long ``gradscope report`` takes and how big its page is, on folders of saved runs.

Each folder is rendered ``--repeats`` times, folders alternating, each time in a fresh process
(so the time includes importing pandas and matplotlib, as a user's command does). Printed: best
and median wall and CPU seconds, the spread of the repeats (max/min wall: the noise floor of this
machine) and the report's size.

    python benchmarks/report_time.py reports/example-mnist-2x2 reports/example-sweep --repeats 5
"""

from __future__ import annotations

import argparse
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def render_once(folder: Path, out: Path) -> tuple[float, float]:
    """Wall and CPU seconds of one ``gradscope report folder -o out`` in a child process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "gradscope.cli", "report", str(folder), "-o", str(out)],
                          capture_output=True, text=True)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise SystemExit(f"gradscope report {folder} exited {proc.returncode}:\n{proc.stderr[-2000:]}")
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folders", nargs="+", type=Path)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    walls = {f: [] for f in args.folders}
    cpus = {f: [] for f in args.folders}
    sizes = {}
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(args.repeats):
            for i, folder in enumerate(args.folders):
                out = Path(tmp) / f"report-{i}.html"
                wall, cpu = render_once(folder, out)
                walls[folder].append(wall)
                cpus[folder].append(cpu)
                sizes[folder] = out.stat().st_size
    print("| folder | runs | best wall s | median wall s | best CPU s | spread (max/min wall) | report MB |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for folder in args.folders:
        n_runs = len([p for p in (folder / "runs").iterdir() if (p / "run.json").is_file()])
        w = walls[folder]
        print(f"| {folder} | {n_runs} | {min(w):.2f} | {statistics.median(w):.2f} | {min(cpus[folder]):.2f} | "
              f"{max(w) / min(w):.2f} | {sizes[folder] / 2**20:.2f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
