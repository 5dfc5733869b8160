"""Sinks: records routed to a store of one's own, and to MLflow (a local file store, read back with MlflowClient)."""

import warnings

import keras
import numpy as np
import pandas as pd
import pytest

from gradscope import GradientMonitor, GradscopeError
from gradscope.storage import load_run


def _data():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(320, 6)).astype("float32")
    return x, (x[:, 0] + x[:, 1] > 0).astype("int64")


def _model():
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((6,)), keras.layers.Dense(8, activation="tanh", name="h"),
                              keras.layers.Dense(2, activation="softmax", name="head")])
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss="sparse_categorical_crossentropy")
    return model


class Store:
    """A store of one's own: only what the protocol asks."""

    def __init__(self):
        self.frames, self.calls = [], []

    def append(self, records):
        self.frames.append(records.copy())

    def start(self, info):
        self.calls.append(("start", info["run"], info["epochs"], info["model"]["class"]))

    def flush(self):
        self.calls.append(("flush",))

    def close(self, status, findings, run_dir):
        self.calls.append(("close", status, isinstance(findings, list), run_dir))


def test_a_store_of_ones_own_gets_every_record_and_the_runs_events(tmp_path):
    x, y = _data()
    store = Store()
    monitor = GradientMonitor(run="mine", run_dir=tmp_path / "mine", sinks=[store])
    _model().fit(x, y, batch_size=32, epochs=3, callbacks=[monitor], verbose=0)
    got = pd.concat(store.frames, ignore_index=True)
    kept = load_run(tmp_path / "mine").records
    assert len(got) == len(kept)  # every record the run directory has, no more
    key = ["step", "layer", "variable", "metric", "bin"]
    both = got.astype({c: str for c in ("layer", "variable", "metric")}).merge(
        kept.astype({c: str for c in ("layer", "variable", "metric")}), on=key, suffixes=("_sink", "_run"))
    assert len(both) == len(kept)
    np.testing.assert_allclose(both["value_sink"], both["value_run"], rtol=1e-6)  # (the run stores float32)
    assert store.calls[0] == ("start", "mine", 3, "Sequential")
    assert [c[0] for c in store.calls[1:]] == ["flush"] * 3 + ["close"]
    assert store.calls[-1] == ("close", "complete", True, tmp_path / "mine")


def test_a_sink_that_raises_is_one_warning_and_training_goes_on(tmp_path):
    class Broken(Store):
        def append(self, records):
            raise ConnectionError("the store is down")

    x, y = _data()
    monitor = GradientMonitor(run="mine", run_dir=tmp_path / "mine", sinks=[Broken()])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        history = _model().fit(x, y, batch_size=32, epochs=2, callbacks=[monitor], verbose=0)
    said = [str(w.message) for w in caught if "sink" in str(w.message)]
    assert len(said) == 1 and "ConnectionError: the store is down" in said[0]
    assert len(history.history["loss"]) == 2 and load_run(tmp_path / "mine").status == "complete"


def test_an_object_of_ones_own_as_writer_is_a_clear_error_before_training():
    class Sink:
        def append(self, records):
            pass

        def flush(self):
            pass

    with pytest.raises(GradscopeError, match=r"writer= takes a gradscope RunWriter .* pass it as sinks=\[\.\.\.\]"):
        GradientMonitor(writer=Sink())
    with pytest.raises(GradscopeError, match="a sink needs an append"):
        GradientMonitor(sinks=[object()])


@pytest.fixture
def mlflow_store(tmp_path):
    """A local MLflow tracking store (SQLite) with its artifacts under ``tmp_path``."""
    mlflow = pytest.importorskip("mlflow")
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlflow.db'}")
    mlflow.set_experiment(experiment_id=mlflow.create_experiment("gradscope", (tmp_path / "artifacts").as_uri()))
    yield mlflow
    mlflow.set_tracking_uri(None)


@pytest.mark.slow
def test_mlflow_gets_sampled_per_layer_metrics_the_findings_and_the_report(tmp_path, mlflow_store):
    mlflow = mlflow_store
    from gradscope.integrations.mlflow_sink import MLflowSink

    x, y = _data()
    monitor = GradientMonitor(run="mine", run_dir=tmp_path / "mine", sinks=[MLflowSink(max_points=2)])
    with mlflow.start_run() as active:
        _model().fit(x, y, batch_size=32, epochs=5, callbacks=[monitor], verbose=0)
    client = mlflow.MlflowClient()
    run = client.get_run(active.info.run_id)
    assert run.data.tags["gradscope.status"] == "complete"
    assert run.data.tags["gradscope.sampled_every_epochs"] == "3"  # 5 epochs, at most 2 points: epochs 1 and 4
    assert run.data.params["gradscope.model"] == "Sequential" and run.data.params["gradscope.optimizer"] == "SGD"
    records = load_run(tmp_path / "mine").records
    for metric in ("grad_norm", "update_ratio"):
        for layer in ("h", "head"):
            history = client.get_metric_history(active.info.run_id, f"gradscope/{metric}/{layer}")
            assert len(history) == 2
            sel = records[(records.metric == metric) & (records.layer == layer) & (records.variable == "kernel")]
            means = sel.groupby("epoch")["value"].mean()  # independently: the epoch means of the stored records
            for point, epoch in zip(sorted(history, key=lambda m: m.step), (0, 3)):
                assert point.step == sel[sel.epoch == epoch]["step"].max()
                assert point.value == pytest.approx(means[epoch], rel=1e-5)
    artifacts = {a.path for a in client.list_artifacts(active.info.run_id, "gradscope")}
    assert artifacts == {"gradscope/findings.json", "gradscope/report.html"}
    local = client.download_artifacts(active.info.run_id, "gradscope/report.html", str(tmp_path / "dl"))
    assert "gradscope mine" in open(local, encoding="utf-8").read()


