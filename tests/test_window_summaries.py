"""Window summaries: written beside the records as windows close, read back whole, judged instead of the records.

The findings judged from a run's summaries must be the findings judged from its records, field by
field: on a monitored fit, on a loop without epoch ends (TF1's way), on a run killed before it
summarised its last windows, and on a run written before summaries existed.
"""

import json
import os
import shutil
import subprocess
import sys
import textwrap

import numpy as np
import pandas as pd
import pytest

from gradscope import records as rec
from gradscope.diagnosis import DiagnosisSettings, findings_of, timeline_of
from gradscope.diagnosis.summaries import take_rows, timeline_of_rows
from gradscope.diagnosis.timeline import Timeline
from gradscope.recorders.session import RecordingSession
from gradscope.storage import Run, load_run
from gradscope.storage import summaries_parquet

VARIABLES = [("dense_0", 0, "kernel"), ("dense_0", 0, "bias"), ("dense_1", 1, "kernel"), ("head", 2, "kernel")]


def _record(run_dir, epochs=6, steps_per_epoch=7, end_epochs=True, nan_at=None, seed=0):
    """A run recorded through a session from made-up per-step arrays (a vanishing first layer)."""
    rng = np.random.default_rng(seed)
    session = RecordingSession(run="r", run_dir=run_dir, variables=VARIABLES, config={"act": "sigmoid"})
    session.open()
    weights = np.array([30.0, 0.0, 8.0, 4.0])
    session.start_weights(0, 0, weights)
    step = 0
    for epoch in range(epochs):
        steps = np.arange(step, step + steps_per_epoch)
        grads = np.abs(rng.normal([0.001, 0.01, 0.1, 1.0], 0.0002, size=(len(steps), 4)))
        if nan_at is not None and nan_at in steps:
            grads[nan_at - step, 2] = np.nan
        updates = grads * 0.1
        weights = weights + 0.01
        session.add_steps(steps, epoch, {"grad_norm": grads, "update_norm": updates},
                          weights=(int(steps[-1]), weights))
        logs = {"loss": 2.3 - 0.01 * epoch, "accuracy": 0.1}
        if end_epochs:
            session.end_epoch(int(steps[-1]), epoch, logs)
        else:  # a loop without epoch ends: the logs are just more records
            session.add(rec.from_logs("r", int(steps[-1]), epoch, logs))
        step += steps_per_epoch
    session.finish("complete")
    return run_dir


def _from_records(path):
    run = load_run(path)
    return findings_of(Run(None, run.meta, records=run.records))


def _same_windows(a: Timeline, b: Timeline):
    assert len(a.windows) == len(b.windows)
    for u, v in zip(a.windows, b.windows):
        for name in ("index", "first_step", "last_step", "first_epoch", "last_epoch", "n_steps", "losses",
                     "accuracies", "non_finite"):
            assert getattr(u, name) == getattr(v, name), name
        for name in ("speed", "rel", "grad_first", "grad_max", "weight_first", "weight_last", "update_ratio_max",
                     "update_max", "saturated", "dead"):
            pd.testing.assert_series_equal(getattr(u, name), getattr(v, name), check_names=False)
    assert a.layers == b.layers and a.zero_start == b.zero_start


def test_summaries_are_written_as_windows_close_and_read_back_whole(tmp_path):
    path = _record(tmp_path / "run", nan_at=30)
    parts = sorted((path / "summaries").iterdir())
    assert [p.name for p in parts] == [f"part-{i:06d}.parquet" for i in range(len(parts))] and len(parts) == 3  # 6 epochs of 7 steps: windows of 2 epochs (>= 10 steps)
    (path / "summaries" / ".part-000099.parquet.123.tmp").write_bytes(b"torn")  # a writer killed mid-part
    rows, covered = summaries_parquet.read(path / "summaries")
    assert covered == json.loads((path / "run.json").read_text())["records"]["parts"]
    read_back = timeline_of_rows(rows)
    read_back.finish()
    _same_windows(read_back, Timeline.from_records(load_run(path).records))
    assert read_back.non_finite == {"step": 30, "metric": "grad_norm", "layer": "dense_1", "variable": "kernel"}
    assert read_back.layers == ["dense_0", "dense_1", "head"]
    assert read_back.zero_start == set()  # the bias started at 0, not a kernel


def test_findings_from_summaries_are_the_findings_from_records_and_leave_the_records_unread(tmp_path):
    path = _record(tmp_path / "run")
    run = load_run(path)
    found = findings_of(run)
    assert not run.records_read
    assert found == _from_records(path)
    assert json.loads((path / "run.json").read_text())["diagnosis"] == found  # the copy made at the end
    assert "vanishing_gradient" in [f["kind"] for f in found]


