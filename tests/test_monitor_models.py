"""GradientMonitor on many kinds of Keras models and fit calls, each checked against GradientTape.

Every check compares the recorded ``grad_norm`` of a step with the gradient that an independent
``tf.GradientTape`` computation gives for the same batch and the same weights.
"""

import json
import os
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest
import tensorflow as tf

from gradscope import GradientMonitor
from gradscope import records as rec

RTOL = 1e-5
rng = np.random.default_rng(0)


def expected_grad_norms(model, x, y, sample_weight=None):
    """Gradient norms of the compiled loss at the current weights, by GradientTape."""
    with tf.GradientTape() as tape:
        y_pred = model(x, training=True)
        loss = model.compute_loss(x=x, y=y, y_pred=y_pred, sample_weight=sample_weight)
    grads = tape.gradient(loss, model.trainable_variables)
    return np.array([0.0 if g is None else np.linalg.norm(tf.convert_to_tensor(g).numpy()) for g in grads])


def recorded(monitor, step, metric="grad_norm"):
    r = monitor.records
    return r[(r.step == step) & (r.metric == metric)].value.to_numpy()


def check_one_step(model, x, y, rtol=RTOL, sample_weight=None, **fit_kwargs):
    """Fit one full-batch step and compare its recorded gradient norms with GradientTape."""
    expect = expected_grad_norms(model, x, y, sample_weight=sample_weight)
    step = int(model.optimizer.iterations.numpy())
    mon = GradientMonitor(probe=False)
    n = len(tf.nest.flatten(x)[0])
    model.fit(x, y, batch_size=n, epochs=1, shuffle=False, callbacks=[mon], verbose=0,
              sample_weight=sample_weight, **fit_kwargs)
    got = recorded(mon, step)
    assert len(got) == len(model.trainable_variables)
    np.testing.assert_allclose(got, expect, rtol=rtol)
    return mon


def layers_of(monitor):
    r = monitor.records[monitor.records.metric == "grad_norm"]
    return r.drop_duplicates(["layer", "variable"])[["layer", "depth", "variable"]].values.tolist()


def test_functional_with_two_inputs_and_two_outputs():
    a, b = keras.Input((6,), name="a"), keras.Input((4,), name="b")
    h = keras.layers.Dense(8, activation="tanh", name="ha")(a)
    g = keras.layers.Dense(8, activation="relu", name="hb")(b)
    merged = keras.layers.Concatenate()([h, g])
    out1 = keras.layers.Dense(3, activation="softmax", name="cls")(merged)
    out2 = keras.layers.Dense(1, name="reg")(merged)
    model = keras.Model([a, b], [out1, out2])
    model.compile(optimizer="sgd", loss=["sparse_categorical_crossentropy", "mse"], loss_weights=[1.0, 0.5])
    x = [rng.normal(size=(32, 6)).astype("float32"), rng.normal(size=(32, 4)).astype("float32")]
    y = [rng.integers(0, 3, 32), rng.normal(size=(32, 1)).astype("float32")]
    mon = check_one_step(model, x, y)
    names = [row[:2] for row in layers_of(mon)[::2]]
    assert names == [["ha", 0], ["hb", 1], ["cls", 2], ["reg", 3]]


