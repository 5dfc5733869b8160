"""GradientMonitor records what the optimizer applied, checked against tf.GradientTape."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from conftest import make_digits
from gradscope import GradientMonitor
from gradscope import records as rec
from gradscope.models import build_mlp
from gradscope.storage import load_run

LOSS = keras.losses.SparseCategoricalCrossentropy()


@pytest.fixture
def xy():
    x, y = make_digits(300, seed=5)
    return (x.reshape(300, -1) / 255.0).astype("float32"), y.astype("int64")


def _model(opt, act="sigmoid", init="normal", hidden=(16, 8)):
    keras.utils.set_random_seed(0)
    m = build_mlp(list(hidden), act=act, init=init, seed=0)
    m.compile(optimizer=opt, loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return m


def _values(records, step, metric):
    sel = records[(records.step == step) & (records.metric == metric)]
    return sel.value.to_numpy()


def _sgd_replay(w0, x, y, lr, steps):
    """Replay SGD steps with GradientTape and a hand-written update: per step, grad/weight/update norms."""
    replay = build_mlp([16, 8], act="sigmoid", init="normal", seed=0)
    for v, w in zip(replay.trainable_variables, w0):
        v.assign(w)
    out = []
    for step in range(steps):
        b = step % 3
        xb, yb = x[b * 100:(b + 1) * 100], y[b * 100:(b + 1) * 100]
        with tf.GradientTape() as tape:
            loss = LOSS(yb, replay(xb))
        grads = tape.gradient(loss, replay.trainable_variables)
        for v, g in zip(replay.trainable_variables, grads):
            v.assign_sub(lr * g)
        out.append((np.array([np.linalg.norm(g.numpy()) for g in grads]),
                    np.array([np.linalg.norm(v.numpy()) for v in replay.trainable_variables])))
    return out


@pytest.mark.parametrize("every_step", ["all", ("grad_norm",)])
def test_grad_weight_update_norms_match_an_independent_sgd_replay(xy, every_step):
    x, y = xy
    lr = 0.5
    m = _model(keras.optimizers.SGD(lr))
    w0 = [v.numpy().copy() for v in m.trainable_variables]
    mon = GradientMonitor(run="t", every_step=every_step)
    m.fit(x, y, batch_size=100, epochs=2, shuffle=False, callbacks=[mon], verbose=0)
    records = mon.records
    rec.validate(records)
    assert sorted(records[records.bin == rec.NO_BIN].step.unique()) == list(range(6))
    assert sorted(records[records.bin != rec.NO_BIN].step.unique()) == [-1, 2, 5]  # histograms: before, epoch ends
    for step, (expect_g, expect_w) in enumerate(_sgd_replay(w0, x, y, lr, 6)):
        np.testing.assert_allclose(_values(records, step, "grad_norm"), expect_g, rtol=1e-5)
        np.testing.assert_allclose(_values(records, step, "update_norm"), lr * expect_g, rtol=1e-4)
        ratio = _values(records, step, "update_ratio")
        if every_step == "all" or step in (2, 5):  # measured every step, or read on the host at epoch ends
            np.testing.assert_allclose(_values(records, step, "weight_norm"), expect_w, rtol=1e-5)
            np.testing.assert_allclose(ratio, lr * expect_g / expect_w, rtol=1e-4)
        else:  # between epoch ends the weight norm is interpolated: the ratio is within a hair of exact
            assert len(_values(records, step, "weight_norm")) == 0
            np.testing.assert_allclose(ratio, lr * expect_g / expect_w, rtol=2e-2)
    initial = records[records.metric == "weight_norm_initial"].value.to_numpy()
    np.testing.assert_allclose(initial, [np.linalg.norm(w) for w in w0], rtol=1e-6)


def test_adam_update_norm_is_the_change_the_step_made(xy):
    x, y = xy
    m = _model(keras.optimizers.Adam(1e-3))
    before = [v.numpy().copy() for v in m.trainable_variables]
    mon = GradientMonitor()
    m.fit(x[:100], y[:100], batch_size=100, epochs=1, callbacks=[mon], verbose=0)
    after = [v.numpy() for v in m.trainable_variables]
    expect = np.array([np.linalg.norm(a - b) for a, b in zip(after, before)])
    np.testing.assert_allclose(_values(mon.records, 0, "update_norm"), expect, rtol=1e-4)
    ratio = _values(mon.records, 0, "update_ratio")
    np.testing.assert_allclose(ratio, expect / [np.linalg.norm(a) for a in after], rtol=1e-4)


def test_layers_depths_and_epoch_metrics(xy):
    x, y = xy
    m = _model(keras.optimizers.SGD(0.1))
    mon = GradientMonitor(run="abc")
    m.fit(x, y, batch_size=50, epochs=2, validation_split=0.2, callbacks=[mon], verbose=0)
    r = mon.records
    layers = r[r.metric == "grad_norm"].drop_duplicates("layer")[["layer", "depth"]].values.tolist()
    assert layers == [["dense_0", 0], ["dense_1", 1], ["output", 2]]
    assert set(r[r.metric.isin(rec.STEP_METRICS)].variable) == {"kernel", "bias"}
    epoch_metrics = r[r.layer == ""]
    assert set(epoch_metrics.metric) == {"loss", "accuracy", "val_loss", "val_accuracy"}
    assert epoch_metrics[epoch_metrics.metric == "loss"].step.tolist() == [4, 9]  # last step of each epoch
    assert (r.run == "abc").all()
    per_step = r[r.metric == "grad_norm"].groupby("step").size()
    assert (per_step == 6).all() and len(per_step) == 10


def test_nested_model_names(xy):
    x, y = xy
    inner = keras.Sequential([keras.layers.Dense(8, activation="relu", name="hidden")], name="encoder")
    m = keras.Sequential([keras.Input((784,)), inner, keras.layers.Dense(10, activation="softmax", name="head")])
    m.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    mon = GradientMonitor()
    m.fit(x, y, batch_size=100, epochs=1, callbacks=[mon], verbose=0)
    names = mon.records.drop_duplicates("layer").query("layer != ''")[["layer", "depth"]].values.tolist()
    assert names == [["encoder/hidden", 0], ["head", 1]]


def test_steps_keep_counting_across_fits_and_on_a_fitted_model(xy):
    x, y = xy
    m = _model(keras.optimizers.SGD(0.1))
    m.fit(x, y, batch_size=100, epochs=1, verbose=0)  # fitted before the monitor exists
    mon = GradientMonitor()
    m.fit(x, y, batch_size=100, epochs=1, callbacks=[mon], verbose=0)
    m.fit(x, y, batch_size=100, epochs=1, callbacks=[mon], verbose=0)
    assert sorted(mon.records.query("bin == -1").step.unique()) == [3, 4, 5, 6, 7, 8]
    assert sorted(mon.records.query("bin != -1").step.unique()) == [2, 5, 8]  # histograms: before the run, epoch ends
    # after fit the optimizer is restored: a plain fit records nothing more
    n = len(mon.records)
    m.fit(x, y, batch_size=100, epochs=1, verbose=0)
    assert len(mon.records) == n
    assert "_backend_update_step" not in vars(m.optimizer)


def test_small_buffer_grows_and_warns(xy):
    x, y = xy
    m = _model(keras.optimizers.SGD(0.1))
    mon = GradientMonitor(buffer_steps=2)
    with pytest.warns(UserWarning, match="kept 2 of the 3 records"):
        m.fit(x, y, batch_size=100, epochs=2, shuffle=False, callbacks=[mon], verbose=0)
    steps = sorted(mon.records[mon.records.metric == "grad_norm"].step.unique())
    assert steps == [1, 2, 3, 4, 5]  # step 0 was overwritten, epoch 2 complete after growing


def test_records_reach_disk_each_epoch_and_survive_an_interrupt(xy, tmp_path):
    x, y = xy

    class Boom(keras.callbacks.Callback):
        def on_train_batch_begin(self, batch, logs=None):
            if self.model.optimizer.iterations.numpy() == 7:
                raise KeyboardInterrupt

    m = _model(keras.optimizers.SGD(0.1))
    mon = GradientMonitor(run="r", run_dir=tmp_path / "r")
    with pytest.raises(KeyboardInterrupt):
        m.fit(x, y, batch_size=100, epochs=5, callbacks=[mon, Boom()], verbose=0)
    run = load_run(tmp_path / "r")  # the interrupt went through fit's callbacks: the run ended with it
    assert run.status == "interrupted"
    assert sorted(run.records[run.records.metric == "grad_norm"].step.unique()) == list(range(7))  # the unfinished epoch too
    assert "_backend_update_step" not in vars(m.optimizer)
    mon.close()  # what a caller may still do after an interrupt: nothing left to do, nothing lost
    assert len(load_run(tmp_path / "r").records) == len(run.records)


def test_non_finite_gradients_are_kept(xy):
    x, y = xy
    m = _model(keras.optimizers.SGD(1e4), act="relu", init="normal", hidden=(64, 64))
    mon = GradientMonitor()
    m.fit(x, y, batch_size=100, epochs=3, callbacks=[mon], verbose=0)
    g = mon.records.query("metric == 'grad_norm'").value
    assert (~np.isfinite(g)).any()


def test_plain_sgd_grad_norm_from_the_update_matches_the_tape_and_lr_zero_falls_back(xy):
    """Plain SGD's gradient norm is read off its update (lr * g); it must still be exact, and a
    learning rate whose update overflows float32's squares (1e30) must not record a finite gradient as inf."""
    x, y = xy
    for lr in (0.3, 0.0, 1e30):
        m = _model(keras.optimizers.SGD(lr))
        expect = []
        with tf.GradientTape() as tape:
            loss = LOSS(y[:100], m(x[:100], training=True))
        expect = [np.linalg.norm(g.numpy()) for g in tape.gradient(loss, m.trainable_variables)]
        mon = GradientMonitor(probe=False)
        m.fit(x[:100], y[:100], batch_size=100, epochs=1, callbacks=[mon], verbose=0)
        np.testing.assert_allclose(_values(mon.records, 0, "grad_norm"), expect, rtol=1e-5)