@pytest.mark.slow
def test_mlflow_without_an_active_run_starts_one_and_ends_it(tmp_path, mlflow_store):
    mlflow = mlflow_store
    from gradscope.integrations.mlflow_sink import MLflowSink

    x, y = _data()
    sink = MLflowSink(report=False)
    _model().fit(x, y, batch_size=64, epochs=2, callbacks=[GradientMonitor(run="alone", sinks=[sink])], verbose=0)
    run = mlflow.MlflowClient().get_run(sink.run_id)
    assert run.info.run_name == "alone" and run.info.status == "FINISHED" and mlflow.active_run() is None
    assert [a.path for a in mlflow.MlflowClient().list_artifacts(sink.run_id, "gradscope")] == ["gradscope/findings.json"]


def _offline_records(wandb_dir):
    """Every record of the one offline W&B run under ``wandb_dir``, read by W&B's own reader
    (``wandb leet inspect --json``: one JSON record a line)."""
    import json
    import subprocess
    import sys

    files = list(wandb_dir.glob("wandb/offline-run-*/run-*.wandb"))
    assert len(files) == 1, files
    out = subprocess.run([sys.executable, "-m", "wandb", "leet", "inspect", "--json", str(files[0])],
                         capture_output=True, text=True, timeout=300, check=True).stdout
    return [json.loads(line) for line in out.splitlines() if line.startswith("{")]


@pytest.mark.slow
def test_wandb_offline_gets_sampled_per_layer_metrics_the_findings_and_the_report(tmp_path, monkeypatch):
    pytest.importorskip("wandb")
    from gradscope.integrations.wandb_sink import WandbSink

    for key, value in {"WANDB_MODE": "offline", "WANDB_DIR": str(tmp_path), "WANDB_SILENT": "true",
                       "WANDB_CONSOLE": "off"}.items():
        monkeypatch.setenv(key, value)
    x, y = _data()
    sink = WandbSink(max_points=2)
    _model().fit(x, y, batch_size=32, epochs=5, callbacks=[GradientMonitor(run="mine", run_dir=tmp_path / "mine",
                                                                             sinks=[sink])], verbose=0)
    records = _offline_records(tmp_path)
    history = [r["history"]["item"] for r in records if r["type"] == "history"]
    stored = load_run(tmp_path / "mine").records
    for metric in ("grad_norm", "update_ratio"):
        for layer in ("h", "head"):
            sel = stored[(stored.metric == metric) & (stored.layer == layer) & (stored.variable == "kernel")]
            means = sel.groupby("epoch")["value"].mean()  # independently: the epoch means of the stored records
            points = [(h["gradscope/step"], h[f"gradscope/{metric}/{layer}"]) for h in history
                      if f"gradscope/{metric}/{layer}" in h]
            assert [s for s, _ in points] == [sel[sel.epoch == e]["step"].max() for e in (0, 3)]  # at most 2 points
            np.testing.assert_allclose([v for _, v in points], [means[0], means[3]], rtol=1e-5)
    logged = [h for h in history if "gradscope/grad_hist/h.values" in h]
    assert len(logged) == 2  # the histograms come with the sampled epochs' points
    for item, epoch in zip(logged, (0, 3)):
        for metric, layer in (("grad_hist", "h"), ("weight_hist", "head"), ("act_hist", "h")):
            key = f"gradscope/{metric}/{layer}"  # W&B's reader flattens a histogram into .bins, .values, ._type
            shown = {part: item[f"{key}.{part}"] for part in ("_type", "bins", "values")}
            sel = stored[(stored.metric == metric) & (stored.layer == layer) & (stored.epoch == epoch)]
            last = sel[sel.step == sel.step.max()]  # the epoch-end histogram, from the stored records
            counts = np.zeros(len(shown["values"]))
            np.add.at(counts, last["bin"].to_numpy(int), last["value"].to_numpy())
            assert shown["_type"] == "histogram" and len(shown["bins"]) == len(shown["values"]) + 1
            np.testing.assert_array_equal(shown["values"], counts)
    artifacts = [r["artifact"] for r in records if r["type"] == "artifact"]
    assert [(a["name"], a["type"]) for a in artifacts] == [("gradscope-mine", "gradscope")]
    assert sorted(e["path"] for e in artifacts[0]["manifest"]["contents"]) == ["findings.json", "report.html"]
    assert any(r["summary"]["update"].get("gradscope/status") == "complete" for r in records if r["type"] == "summary")