def test_subclassed_model():
    class Net(keras.Model):
        def __init__(self):
            super().__init__()
            self.hidden = keras.layers.Dense(16, activation="sigmoid", name="hidden")
            self.out = keras.layers.Dense(3, name="logits")

        def call(self, x):
            return self.out(self.hidden(x))

    model = Net()
    model.compile(optimizer="adam", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    x, y = rng.normal(size=(20, 5)).astype("float32"), rng.integers(0, 3, 20)
    model(x)
    mon = check_one_step(model, x, y)
    assert [row[0] for row in layers_of(mon)] == ["hidden", "hidden", "logits", "logits"]


def test_conv_batchnorm_and_frozen_layer():
    model = keras.Sequential([
        keras.Input((8, 8, 1)),
        keras.layers.Conv2D(4, 3, activation="relu", name="conv"),
        keras.layers.BatchNormalization(name="bn"),
        keras.layers.Flatten(),
        keras.layers.Dense(6, activation="relu", name="frozen"),
        keras.layers.Dense(2, activation="softmax", name="head"),
    ])
    model.get_layer("frozen").trainable = False
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    x, y = rng.normal(size=(16, 8, 8, 1)).astype("float32"), rng.integers(0, 2, 16)
    mon = check_one_step(model, x, y)
    rows = layers_of(mon)
    assert [r[0] for r in rows] == ["conv", "conv", "bn", "bn", "head", "head"]  # frozen + moving stats skipped
    assert {r[2] for r in rows if r[0] == "bn"} == {"gamma", "beta"}


def test_lstm_and_embedding_sparse_gradients():
    model = keras.Sequential([
        keras.Input((5,), dtype="int32"),
        keras.layers.Embedding(50, 8, name="embed"),
        keras.layers.LSTM(6, name="lstm"),
        keras.layers.Dense(2, activation="softmax", name="head"),
    ])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    x = rng.integers(0, 10, size=(12, 5)).astype("int32")  # repeated ids: sparse rows are summed
    y = rng.integers(0, 2, 12)
    mon = check_one_step(model, x, y, rtol=1e-4)
    assert [r[0] for r in layers_of(mon)] == ["embed", "lstm", "lstm", "lstm", "head", "head"]


def test_shared_layer_and_nested_model():
    shared = keras.layers.Dense(4, activation="relu", name="shared")
    inner = keras.Sequential([keras.layers.Dense(4, activation="tanh", name="inner_dense")], name="block")
    a, b = keras.Input((3,)), keras.Input((3,))
    merged = keras.layers.Add()([shared(a), shared(b)])
    out = keras.layers.Dense(1, name="out")(inner(merged))
    model = keras.Model([a, b], out)
    model.compile(optimizer="sgd", loss="mse")
    x = [rng.normal(size=(10, 3)).astype("float32"), rng.normal(size=(10, 3)).astype("float32")]
    y = rng.normal(size=(10, 1)).astype("float32")
    mon = check_one_step(model, x, y)
    assert [r[:2] for r in layers_of(mon)[::2]] == [["shared", 0], ["block/inner_dense", 1], ["out", 2]]


def _mlp(act="relu", **compile_kwargs):
    model = keras.Sequential([keras.Input((10,)), keras.layers.Dense(8, activation=act, name="h"),
                              keras.layers.Dense(3, activation="softmax", name="o")])
    model.compile(optimizer=compile_kwargs.pop("optimizer", "sgd"), loss="sparse_categorical_crossentropy",
                  **compile_kwargs)
    return model


def _xy(n=40):
    return rng.normal(size=(n, 10)).astype("float32"), rng.integers(0, 3, n)


def test_sample_weight_and_class_weight():
    x, y = _xy()
    model = _mlp()
    check_one_step(model, x, y, sample_weight=rng.uniform(0.1, 2, len(y)).astype("float32"))
    model = _mlp()
    class_weight = {0: 0.2, 1: 1.0, 2: 3.0}
    expect = expected_grad_norms(model, x, y, sample_weight=np.array([class_weight[c] for c in y], "float32"))
    mon = GradientMonitor(probe=False)
    model.fit(x, y, batch_size=len(x), class_weight=class_weight, shuffle=False, callbacks=[mon], verbose=0)
    np.testing.assert_allclose(recorded(mon, 0), expect, rtol=RTOL)


def test_tf_data_generator_steps_per_epoch_and_validation():
    x, y = _xy(60)
    model = _mlp()
    mon = GradientMonitor(probe=False)
    ds = tf.data.Dataset.from_tensor_slices((x, y)).batch(20).repeat()
    model.fit(ds, steps_per_epoch=3, epochs=2, validation_data=(x[:10], y[:10]), callbacks=[mon], verbose=0)

    def gen():
        while True:
            for i in range(0, 60, 20):
                yield x[i:i + 20], y[i:i + 20]

    model.fit(gen(), steps_per_epoch=4, epochs=1, callbacks=[mon], verbose=0)
    r = mon.records
    assert sorted(r[r.metric == "grad_norm"].step.unique()) == list(range(10))
    assert set(r[r.layer == ""].metric) >= {"loss", "val_loss"}
    # plain SGD moves the weights by exactly lr * gradient
    g9 = recorded(mon, 9)
    u9 = recorded(mon, 9, "update_norm")
    np.testing.assert_allclose(u9, 0.01 * g9, rtol=1e-4)  # Keras' default SGD learning rate


def test_data_of_unknown_length_trains_on_and_records_only_real_steps(tmp_path):
    """A filtered tf.data pipeline or a finite generator without steps_per_epoch ends each epoch
    with a call that finds no batch: fit must go on, the run end complete, and that call (which
    Keras counts as an iteration) must not be recorded as a step."""
    from gradscope.storage import load_run

    x, y = _xy(60)
    model = _mlp()
    mon = GradientMonitor(run_dir=tmp_path / "r")
    ds = tf.data.Dataset.from_tensor_slices((x, y)).filter(lambda a, b: True).batch(20)  # 3 batches, length unknown
    model.fit(ds, epochs=3, callbacks=[mon], verbose=0)

    def gen():
        for i in range(0, 60, 20):
            yield x[i:i + 20], y[i:i + 20]

    model.fit(gen(), epochs=1, callbacks=[mon], verbose=0)
    run = load_run(tmp_path / "r")
    grads = run.records[run.records.metric == "grad_norm"]
    assert run.status == "complete" and run.meta["progress"]["epochs_done"] == 4
    assert grads.groupby("epoch", observed=True).step.nunique().tolist() == [3, 3, 3, 3]  # 3 batches an epoch
    assert (grads.value > 0).all()  # no step made of an unwritten row


class UnbuiltNet(keras.Model):
    """A subclassed model without an input shape: Keras builds it at its first step."""

    def __init__(self):
        super().__init__()
        self.hidden = keras.layers.Dense(8, activation="relu", name="hidden")
        self.head = keras.layers.Dense(3, activation="softmax", name="head")

    def call(self, x):
        return self.head(self.hidden(x))


@pytest.mark.parametrize("kind", ["sequential", "subclassed"])
def test_a_model_built_by_fit_is_recorded_and_trains_exactly_as_without_the_monitor(kind):
    x, y = _xy(60)

    def train(callbacks):
        keras.utils.set_random_seed(0)
        model = (keras.Sequential([keras.layers.Dense(8, activation="relu"), keras.layers.Dense(3, activation="softmax")])
                 if kind == "sequential" else UnbuiltNet())
        model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
        data = tf.data.Dataset.from_tensor_slices((x, y)).batch(20)
        model.fit(data, epochs=2, callbacks=callbacks, verbose=0)
        return model

    mon = GradientMonitor(probe=False)
    monitored, plain = train([mon]), train([])
    for a, b in zip(monitored.get_weights(), plain.get_weights()):
        np.testing.assert_array_equal(a, b)  # built from the data's spec: the same weights drawn, the same steps
    grads = mon.records[mon.records.metric == "grad_norm"]
    assert sorted(grads.step.unique()) == list(range(6)) and grads.groupby("step").size().tolist() == [4] * 6
    assert (grads.value > 0).all()


def test_a_model_that_cannot_be_built_before_fit_is_one_clear_warning(tmp_path, monkeypatch):
    from gradscope.diagnosis import findings_of, verdict
    from gradscope.recorders import keras_compat
    from gradscope.storage import load_run

    monkeypatch.setattr(keras_compat, "build_for_fit", lambda model, fit: False)
    x, y = _xy(60)
    model = keras.Sequential([keras.layers.Dense(8, activation="relu"), keras.layers.Dense(3, activation="softmax")])
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    with pytest.warns(RuntimeWarning, match="has no weights yet") as caught:
        model.fit(x, y, batch_size=20, epochs=2, callbacks=[GradientMonitor(run_dir=tmp_path / "r")], verbose=0)
    assert len([w for w in caught if "gradscope" in str(w.message)]) == 1
    assert "Please report" not in str(caught[0].message)  # the user's to fix, said as such
    run = load_run(tmp_path / "r")
    findings = findings_of(run)
    assert findings[0]["kind"] == "incomplete_run" and findings[0]["severity"] == "high"
    assert verdict(findings) != "healthy" and "model.build" in findings[0]["why"]


@pytest.fixture
def without_op_determinism():
    """Keras refuses XLA while op determinism is on (``gradscope analyze`` turns it on for its runs)."""
    from tensorflow.python.framework import config

    was = config.is_op_determinism_enabled()
    config.disable_op_determinism()
    yield
    if was:
        config.enable_op_determinism()


def test_xla_jit_compile(without_op_determinism):
    x, y = _xy()
    model = _mlp(jit_compile=True)
    assert model.jit_compile is True  # really compiled with XLA, not silently dropped
    check_one_step(model, x, y, rtol=1e-4)


def test_custom_train_step_with_apply_gradients():
    class Custom(keras.Model):
        def train_step(self, data):
            x, y = data
            with tf.GradientTape() as tape:
                loss = self.compute_loss(x=x, y=y, y_pred=self(x, training=True))
            grads = tape.gradient(loss, self.trainable_variables)
            self.optimizer.apply_gradients(zip(grads, self.trainable_variables))
            return {"loss": loss}

    inp = keras.Input((10,))
    out = keras.layers.Dense(3, activation="softmax", name="o")(keras.layers.Dense(8, name="h")(inp))
    model = Custom(inp, out)
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    x, y = _xy()
    check_one_step(model, x, y)


def test_clipnorm_records_the_clipped_gradient():
    x, y = _xy()
    model = _mlp(optimizer=keras.optimizers.SGD(0.1, clipnorm=0.05))
    expect = np.minimum(expected_grad_norms(model, x, y), 0.05)
    mon = GradientMonitor(probe=False)
    model.fit(x, y, batch_size=len(x), callbacks=[mon], verbose=0)
    np.testing.assert_allclose(recorded(mon, 0), expect, rtol=1e-4)


@pytest.mark.parametrize("make_optimizer", [
    lambda: keras.optimizers.AdamW(1e-2, weight_decay=0.5),          # decay outside update_step: copy path
    lambda: keras.optimizers.SGD(0.05, momentum=0.9, nesterov=True),  # captured assign_add of the velocity
    lambda: keras.optimizers.RMSprop(1e-2),
])
def test_update_norm_is_the_change_each_step_made(make_optimizer):
    x, y = _xy()
    model = _mlp(optimizer=make_optimizer())
    snapshots = [[v.numpy().copy() for v in model.trainable_variables]]

    class Snapshot(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            snapshots.append([v.numpy().copy() for v in self.model.trainable_variables])

    mon = GradientMonitor(probe=False, every_step="all")
    model.fit(x, y, batch_size=10, epochs=1, shuffle=False, callbacks=[mon, Snapshot()], verbose=0)
    for step in range(4):
        expect = [np.linalg.norm(a - b) for a, b in zip(snapshots[step + 1], snapshots[step])]
        np.testing.assert_allclose(recorded(mon, step, "update_norm"), expect, rtol=1e-4, atol=1e-9)
        np.testing.assert_allclose(recorded(mon, step, "weight_norm"),
                                   [np.linalg.norm(w) for w in snapshots[step + 1]], rtol=1e-5)


def test_mixed_precision_records_unscaled_gradients():
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        model = _mlp(optimizer=keras.optimizers.LossScaleOptimizer(keras.optimizers.SGD(0.01), initial_scale=128.0))
        x, y = _xy()
        model.optimizer.build(model.trainable_variables)
        with tf.GradientTape() as tape:
            loss = model.compute_loss(x=x, y=y, y_pred=model(x, training=True))
            scaled = model.optimizer.scale_loss(loss)
        scale = float(model.optimizer.dynamic_scale.numpy())
        expect = [np.linalg.norm(g.numpy().astype(np.float64)) / scale
                  for g in tape.gradient(scaled, model.trainable_variables)]
        assert np.all(np.isfinite(expect)) and scale == 128.0  # the step is applied, not skipped
        mon = GradientMonitor(probe=False)
        model.fit(x, y, batch_size=len(x), callbacks=[mon], verbose=0)
        np.testing.assert_allclose(recorded(mon, 0), expect, rtol=1e-3)
    finally:
        keras.mixed_precision.set_global_policy("float32")


def test_activation_statistics_on_the_probe_batch():
    x, y = _xy(50)
    model = keras.Sequential([
        keras.Input((10,)),
        keras.layers.Dense(6, activation="sigmoid", name="sig", kernel_initializer=keras.initializers.RandomNormal(stddev=20)),
        keras.layers.Dense(5, name="lin"),
        keras.layers.ReLU(name="relu"),
        keras.layers.Dense(3, activation="softmax", name="o"),
    ])
    model.compile(optimizer=keras.optimizers.SGD(0.0), loss="sparse_categorical_crossentropy")
    mon = GradientMonitor()
    model.fit(x, y, batch_size=20, epochs=1, shuffle=False, callbacks=[mon], verbose=0)
    r = mon.records
    acts = r[r.metric.isin(rec.ACTIVATION_METRICS)]
    assert set(acts.layer) == {"sig", "relu"}
    probe = x  # the first training rows, up to 256, gathered over the first steps (shuffle off): all 50
    sig = keras.activations.sigmoid(probe @ model.get_layer("sig").kernel.numpy() + model.get_layer("sig").bias.numpy()).numpy()
    expect_sat = np.mean((sig <= 0.01) | (sig >= 0.99))
    got = acts[(acts.layer == "sig") & (acts.metric == "saturated_frac")].value.item()
    assert got == pytest.approx(expect_sat) and got > 0.5
    h = np.maximum(sig @ model.get_layer("lin").kernel.numpy() + model.get_layer("lin").bias.numpy(), 0)
    got_dead = acts[(acts.layer == "relu") & (acts.metric == "dead_frac")].value.item()
    assert got_dead == pytest.approx(np.mean(np.all(h == 0, axis=0)))
    assert acts[(acts.layer == "relu") & (acts.metric == "act_mean")].value.item() == pytest.approx(h.mean(), rel=1e-5)
    # the Activation-style layer lines up with the Dense before it
    assert acts[acts.layer == "relu"].depth.iloc[0] == 1


def test_explicit_probe_and_probe_off():
    x, y = _xy(30)
    model = _mlp(act="relu")
    mon = GradientMonitor(probe=x[:7])
    model.fit(x, y, batch_size=10, callbacks=[mon], verbose=0)
    assert "dead_frac" in set(mon.records.metric)
    mon = GradientMonitor(probe=False)
    model.fit(x, y, batch_size=10, callbacks=[mon], verbose=0)
    assert not set(mon.records.metric) & set(rec.ACTIVATION_METRICS)


def test_window_steps_aggregate_every_step_on_the_host():
    x, y = _xy(100)
    model = _mlp()
    w0 = model.get_weights()
    full = GradientMonitor(probe=False)
    model.fit(x, y, batch_size=10, epochs=2, shuffle=False, callbacks=[full], verbose=0)
    model.set_weights(w0)
    model.optimizer.iterations.assign(0)
    agg = GradientMonitor(probe=False, window_steps=4)
    model.fit(x, y, batch_size=10, epochs=2, shuffle=False, callbacks=[agg], verbose=0)
    g = full.records[full.records.metric == "grad_norm"].pivot(index="step", columns=["layer", "variable"], values="value")
    a = agg.records
    steps = sorted(a[a.metric == "grad_norm"].step.unique())
    assert steps == [3, 7, 11, 15, 19]  # windows of 4 steps; the last one (16-19) is complete
    for end in steps:  # window 8-11 spans the epoch end: its steps wait on the host for the next epoch
        mean = a[(a.step == end) & (a.metric == "grad_norm")].value.to_numpy()
        peak = a[(a.step == end) & (a.metric == "grad_norm_max")].value.to_numpy()
        np.testing.assert_allclose(mean, g.loc[end - 3:end].mean().to_numpy(), rtol=1e-5)
        np.testing.assert_allclose(peak, g.loc[end - 3:end].max().to_numpy(), rtol=1e-5)
    u = full.records[full.records.metric == "update_norm"].pivot(index="step", columns=["layer", "variable"], values="value")
    np.testing.assert_allclose(a[(a.step == 11) & (a.metric == "update_norm")].value.to_numpy(),
                               u.loc[11].to_numpy(), rtol=1e-5)
    w19 = full.records[(full.records.step == 19) & (full.records.metric == "weight_norm")].value.to_numpy()
    np.testing.assert_allclose(a[(a.step == 19) & (a.metric == "weight_norm")].value.to_numpy(), w19, rtol=1e-5)


def test_window_steps_partial_window_is_kept():
    x, y = _xy(50)
    model = _mlp()
    mon = GradientMonitor(probe=False, window_steps=4)
    model.fit(x, y, batch_size=10, epochs=1, callbacks=[mon], verbose=0)  # 5 steps: 4 + 1
    r = mon.records
    assert sorted(r[r.metric == "grad_norm"].step.unique()) == [3, 4]
    # the open window's record: its one step, as recorded every step
    assert set(r[r.step == 4].metric) >= {"grad_norm", "grad_norm_max", "update_norm", "update_ratio"}


@pytest.mark.parametrize("window_steps", [1, 4])
def test_nan_gradients_are_kept_and_terminate_on_nan_composes(window_steps):
    x, y = _xy()
    model = _mlp(optimizer=keras.optimizers.SGD(1e9))
    mon = GradientMonitor(probe=False, window_steps=window_steps)
    model.fit(x * 1e3, y, batch_size=5, epochs=3, callbacks=[mon, keras.callbacks.TerminateOnNaN()], verbose=0)
    g = mon.records.query("metric == 'grad_norm'").value
    assert (~np.isfinite(g)).any()
    if window_steps > 1:
        assert (~np.isfinite(mon.records.query("metric == 'grad_norm_max'").value)).any()
    assert mon.records.step.max() < 3 * 8 - 1  # stopped early


def test_tensorboard_scalars(tmp_path):
    pytest.importorskip("tensorboard")
    x, y = _xy()
    model = _mlp()
    mon = GradientMonitor(probe=False, tensorboard_dir=tmp_path / "tb")
    model.fit(x, y, batch_size=10, epochs=1, callbacks=[mon], verbose=0)
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(tmp_path / "tb"))
    acc.Reload()
    tags = acc.Tags()["tensors"]
    assert "gradscope/grad_norm/h/kernel" in tags
    events = acc.Tensors("gradscope/grad_norm/h/kernel")
    assert [e.step for e in events] == [0, 1, 2, 3]
    got = [float(tf.make_ndarray(e.tensor_proto)) for e in events]
    np.testing.assert_allclose(got, recorded_series(mon, "h", "kernel"), rtol=1e-6)


def test_tensorboard_gets_the_learning_speed_activation_statistics_and_the_findings(tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    x, y = _xy()
    mon = GradientMonitor(tensorboard_dir=tmp_path / "tb", diagnose=True)
    _mlp().fit(x, y, batch_size=10, epochs=2, callbacks=[mon], verbose=0)
    acc = EventAccumulator(str(tmp_path / "tb"), size_guidance={"tensors": 0})
    acc.Reload()
    r = mon.records

    def series(tag):
        return [(e.step, float(tf.make_ndarray(e.tensor_proto))) for e in acc.Tensors(tag)]

    ratio = r[(r.metric == "update_ratio") & (r.layer == "h") & (r.variable == "kernel")].sort_values("step")
    got = series("gradscope/update_ratio/h/kernel")
    assert [s for s, _ in got] == ratio.step.tolist()
    np.testing.assert_allclose([v for _, v in got], ratio.value, rtol=1e-6)
    for metric in ("act_mean", "act_std", "dead_frac"):  # (a ReLU layer has no saturated_frac)
        stats = r[(r.metric == metric) & (r.layer == "h")].sort_values("step")
        assert len(stats) == 2  # one a probe, at each epoch end
        np.testing.assert_allclose([v for _, v in series(f"gradscope/{metric}/h")], stats.value, rtol=1e-6)
    text = tf.make_ndarray(acc.Tensors("gradscope/findings")[-1].tensor_proto).item().decode()
    assert text.startswith("run complete") and all(f"**{f.kind}**" in text for f in mon.findings)
    for metric, tag in (("grad_hist", "gradscope/grad_hist/h/kernel"), ("act_hist", "gradscope/act_hist/h")):
        events = acc.Tensors(tag)  # before the first step (written at 0) and at each epoch end
        assert acc.summary_metadata[tag].plugin_data.plugin_name == "histograms"
        stored = r[(r.metric == metric) & (r.layer == "h")]
        assert [e.step for e in events] == [max(s, 0) for s in sorted(stored.step.unique())]
        for event, (_, rows) in zip(events, stored.groupby("step")):
            table = tf.make_ndarray(event.tensor_proto)  # (left, right, count) of every finite bin
            assert table.shape[1] == 3 and np.all(table[:, 0] < table[:, 1])
            counts = np.zeros(len(table))
            counts[rows.bin.to_numpy()] = rows.value.to_numpy()
            np.testing.assert_array_equal(table[:, 2], counts)


def recorded_series(mon, layer, variable):
    r = mon.records
    return r[(r.layer == layer) & (r.variable == variable) & (r.metric == "grad_norm")].sort_values("step").value.to_numpy()


MIRRORED_SCRIPT = textwrap.dedent(
    """
    import json, os, sys
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
    import numpy as np, tensorflow as tf, keras
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    from gradscope import GradientMonitor
    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 10)).astype("float32"); y = rng.integers(0, 3, 64)
    def build():
        m = keras.Sequential([keras.Input((10,)), keras.layers.Dense(8, activation="relu", name="h"),
                              keras.layers.Dense(3, activation="softmax", name="o")])
        m.compile(optimizer=keras.optimizers.SGD(0.1), loss="sparse_categorical_crossentropy")
        return m
    with strategy.scope():
        model = build()
    single = build()
    single.set_weights(model.get_weights())
    with tf.GradientTape() as tape:
        loss = single.compute_loss(x=x, y=y, y_pred=single(x, training=True))
    expect = [float(np.linalg.norm(g.numpy())) for g in tape.gradient(loss, single.trainable_variables)]
    mon = GradientMonitor(probe=False)
    model.fit(x, y, batch_size=64, epochs=2, shuffle=False, callbacks=[mon], verbose=0)
    r = mon.records
    got = r[(r.step == 0) & (r.metric == "grad_norm")].value.tolist()
    steps = sorted(r[r.metric == "grad_norm"].step.unique().tolist())
    print(json.dumps({"replicas": strategy.num_replicas_in_sync, "expect": expect, "got": got, "steps": steps}))
    """
)


def test_mirrored_strategy_records_the_reduced_gradient(tmp_path):
    script = tmp_path / "mirrored.py"
    script.write_text(MIRRORED_SCRIPT)
    proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PYTHONPATH": os.getcwd()})
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["replicas"] == 2
    assert out["steps"] == [0, 1]  # one record per step, not one per replica
    np.testing.assert_allclose(out["got"], out["expect"], rtol=1e-5)


def test_a_second_fit_on_the_same_arrays_is_not_described_again_and_new_arrays_are(tmp_path, monkeypatch):
    from gradscope.recorders import monitor as monitor_module

    calls = []
    real = monitor_module.describe_fit_data
    monkeypatch.setattr(monitor_module, "describe_fit_data", lambda fit: calls.append(1) or real(fit))
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(64, 4)).astype("float32"), rng.integers(0, 2, 64)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, activation="relu"),
                              keras.layers.Dense(2, activation="softmax")])
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    mon = GradientMonitor(run_dir=tmp_path / "run")
    for _ in range(2):
        model.fit(x, y, batch_size=32, epochs=1, verbose=0, callbacks=[mon])
    assert len(calls) == 1
    x[-1, -1] = 1000.0  # the same array changed in place: described again
    model.fit(x, y, batch_size=32, epochs=1, verbose=0, callbacks=[mon])
    assert len(calls) == 2 and mon.writer.meta["data"]["inputs"]["max"] == 1000.0
    model.fit(x * 100, y, batch_size=32, epochs=1, verbose=0, callbacks=[mon])  # new arrays
    assert len(calls) == 3


