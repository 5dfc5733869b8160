"""A second fresh held-out family: faults restated from public Keras/TensorFlow reports, fixes by intervention.

Same method as ``public_cases.py`` (whose machinery this file imports: ``Case``, ``train``,
``score``, ``run_case``, ``verdict``, ``table`` and ``main``), on other faults, other models
(functional models with separate ``Activation`` layers, small CNNs, GRU/LSTM/SimpleRNN) and other
data, all shipped with scikit-learn. Each case restates, in our own words, a fault seen in a public
report or a common question (the source is named); its label comes from an intervention: the
model as reported and the model with the authors' fix, built here by hand, trained for the full run
and scored on the test rows. ``calls_for`` (the gradscope arms that are the authors' fix or an
equivalent) was fixed before any gradscope output was seen.

    python benchmarks/public_cases_2.py               # train, label and try every case (resumable)
    python benchmarks/public_cases_2.py --score       # the table again from the stored results
    python benchmarks/public_cases_2.py --label-only  # only the intervention (no gradscope)

Results: ``benchmarks/results/public_cases_2/`` (``results.jsonl``, ``table.md``).
"""

from __future__ import annotations

import functools
import sys
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import public_cases as pc  # noqa: E402
from public_cases import Case, _keras, _mlp, _standardiser, train  # noqa: E402

DEFAULT_OUT = Path(__file__).parent / "results" / "public_cases_2"

#: ``public_cases.ADVICE`` plus the fixes this family calls for that it lacks: the finding kinds
#: whose recommendation is that fix (see the rules' ``recommendation`` texts).
ADVICE = {
    **pc.ADVICE,
    "lr_up": {"slow_convergence", "stalled"},
    "adam": {"slow_convergence", "stalled"},
    "clipnorm": {"exploding_gradient", "exploding_through_time"},
    "batchnorm": {"vanishing_gradient", "saturation"},
    "skip": {"vanishing_gradient"},
}


# --- data -----------------------------------------------------------------------------------------

NEW_DATA = ("sales", "sales_scaled", "year_column", "score_0_300", "raw_readings",
            "running_sum", "sum_sign_20", "sum_sign_8")


@functools.lru_cache(maxsize=None)
def data(name: str):
    """``public_cases.data`` with this family's data names added (the same tuple and split)."""
    if name not in NEW_DATA:
        return pc.data(name)
    from sklearn import datasets
    from sklearn.model_selection import train_test_split

    rng = np.random.default_rng(1)
    stratify = True
    if name in ("sales", "sales_scaled"):  # Friedman #1 on ten uniform inputs; sales in currency units
        x, y = datasets.make_friedman1(n_samples=1500, n_features=10, noise=1.0, random_state=1)
        y = 20_000.0 * y  # about 20k..600k
        stratify = False
    elif name == "year_column":  # unit-scale features plus the year of the record (1995..2020)
        x, y = datasets.make_classification(n_samples=1500, n_features=8, n_informative=5, n_redundant=1,
                                            random_state=2)
        year = rng.integers(1995, 2021, size=(len(x), 1)).astype("float64")
        x = np.concatenate([x, year], axis=1)
    elif name == "score_0_300":  # a score between 0 and 300 from standardised features
        x, y = datasets.make_regression(n_samples=1500, n_features=10, n_informative=8, noise=10.0, random_state=3)
        y = np.clip(150.0 + 50.0 * y / y.std(), 0.0, 300.0)
        stratify = False
    elif name == "raw_readings":  # sensor readings around 1000 in raw units: does the sequence rise or fall?
        n, steps = 1200, 30
        base = rng.uniform(900, 1100, size=(n, 1))
        slope = rng.uniform(0.5, 2.0, size=(n, 1)) * rng.choice([-1.0, 1.0], size=(n, 1))
        x = (base + slope * np.arange(steps) + rng.normal(0, 3.0, size=(n, steps)))[..., None]
        y = (slope[:, 0] > 0).astype("int64")
    elif name == "running_sum":  # the sum of a sequence of 20 values in 0..1
        x = rng.uniform(0, 1, size=(1500, 20, 1))
        y = x[:, :, 0].sum(axis=1)
        stratify = False
    elif name in ("sum_sign_20", "sum_sign_8"):  # is the sum of the sequence positive?
        steps = int(name.rsplit("_", 1)[1])
        x = rng.normal(0, 1, size=(1500, steps, 1))
        y = (x[:, :, 0].sum(axis=1) > 0).astype("int64")
    x_tr, x_te, y_tr, y_te = train_test_split(x, y, test_size=0.25, random_state=0,
                                              stratify=y if stratify else None)
    if name == "sales_scaled":  # the healthy case: the user standardises the target
        mean, std = y_tr.mean(), y_tr.std()
        y_tr, y_te = (y_tr - mean) / std, (y_te - mean) / std
    cast = (lambda v: v.astype("int64")) if stratify else (lambda v: v.astype("float32"))
    return x_tr.astype("float32"), cast(y_tr), x_te.astype("float32"), cast(y_te)