def test_a_second_fit_keeps_the_epoch_end_probes_and_their_traces(xy, monkeypatch):
    """The activation and gradient probes are traced in the first fit of a model only (their Python
    bodies run only while tracing); the second fit's epoch end still records its statistics and histograms."""
    from gradscope.recorders.activation_probe import ActivationProbe
    from gradscope.recorders.histogram_probe import HistogramProbe

    traced = []

    def counted(name, original):
        def run(self, *args):
            traced.append(name)
            return original(self, *args)
        return run

    for cls, name in ((ActivationProbe, "_outputs"), (HistogramProbe, "_kernel_gradients")):
        monkeypatch.setattr(cls, name, counted(name, getattr(cls, name)))
    x, y = xy
    m = _model(keras.optimizers.SGD(0.1))
    mon = GradientMonitor(run="t")
    m.fit(x, y, batch_size=100, epochs=1, callbacks=[mon], verbose=0)
    first = list(traced)
    assert set(first) == {"_outputs", "_kernel_gradients"}
    m.fit(x, y, batch_size=100, epochs=1, callbacks=[mon], verbose=0)
    assert traced == first  # no new trace in the second fit
    records = mon.records
    for metric in ("grad_hist", "act_hist", "saturated_frac"):
        assert 5 in set(records.loc[records.metric == metric, "step"]), metric  # the second fit's epoch end