@pytest.mark.parametrize("dtype", ["float32", "float64", "uint8"])
def test_the_input_description_matches_nan_aware_numpy_on_its_sample(dtype):
    from gradscope.recorders.data_description import describe_inputs

    rng = np.random.default_rng(3)
    x = (rng.normal(size=(900, 6)) * [1, 10, 100, 0.01, 2000, 1] + [0, 5, 2000, 0, 0, 1e6]).astype(dtype)
    for data in (x, np.where(np.arange(x.size).reshape(x.shape) == 7, np.nan, x.astype("float64"))):
        d = describe_inputs(data)
        flat = np.asarray(data, dtype=np.float64)  # 900 rows: the whole array is the sample
        mean, std = np.nanmean(flat, axis=0), np.nanstd(flat, axis=0)
        assert d["max_abs_mean"] == pytest.approx(np.abs(mean).max(), rel=1e-9)
        assert d["max_std"] == pytest.approx(std.max(), rel=1e-9)
        assert d["min_std"] == pytest.approx(std[std > 0].min(), rel=1e-6)
        assert d["rms"] == pytest.approx(np.sqrt(np.nanmean(flat ** 2)), rel=1e-9)
        assert (d["min"], d["max"]) == (np.nanmin(flat), np.nanmax(flat))
        assert d["non_finite"] == int(np.isnan(flat).sum())