def test_a_loop_without_epoch_ends_is_summarised_as_its_epochs_change(tmp_path):
    path = _record(tmp_path / "run", end_epochs=False)
    assert len(list((path / "summaries").glob("part-*.parquet"))) >= 3
    assert findings_of(load_run(path)) == _from_records(path)


def test_a_run_killed_before_its_last_summaries_reads_the_records_after_them(tmp_path):
    path = _record(tmp_path / "run", epochs=8)
    expected = _from_records(path)
    parts = sorted((path / "summaries").glob("part-*.parquet"))
    for p in parts[len(parts) // 2:]:
        p.unlink()
    rows, covered = summaries_parquet.read(path / "summaries")
    assert 0 < covered < json.loads((path / "run.json").read_text())["records"]["parts"]
    assert findings_of(load_run(path)) == expected


def test_a_run_written_before_summaries_existed_is_summarised_from_its_records(tmp_path):
    path = _record(tmp_path / "run")
    expected = _from_records(path)
    shutil.rmtree(path / "summaries")
    run = load_run(path)
    assert findings_of(run) == expected and run.records_read


def test_other_windows_than_the_summaries_were_cut_with_are_judged_from_the_records(tmp_path):
    path = _record(tmp_path / "run", epochs=12, steps_per_epoch=3)
    settings = DiagnosisSettings(window_min_steps=30)
    run = load_run(path)
    windows = timeline_of(run, settings).windows
    assert run.records_read and windows[0].last_step - windows[0].first_step + 1 >= 30
    assert [w.n_steps for w in Timeline.from_records(run.records, settings).windows] == [w.n_steps for w in windows]


def test_summary_rows_are_taken_once():
    frames = [rec.from_step_arrays("r", np.array([s]), s // 10, [("d", 0, "kernel")],
                                   {"grad_norm": np.array([[1.0]]), "update_norm": np.array([[0.1]]),
                                    "weight_norm": np.array([[2.0]])}) for s in range(25)]
    t = Timeline.from_records(rec.concat(frames))
    first = take_rows(t)
    assert sorted(first.loc[first["window"] >= 0, "window"].unique()) == [0, 1, 2]
    assert not len(take_rows(t))


def test_an_error_while_summarising_is_one_warning_and_the_run_goes_on(tmp_path, monkeypatch):
    def broken(timeline):
        raise RuntimeError("a summary bug")

    monkeypatch.setattr("gradscope.diagnosis.summaries.take_rows", broken)
    with pytest.warns(RuntimeWarning, match="could not summarise"):
        path = _record(tmp_path / "run")
    monkeypatch.undo()
    run = load_run(path)
    assert run.status == "complete" and not (path / "summaries").exists()
    assert findings_of(run) == _from_records(path)
    assert json.loads((path / "run.json").read_text())["diagnosis"] == findings_of(load_run(path))


@pytest.mark.slow
def test_the_end_of_a_long_recording_adds_little_memory(tmp_path):
    """3.6M records in 60 epochs: finishing the run (its findings) must not read them back."""
    script = textwrap.dedent(f"""
        import json, sys
        import numpy as np

        def peak_mb():  # VmHWM starts again at exec (ru_maxrss would keep the pytest process's)
            return next(int(line.split()[1]) / 1024 for line in open("/proc/self/status") if line.startswith("VmHWM:"))

        from gradscope.recorders.session import RecordingSession
        variables = [(f"dense_{{i // 2}}", i // 2, "kernel" if i % 2 == 0 else "bias") for i in range(100)]
        session = RecordingSession(run="r", run_dir={str(tmp_path / "run")!r}, variables=variables)
        session.open()
        rng = np.random.default_rng(0)
        session.start_weights(0, 0, np.ones(100))
        for epoch in range(60):
            steps = np.arange(epoch * 200, (epoch + 1) * 200)
            g = rng.random((200, 100))
            session.add_steps(steps, epoch, {{"grad_norm": g, "update_norm": g * 0.01}}, weights=(int(steps[-1]), np.ones(100) + epoch))
            session.end_epoch(int(steps[-1]), epoch, {{"loss": 1.0 / (epoch + 1)}})
        before = peak_mb()
        session.finish("complete")
        after = peak_mb()
        print(json.dumps({{"before_mb": before, "added_mb": after - before,
                          "records": session.writer.meta["records"]["rows"]}}))
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=600,
                         env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert out.returncode == 0, out.stderr[-2000:]
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert got["records"] > 3_500_000
    assert got["added_mb"] < 40, got  # reading them back costs ~250 MB
