"""The report's per-layer step tables, computed part by part, against the whole records pivoted in memory."""

import warnings

import numpy as np
import pandas as pd
import pytest

from gradscope import records as rec
from gradscope.report import step_tables as st
from gradscope.report.view import STEP_METRICS, RunView
from gradscope.storage import RunWriter, load_run

LAYERS = [("in", 0, "kernel"), ("in", 0, "bias"), ("mid", 1, "kernel"), ("out", 2, "kernel")]


def _records(steps=5000, epochs=5, seed=0, nan_at=None):
    """Per-step grad/update norms, weight norms at each epoch end (and initial), logs: as a monitor writes them."""
    rng = np.random.default_rng(seed)
    per_epoch = steps // epochs
    frames = [rec.from_step_arrays("r", np.array([0]), 0, LAYERS, {"weight_norm_initial": rng.uniform(1, 3, (1, 4))})]
    for epoch in range(epochs):
        s = np.arange(epoch * per_epoch, (epoch + 1) * per_epoch)
        grad = np.exp(rng.normal(0, 1, (len(s), 4))) * np.array([1e-3, 1e-2, 1e-1, 1.0])
        if nan_at is not None and s[0] <= nan_at <= s[-1]:
            grad[nan_at - s[0], 2] = np.nan
        grad[rng.random(grad.shape) < 0.01] = 0.0  # zeros: left out of the positive buckets
        update = 0.01 * grad
        weights = rng.uniform(1, 3, (1, 4))
        frames += [rec.from_step_arrays("r", s, epoch, LAYERS, {"grad_norm": grad, "update_norm": update,
                                                               "update_ratio": update / weights}),
                   rec.from_step_arrays("r", s[-1:], epoch, LAYERS, {"weight_norm": weights}),
                   rec.from_logs("r", int(s[-1]), epoch, {"loss": 1.0 / (1 + epoch)})]
    return frames


def _expected(records, metric, k):
    """The same numbers from the whole records, pivoted in memory (:func:`gradscope.records.layer_metric`)."""
    table = rec.layer_metric(records, metric)
    values = table.to_numpy(dtype=float)
    positive = np.where(np.isfinite(values) & (values > 0), values, np.nan)
    n = len(values)
    padded = np.full((-(-n // k) * k, values.shape[1]), np.nan)
    padded[:n] = positive
    buckets = padded.reshape(-1, k, values.shape[1])
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a bucket without a positive value: NaN
        mean, low, high = np.nanmean(buckets, 1), np.nanmin(buckets, 1), np.nanmax(buckets, 1)
    finite = np.isfinite(values).all(axis=1)
    epochs = rec.metric_rows(records, metric)[["step", "epoch"]].drop_duplicates()
    last = epochs.loc[epochs["epoch"] == epochs["epoch"].max(), "step"]
    return {"table": table, "x": table.index.to_numpy()[::k], "mean": mean, "low": low, "high": high,
            "first_finite": table[finite].iloc[0], "last_finite": table[finite].iloc[-1],
            "epoch_mean": table.loc[table.index.isin(last)].mean()}


def _run_dir(tmp_path, frames):
    writer = RunWriter(tmp_path / "run", {"act": "relu"}, heartbeat_seconds=0)
    for frame in frames:
        writer.append(frame)
    writer.finish("complete")
    return load_run(tmp_path / "run")


@pytest.mark.parametrize("nan_at", [None, 2345])
def test_tables_read_part_by_part_equal_the_whole_records_pivoted(tmp_path, nan_at):
    frames = _records(nan_at=nan_at)
    records = rec.concat(frames)
    run = _run_dir(tmp_path, frames)
    tables = st.step_tables(run.record_parts(), STEP_METRICS)
    assert not run.records_read  # out of core: the run's records were never held
    for metric in STEP_METRICS:
        t = tables[metric]
        want = _expected(records, metric, t.bucket)
        assert t.layers == ["in", "mid", "out"]
        assert t.n_steps == len(want["table"])
        assert t.bucket == (4 if metric != "weight_norm" else 1)  # 5,000 steps / 1,500 points -> 4 a point
        np.testing.assert_array_equal(t.x, want["x"])
        np.testing.assert_allclose(t.mean, want["mean"], rtol=1e-6)
        if t.bucket > 1:
            np.testing.assert_allclose(t.low, want["low"], rtol=1e-6)
            np.testing.assert_allclose(t.high, want["high"], rtol=1e-6)
        np.testing.assert_allclose(t.first, want["table"].iloc[0], rtol=1e-6)
        np.testing.assert_allclose(t.first_finite, want["first_finite"], rtol=1e-6)
        np.testing.assert_allclose(t.last_finite, want["last_finite"], rtol=1e-6)
        np.testing.assert_allclose(t.last_epoch_mean, want["epoch_mean"], rtol=1e-6)
        values = want["table"].to_numpy(dtype=float)
        bad = ~np.isfinite(values).all(axis=1)
        assert t.first_bad_step == (want["table"].index[bad][0] if bad.any() else None)
        spread = st.LogSpread.of(values)
        assert (t.spread.count, t.spread.low, t.spread.high) == (spread.count, pytest.approx(spread.low),
                                                               pytest.approx(spread.high))
        assert t.spread.median == pytest.approx(spread.median, abs=2e-3)  # a thousandth of a decade


def test_a_step_two_parts_share_is_one_step():
    frame = rec.concat(_records(steps=100, epochs=1))
    grad = frame[frame["metric"] == "grad_norm"]
    split = grad.index[(grad["step"] == 50) & (grad["layer"] == "mid")][0]
    whole = st.step_tables([frame], ["grad_norm"])["grad_norm"]
    cut = st.step_tables([frame.loc[:split], frame.loc[split + 1:]], ["grad_norm"])["grad_norm"]
    assert cut.n_steps == whole.n_steps == 100
    np.testing.assert_array_equal(cut.mean, whole.mean)


def test_a_report_view_never_reads_the_whole_records(tmp_path):
    run = _run_dir(tmp_path, _records())

    def refuse():
        raise AssertionError("the report read every record")

    run._read_records = refuse
    view = RunView(run)
    assert view.ratios["layers"] == ["in", "mid", "out"]
    assert list(view.epoch_series("loss").index) == [0, 1, 2, 3, 4]
    assert view.table("grad_norm").n_steps == 5000
    assert not run.records_read


def test_the_view_of_records_in_memory_and_on_disk_agree(tmp_path):
    frames = _records(nan_at=777)
    on_disk = RunView(_run_dir(tmp_path, frames)).ratios
    in_memory = RunView(load_run(tmp_path / "run")).ratios
    load = load_run(tmp_path / "run")
    _ = load.records  # read whole: the view takes them from memory
    from_memory = RunView(load).ratios
    for key in ("grad_start", "grad_end", "rel_start", "rel_end"):
        assert on_disk[key] == pytest.approx(from_memory[key], nan_ok=True)
        assert in_memory[key] == pytest.approx(from_memory[key], nan_ok=True)
    assert isinstance(pd.Series(on_disk["grad_norm_start"]), pd.Series)
