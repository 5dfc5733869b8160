"""Softmax regression (the seed MLP with no hidden layer), the seed's table, and the linear baseline."""

import json

import numpy as np
import pytest
from click.testing import CliRunner

keras = pytest.importorskip("keras")
tf = pytest.importorskip("tensorflow")

from gradscope import GradientMonitor  # noqa: E402
from gradscope.cli import main  # noqa: E402
from gradscope.models import build_mlp  # noqa: E402


def _xy(n=200, seed=0):
    from conftest import make_digits

    x, y = make_digits(n, seed=seed)
    return (x.reshape(n, -1) / 255.0).astype("float32"), y.astype("int64")


def test_keras_softmax_regression_norms_match_the_closed_form_gradient():
    """dL/dW = X^T (softmax(XW + b) - onehot(y)) / n, by numpy, step by step of plain SGD."""
    x, y = _xy()
    keras.utils.set_random_seed(0)
    model = build_mlp([], act="sigmoid", init="normal", seed=0)
    assert [layer.name for layer in model.layers] == ["output"]
    lr = 0.1
    model.compile(optimizer=keras.optimizers.SGD(lr), loss="sparse_categorical_crossentropy")
    w, b = (v.numpy().astype(np.float64) for v in model.trainable_variables)
    monitor = GradientMonitor(run="softmax")
    model.fit(x, y, batch_size=100, epochs=1, shuffle=False, callbacks=[monitor], verbose=0)
    records = monitor.records
    onehot = np.eye(10)[y]
    for step in range(2):
        xb, tb = x[step * 100:(step + 1) * 100].astype(np.float64), onehot[step * 100:(step + 1) * 100]
        z = xb @ w + b
        p = np.exp(z - z.max(axis=1, keepdims=True))
        p /= p.sum(axis=1, keepdims=True)
        gw, gb = xb.T @ (p - tb) / len(xb), (p - tb).mean(axis=0)
        got = records[(records.step == step) & (records.metric == "grad_norm")].set_index("variable").value
        np.testing.assert_allclose([got["kernel"], got["bias"]], [np.linalg.norm(gw), np.linalg.norm(gb)], rtol=1e-4)
        w, b = w - lr * gw, b - lr * gb
    np.testing.assert_allclose(model.trainable_variables[0].numpy(), w, rtol=1e-4, atol=1e-6)


def test_tf1_softmax_regression_records_its_one_layer(tmp_path, tiny_npz):
    out = tmp_path / "tf1"
    r = CliRunner().invoke(main, ["analyze", "--framework", "tf1", "--hidden", "none", "--full-batch", "--epochs",
                                  "3", "--init", "normal", "--data", str(tiny_npz), "--out", str(out), "-q"],
                           catch_exceptions=False)
    assert r.exit_code == 0, r.output
    meta = json.loads((out / "runs" / "softmax-normal" / "run.json").read_text())
    assert meta["config"]["hidden"] == [] and meta["config"]["layers"] == [784, 10]
    from gradscope.storage import load_run

    records = load_run(out / "runs" / "softmax-normal").records
    grads = records[records.metric == "grad_norm"]
    assert set(grads.layer) == {"output"} and sorted(grads.step.unique()) == [0, 1, 2]
    assert not (out / "runs" / "relu-he").exists()  # no hidden activation to fix: no reference run
    r = CliRunner().invoke(main, ["analyze", "--hidden", "nope", "--out", str(tmp_path / "x")])
    assert r.exit_code == 1 and "(or none, for no hidden layer)" in r.output


def test_paper_seed_on_tiny_data(tmp_path, tiny_csv):
    out = tmp_path / "seed"
    r = CliRunner().invoke(main, ["paper", "seed", "--rows", "sklearn,keras-softmax", "--epochs", "2",
                                  "--data", str(tiny_csv), "--out", str(out)], catch_exceptions=False)
    assert r.exit_code == 0, r.output
    paper = json.loads((out / "paper.json").read_text())
    assert [t["row"] for t in paper["table"]] == ["sklearn", "keras-softmax"]
    assert [t["seed"] for t in paper["table"]] == [0.9171, 0.8789]
    assert paper["note"] == "every gradient row trained 2 epochs (steps), not its own protocol's"
    for t in paper["table"]:
        meta = json.loads((out / "runs" / t["row"] / "run.json").read_text())
        assert meta["status"] == "complete" and meta["metrics"]["test_accuracy"] == t["measured"]
    from gradscope.storage import load_run

    assert len(load_run(out / "runs" / "sklearn").records) == 0  # scikit-learn has no gradients to record
    grads = load_run(out / "runs" / "keras-softmax").records.query("metric == 'grad_norm'")
    assert set(grads.layer) == {"output"}  # the softmax row shows its single layer's gradients
    html = (out / "report.html").read_text()
    assert "The seed's table: seed vs measured" in html and "0.9171" in html
    assert "sklearn " in r.output and "keras-softmax" in r.output
    r = CliRunner().invoke(main, ["paper", "seed", "--rows", "sklearn,nope", "--out", str(tmp_path / "x")])
    assert r.exit_code == 1 and "unknown row(s) nope" in r.output


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_linear_baseline_sits_beside_the_nets(tmp_path, tiny_npz):
    out = tmp_path / "out"
    r = CliRunner().invoke(main, ["analyze", "--data", str(tiny_npz), "--out", str(out), "--hidden", "8",
                                  "--epochs", "1", "-q", "--no-reference"], catch_exceptions=False)
    assert r.exit_code == 0, r.output
    config = json.loads((out / "runs" / "sigmoid-normal" / "run.json").read_text())["config"]
    base = config["linear_baseline"]
    from sklearn.linear_model import LogisticRegression

    from gradscope import data

    d = data.load(str(tiny_npz))
    expected = LogisticRegression(solver="saga", random_state=0).fit(d.x_train, d.y_train).score(d.x_test, d.y_test)
    assert base["test_accuracy"] == pytest.approx(expected)
    assert "linear baseline" in r.output and "linear baseline" in (out / "report.html").read_text()
    r = CliRunner().invoke(main, ["analyze", "--data", str(tiny_npz), "--out", str(tmp_path / "n"), "--hidden", "8",
                                  "--epochs", "1", "-q", "--no-reference", "--no-baseline"], catch_exceptions=False)
    assert "linear_baseline" not in json.loads((tmp_path / "n" / "runs" / "sigmoid-normal" / "run.json").read_text())["config"]
