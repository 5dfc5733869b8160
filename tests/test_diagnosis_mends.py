"""Failure classes a new user met, each on a real small fit: the output read from its own Activation
layer, a probe spread over ordered data, data and target scale, a negative cross-entropy, one-unit
chance, an audit that knows Adam, and fix texts that fit the layer types."""

import keras
import numpy as np
import pytest

from gradscope import GradientMonitor, audit
from gradscope.diagnosis import findings_of
from gradscope.diagnosis.facts import facts_of
from gradscope.recorders.activation_probe import spread_rows
from gradscope.storage import load_run

rng = np.random.default_rng(0)
X = rng.normal(size=(400, 12)).astype("float32")
Y = (X[:, 0] + X[:, 1] > 0).astype("int64")


def fit(model, x, y, tmp_path, name="run", epochs=3, **kw):
    monitor = GradientMonitor(run=name, run_dir=tmp_path / name)
    model.fit(x, y, batch_size=32, epochs=epochs, callbacks=[monitor], verbose=0, **kw)
    run = load_run(tmp_path / name)
    return run, findings_of(run)


def kinds(findings):
    return {f["kind"] for f in findings}


def one_output_regressor(loss):
    """A small ReLU net with one linear output unit named ``out``, compiled with ``loss`` under Adam."""
    model = keras.Sequential([keras.Input((12,)), keras.layers.Dense(16, activation="relu"),
                              keras.layers.Dense(1, name="out")])
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss=loss)
    return model


def plans_of(model, x, y, task):
    """The trials' arms for ``model`` on ``(x, y)``, and why the others do not apply."""
    from gradscope.recorders.data_description import describe_inputs, describe_target
    from gradscope.trials.arms import plan_arms
    from gradscope.trials.model_parts import read_model

    return plan_arms(read_model(model), model, describe_inputs(x), describe_target(y), task)


def test_a_softmax_in_its_own_activation_layer_is_the_output_activation(tmp_path):
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((12,)), keras.layers.Dense(16, activation="relu"),
                              keras.layers.Dense(2), keras.layers.Activation("softmax")])
    model.compile(optimizer=keras.optimizers.Adam(3e-3), loss="sparse_categorical_crossentropy")
    run, findings = fit(model, X, Y, tmp_path)
    assert facts_of(run.meta).head_activation == "softmax"
    assert "output_pairing" not in kinds(findings) and "saturation" not in kinds(findings)


def test_probe_rows_are_spread_over_ordered_data():
    rows = spread_rows(10_000, 256)
    assert len(rows) == 256 and rows[0] == 0 and rows[-1] >= 9_900
    assert len(set(np.diff(rows))) <= 2  # evenly spaced, not the first 256


def test_unscaled_inputs_are_a_finding_whose_fix_is_to_standardise_them(tmp_path):
    keras.utils.set_random_seed(0)
    x = (np.abs(X) * 255.0).astype("float32")  # pixel values left at 0..255 (keras#6914)
    model = keras.Sequential([keras.Input((12,)), keras.layers.Dense(32, activation="sigmoid"),
                              keras.layers.Dense(2, activation="softmax")])
    model.compile(optimizer=keras.optimizers.SGD(0.01), loss="sparse_categorical_crossentropy")
    run, findings = fit(model, x, Y, tmp_path)
    assert run.meta["data"]["inputs"]["max"] > 100
    (f,) = [f for f in findings if f["kind"] == "unscaled_inputs"]
    assert "standardi" in f["recommendation"].lower() or "scale" in f["recommendation"].lower()


def test_token_ids_into_an_embedding_are_indices_not_unscaled_inputs(tmp_path):
    """Token ids 0..499 are far from unit scale as numbers, but they index an Embedding: no unscaled-inputs
    finding, and trials do not standardise them (found on the third fresh family's Embedding models)."""

    keras.utils.set_random_seed(0)
    tokens = rng.integers(0, 500, size=(400, 20)).astype("int64")
    model = keras.Sequential([keras.Input((20,), dtype="int64"), keras.layers.Embedding(500, 8),
                              keras.layers.GlobalAveragePooling1D(), keras.layers.Dense(2, activation="softmax")])
    model.compile(optimizer=keras.optimizers.Adam(1e-2), loss="sparse_categorical_crossentropy")
    run, findings = fit(model, tokens, Y, tmp_path)
    assert run.meta["data"]["inputs"]["max"] > 100 and facts_of(run.meta).index_inputs
    assert "unscaled_inputs" not in kinds(findings)
    plans, skipped = plans_of(model, tokens, Y, "classification")
    assert "standardize_inputs" not in [p.name for p in plans] and "standardize_inputs" in skipped