pc.EXTRA_DATA.update({name: functools.partial(data, name) for name in NEW_DATA})


# --- models ---------------------------------------------------------------------------------------


def _functional(inputs, hidden, head, head_act, loss, optimizer, act="relu", init="glorot_uniform"):
    """A functional MLP whose activations are separate ``Activation`` layers (the output's too)."""
    keras = _keras()
    x = h = keras.Input(inputs)
    for i, units in enumerate(hidden):
        h = keras.layers.Dense(units, kernel_initializer=init, name=f"dense_{i}")(h)
        h = keras.layers.Activation(act, name=f"act_{i}")(h)
    h = keras.layers.Dense(head, name="head")(h)
    if head_act:
        h = keras.layers.Activation(head_act, name="head_act")(h)
    model = keras.Model(x, h)
    model.compile(optimizer=optimizer, loss=loss)
    return model


def _case_sales(fixed):
    keras = _keras()
    model = _functional((10,), [64, 64], 1, None, "mse", keras.optimizers.Adam(1e-3))
    if not fixed:
        return model, None, None
    y_tr = data("sales")[1]
    mean, std = float(y_tr.mean()), float(y_tr.std())
    return model, None, ((lambda y: (y - mean) / std), (lambda p: p * std + mean))


def _case_year(fixed):
    keras = _keras()
    model = _mlp((9,), [32, 16], 1, "sigmoid", "binary_crossentropy", keras.optimizers.SGD(0.01))
    return model, _standardiser("year_column") if fixed else None, None


def _case_relu_output(fixed):
    keras = _keras()
    return _functional((30,), [16], 1, "sigmoid" if fixed else "relu", "binary_crossentropy",
                       keras.optimizers.Adam(1e-3)), None, None


def _case_sgd_tiny(fixed):
    keras = _keras()
    return _mlp((64,), [64], 10, "softmax", "sparse_categorical_crossentropy",
                keras.optimizers.SGD(1e-2 if fixed else 1e-3)), None, None


def _case_sgd_huge_tanh(fixed):
    keras = _keras()
    return _mlp((64,), [64, 64], 10, "softmax", "sparse_categorical_crossentropy",
                keras.optimizers.SGD(0.3 if fixed else 3.0), act="tanh"), None, None


def _case_deep_tanh(fixed):
    keras = _keras()
    init = "glorot_uniform" if fixed else keras.initializers.RandomNormal(0.0, 1.0, seed=0)
    return _functional((64,), [64] * 8, 10, "softmax", "sparse_categorical_crossentropy", keras.optimizers.SGD(0.01),
                       act="tanh", init=init), None, None


def _case_deep_sigmoid_glorot(fixed):
    keras = _keras()
    return _mlp((64,), [32] * 12, 10, "softmax", "sparse_categorical_crossentropy", keras.optimizers.SGD(0.01),
                act="relu" if fixed else "sigmoid", init="he_normal" if fixed else "glorot_uniform"), None, None


def _case_tanh_output(fixed):
    keras = _keras()
    return _mlp((10,), [32], 1, None if fixed else "tanh", "mse", keras.optimizers.Adam(1e-2)), None, None


def _case_cnn_sigmoid(fixed):
    keras = _keras()
    act, init = ("relu", "he_normal") if fixed else ("sigmoid", "glorot_uniform")
    layers = [keras.Input((8, 8, 1))]
    for i, filters in enumerate([16, 16, 32, 32]):
        layers.append(keras.layers.Conv2D(filters, 3, padding="same", activation=act, kernel_initializer=init,
                                          name=f"conv_{i}"))
    layers += [keras.layers.Flatten(), keras.layers.Dense(10, activation="softmax", name="head")]
    model = keras.Sequential(layers)
    model.compile(optimizer=keras.optimizers.SGD(0.01), loss="sparse_categorical_crossentropy")
    return model, None, None


def _case_softmax_regression(fixed):
    keras = _keras()
    return _mlp((10,), [32], 1, None if fixed else "softmax", "mse", keras.optimizers.Adam(1e-2)), None, None


def _case_raw_readings(fixed):
    keras = _keras()
    model = keras.Sequential([keras.Input((30, 1)), keras.layers.LSTM(16, name="recurrent"),
                              keras.layers.Dense(1, activation="sigmoid", name="head")])
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="binary_crossentropy")
    return model, _standardiser("raw_readings", axis=(0, 1)) if fixed else None, None


