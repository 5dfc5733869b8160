"""Which engine computes a report's per-layer step aggregates out of core: measured, not assumed.

The report draws each layer's kernel ``grad_norm`` over steps as at most 1,500 buckets of
consecutive recorded steps (mean of the positive values, min and max). Two ways to compute them
from a run's Parquet parts without holding the records, each in its own process (wall time, peak
RSS from ``VmHWM``), checked against each other:

* ``parts``: what gradscope does (:mod:`gradscope.report.step_tables`): pyarrow reads one part at
  a time, NumPy reduces it (the dictionary codes as stored, one ``bincount`` a part), the buckets
  double as they fill;
* ``duckdb``: one SQL query over ``records/*.parquet`` (the step's rank by a window function,
  ``GROUP BY`` layer and bucket), DuckDB's own threads and memory limit. DuckDB is not a
  dependency of gradscope; ``pip install duckdb`` to run this side.

    python benchmarks/report_engine.py --records 6e6,64e6      # synthetic runs as scale.py writes them
    python benchmarks/report_engine.py --run path/to/run       # a run of your own
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

_CHILD = """
import json, sys, time
import numpy as np
way, run_dir = sys.argv[1], sys.argv[2]
t0 = time.perf_counter()
if way == "parts":
    from gradscope.report.step_tables import step_tables
    from gradscope.storage import load_run
    t = step_tables(load_run(run_dir).record_parts(columns=["step", "epoch", "layer", "depth", "variable", "metric",
                                                            "value"]), ["grad_norm"])["grad_norm"]
    out = {"k": t.bucket, "n": t.n_steps, "layers": t.layers, "mean": t.mean.tolist()}
else:
    import duckdb
    parts = f"{run_dir}/records/*.parquet"
    con = duckdb.connect()
    g = f"(SELECT step, layer, depth, value FROM read_parquet('{parts}') WHERE metric = 'grad_norm' AND variable = 'kernel')"
    n = con.execute(f"SELECT count(DISTINCT step) FROM {g}").fetchone()[0]
    k = 1
    while (n - 1) // k >= 1500:
        k *= 2
    rows = con.execute(f'''
        WITH g AS {g},
        ranked AS (SELECT step, (row_number() OVER (ORDER BY step) - 1) // {k} AS bucket FROM (SELECT DISTINCT step FROM g))
        SELECT bucket, depth, layer, avg(value) FILTER (WHERE isfinite(value) AND value > 0) AS mean
        FROM g JOIN ranked USING (step) GROUP BY bucket, depth, layer ORDER BY bucket, depth, layer''').fetchall()
    layers = sorted({(d, l) for _, d, l, _ in rows})
    column = {l: i for i, (_, l) in enumerate(layers)}
    mean = np.full((max(b for b, *_ in rows) + 1, len(layers)), np.nan)
    for b, _, l, m in rows:
        mean[b, column[l]] = np.nan if m is None else m
    out = {"k": k, "n": n, "layers": [l for _, l in layers], "mean": mean.tolist()}
out["seconds"] = time.perf_counter() - t0
out["peak_mb"] = next(int(line.split()[1]) / 1024 for line in open("/proc/self/status") if line.startswith("VmHWM:"))
print(json.dumps(out))
"""


def measure(way: str, run_dir: Path) -> dict:
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", _CHILD, way, str(run_dir)], capture_output=True, text=True)
    if proc.returncode:
        raise SystemExit(f"{way} failed:\n{proc.stderr[-3000:]}")
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    out["process_seconds"] = time.perf_counter() - t0
    return out


def main(argv=None) -> int:
    import numpy as np

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", default="6e6", help="comma-separated record counts of synthetic runs")
    parser.add_argument("--run", type=Path, default=None, help="a run directory instead of synthetic runs")
    parser.add_argument("--ways", default="parts,duckdb")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--work", type=Path, default=None)
    args = parser.parse_args(argv)
    work = args.work or Path(tempfile.mkdtemp(prefix="gradscope-engine-"))
    runs = []
    if args.run:
        runs.append(("own run", args.run))
    else:
        from scale import synthetic_run

        for n in [float(v) for v in args.records.split(",") if float(v) > 0]:
            path = work / f"engine-{int(n)}" / "run"
            if not (path / "run.json").exists():
                synthetic_run(path, int(n))
            runs.append((f"{n / 1e6:g}M", path))
    print("| run | engine | wall s (median of repeats) | peak RSS MB | agree |")
    print("| --- | --- | ---: | ---: | --- |")
    for label, path in runs:
        results = {}
        for way in args.ways.split(","):
            measured = [measure(way, path) for _ in range(args.repeats)]
            results[way] = measured[-1] | {"seconds": float(np.median([m["seconds"] for m in measured])),
                                          "peak_mb": max(m["peak_mb"] for m in measured)}
        first = next(iter(results.values()))
        for way, r in results.items():
            agree = r["k"] == first["k"] and r["layers"] == first["layers"] and np.allclose(
                np.array(r["mean"], float), np.array(first["mean"], float), rtol=1e-5, equal_nan=True)
            print(f"| {label} | {way} | {r['seconds']:.2f} | {r['peak_mb']:.0f} | {'yes' if agree else 'NO'} |",
                  flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