@pytest.mark.parametrize("adapted", [False, True])
def test_a_normalization_layer_never_adapted_does_not_scale_the_inputs(tmp_path, adapted):
    """A Normalization layer whose adapt() was never called has mean 0 and variance 1: it passes raw
    features through. Its inputs are judged as they are, the advice is to adapt it, and trials standardise
    them; an adapted one is left alone (found on the fourth fresh family)."""

    keras.utils.set_random_seed(0)
    x = (X * 300.0 + 800.0).astype("float32")  # features in the hundreds
    norm = keras.layers.Normalization(name="norm")
    if adapted:
        norm.adapt(x)
    model = keras.Sequential([keras.Input((12,)), norm, keras.layers.Dense(16, activation="relu"),
                              keras.layers.Dense(2, activation="softmax")])
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy")
    run, findings = fit(model, x, Y, tmp_path)
    assert facts_of(run.meta).normalises_inputs == adapted
    plans, _ = plans_of(model, x, Y, "classification")
    assert ("standardize_inputs" in [p.name for p in plans]) == (not adapted)
    if adapted:
        assert "unscaled_inputs" not in kinds(findings)
    else:
        (f,) = [f for f in findings if f["kind"] == "unscaled_inputs"]
        assert f["recommendation"].startswith("Call model.get_layer('norm').adapt(x_train)")


def test_a_target_far_from_unit_scale_under_a_bounded_output(tmp_path):
    keras.utils.set_random_seed(0)
    y = (X[:, :3].sum(axis=1) * 40_000 + 200_000).astype("float32")  # house prices in dollars
    model = keras.Sequential([keras.Input((12,)), keras.layers.Dense(16, activation="relu"),
                              keras.layers.Dense(1, activation="sigmoid")])
    model.compile(optimizer=keras.optimizers.SGD(0.01), loss="mse")
    run, findings = fit(model, X, y, tmp_path)
    found = kinds(findings)
    assert {"output_target_mismatch", "unscaled_target"} & found, found
    text = " ".join(f["recommendation"] for f in findings).lower()
    assert "linear" in text or "standardi" in text


def test_a_negative_cross_entropy_is_a_loss_that_does_not_fit_the_labels_not_a_stall(tmp_path):
    keras.utils.set_random_seed(0)
    labels = rng.integers(0, 5, size=400)  # labels 0..4 under a binary cross-entropy: its loss goes below 0
    model = keras.Sequential([keras.Input((12,)), keras.layers.Dense(16, activation="relu"),
                              keras.layers.Dense(1, activation="sigmoid")])
    model.compile(optimizer=keras.optimizers.SGD(0.05), loss="binary_crossentropy")
    run, findings = fit(model, X, labels, tmp_path, epochs=4)
    found = kinds(findings)
    assert "output_target_mismatch" in found and "stalled" not in found, found
    assert not any("did not fall" in f["summary"] for f in findings)


def test_chance_for_one_sigmoid_unit_is_one_half(tmp_path):
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((12,)), keras.layers.Dense(8, activation="relu"),
                              keras.layers.Dense(1, activation="sigmoid")])
    model.compile(optimizer=keras.optimizers.Adam(3e-3), loss="binary_crossentropy")
    run, _ = fit(model, X, Y.astype("float32"), tmp_path)
    assert facts_of(run.meta).n_classes == 2


def test_audit_does_not_predict_an_explosion_for_adam_with_small_steps():
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((12,)), keras.layers.Dense(64, activation="relu"),
                              keras.layers.Dense(64, activation="relu"), keras.layers.Dense(2, activation="softmax")])
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy")
    report = audit(model, X, Y)
    assert "exploding_gradient" not in {f.kind for f in report}, report