def _case_relu_rnn(fixed):
    keras = _keras()
    model = keras.Sequential([keras.Input((20, 1)), keras.layers.SimpleRNN(32, activation="relu", name="recurrent"),
                              keras.layers.Dense(1, name="head")])
    model.compile(optimizer=keras.optimizers.SGD(0.01, clipnorm=1.0) if fixed else keras.optimizers.SGD(0.01),
                  loss="mse")
    return model, None, None


def _case_lstm_adam_high(fixed):
    keras = _keras()
    model = keras.Sequential([keras.Input((20, 1)), keras.layers.LSTM(32, name="recurrent"),
                              keras.layers.Dense(1, activation="sigmoid", name="head")])
    model.compile(optimizer=keras.optimizers.Adam(1e-3 if fixed else 0.1), loss="binary_crossentropy")
    return model, None, None


def _healthy(build):
    return lambda fixed: (build(), None, None)


def _h_gru():
    keras = _keras()
    model = keras.Sequential([keras.Input((20, 1)), keras.layers.GRU(16, name="recurrent"),
                              keras.layers.Dense(1, activation="sigmoid", name="head")])
    model.compile(optimizer=keras.optimizers.Adam(1e-2), loss="binary_crossentropy")
    return model


def _h_simple_rnn():
    keras = _keras()
    model = keras.Sequential([keras.Input((8, 1)), keras.layers.SimpleRNN(16, name="recurrent"),
                              keras.layers.Dense(1, activation="sigmoid", name="head")])
    model.compile(optimizer=keras.optimizers.Adam(1e-2), loss="binary_crossentropy")
    return model


def _h_cnn_bn():
    keras = _keras()
    layers = [keras.Input((8, 8, 1))]
    for i, filters in enumerate([16, 32]):
        layers += [keras.layers.Conv2D(filters, 3, padding="same", use_bias=False, name=f"conv_{i}"),
                   keras.layers.BatchNormalization(name=f"bn_{i}"), keras.layers.Activation("relu", name=f"relu_{i}")]
    layers += [keras.layers.MaxPooling2D(), keras.layers.Flatten(),
               keras.layers.Dense(10, activation="softmax", name="head")]
    model = keras.Sequential(layers)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy")
    return model


def _h_residual():
    keras = _keras()
    x = keras.Input((64,))
    h = keras.layers.Dense(64, activation="relu", name="dense_in")(x)
    for i in range(2):
        r = keras.layers.Dense(64, activation="relu", name=f"res_{i}_a")(h)
        r = keras.layers.Dense(64, name=f"res_{i}_b")(r)
        h = keras.layers.Activation("relu", name=f"res_{i}_relu")(keras.layers.Add(name=f"res_{i}_add")([h, r]))
    out = keras.layers.Dense(10, activation="softmax", name="head")(h)
    model = keras.Model(x, out)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy")
    return model


