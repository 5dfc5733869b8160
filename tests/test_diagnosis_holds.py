"""The diagnosis on other people's models: each failure class found on real models, fixed and checked.

Constructed records check a rule's logic; small real trainings check that what gradscope
records of a real model leads to the right finding (and to no wrong one).
"""

import contextlib
import io
import json
import warnings

import keras
import numpy as np
import pytest
from click.testing import CliRunner

from gradscope import GradientMonitor, audit
from gradscope import records as rec
from gradscope.cli import main
from gradscope.diagnosis import diagnose, facts_of
from gradscope.diagnosis.timeline import Timeline
from gradscope.storage import load_run

LAYERS = ["dense_0", "dense_1", "dense_2", "output"]
META = [(layer, i, "kernel") for i, layer in enumerate(LAYERS)]
rng = np.random.default_rng(7)


def run_records(speeds_by_step, weight=(30.0, 16.0, 11.0, 4.0), steps_per_epoch=10, loss=None):
    """Records whose update_ratio per layer follows ``speeds_by_step(step)``, with a falling loss."""
    frames = []
    n_steps = len(speeds_by_step)
    weight = np.array(weight)
    for step, speed in enumerate(speeds_by_step):
        speed = np.array(speed)
        frames.append(rec.from_step_arrays("r", np.array([step]), step // steps_per_epoch, META,
                                           {"grad_norm": (10 * speed * weight)[None], "weight_norm": weight[None],
                                            "update_norm": (speed * weight)[None]}))
    epochs = n_steps // steps_per_epoch
    losses = loss if loss is not None else [2.3 * 0.97 ** e for e in range(epochs)]  # not fitted within 100 epochs
    for e in range(epochs):
        frames.append(rec.from_logs("r", (e + 1) * steps_per_epoch - 1, e, {"loss": losses[e], "accuracy": 0.6}))
    return rec.concat(frames)


def kinds(findings):
    return {f.kind for f in findings}


# 1. a median update ratio of exactly 0 ------------------------------------------------------------

def test_a_layer_that_never_moves_does_not_crash_the_diagnosis(tmp_path):
    records = run_records([[0.0, 0.001, 0.002, 0.01]] * 40)
    found = diagnose(records)  # no ZeroDivisionError
    assert "exploding_gradient" not in kinds(found)
    from gradscope.storage import RunWriter

    writer = RunWriter(tmp_path / "runs" / "r", {})
    writer.append(records)
    writer.finish()
    r = CliRunner().invoke(main, ["diagnose", str(tmp_path)])
    assert r.exit_code == 0 and "Traceback" not in r.output


# 3. findings do not depend on how long the run was, and say when they held -----------------------

def test_a_problem_seen_early_stays_in_the_history_and_says_when_it_went_away():
    vanishing = [0.0001, 0.001, 0.005, 0.02]
    evened = [0.004, 0.005, 0.005, 0.006]  # Adam evening the layers out later on
    short = run_records([vanishing] * 100 + [evened] * 900)
    long = run_records([vanishing] * 100 + [evened] * 1400)
    for records, end in ((short, 999), (long, 1499)):
        (f,) = [f for f in diagnose(records) if f.kind == "vanishing_gradient"]
        assert f.evidence["held_in_steps"] == [[0, 99]] and f.evidence["resolved_at_step"] == 100
        assert "held in steps 0-99; gone from step 100" in f.summary and f.steps == [0, 99]
    still = run_records([vanishing] * 300)
    (f,) = [f for f in diagnose(still) if f.kind == "vanishing_gradient"]
    assert f.evidence["resolved_at_step"] is None and "still there at the end" in f.summary


def test_online_diagnosis_judges_each_window_once(monkeypatch):
    from gradscope.diagnosis import timeline as T
    from gradscope.diagnosis.online import OnlineDiagnosis

    calls = []
    real = T.summarize
    monkeypatch.setattr(T, "summarize", lambda *a, **k: calls.append(1) or real(*a, **k))
    online = OnlineDiagnosis()
    records = run_records([[0.004, 0.005, 0.005, 0.006]] * 300)
    for epoch in range(30):
        online.check(records[records.epoch == epoch], epoch)
    assert len(calls) == 30  # one summary per window (epoch), not one per epoch per window so far


