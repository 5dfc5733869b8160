"""Each finding fires on a small constructed case and stays silent on a healthy one."""

import contextlib
import io
import json
from collections import Counter

import keras
import numpy as np
import pytest
from click.testing import CliRunner

from gradscope import records as rec
from gradscope.cli import main
from gradscope.diagnosis import diagnose

LAYERS = ["dense_0", "dense_1", "dense_2", "output"]


def make_records(rel, weight=(30.0, 16.0, 11.0, 4.0), steps=20, epochs=4, growth=1.0, loss=None,
                 saturated=None, dead=None, nan_at=None):
    """Records of a fake run: per-layer grad_norm = rel * weight_norm, optional growth per step."""
    steps_per_epoch = steps // epochs
    frames = []
    for step in range(steps):
        g = np.array(rel) * np.array(weight) * growth ** step
        if nan_at is not None and step >= nan_at:
            g = np.full_like(g, np.nan)
        meta = [(layer, i, "kernel") for i, layer in enumerate(LAYERS)]
        frames.append(rec.from_step_arrays("r", np.array([step]), step // steps_per_epoch, meta,
                                           {"grad_norm": g[None], "weight_norm": np.array(weight)[None],
                                            "update_norm": 0.1 * g[None]}))
    loss = loss if loss is not None else [2.3 * 0.6 ** e for e in range(epochs)]
    for e, value in enumerate(loss):
        frames.append(rec.from_logs("r", (e + 1) * steps_per_epoch - 1, e, {"loss": value, "accuracy": 0.5}))
    rows = []
    for metric, values in (("saturated_frac", saturated), ("dead_frac", dead)):
        if values is not None:
            for e in range(epochs):
                for i, v in enumerate(values):
                    rows.append(("r", (e + 1) * steps_per_epoch - 1, e, LAYERS[i], i, "", metric, v))
    frames.append(rec.from_rows(rows))
    return rec.concat(frames)


HEALTHY = dict(rel=[0.06, 0.07, 0.09, 0.2])


def kinds(records, config=None):
    return {f.kind for f in diagnose(records, config)}


def test_healthy_run_has_no_findings():
    assert kinds(make_records(**HEALTHY, dead=[0.0, 0.01, 0.03])) == set()


def test_vanishing_fires_on_geometric_decay_and_names_slow_layers():
    findings = diagnose(make_records(rel=[0.0015, 0.006, 0.02, 0.15]), {"act": "sigmoid", "init": "he"})
    (f,) = [f for f in findings if f.kind == "vanishing_gradient"]
    assert f.layers[0] == "dense_0" and "output" not in f.layers
    assert f.evidence["first_to_last_ratio"] == pytest.approx(0.01)
    assert "sigmoid' <= 0.25" in f.why and "ReLU with He" in f.recommendation


def test_saturation_fires_and_explains_normal_init():
    findings = diagnose(make_records(**HEALTHY, saturated=[0.6, 0.77, 0.73]),
                        {"act": "sigmoid", "init": "normal", "layers": [784, 512, 256, 128, 10]})
    (f,) = [f for f in findings if f.kind == "saturation"]
    assert f.layers == ["dense_0", "dense_1", "dense_2"] and "N(0,1)" in f.why


def test_dead_units_fire():
    f = diagnose(make_records(**HEALTHY, dead=[0.0, 0.8, 0.2]))
    assert [x.kind for x in f] == ["dead_units"] and f[0].layers == ["dense_1"]


def test_exploding_fires_on_growth_and_suppresses_vanishing():
    records = make_records(rel=[0.001, 0.01, 0.1, 1.0], growth=4.0)
    found = kinds(records, {"act": "relu", "init": "normal", "layers": [784, 16, 10]})
    assert "exploding_gradient" in found and "vanishing_gradient" not in found


def test_exploding_fires_on_diverging_loss():
    assert "exploding_gradient" in kinds(make_records(**HEALTHY, loss=[2.3, 40.0, 80.0, 120.0]))


def test_non_finite_fires_with_the_first_bad_step():
    findings = diagnose(make_records(**HEALTHY, nan_at=7))
    (f,) = [f for f in findings if f.kind == "non_finite"]
    assert f.steps[0] == 7 and f.severity == "high"