def test_an_lstm_is_not_told_to_use_an_lstm(tmp_path):
    keras.utils.set_random_seed(0)
    seq = rng.normal(size=(200, 30, 2)).astype("float32")
    y = seq[:, :, 0].sum(axis=1, keepdims=True).astype("float32")
    model = keras.Sequential([keras.Input((30, 2)), keras.layers.LSTM(8, activation="sigmoid"), keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.SGD(1e-4), loss="mse")
    _, findings = fit(model, seq, y, tmp_path, epochs=2)
    for f in findings:
        assert "use an lstm" not in f["recommendation"].lower() and "lstm/gru" not in f["recommendation"].lower()


@pytest.mark.parametrize("loss", ["categorical_crossentropy"])
def test_one_unit_under_a_categorical_cross_entropy_is_an_output_pairing_finding(tmp_path, loss):
    keras.utils.set_random_seed(0)  # keras#14729: the loss is 0 from the first step
    model = keras.Sequential([keras.Input((12,)), keras.layers.Dense(8, activation="relu"),
                              keras.layers.Dense(1, activation="sigmoid")])
    model.compile(optimizer=keras.optimizers.SGD(0.01), loss=loss)
    _, findings = fit(model, X, Y.astype("float32")[:, None], tmp_path)
    (f,) = [f for f in findings if f["kind"] == "output_pairing"]
    assert "binary_crossentropy" in f["recommendation"]


def test_squared_error_on_a_sigmoid_output_is_an_output_pairing_whose_arm_is_a_cross_entropy(tmp_path):
    """A sigmoid output trained with mean squared error on 0/1 labels learns slowest where it is most wrong
    (Nielsen, ch. 3): an output_pairing finding, and the pairing arm keeps the output and swaps the loss
    for a binary cross-entropy (found on the fourth fresh family)."""

    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((12,)), keras.layers.Dense(16, activation="relu"),
                              keras.layers.Dense(1, activation="sigmoid", name="out")])
    model.compile(optimizer=keras.optimizers.SGD(0.05), loss="mse")
    run, findings = fit(model, X, Y.astype("float32"), tmp_path)
    (f,) = [f for f in findings if f["kind"] == "output_pairing"]
    assert "binary_crossentropy" in f["recommendation"]
    plans, _ = plans_of(model, X, Y.astype("float32"), "regression")
    (arm,) = [p for p in plans if p.name == "output_pairing"]
    assert arm.loss == {"class": "BinaryCrossentropy"} and arm.head is None and arm.changed == ["out"]
    from gradscope import try_fixes

    result = try_fixes(model, X, Y.astype("float32"), batch_size=32, budget_steps=60, arms=["output_pairing"],
                       verbose=False, out=tmp_path / "trials")
    assert result.summary["task"] == "classification"  # a classifier under the wrong loss: scored by accuracy


@pytest.mark.parametrize("loss", ["mean_squared_logarithmic_error", "poisson"])
def test_a_log_loss_on_a_target_with_negative_values_cannot_fit_it(tmp_path, loss):
    """MSLE and Poisson take the log of the target and read negative values as 0: an output_target_mismatch
    finding, and the output-fit arm trains a mean squared error instead (fourth fresh family)."""

    keras.utils.set_random_seed(0)
    y = (X[:, 0] + 0.5 * X[:, 1]).astype("float32")  # standardised: half the values below 0
    model = one_output_regressor(loss)
    run, findings = fit(model, X, y, tmp_path)
    (f,) = [f for f in findings if f["kind"] == "output_target_mismatch"]
    assert "mean squared error" in f["recommendation"]
    plans, _ = plans_of(model, X, y, "regression")
    (arm,) = [p for p in plans if p.name == "output_fit"]
    assert arm.loss == {"class": "MeanSquaredError"}


