"""Records as Parquet parts: whole after a SIGKILL, compact on disk and in memory, readable by pandas."""

import os
import signal
import subprocess
import sys
import textwrap
import time

import keras
import numpy as np
import pandas as pd
import pytest

from gradscope import GradientMonitor
from gradscope.storage import load_run

WRITER = textwrap.dedent(
    """
    import sys
    import numpy as np
    from gradscope import records as rec
    from gradscope.storage import RunWriter

    writer = RunWriter(sys.argv[1], {}, heartbeat_seconds=0)
    meta = [(f"dense_{i}", i, v) for i in range(20) for v in ("kernel", "bias")]
    step = 0
    while True:  # until killed: big parts, so that a kill often lands inside a write
        steps = np.arange(step, step + 2000)
        writer.append(rec.from_step_arrays("killed", steps, 0, meta, {"grad_norm": np.random.rand(2000, 40)}))
        step += 2000
    """
)


@pytest.mark.parametrize("delay", [0.0, 0.13, 0.29])
def test_a_run_killed_while_writing_keeps_whole_parts_only(tmp_path, delay):
    script = tmp_path / "writer.py"
    script.write_text(WRITER)
    run_dir = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, str(script), str(run_dir)], env={**os.environ, "PYTHONPATH": os.getcwd()})
    try:
        deadline = time.time() + 120
        while len(list((run_dir / "records").glob("part-*.parquet"))) < 3 and time.time() < deadline:
            time.sleep(0.02)
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        proc.kill()
    run = load_run(run_dir)
    parts = sorted((run_dir / "records").glob("part-*.parquet"))
    assert len(parts) >= 3
    assert len(run.records) == 2000 * 40 * len(parts)  # every part whole
    assert len(run.records) >= run.meta["records"]["rows"]  # run.json is written after each part
    assert run.status == "interrupted"  # its process is gone
    steps = np.sort(run.records.step.unique())
    np.testing.assert_array_equal(steps, np.arange(len(steps)))  # no gap, no torn part


def _fit(monitor, epochs=6):
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(16, activation="relu"),
                              keras.layers.Dense(16, activation="relu"), keras.layers.Dense(3, activation="softmax")])
    model.compile(optimizer=keras.optimizers.SGD(0.05), loss="sparse_categorical_crossentropy")
    x = np.random.default_rng(0).normal(size=(400, 8)).astype("float32")
    y = np.random.default_rng(1).integers(0, 3, 400)
    model.fit(x, y, batch_size=2, epochs=epochs, verbose=0, callbacks=[monitor])


def test_a_monitor_with_a_run_directory_keeps_nothing_the_run_directory_keeps(tmp_path):
    monitor = GradientMonitor(run="r", run_dir=tmp_path / "r")
    _fit(monitor)
    assert monitor._log._chunks == [] and monitor._log._cache is None  # nothing held after training
    records = monitor.records  # read back from the run directory
    assert len(records) == load_run(tmp_path / "r").meta["records"]["rows"]
    assert sorted(records[records.metric == "grad_norm"].step.unique()) == list(range(6 * 200))
    disk = sum(p.stat().st_size for p in (tmp_path / "r" / "records").glob("*.parquet"))
    assert disk / len(records) < 8  # bytes a record, on disk


def test_without_a_run_directory_records_are_kept_compressed(tmp_path):
    monitor = GradientMonitor(run="r")
    _fit(monitor)
    kept = sum(len(c) for c in monitor._log._chunks)
    n = len(monitor.records)
    assert n > 10_000 and kept / n < 8  # bytes a record in memory, not a DataFrame per epoch


def test_a_folder_of_parts_reads_with_pandas_filters_as_the_docs_say(tmp_path):
    monitor = GradientMonitor(run="r", run_dir=tmp_path / "r")
    _fit(monitor, epochs=2)
    grads = pd.read_parquet(tmp_path / "r" / "records", filters=[("metric", "==", "grad_norm")],
                            columns=["step", "layer", "value"])
    ours = monitor.records.query("metric == 'grad_norm'")
    assert len(grads) == len(ours) and list(grads.columns) == ["step", "layer", "value"]
    np.testing.assert_allclose(np.sort(grads.value.to_numpy()), np.sort(ours.value.to_numpy()), rtol=1e-7)