def test_stalled_fires_on_a_flat_loss():
    f = diagnose(make_records(**HEALTHY, loss=[2.30, 2.29, 2.28, 2.27]))
    assert [x.kind for x in f] == ["stalled"]


def test_findings_are_strict_json_with_non_finite_evidence_spelled_out():
    findings = diagnose(make_records(**HEALTHY, loss=[2.3, float("inf"), float("nan"), 2.2]))
    # a loss that went non-finite while the gradients stayed level is not an explosion
    assert {f.kind for f in findings} == {"non_finite"}
    text = json.dumps([f.to_dict() for f in findings], allow_nan=False)  # raises on a bare NaN or inf
    (non_finite,) = json.loads(text)
    assert non_finite["evidence"]["cause"] == "loss" and non_finite["evidence"]["first_non_finite"]["metric"] == "loss"
    assert non_finite["evidence"]["grad_norm_growth_before"] == pytest.approx(1.0)
    stalled = diagnose(make_records(**HEALTHY, loss=[2.3, 2.3, 2.3, float("nan")]))
    assert json.loads(json.dumps(stalled.to_dict(), allow_nan=False))[0]["evidence"]["grad_norm_growth_before"] == 1.0


def test_seed_mlp_sigmoid_normal_is_vanishing_with_saturation_and_relu_he_is_not(tmp_path):
    """The textbook contrast, trained for real on the bundled MNIST sample."""
    out = tmp_path / "contrast"
    r = CliRunner().invoke(main, ["analyze", "--act", "sigmoid", "--act", "relu", "--init", "normal", "--init", "he",
                                  "--epochs", "3", "--out", str(out), "-q"], catch_exceptions=False)
    assert r.exit_code == 0, r.output
    diag = {name: {f["kind"] for f in json.loads((out / "runs" / name / "run.json").read_text())["diagnosis"]}
            for name in ("sigmoid-normal", "relu-he", "relu-normal")}
    assert {"vanishing_gradient", "saturation"} <= diag["sigmoid-normal"]
    assert diag["relu-he"] == set()
    assert {"exploding_gradient", "non_finite"} <= diag["relu-normal"]
    assert "vanishing_gradient" in r.output  # printed per run
    r = CliRunner().invoke(main, ["diagnose", str(out), "--json"])
    assert r.exit_code == 0 and "saturation" in json.loads(r.output)["sigmoid-normal"][1]["kind"] + \
        json.loads(r.output)["sigmoid-normal"][0]["kind"]


def test_audit_predicts_from_step_zero():
    from gradscope import audit, data
    from gradscope.models import build_mlp

    ds = data.load("sample")
    found = {}
    for act, init in (("sigmoid", "normal"), ("relu", "he"), ("relu", "normal")):
        model = build_mlp([512, 256, 128], act=act, init=init)
        model.compile(optimizer=keras.optimizers.SGD(0.1), loss="sparse_categorical_crossentropy")
        found[(act, init)] = {f.kind for f in audit(model, ds.x_train, ds.y_train)}
    assert {"vanishing_gradient", "saturation"} <= found[("sigmoid", "normal")]
    assert found[("relu", "he")] == set()
    assert "exploding_gradient" in found[("relu", "normal")]


def test_audit_needs_a_compiled_model():
    from gradscope import audit
    from gradscope.models import build_mlp

    with pytest.raises(ValueError, match="compiled model"):
        audit(build_mlp([4]), np.zeros((2, 784), "float32"), np.zeros(2))


def _exploding_fit(monitor, epochs):
    from gradscope import data
    from gradscope.models import build_mlp

    ds = data.load("sample")
    model = build_mlp([512, 256, 128], act="relu", init="normal")
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss="sparse_categorical_crossentropy")
    with contextlib.redirect_stderr(io.StringIO()) as said:
        model.fit(ds.x_train[:1000], ds.y_train[:1000], batch_size=100, epochs=epochs, callbacks=[monitor], verbose=0)
    return [line for line in said.getvalue().splitlines() if line.startswith("gradscope, epoch")]