# 4. NaN from the loss, not from exploding gradients --------------------------------------------------

def _two_class(n=200):
    x = rng.normal(size=(n, 6)).astype("float32")
    return x, (x[:, 0] > 0).astype("int64")


def crossentropy_by_hand(y, p):
    """Cross-entropy as people write it, without clipping: log(0) = -inf, and 0 * -inf = NaN."""
    import tensorflow as tf

    onehot = tf.one_hot(tf.cast(tf.reshape(y, [-1]), tf.int32), 2)
    return -tf.reduce_mean(tf.reduce_sum(onehot * tf.math.log(p), axis=-1))


def _relu_head_model(loss):
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((6,)), keras.layers.Dense(8, activation="relu", name="h"),
                              keras.layers.Dense(2, activation="relu", name="head",
                                                 bias_initializer=keras.initializers.Constant(-5.0))])
    model.compile(optimizer=keras.optimizers.SGD(0.01), loss=loss)
    return model


def _fit_and_diagnose(model, x, y, tmp_path, epochs=2):
    model.fit(x, y, batch_size=20, epochs=epochs, callbacks=[GradientMonitor(run_dir=tmp_path / "r")], verbose=0)
    run = load_run(tmp_path / "r")
    return {f.kind: f for f in diagnose(run.records, facts=facts_of(run.meta))}


def test_nan_from_the_loss_is_traced_to_the_loss_not_called_exploding(tmp_path):
    x, y = _two_class()
    found = _fit_and_diagnose(_relu_head_model(crossentropy_by_hand), x, y, tmp_path)
    assert "non_finite" in found and "exploding_gradient" not in found
    assert found["non_finite"].evidence["cause"] == "loss"
    assert found["non_finite"].evidence["grad_norm_growth_before"] < 10
    assert "lowering the learning rate will not help" in found["non_finite"].recommendation


def test_a_relu_output_with_cross_entropy_is_a_pairing_problem(tmp_path):
    x, y = _two_class()
    found = _fit_and_diagnose(_relu_head_model("sparse_categorical_crossentropy"), x, y, tmp_path)
    assert "output_pairing" in found and "exploding_gradient" not in found
    assert "expects probabilities" in found["output_pairing"].summary
    assert "activation='softmax'" in found["output_pairing"].recommendation


def test_an_exploding_relu_net_is_traced_to_the_explosion(tmp_path):
    x, y = _two_class()
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((6,))] + [
        keras.layers.Dense(64, activation="relu", kernel_initializer=keras.initializers.RandomNormal(stddev=1.0),
                           name=f"h{i}") for i in range(6)] + [keras.layers.Dense(2, activation="softmax", name="head")])
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss="sparse_categorical_crossentropy")
    model.fit(x, y, batch_size=20, epochs=2, callbacks=[GradientMonitor(run_dir=tmp_path / "r")], verbose=0)
    run = load_run(tmp_path / "r")
    found = {f.kind: f for f in diagnose(run.records, facts=facts_of(run.meta))}
    assert {"non_finite", "exploding_gradient"} <= set(found)
    assert found["non_finite"].evidence["cause"] == "explosion"
    assert "N(0,1) weights" in found["exploding_gradient"].why  # read from the layers' initializer


# 5. a zero-initialised output layer is healthy -------------------------------------------------------

def test_a_zero_initialised_output_layer_is_healthy_for_the_monitor_and_for_audit(tmp_path):
    x, y = _two_class(400)
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((6,))] + [keras.layers.Dense(32, activation="relu", kernel_initializer="he_normal",
                                                                       name=f"h{i}") for i in range(3)]
                             + [keras.layers.Dense(2, activation="softmax", kernel_initializer="zeros", name="head")])
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    assert kinds(audit(model, x, y)) == set()
    model.fit(x, y, batch_size=20, epochs=5, callbacks=[GradientMonitor(run_dir=tmp_path / "r")], verbose=0)
    run = load_run(tmp_path / "r")
    assert run.records.query("metric == 'weight_norm_initial' and layer == 'head' and variable == 'kernel'").value.item() == 0
    assert kinds(diagnose(run.records, facts=facts_of(run.meta))) == set()


# 6. chance accuracy from the model, not from the command line's 10 classes --------------------------