def test_a_second_fit_runs_the_step_traced_for_the_first_and_stays_exact(xy, monkeypatch):
    from gradscope.recorders.keras_tf import steps

    traces = []
    original = steps.write_row
    monkeypatch.setattr(steps, "write_row",
                        lambda *a: (traces.append(1), original(*a))[1])  # runs only while tracing
    x, y = xy
    lr = 0.5
    m = _model(keras.optimizers.SGD(lr))
    w0 = [v.numpy().copy() for v in m.trainable_variables]
    mon = GradientMonitor(run="t")
    m.fit(x, y, batch_size=100, epochs=1, shuffle=False, callbacks=[mon], verbose=0)
    traced = len(traces)
    assert traced >= 1
    m.fit(x, y, batch_size=100, epochs=1, shuffle=False, callbacks=[mon], verbose=0)
    assert len(traces) == traced  # no new trace
    records = mon.records
    assert sorted(records.loc[records.metric == "grad_norm", "step"].unique()) == list(range(6))
    for step, (expect_g, _) in enumerate(_sgd_replay(w0, x, y, lr, 6)):
        np.testing.assert_allclose(_values(records, step, "grad_norm"), expect_g, rtol=1e-5)
    m.fit(x, y, batch_size=100, epochs=1, shuffle=False, verbose=0)  # without the monitor: not recorded
    assert mon.records.step.max() == 5