def test_monitor_warns_once_per_kind_while_the_problem_persists():
    from gradscope import GradientMonitor

    mon = GradientMonitor(diagnose=True)
    messages = _exploding_fit(mon, epochs=3)
    assert mon.records.epoch.max() == 2  # not stopped: three epochs in which to warn again
    warned = Counter(m.split(": ")[1] for m in messages)
    assert {"exploding_gradient", "non_finite"} <= set(warned)
    assert set(warned.values()) == {1}, messages
    # the problems did not go away: every epoch end saw them again, and said nothing more
    assert set(warned) <= {f.kind for f in diagnose(mon.records)}
    assert [f.kind for f in mon.findings] == list(warned)


def test_monitor_stops_on_request():
    from gradscope import GradientMonitor

    mon = GradientMonitor(stop_on=("non_finite", "exploding_gradient"))
    assert _exploding_fit(mon, epochs=5)
    assert mon.findings and mon.records.epoch.max() == 0  # stopped after the first epoch
    with pytest.raises(ValueError, match="unknown kind"):
        GradientMonitor(stop_on=("vanish",))


def test_full_batch_runs_are_judged_on_their_first_tenth_not_their_first_step():
    """Every full-batch step is an epoch: one slow first step is not a vanishing gradient."""
    frames = []
    meta = [(layer, i, "kernel") for i, layer in enumerate(LAYERS)]
    weight = np.array([30.0, 16.0, 11.0, 4.0])
    for step in range(100):
        first_layer = 0.005 if step == 0 else 0.05  # slow only at the very first step
        rel = np.array([first_layer, 0.1, 0.15, 0.2])
        frames.append(rec.from_step_arrays("r", np.array([step]), step, meta,
                                           {"grad_norm": (rel * weight)[None], "weight_norm": weight[None],
                                            "update_norm": (0.1 * rel * weight)[None]}))
        frames.append(rec.from_logs("r", step, step, {"loss": 2.3 * 0.99 ** step, "accuracy": 0.9}))
    assert kinds(rec.concat(frames)) == set()


def test_a_softmax_under_from_logits_is_low_on_tensorflow_which_uses_the_logits_and_medium_elsewhere():
    from gradscope.diagnosis.facts import facts_of
    from gradscope.diagnosis.rules.output_pairing import check
    from gradscope.diagnosis.settings import DiagnosisSettings

    class Timeline:
        losses, first_step, last_step, non_finite = [2.3, 1.2], 0, 99, None

    def meta(**versions):
        return {"config": {}, "versions": versions, "model": {
            "loss": "sparse_categorical_crossentropy(from_logits=True)", "layers": [
                {"name": "h", "class": "Dense", "activation": "relu", "params": 30},
                {"name": "out", "class": "Dense", "activation": "softmax", "units": 10, "params": 11}]}}

    found = {backend: check(Timeline(), facts_of(meta(**versions)), DiagnosisSettings())
             for backend, versions in {"tensorflow": {"keras_backend": "tensorflow"}, "jax": {"keras_backend": "jax"},
                                       "older run": {"tensorflow": "2.18.0"}}.items()}
    assert found["tensorflow"].severity == "low" and "this training was not hurt" in found["tensorflow"].summary
    assert found["tensorflow"].evidence["training_used_the_logits"] is True
    assert found["jax"].severity == "medium" and "squashed" in found["jax"].summary
    assert found["older run"].severity == "low"  # recorded before the backend was written down: TensorFlow's


def test_the_facts_read_initializer_and_logits_as_data_not_text():
    import keras

    from gradscope.diagnosis.facts import facts_of
    from gradscope.recorders.run_description import describe_model

    model = keras.Sequential([keras.Input((4,)),
                              keras.layers.Dense(8, activation="tanh", name="h",
                                                 kernel_initializer=keras.initializers.TruncatedNormal(stddev=1.5)),
                              keras.layers.Dense(3, name="out")])
    model.compile(optimizer="sgd", loss=keras.losses.CategoricalCrossentropy(from_logits=True))
    described = describe_model(model)
    for layer in described["layers"]:
        layer.pop("kernel_initializer")  # the text is for people: the facts must not need it
    described["loss"] = "categorical_crossentropy"
    facts = facts_of({"config": {}, "model": described})
    assert described["layers"][0]["kernel_initializer_config"] == {"class": "TruncatedNormal", "mean": 0.0,
                                                                   "stddev": 1.5}
    assert facts.large_random_init and facts.from_logits is True