CASES = [
    Case("sales_target", "keras-team/keras#2576 (a regression target in the thousands, fit at the wrong scale)",
         "target far from unit scale (Friedman #1 x 20,000)", "sales", _case_sales, 40, 32,
         frozenset({"standardize_target"}), "target standardised"),
    Case("year_column", "common report: a year column (~2000) left unscaled beside unit-scale features",
         "one input column in the thousands under SGD", "year_column", _case_year, 30, 32,
         frozenset({"standardize_inputs"}), "inputs standardised"),
    Case("relu_output_bce", "common report: ReLU on the output unit of a binary classifier",
         "Activation('relu') on the output under binary cross-entropy", "cancer", _case_relu_output, 20, 32,
         frozenset({"output_pairing", "output_fit"}), "Activation('sigmoid')"),
    Case("sgd_lr_tiny", "common report: SGD with a tiny learning rate, accuracy creeps up",
         "SGD(1e-3) on a softmax MLP", "digits", _case_sgd_tiny, 15, 32, frozenset({"lr_up", "adam"}),
         "SGD(1e-2)"),
    Case("sgd_lr_huge_tanh", "keras-team/keras#4652 (SGD learning rate too high: the loss stays at chance)",
         "SGD(3.0) on a tanh MLP", "digits", _case_sgd_huge_tanh, 15, 32, frozenset({"lr_down"}), "SGD(0.3)"),
    Case("deep_tanh_normal", "the classic deep tanh net with N(0,1) weights (Glorot & Bengio 2010)",
         "saturated tanh layers (separate Activation layers)", "digits", _case_deep_tanh, 20, 32,
         frozenset({"init", "relu_he", "batchnorm", "skip"}), "Xavier init"),
    Case("deep_sigmoid_glorot_sgd", "the classic 12-layer sigmoid MLP under SGD (vanishing gradient)",
         "sigmoid's derivative (<= 1/4) compounds over 12 layers", "digits", _case_deep_sigmoid_glorot, 20, 32,
         frozenset({"relu_he", "batchnorm", "skip"}), "ReLU + He init"),
    Case("tanh_output_regression", "keras-team/keras#1874 (tanh on the output of a regression)",
         "a tanh output cannot reach a target of 0..300", "score_0_300", _case_tanh_output, 40, 32,
         frozenset({"output_fit"}), "linear output"),
    Case("cnn_sigmoid_sgd", "common report: a small CNN with sigmoid activations does not learn under SGD",
         "four sigmoid conv layers under SGD(0.01)", "digits_images", _case_cnn_sigmoid, 10, 32,
         frozenset({"relu_he", "batchnorm", "skip"}), "ReLU + He init"),
    Case("softmax_regression_output", "keras-team/keras#500 (Dense(1, softmax): the output is always 1)",
         "a softmax over one unit on a regression output", "diabetes_scaled", _case_softmax_regression, 60, 32,
         frozenset({"output_fit"}), "linear output"),
    Case("lstm_raw_readings", "common report: an LSTM fed raw, unscaled readings predicts a constant",
         "sequence values around 1000 into an LSTM", "raw_readings", _case_raw_readings, 10, 32,
         frozenset({"standardize_inputs"}), "inputs standardised"),
    Case("relu_rnn_sgd", "keras-team/keras#2194 (NaN loss with a ReLU recurrent layer)",
         "exploding gradients through 20 steps of a ReLU SimpleRNN under SGD", "running_sum", _case_relu_rnn, 20, 32,
         frozenset({"clipnorm", "lr_down"}), "clipnorm=1"),
    Case("lstm_adam_lr_0_1", "common report: Adam(lr=0.1) on an LSTM", "a learning rate 100x Adam's default",
         "sum_sign_20", _case_lstm_adam_high, 15, 32, frozenset({"lr_down"}), "Adam(1e-3)"),
    # healthy: standard, working models
    Case("healthy_gru_sum_sign", "GRU on a 20-step sequence classification", "", "sum_sign_20", _healthy(_h_gru),
         15, 32),
    Case("healthy_simple_rnn_short", "SimpleRNN on an 8-step sequence classification", "", "sum_sign_8",
         _healthy(_h_simple_rnn), 15, 32),
    Case("healthy_cnn_batchnorm", "small CNN with BatchNormalization on the 8x8 digits", "", "digits_images",
         _healthy(_h_cnn_bn), 10, 32),
    Case("healthy_residual_mlp", "functional MLP with residual Add blocks on the digits", "", "digits",
         _healthy(_h_residual), 15, 32),
    Case("healthy_wine_activation_layers", "wine MLP with separate Activation layers (softmax too)", "", "wine",
         _healthy(lambda: _functional((13,), [32], 3, "softmax", "sparse_categorical_crossentropy",
                                      _keras().optimizers.Adam(1e-2))), 40, 16),
    Case("healthy_sales_scaled", "Friedman #1 regression, target standardised by the user", "", "sales_scaled",
         _healthy(lambda: _mlp((10,), [64, 64], 1, None, "mse", _keras().optimizers.Adam(1e-3))), 60, 32),
]


def label_only(cases) -> None:
    """Only the intervention: the reported and the fixed model, trained and scored (no gradscope)."""
    warnings.filterwarnings("ignore")
    for case in cases:
        started = time.perf_counter()
        reported = train(case, False, 0)[1]
        fixed = train(case, True, 0)[1] if case.calls_for else None
        seconds = time.perf_counter() - started
        if case.calls_for:
            gain = fixed - reported if np.isfinite(reported) else float("inf")
            status = "established" if gain >= pc.ESTABLISHED else "NOT established"
            print(f"{case.name}: reported {reported:.3f} fixed {fixed:.3f} gain {gain:.3f} {status} "
                  f"({seconds:.1f}s)", flush=True)
        else:
            floor = pc.HEALTHY_SCORE if case.task == "classification" else 0.4
            print(f"{case.name}: healthy score {reported:.3f} {'ok' if reported >= floor else 'TOO LOW'} "
                  f"({seconds:.1f}s)", flush=True)


def family_main(argv, cases, default_out, description, advice) -> int:
    """The command line every later family shares: ``--label-only`` (``--cases a,b`` to pick some), which
    trains only the intervention, or :func:`public_cases.main` (train, label and try; ``--score``)."""
    argv = list(argv)
    if "--label-only" not in argv:
        return pc.main(argv, cases=cases, default_out=default_out, description=description, advice=advice)
    argv.remove("--label-only")
    names = next((a.split("=", 1)[1] for a in argv if a.startswith("--cases=")), "")
    if "--cases" in argv:
        names = argv[argv.index("--cases") + 1]
    label_only([c for c in cases if not names or c.name in names.split(",")])
    return 0


if __name__ == "__main__":
    sys.exit(family_main(sys.argv[1:], CASES, DEFAULT_OUT, __doc__, ADVICE))