def test_a_poisson_loss_on_an_output_that_can_go_negative_is_an_output_pairing_tried_with_an_exponential_output(
        tmp_path):
    """Poisson's loss takes log(y_pred): a linear output that goes below 0 turns it NaN. An output_pairing
    finding, and its arm keeps the loss and gives the output the exponential (log link) activation; the arm
    builds and trains (fifth fresh family)."""
    from gradscope import try_fixes

    keras.utils.set_random_seed(0)
    counts = rng.poisson(np.exp(0.5 * X[:, 0] + 0.3 * X[:, 1])).astype("float32")
    model = one_output_regressor("poisson")
    run, findings = fit(model, X, counts, tmp_path)
    (f,) = [f for f in findings if f["kind"] == "output_pairing"]
    assert "exponential" in f["recommendation"] and "below 0" in f["summary"]
    plans, _ = plans_of(model, X, counts, "regression")
    (arm,) = [p for p in plans if p.name == "output_pairing"]
    assert arm.head == {"units": 1, "activation": "exponential"} and arm.loss is None and arm.changed == ["out"]
    result = try_fixes(model, X, counts, batch_size=32, budget_steps=60, arms=["output_pairing"], verbose=False,
                       out=tmp_path / "trials")
    row = next(a for a in result.arms if a["arm"] == "output_pairing")
    assert row["steps"] and np.isfinite(row["after"])


def mismatch_and_output_fit(loss, tmp_path):
    """A one-output regressor under ``loss`` fitted on a target centred on 0: its output_target_mismatch
    finding and the trials' output-fit arm for it."""
    keras.utils.set_random_seed(0)
    y = (X[:, 0] + 0.5 * X[:, 1]).astype("float32")
    model = one_output_regressor(loss)
    _, findings = fit(model, X, y, tmp_path)
    (f,) = [f for f in findings if f["kind"] == "output_target_mismatch"]
    plans, _ = plans_of(model, X, y, "regression")
    (arm,) = [p for p in plans if p.name == "output_fit"]
    return f, arm


def test_a_cosine_similarity_loss_on_one_output_number_cannot_fit_it(tmp_path):
    """The cosine of two one-element vectors is +1 or -1: only the sign of the prediction counts. An
    output_target_mismatch finding, and the output-fit arm trains a mean squared error (fifth fresh family);
    a cosine on a vector output (embeddings) is left alone."""
    from gradscope.diagnosis.causes import one_number_cosine
    from gradscope.diagnosis.facts import RunFacts

    f, arm = mismatch_and_output_fit("cosine_similarity", tmp_path)
    assert "mean_squared_error" in f["recommendation"] and "sign" in f["summary"]
    assert arm.loss == {"class": "MeanSquaredError"} and arm.head["activation"] == "linear"
    assert not one_number_cosine(RunFacts(loss="cosine_similarity", head_units=32))


def test_a_percentage_error_on_a_target_that_reaches_zero_cannot_fit_it(tmp_path):
    """MAPE divides each error by |y|: on a target centred on 0 (standardised by the user) the rows nearest 0
    outweigh the rest. An output_target_mismatch finding, and the output-fit arm trains a mean squared error
    (sixth fresh family); MAPE on a target well above 0 (prices, counts of 1 or more) is left alone."""
    from gradscope.diagnosis.causes import target_mismatch
    from gradscope.diagnosis.facts import RunFacts
    from gradscope.recorders.data_description import describe_target
    from gradscope.trials.runner import trial_task

    f, arm = mismatch_and_output_fit("mape", tmp_path)
    assert "mean squared error" in f["recommendation"] and "|y|" in f["summary"]
    assert arm.loss == {"class": "MeanSquaredError"}
    prices = describe_target(rng.uniform(1e5, 5e5, size=200))
    assert target_mismatch(RunFacts(loss="mean_absolute_percentage_error", head_units=1, target=prices)) is None
    # counts with zeros: still a regression to the trials (not 0..k class labels), fitted with a squared error
    counts = rng.poisson(2.0, size=400).astype("float32")
    facts = RunFacts(loss="mape", head_units=1, target=describe_target(counts))
    assert target_mismatch(facts) is not None and trial_task(facts, describe_target(counts)) == "regression"
    plans, _ = plans_of(one_output_regressor("mape"), X, counts, "regression")
    (arm,) = [p for p in plans if p.name == "output_fit"]
    assert arm.loss == {"class": "MeanSquaredError"} and arm.head == {"units": 1, "activation": "linear"}


