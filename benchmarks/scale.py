"""What long runs and big models cost: monitor memory, bytes on disk, report and diagnose time.

Two parts, printed as one table:

* **Recording** (``--train-steps``, default 20,000): a 51-layer narrow MLP (50 x 16 units plus a
  head: 102 variables) trained on random data, batch 32, in epochs of 1,000 steps, plain and
  with a monitor writing a run directory, each in its own process. The resident memory (RSS) is
  sampled at every epoch end; reported: the monitored process's RSS above the plain one's at
  the same epoch, at the first epoch end and at the last (flat means: no growth with steps),
  and the run's bytes on disk per record.
* **Reading** (``--records``, default 1M, 8M and 64M): a synthetic run of that many records
  (102 variables x the steps it takes, the default monitor's metrics: grad and update norms and
  the update ratio every step, weight norms, logs and activation statistics every 1,000 steps,
  with a spike and a NaN), written as a monitor writes it; then ``gradscope report`` and
  ``gradscope diagnose`` on it, each in its own process: wall time and peak RSS; and a report
  of a folder of ``--sweep`` runs (default 100) of a 4-layer MLP recorded for 2,000 steps.

    python benchmarks/scale.py                             # everything (~15 minutes on 2 cores)
    python benchmarks/scale.py --train-steps 0 --records 1e6,8e6
    python benchmarks/scale.py --train-steps 4000 --records 0

Memory is the child's peak RSS (``VmHWM``, which starts again at ``exec``; ``ru_maxrss`` would keep
the parent's) or RSS samples from ``/proc``; times are wall.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

N_LAYERS = 51  # 50 hidden + head
WIDTH = 16
STEPS_PER_EPOCH = 1000
SWEEP_RUN_RECORDS = 3 * 8 * 2000  # a 4-layer MLP (8 variables) recorded for 2,000 steps


def rss_mb() -> float:
    """This process's resident memory now."""
    with open("/proc/self/statm") as f:
        pages = int(f.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def peak_mb() -> float:
    """This process's peak resident memory since it started (``VmHWM``: unlike ``ru_maxrss``, which
    a child keeps from the parent it was forked from, it starts again at ``exec``)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


# --- recording: a real fit, in a child process -------------------------------------------------


def _train_child(way: str, steps: int, out: str) -> None:
    import keras
    import numpy as np

    from gradscope import GradientMonitor

    keras.utils.set_random_seed(0)
    layers = [keras.Input((32,))] + [keras.layers.Dense(WIDTH, activation="relu", name=f"dense_{i}")
                                     for i in range(N_LAYERS - 1)]
    model = keras.Sequential(layers + [keras.layers.Dense(10, activation="softmax", name="head")])
    model.compile(optimizer=keras.optimizers.SGD(0.01), loss="sparse_categorical_crossentropy")
    x = np.random.default_rng(0).normal(size=(32 * STEPS_PER_EPOCH, 32)).astype("float32")
    y = np.random.default_rng(1).integers(0, 10, size=len(x))
    samples = []

    class Sampler(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            samples.append(rss_mb())

    callbacks = [Sampler()]
    if way == "gradscope":
        callbacks.insert(0, GradientMonitor(run="scale", run_dir=Path(out) / "run", probe=x[:256]))
    model.fit(x, y, batch_size=32, epochs=max(steps // STEPS_PER_EPOCH, 1), shuffle=False, verbose=0,
              callbacks=callbacks)
    print(json.dumps({"rss": samples, "peak": peak_mb()}))  # the peak: the end of the fit included


def recording(steps: int, work: Path) -> dict:
    from gradscope.storage import load_run

    rss, peak = {}, {}
    for way in ("plain", "gradscope"):
        proc = subprocess.run([sys.executable, __file__, "--child-train", way, "--train-steps", str(steps),
                               "--work", str(work)], capture_output=True, text=True)
        if proc.returncode:
            raise SystemExit(proc.stderr[-3000:])
        got = json.loads(proc.stdout.strip().splitlines()[-1])
        rss[way], peak[way] = got["rss"], got["peak"]
    above = [g - p for g, p in zip(rss["gradscope"], rss["plain"])]
    run = load_run(work / "run")
    disk = sum(f.stat().st_size for f in (work / "run" / "records").glob("*.parquet"))
    return {"records": len(run.records), "above_first_mb": above[0], "above_last_mb": above[-1],
            "above_max_mb": max(above), "peak_above_mb": peak["gradscope"] - peak["plain"], "bytes_per_record": disk / max(len(run.records), 1),
            "rss_plain": rss["plain"], "rss_gradscope": rss["gradscope"]}


# --- reading: a synthetic run as the monitor writes it -----------------------------------------


def synthetic_run(path: Path, n_records: int, seed: int = 0, n_layers: int = N_LAYERS) -> int:
    """Write a run of about ``n_records`` records of an ``n_layers``-layer MLP, as the default
    monitor does; returns the count."""
    import numpy as np

    from gradscope import records as rec
    from gradscope.recorders.session import RecordingSession
    from gradscope.storage import RunWriter

    rng = np.random.default_rng(seed)
    meta = [(f"dense_{i}" if i < n_layers - 1 else "head", i, v) for i in range(n_layers) for v in ("kernel", "bias")]
    n_vars = len(meta)
    per_step = 3 * n_vars
    steps = max(int(n_records // per_step), STEPS_PER_EPOCH)
    writer = RunWriter(path, {"act": "relu", "init": "he", "hidden": [WIDTH] * (n_layers - 1), "optimizer": "sgd",
                              "lr": 0.01, "batch_size": 32, "epochs": -(-steps // STEPS_PER_EPOCH)},
                       name=path.name, heartbeat_seconds=0)
    session = RecordingSession(run=path.name, writer=writer)  # summarises the windows as the monitor's does
    session.open()
    depth_scale = 0.9 ** (n_layers - 1 - np.array([d for _, d, _ in meta]))  # smaller towards the input
    weights = rng.uniform(1, 5, n_vars)
    session.add(rec.from_step_arrays(path.name, np.array([0]), 0, meta, {"weight_norm_initial": weights[None]}))
    written = n_vars
    for epoch, start in enumerate(range(0, steps, STEPS_PER_EPOCH)):
        stop = min(start + STEPS_PER_EPOCH, steps)
        s = np.arange(start, stop)
        grad = depth_scale[None] * np.exp(rng.normal(0, 0.3, (len(s), n_vars))) * (1 + 1 / (1 + s[:, None] / 500))
        if epoch == 3 and len(s) > 501:
            grad[500, :4] *= 1e4  # a spike
            grad[501, 0] = np.nan  # and a NaN
        update = 0.01 * grad
        weights = weights * (1 + 1e-4)
        frames = [rec.from_step_arrays(path.name, s, epoch, meta,
                                       {"grad_norm": grad, "update_norm": update,
                                        "update_ratio": update / weights[None]}),
                  rec.from_step_arrays(path.name, s[-1:], epoch, meta, {"weight_norm": weights[None]}),
                  rec.from_logs(path.name, int(s[-1]), epoch, {"loss": 2.3 / (1 + epoch), "accuracy": 0.1 + 0.01 * epoch})]
        frames.append(rec.from_rows((path.name, int(s[-1]), epoch, f"dense_{i}", i, "", m, v) for i in range(n_layers - 1)
                                    for m, v in (("act_mean", 0.3), ("act_std", 0.2), ("dead_frac", 0.05))))
        frame = rec.concat(frames)
        session.add(frame)
        written += len(frame)
    session.finish("complete")
    writer.update(progress={"epochs_done": epoch + 1, "epochs": epoch + 1, "last_step": int(steps - 1)},
                  metrics={"test_accuracy": 0.5})
    writer.finish("complete")
    return written


_TIMED = """
import json, sys
from gradscope.cli import main
try:
    main(sys.argv[1:])
except SystemExit as exc:
    code = exc.code
else:
    code = 0
peak = next(int(line.split()[1]) / 1024 for line in open("/proc/self/status") if line.startswith("VmHWM:"))
print(json.dumps({"code": code, "peak_mb": peak}), file=sys.stderr)
"""


def timed(args: list[str]) -> dict:
    """Run a gradscope command in a child process: wall seconds and the child's peak RSS."""
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", _TIMED, *args], capture_output=True, text=True)
    seconds = time.perf_counter() - t0
    try:
        out = json.loads(proc.stderr.strip().splitlines()[-1])
    except (ValueError, IndexError):
        raise SystemExit(f"gradscope {' '.join(args)} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}") from None
    if out["code"] not in (0, None):
        raise SystemExit(f"gradscope {' '.join(args)} exited {out['code']}:\n{proc.stdout[-2000:]}")
    return {"seconds": seconds, "peak_mb": out["peak_mb"]}


def reading(n_records: float, work: Path) -> dict:
    out = work / f"read-{int(n_records)}"
    if out.exists():
        shutil.rmtree(out)
    t0 = time.perf_counter()
    written = synthetic_run(out / "runs" / "long", int(n_records))
    made = time.perf_counter() - t0
    disk = sum(f.stat().st_size for f in (out / "runs" / "long" / "records").glob("*.parquet"))
    report = timed(["report", str(out), "-o", str(out / "report.html")])
    diagnose = timed(["diagnose", str(out)])
    (out / "runs" / "long" / "summaries").rename(out / "summaries-aside")  # as a run of an earlier version
    from_records = timed(["diagnose", str(out)])
    return {"diagnose_records_s": from_records["seconds"], "diagnose_records_mb": from_records["peak_mb"],"records": written, "write_s": made, "bytes_per_record": disk / written,
            "report_s": report["seconds"], "report_mb": report["peak_mb"], "report_html_mb":
            (out / "report.html").stat().st_size / 2**20, "diagnose_s": diagnose["seconds"],
            "diagnose_mb": diagnose["peak_mb"]}


def sweep(n_runs: int, work: Path) -> dict:
    out = work / f"sweep-{n_runs}"
    if out.exists():
        shutil.rmtree(out)
    for i in range(n_runs):
        synthetic_run(out / "runs" / f"run-{i:03d}", SWEEP_RUN_RECORDS, seed=i, n_layers=4)
    report = timed(["report", str(out), "-o", str(out / "report.html")])
    return {"runs": n_runs, "report_s": report["seconds"], "report_mb": report["peak_mb"],
            "report_html_mb": (out / "report.html").stat().st_size / 2**20}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train-steps", type=int, default=20_000)
    parser.add_argument("--records", default="1e6,8e6,64e6", help="comma-separated record counts (0: none)")
    parser.add_argument("--sweep", type=int, default=100, help="runs in the sweep folder (0: none)")
    parser.add_argument("--work", type=Path, default=None, help="scratch folder (default: a temporary one)")
    parser.add_argument("--child-train", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child_train:
        _train_child(args.child_train, args.train_steps, str(args.work))
        return 0
    work = args.work or Path(tempfile.mkdtemp(prefix="gradscope-scale-"))
    work.mkdir(parents=True, exist_ok=True)
    lines = []
    if args.train_steps:
        r = recording(args.train_steps, work)
        lines.append(f"recording: {args.train_steps} steps x 102 variables ({r['records']:,} records): monitor RSS "
                     f"above plain {r['above_first_mb']:+.0f} MB at the first epoch end, {r['above_last_mb']:+.0f} MB "
                     f"at the last (max {r['above_max_mb']:+.0f} MB); peak RSS, the end of the fit included, "
                     f"{r['peak_above_mb']:+.0f} MB above plain; {r['bytes_per_record']:.2f} bytes a record on disk")
        print(lines[-1], flush=True)
    lines.append("| records | bytes/record | report s | report peak MB | report.html MB | diagnose s | diagnose peak MB "
                 "| diagnose from records s / peak MB |")
    lines.append("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for n in [float(v) for v in args.records.split(",") if float(v) > 0]:
        r = reading(n, work)
        lines.append(f"| {r['records']:,} | {r['bytes_per_record']:.2f} | {r['report_s']:.1f} | {r['report_mb']:.0f} | "
                     f"{r['report_html_mb']:.2f} | {r['diagnose_s']:.1f} | {r['diagnose_mb']:.0f} | "
                     f"{r['diagnose_records_s']:.1f} / {r['diagnose_records_mb']:.0f} |")
        print(lines[-1], flush=True)
    if args.sweep:
        r = sweep(args.sweep, work)
        lines.append(f"sweep: report of {r['runs']} runs in {r['report_s']:.1f} s, peak {r['report_mb']:.0f} MB, "
                     f"report.html {r['report_html_mb']:.2f} MB")
        print(lines[-1], flush=True)
    print("\n".join(lines))
    if args.work is None:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
