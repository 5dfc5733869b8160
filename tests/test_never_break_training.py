"""The monitor is a guest in someone else's fit: any error of gradscope's becomes one warning.

Each test injects a fault into one part of the monitor and checks that ``fit`` runs to the end
with exactly the weights an unmonitored ``fit`` gives, and that exactly one warning says what
happened.
"""

import warnings

import keras
import numpy as np
import pytest

from gradscope import GradientMonitor

rng = np.random.default_rng(3)
X = rng.normal(size=(120, 10)).astype("float32")
Y = rng.integers(0, 3, 120)


def _model():
    keras.utils.set_random_seed(1)
    model = keras.Sequential([keras.Input((10,)), keras.layers.Dense(8, activation="relu", name="h"),
                              keras.layers.Dense(3, activation="softmax", name="o")])
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss="sparse_categorical_crossentropy")
    return model


def _fit(callbacks):
    model = _model()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        history = model.fit(X, Y, batch_size=20, epochs=3, shuffle=False, callbacks=callbacks, verbose=0)
    ours = [str(w.message) for w in caught if "gradscope stopped recording" in str(w.message)]
    return model, history, ours


@pytest.fixture(scope="module")
def plain_weights():
    model, _, _ = _fit([])
    return [w.copy() for w in model.get_weights()]


def _boom(*args, **kwargs):
    raise ZeroDivisionError("float division by zero")


FAULTS = {
    "online diagnosis": ("gradscope.diagnosis.online.judge", dict(diagnose=True)),
    "writing a row while Keras traces the step": ("gradscope.recorders.keras_tf.steps.write_row", {}),
    "reading the device buffer": ("gradscope.recorders.keras_tf.steps.StepRecorder.read", {}),
    "naming the layers at train begin": ("gradscope.recorders.monitor.layer_table", {}),
    "keeping the probe batch": ("gradscope.recorders.epoch_probes.rows_of", {}),
    "the activation statistics": ("gradscope.recorders.epoch_probes.activation_records", {}),
    "appending records to the run directory": ("gradscope.storage.records_parquet.write_part", {}),
}


@pytest.mark.parametrize("where", list(FAULTS))
def test_a_fault_of_ours_is_one_warning_and_the_training_goes_on(monkeypatch, tmp_path, plain_weights, where):
    target, options = FAULTS[where]
    monkeypatch.setattr(target, _boom)
    monitor = GradientMonitor(run_dir=tmp_path / "run", **options)
    model, history, ours = _fit([monitor])
    assert len(history.history["loss"]) == 3  # every epoch ran
    for got, want in zip(model.get_weights(), plain_weights):
        np.testing.assert_allclose(got, want, rtol=1e-6)  # and trained exactly as without the monitor
    assert len(ours) == 1 and "ZeroDivisionError: float division by zero" in ours[0], ours
    assert "_backend_update_step" not in vars(model.optimizer) and "apply" not in vars(model.optimizer)
    assert "train_step" not in vars(model)
    again = model.fit(X, Y, batch_size=20, epochs=1, verbose=0)  # the model trains on, without gradscope
    assert np.isfinite(again.history["loss"][0])


def test_the_run_says_recording_stopped_and_keeps_what_it_had(monkeypatch, tmp_path):
    from gradscope.storage import load_run

    calls = {"n": 0}
    real = __import__("gradscope.recorders.epoch_probes", fromlist=["activation_records"]).activation_records

    def fail_on_the_second_epoch(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            raise OSError("disk full")
        return real(*args, **kwargs)

    monkeypatch.setattr("gradscope.recorders.epoch_probes.activation_records", fail_on_the_second_epoch)
    monitor = GradientMonitor(run_dir=tmp_path / "run")
    _, history, ours = _fit([monitor])
    assert len(history.history["loss"]) == 3 and len(ours) == 1
    run = load_run(tmp_path / "run")
    assert run.status == "failed" and "gradscope stopped recording (on_epoch_end: OSError: disk full)" in run.meta["error"]
    assert sorted(run.records.query("metric == 'grad_norm'").step.unique()) == list(range(12))  # 2 epochs kept