@pytest.mark.parametrize("epsilon, offered", [(1.0, True), (1e-3, True), (1e-7, False)])
def test_the_adam_arm_replaces_an_adam_whose_epsilon_swamps_its_steps(epsilon, offered):
    """Adam(epsilon=1.0), the value TensorFlow's docs quote for Inception, copied to a small model: where the
    gradients' RMS is below epsilon, Adam is momentum SGD at lr / epsilon. The Adam arm (the user's optimizer with
    Keras' default epsilon) is tried for it (sixth fresh family), not for an Adam with its default epsilon."""
    model = keras.Sequential([keras.Input((12,)), keras.layers.Dense(8, activation="relu"),
                              keras.layers.Dense(2, activation="softmax")])
    model.compile(optimizer=keras.optimizers.Adam(1e-3, epsilon=epsilon), loss="sparse_categorical_crossentropy")
    plans, skipped = plans_of(model, X, Y, "classification")
    adam = [p for p in plans if p.name == "adam"]
    assert bool(adam) == offered
    if not offered:
        assert "epsilon" in skipped["adam"]
        return
    assert adam[0].optimizer == {"epsilon": 1e-7} and f"instead of {epsilon:g}" in adam[0].what
    from gradscope.trials.rebuild import make_optimizer

    built = make_optimizer(model, adam[0].optimizer)  # the user's optimizer, one argument changed
    assert type(built).__name__ == "Adam" and built.epsilon == pytest.approx(1e-7)
    assert float(built.learning_rate) == pytest.approx(1e-3)


@pytest.mark.parametrize("optimizer, offered", [("Adadelta", True), ("Adagrad", True), ("SGD", True),
                                                ("RMSprop", False), ("Adam", False)])
def test_the_adam_arm_replaces_plain_and_shrinking_step_optimizers(optimizer, offered):
    """Keras's Adadelta default (0.001 since Keras 2.3) barely moves the weights and lr x10 does not reach
    its old default: Adam is tried for Adadelta and Adagrad as for SGD (fourth fresh family)."""

    model = keras.Sequential([keras.Input((12,)), keras.layers.Dense(8, activation="relu"),
                              keras.layers.Dense(2, activation="softmax")])
    model.compile(optimizer=getattr(keras.optimizers, optimizer)(1e-3), loss="sparse_categorical_crossentropy")
    plans, skipped = plans_of(model, X, Y, "classification")
    adam = [p for p in plans if p.name == "adam"]
    assert bool(adam) == offered
    if offered:
        assert adam[0].optimizer == {"adam": 1e-3} and adam[0].what.endswith(f"instead of {optimizer}")
    else:
        assert "adam" in skipped


def test_the_mends_edges_multi_hot_rows_log_losses_on_large_targets_and_a_scaler_after_an_idle_normalization():
    """Review of the fourth family's mends: multi-hot 0/1 rows under a sigmoid + MSE (an autoencoder) are not
    class labels; MSLE on prices is not told to standardise them (half would be negative); an un-adapted
    Normalization followed by Rescaling(1/255) still scales the inputs."""
    from gradscope.diagnosis.causes import squared_error_on_labels, target_off_scale
    from gradscope.diagnosis.facts import RunFacts
    from gradscope.diagnosis.settings import DEFAULT_SETTINGS
    from gradscope.recorders.data_description import describe_target
    from gradscope.recorders.run_description import describe_model

    pixels = (rng.random((50, 16)) > 0.5).astype("float32")
    assert not squared_error_on_labels(RunFacts(head_activation="sigmoid", loss="mse", head_units=16,
                                                target=describe_target(pixels)))
    assert squared_error_on_labels(RunFacts(head_activation="sigmoid", loss="mse", head_units=1,
                                            target=describe_target(pixels[:, :1])))
    assert not squared_error_on_labels(RunFacts(head_activation="softmax", loss="mse", head_units=1,
                                                target=describe_target(pixels[:, :1])))
    prices = describe_target(rng.uniform(1e5, 5e5, size=200))
    assert target_off_scale(RunFacts(loss="mse", target=prices), DEFAULT_SETTINGS) is not None
    assert target_off_scale(RunFacts(loss="mean_squared_logarithmic_error", target=prices), DEFAULT_SETTINGS) is None
    model = keras.Sequential([keras.Input((12,)), keras.layers.Normalization(), keras.layers.Rescaling(1 / 255),
                              keras.layers.Dense(2, activation="softmax")])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    assert facts_of({"config": {}, "model": describe_model(model)}).normalises_inputs