@pytest.mark.slow  # six fits, 7 s
def test_a_loop_of_fresh_models_does_not_show_tf_retracing_warnings(caplog):
    x, y = rng.normal(size=(32, 4)).astype("float32"), rng.integers(0, 3, 32)
    with caplog.at_level("WARNING", logger="tensorflow"):
        for _ in range(6):  # TF warns when 5 of its last 10 calls traced: each fresh model's probe traces once
            model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, activation="tanh"),
                                      keras.layers.Dense(3, activation="softmax")])
            model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
            model.fit(x, y, batch_size=16, epochs=1, verbose=0, callbacks=[GradientMonitor()])
    ours = [r for r in caplog.records if "retracing" in r.getMessage() and "Probe" in r.getMessage()]
    assert not ours  # (Keras' own train function may still warn: it is traced once per model too)


def test_histograms_hold_every_value_of_the_probe_batch_and_match_gradient_tape():
    from gradscope.histograms import bin_counts, n_bins

    x, y = _xy()
    model = _mlp()
    start = [v.numpy().copy() for v in model.trainable_variables]
    mon = GradientMonitor(probe=(x[:16], y[:16]))
    model.fit(x, y, batch_size=10, epochs=2, shuffle=False, callbacks=[mon], verbose=0)
    r = mon.records
    hist = r[r.metric.str.endswith("_hist")]
    assert sorted(hist.step.unique()) == [-1, 3, 7]  # before the first step, then each epoch's last
    assert set(hist.epoch.unique()) == {-1, 0, 1} and (r[r.bin >= 0].metric.str.endswith("_hist")).all()
    sizes = {("weight_hist", "h"): 10 * 8, ("grad_hist", "h"): 10 * 8, ("weight_hist", "o"): 8 * 3,
             ("grad_hist", "o"): 8 * 3, ("act_hist", "h"): 16 * 8}  # every entry; 16 probe rows x 8 units
    totals = hist.groupby(["metric", "layer", "step"]).value.sum()
    for (metric, layer, step), total in totals.items():
        assert total == sizes[(metric, layer)], (metric, layer, step)
    # before the first step: the starting weights, and the gradient GradientTape gives at them, bin for bin
    fresh = _mlp()
    fresh.set_weights(start)
    with tf.GradientTape() as tape:
        loss = fresh.compute_loss(x=x[:16], y=y[:16], y_pred=fresh(x[:16], training=False))
    grads = tape.gradient(loss, fresh.trainable_variables)
    first = hist[hist.step == -1]
    for metric, values in (("weight_hist", start[0]), ("grad_hist", grads[0].numpy())):
        got = np.zeros(n_bins(metric))
        rows = first[(first.metric == metric) & (first.layer == "h")]
        got[rows.bin.to_numpy()] = rows.value.to_numpy()
        np.testing.assert_array_equal(got, bin_counts(values, metric))