def test_a_two_class_model_at_chance_is_stalled():
    records = run_records([[0.004, 0.005, 0.005, 0.006]] * 50, loss=[0.70, 0.695, 0.694, 0.693, 0.693])
    records.loc[records.metric == "accuracy", "value"] = 0.5
    binary = facts_of({"model": {"loss": "binary_crossentropy",
                                 "layers": [{"name": "head", "class": "Dense", "activation": "sigmoid", "units": 1,
                                             "params": 5}]}})
    assert binary.n_classes == 2
    (f,) = [f for f in diagnose(records, facts=binary) if f.kind == "stalled"]
    assert f.evidence["chance_accuracy"] == 0.5 and "for 2 classes" in f.summary
    assert "stalled" in kinds(diagnose(records, facts=facts_of({"config": {}})))  # the loss alone says so too


# 7. no stall warning at epoch 2 of a healthy run; audit does not call a 2-layer net vanishing ---------

def test_a_healthy_run_gets_no_early_stall_warning_and_audit_spares_shallow_nets():
    from gradscope import data
    from gradscope.models import build_mlp

    ds = data.load("sample")
    model = build_mlp([64], act="relu", init="he")
    model.compile(optimizer=keras.optimizers.SGD(0.01), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    assert kinds(audit(model, ds.x_train, ds.y_train)) == set()
    mon = GradientMonitor(diagnose=True)
    with warnings.catch_warnings(record=True) as caught, contextlib.redirect_stderr(io.StringIO()) as said:
        warnings.simplefilter("always")
        model.fit(ds.x_train[:1000], ds.y_train[:1000], batch_size=50, epochs=3, callbacks=[mon], verbose=0)
    assert not [w for w in caught if "gradscope" in str(w.message)], [str(w.message) for w in caught]
    assert "gradscope" not in said.getvalue()


# 2. the probe gathers rows from several small batches -----------------------------------------------

def test_with_batch_size_one_the_probe_still_has_256_rows():
    x, y = _two_class(300)
    model = keras.Sequential([keras.Input((6,)), keras.layers.Dense(16, activation="relu", name="h"),
                              keras.layers.Dense(2, activation="softmax", name="head")])
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    mon = GradientMonitor()
    model.fit(x, y, batch_size=1, epochs=1, shuffle=False, callbacks=[mon], verbose=0)
    assert mon._probes.inputs.shape == (256, 6)
    h = np.maximum(x[:256] @ model.get_layer("h").kernel.numpy() + model.get_layer("h").bias.numpy(), 0)
    dead = mon.records.query("metric == 'dead_frac' and layer == 'h'").value.item()
    assert dead == pytest.approx(np.mean(np.all(h == 0, axis=0)))


def test_timeline_from_records_matches_epoch_by_epoch():
    records = run_records([[0.0001, 0.001, 0.005, 0.02]] * 30 + [[0.004, 0.005, 0.005, 0.006]] * 30)
    whole = Timeline.from_records(records)
    online = Timeline()
    for e in range(6):
        online.add(records[records.epoch == e])
    online.finish()
    assert [(w.first_step, w.last_step) for w in whole.windows] == [(w.first_step, w.last_step) for w in online.windows]
    assert json.dumps(diagnose(records).to_dict(), sort_keys=True) == json.dumps(
        [f.to_dict() for f in __import__("gradscope.diagnosis", fromlist=["judge"]).judge(online, facts_of({}))],
        sort_keys=True)


def test_once_the_training_data_is_fitted_slow_layers_and_a_slowly_falling_loss_are_no_problem():
    # a converged run: the head still moves 100x faster than the input layer, but the loss is ~1e-3
    slow_input = [0.00001, 0.0001, 0.0003, 0.001]
    fitted = [0.01 * 0.7 ** e for e in range(40)]
    found = kinds(diagnose(run_records([slow_input] * 400, loss=fitted), facts=facts_of(config={})))
    assert "vanishing_gradient" not in found and "slow_convergence" not in found
    learning = [2.3 * 0.95 ** e for e in range(40)]  # the same speeds while there is still much to learn
    found = kinds(diagnose(run_records([slow_input] * 400, loss=learning), facts=facts_of(config={})))
    assert {"vanishing_gradient", "slow_convergence"} <= found