def test_histogram_bins_give_known_counts():
    from gradscope.histograms import EDGES, bin_counts

    magnitude, signed = EDGES["magnitude"], EDGES["signed"]
    assert np.allclose(np.log10(magnitude[1:]) - np.log10(magnitude[:-1]), 0.25) and magnitude[0] == 1e-10
    values = np.array([0.0, 1e-12, 1.2e-3, 1.3e-3, -2e-3, 0.99, 5e7, np.inf, np.nan])
    counts = bin_counts(values, "grad_hist")
    assert counts[0] == 2 and counts[-1] == 2 and counts[-2] == 1  # below 1e-10; non-finite; >= 1e6
    assert counts[np.searchsorted(magnitude, 1.2e-3)] == 2  # [1e-3, 1.78e-3): 1.2e-3 and 1.3e-3
    assert counts[np.searchsorted(magnitude, 2e-3)] == 1 and counts.sum() == len(values)
    act = bin_counts(np.array([-0.999, -0.96, 0.01, 0.049, 0.06, 0.999, 2.0, -5000.0]), "act_hist")
    assert act[0] == 1 and act.sum() == 8  # below -1e3
    assert act[np.searchsorted(signed, -0.99)] == 2 and act[np.searchsorted(signed, 0.01)] == 2  # [-1, -0.95), [0, 0.05)
    assert act[np.searchsorted(signed, 0.06)] == 1 and act[np.searchsorted(signed, 0.999)] == 1
    assert act[np.searchsorted(signed, 2.0)] == 1  # [1.78, 3.16)


def test_float32_histograms_by_their_top_bits_equal_the_exact_binning():
    """float32 values are binned by a lookup on their top 16 bits; it must give the counts the float64
    binning gives, at every edge and on both sides of it, at 0 and -0, the extremes and the non-finite."""
    from gradscope.histograms import EDGES, _exact_index, bin_counts, n_bins

    rng = np.random.default_rng(0)
    spread = (rng.normal(size=200_000) * 10.0 ** rng.uniform(-12, 8, 200_000)).astype(np.float32)
    special = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, 1e-45, -1e-45, 3.4e38, -3.4e38], np.float32)
    for metric, scale in (("grad_hist", "magnitude"), ("act_hist", "signed")):
        edges = EDGES[scale].astype(np.float32)
        near = [edges, np.nextafter(edges, np.float32(np.inf)), np.nextafter(edges, np.float32(-np.inf)), -edges]
        values = np.concatenate([spread, special, *near]).astype(np.float32)
        for sample in (values, special, np.concatenate(near)):
            expected = np.bincount(_exact_index(sample, scale), minlength=n_bins(metric))
            np.testing.assert_array_equal(bin_counts(sample, metric), expected)
            assert bin_counts(sample, metric).sum() == len(sample)


def test_histograms_off():
    x, y = _xy()
    mon = GradientMonitor(histograms=False)
    _mlp().fit(x, y, batch_size=10, epochs=1, callbacks=[mon], verbose=0)
    assert not mon.records.metric.str.endswith("_hist").any() and (mon.records.step >= 0).all()
