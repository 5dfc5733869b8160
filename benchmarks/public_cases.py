"""A fresh held-out family: faults restated from public Keras/TensorFlow reports, fixes by intervention.

No rule, threshold or trial margin of gradscope was tuned on these. Each case restates, in our
own words and on data that ships with scikit-learn, a fault seen in a public report or a classic
case (the source is named), with the fix its authors applied. The case's label comes from an
intervention, as the labelled suite's do: the model as reported and the model with the authors'
fix (built here by hand, not by gradscope's arms) are trained for the full run and scored on the
test rows (accuracy, or R^2 in the target's units). The fix is *established* when it wins by at
least ``ESTABLISHED`` there; a case whose fix does not is kept apart, not counted. Healthy cases
are standard, working models (a test score at least ``HEALTHY_SCORE``).

It then reports, per case and pooled:

* **trials**: whether ``gradscope.try_fixes``' best arm is one the case's fix calls for
  (``calls_for``), and, on healthy cases, whether nothing helped;
* **the rules' advice**: whether any finding of the monitor on the reported model is of a kind
  whose fix is the authors' (``ADVICE``).

    python benchmarks/public_cases.py              # train, label and try every case (resumable)
    python benchmarks/public_cases.py --score      # the table again from the stored results

Results: ``benchmarks/results/public_cases/`` (``results.jsonl``, ``table.md``).
"""

from __future__ import annotations

import argparse
import functools
import json
import math
import os
import sys
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

DEFAULT_OUT = Path(__file__).parent / "results" / "public_cases"
ESTABLISHED = 0.05  #: the authors' fix must beat the model as reported by this much on the test rows
HEALTHY_SCORE = 0.85  #: a healthy case's test accuracy (regression: R^2 at least 0.4)

#: The finding kinds whose advice is each fix: the rules "name the fix" when one of them is found.
ADVICE = {
    "standardize_inputs": {"unscaled_inputs"},
    "standardize_target": {"unscaled_target", "output_target_mismatch"},
    "output_fit": {"output_target_mismatch"},
    "output_pairing": {"output_pairing"},
    "lr_down": {"exploding_gradient", "oscillating_loss", "non_finite"},
    "init": {"vanishing_gradient", "saturation", "dead_units", "stalled"},
    "relu_he": {"vanishing_gradient", "saturation"},
    "lstm": {"vanishing_through_time"},
}


# --- data -----------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=None)
def data(name: str):
    """``(x_train, y_train, x_test, y_test)``: float32 inputs; int labels or float targets."""
    from sklearn import datasets
    from sklearn.model_selection import train_test_split
    from sklearn.preprocessing import StandardScaler

    rng = np.random.default_rng(0)
    stratify = True
    if name == "digits_255":  # pixels as stored in an image file, 0..255
        x, y = datasets.load_digits(return_X_y=True)
        x = x * (255.0 / 16.0)
    elif name in ("digits", "digits_images"):
        x, y = datasets.load_digits(return_X_y=True)
        x = x / 16.0
    elif name in ("cancer_raw", "cancer"):
        x, y = datasets.load_breast_cancer(return_X_y=True)
    elif name in ("iris", "wine"):
        x, y = getattr(datasets, f"load_{name}")(return_X_y=True)
    elif name == "moons":
        x, y = datasets.make_moons(n_samples=800, noise=0.2, random_state=0)
    elif name == "diabetes":  # features standardised, target in its units (25..346)
        x, y = datasets.load_diabetes(return_X_y=True)
        stratify = False
    elif name == "price":  # a house-price-like target in dollars from standardised features
        x, y = datasets.make_regression(n_samples=1500, n_features=8, n_informative=6, noise=10.0, random_state=0)
        y = 250_000 + 800.0 * y
        stratify = False
    elif name == "y_2x":  # y = 2x + noise, x in 0..100, as given
        x = rng.uniform(0, 100, size=(600, 1))
        y = 2.0 * x[:, 0] + rng.normal(0, 1.0, 600)
        stratify = False
    elif name == "adding":  # the adding problem: sum of the two marked numbers of a sequence
        n, steps = 1500, 60
        values = rng.uniform(0, 1, size=(n, steps))
        marks = np.zeros((n, steps))
        for row in marks:
            a, b = rng.choice(steps // 2, 2, replace=False)
            row[a], row[steps // 2 + b] = 1.0, 1.0
        x = np.stack([values, marks], axis=-1)
        y = (values * marks).sum(axis=1)
        stratify = False
    else:
        raise ValueError(f"unknown data {name!r}")
    x_tr, x_te, y_tr, y_te = train_test_split(x, y, test_size=0.25, random_state=0,
                                              stratify=y if stratify else None)
    if name in ("cancer", "iris", "wine", "moons"):
        scaler = StandardScaler().fit(x_tr)
        x_tr, x_te = scaler.transform(x_tr), scaler.transform(x_te)
    if name == "digits_images":
        x_tr, x_te = x_tr.reshape(-1, 8, 8, 1), x_te.reshape(-1, 8, 8, 1)
    cast = (lambda v: v.astype("int64")) if stratify else (lambda v: v.astype("float32"))
    return x_tr.astype("float32"), cast(y_tr), x_te.astype("float32"), cast(y_te)


# --- cases ----------------------------------------------------------------------------------------


@dataclass
class Case:
    """One restated case: how to build it as reported and as its authors fixed it."""

    name: str
    source: str
    fault: str
    data: str
    build: callable  # build(fixed: bool) -> (compiled model, x transform or None, y transform or None)
    epochs: int
    batch: int
    calls_for: frozenset = field(default_factory=frozenset)  # empty: a healthy case
    fix: str = ""

    @property
    def task(self) -> str:
        return "classification" if case_data(self)[1].dtype.kind == "i" else "regression"


def _keras():
    import keras

    return keras


def _mlp(inputs, hidden, head, head_act, loss, optimizer, act="relu", init="glorot_uniform", metrics=None):
    keras = _keras()
    layers = [keras.Input(inputs)]
    for i, units in enumerate(hidden):
        layers.append(keras.layers.Dense(units, activation=act, kernel_initializer=init, name=f"dense_{i}"))
    layers.append(keras.layers.Dense(head, activation=head_act, kernel_initializer=init if init == "zeros" else
                                     "glorot_uniform", name="head"))
    model = keras.Sequential(layers)
    model.compile(optimizer=optimizer, loss=loss, metrics=metrics or [])
    return model


def _standardiser(name, axis=0):
    """Standardise with the training rows' mean and std, in float64 (``axis=(0, 1)``: one per feature of a
    sequence); ``name`` is any family's data name."""
    x_tr = (EXTRA_DATA[name]() if name in EXTRA_DATA else data(name))[0].astype("float64")
    mean, std = x_tr.mean(axis=axis), x_tr.std(axis=axis) + 1e-8
    return lambda x: ((x - mean) / std).astype("float32")


def _case_pixels(fixed):
    keras = _keras()
    model = _mlp((64,), [64], 10, "softmax", "sparse_categorical_crossentropy", keras.optimizers.SGD(0.01))
    return model, (lambda x: x / 255.0) if fixed else None, None


def _case_one_unit_cce(fixed):
    keras = _keras()
    return _mlp((30,), [16], 1, "sigmoid", "binary_crossentropy" if fixed else "categorical_crossentropy",
                keras.optimizers.Adam(1e-3)), None, None


def _case_softmax_one_unit(fixed):
    keras = _keras()
    return _mlp((30,), [16], 1, "sigmoid" if fixed else "softmax", "binary_crossentropy",
                keras.optimizers.Adam(1e-3)), None, None


def _case_price(fixed):
    keras = _keras()
    model = _mlp((8,), [64, 64], 1, None, "mse", keras.optimizers.Adam(1e-3))
    if not fixed:
        return model, None, None
    y_tr = data("price")[1]
    mean, std = float(y_tr.mean()), float(y_tr.std())
    return model, None, ((lambda y: (y - mean) / std), (lambda p: p * std + mean))


def _case_y_2x(fixed):
    keras = _keras()
    model = _mlp((1,), [], 1, None, "mse", keras.optimizers.SGD(0.01))
    return model, (lambda x: x / 100.0) if fixed else None, None


def _case_bounded_output(fixed):
    keras = _keras()
    return _mlp((10,), [32], 1, None if fixed else "sigmoid", "mse", keras.optimizers.Adam(1e-2)), None, None


def _case_labels_on_sigmoid(fixed):
    keras = _keras()
    if fixed:
        return _mlp((64,), [32], 10, "softmax", "sparse_categorical_crossentropy", keras.optimizers.Adam(1e-3)), None, None
    return _mlp((64,), [32], 1, "sigmoid", "binary_crossentropy", keras.optimizers.Adam(1e-3)), None, None


def _case_adding(fixed):
    keras = _keras()
    cell = keras.layers.LSTM if fixed else keras.layers.SimpleRNN
    model = keras.Sequential([keras.Input((60, 2)), cell(32, name="recurrent"), keras.layers.Dense(1, name="head")])
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="mse")
    return model, None, None


def _case_deep_sigmoid(fixed):
    keras = _keras()
    init = "glorot_uniform" if fixed else keras.initializers.RandomNormal(0.0, 1.0, seed=0)
    return _mlp((13,), [64] * 6, 3, "softmax", "sparse_categorical_crossentropy", keras.optimizers.SGD(0.01),
                act="sigmoid", init=init), None, None


def _case_deep_relu(fixed):
    keras = _keras()
    return _mlp((64,), [32] * 20, 10, "softmax", "sparse_categorical_crossentropy", keras.optimizers.SGD(0.01),
                init="he_normal" if fixed else keras.initializers.RandomNormal(0.0, 0.05, seed=0)), None, None


def _case_cnn_adam_high(fixed):
    keras = _keras()
    model = keras.Sequential([keras.Input((8, 8, 1)),
                              keras.layers.Conv2D(16, 3, activation="relu", padding="same", name="conv_0"),
                              keras.layers.Conv2D(32, 3, activation="relu", padding="same", name="conv_1"),
                              keras.layers.Flatten(), keras.layers.Dense(10, activation="softmax", name="head")])
    model.compile(optimizer=keras.optimizers.Adam(1e-3 if fixed else 0.1), loss="sparse_categorical_crossentropy")
    return model, None, None


def _case_zero_init(fixed):
    keras = _keras()
    return _mlp((30,), [32, 16], 1, "sigmoid", "binary_crossentropy", keras.optimizers.SGD(0.05),
                init="glorot_uniform" if fixed else "zeros"), None, None


def _case_raw_cancer(fixed):
    keras = _keras()
    model = _mlp((30,), [16], 1, "sigmoid", "binary_crossentropy", keras.optimizers.SGD(0.01))
    return model, _standardiser("cancer_raw") if fixed else None, None


def _healthy(build):
    return lambda fixed: (build(), None, None)


def _h_convnet():
    keras = _keras()
    model = keras.Sequential([keras.Input((8, 8, 1)),
                              keras.layers.Conv2D(16, 3, activation="relu", padding="same", name="conv_0"),
                              keras.layers.MaxPooling2D(), keras.layers.Flatten(),
                              keras.layers.Dense(64, activation="relu", name="dense_0"),
                              keras.layers.Dense(10, activation="softmax", name="head")])
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy")
    return model


def _h_diabetes():
    # The diabetes target is standardised by the user (scaled inside the case's data: see ``_y_scale``).
    keras = _keras()
    return _mlp((10,), [32], 1, None, "mse", keras.optimizers.Adam(1e-2))


CASES = [
    Case("pixels_0_255", "keras-team/keras#6914 (pixels fed as 0..255)", "unscaled image inputs under SGD",
         "digits_255", _case_pixels, 20, 32, frozenset({"standardize_inputs"}), "inputs divided by 255"),
    Case("one_unit_cce", "keras-team/keras#14729", "one sigmoid unit under a categorical cross-entropy (loss 0)",
         "cancer", _case_one_unit_cce, 20, 32, frozenset({"output_pairing", "output_fit"}), "binary cross-entropy"),
    Case("softmax_one_unit", "binary classifier with Dense(1, softmax), a common Keras report",
         "softmax over one unit is always 1", "cancer", _case_softmax_one_unit, 20, 32,
         frozenset({"output_pairing", "output_fit"}), "sigmoid output"),
    Case("price_target", "rstudio/dl-keras-tf#9 (price in dollars as the target)", "target far from unit scale",
         "price", _case_price, 30, 32, frozenset({"standardize_target"}), "target standardised"),
    Case("y_equals_2x", "keras-team/keras#3040 (y = 2x does not fit)", "inputs 0..100 under plain SGD",
         "y_2x", _case_y_2x, 30, 16, frozenset({"standardize_inputs", "lr_down"}), "x divided by 100"),
    Case("bounded_output", "keras-team/keras#108, #2399 (sigmoid output on a large target)",
         "a sigmoid output cannot reach a target of 25..346", "diabetes", _case_bounded_output, 40, 32,
         frozenset({"output_fit"}), "linear output"),
    Case("labels_on_one_sigmoid", "class labels 0..9 fed to one sigmoid unit (common report)",
         "one sigmoid unit for 10 classes", "digits", _case_labels_on_sigmoid, 20, 32,
         frozenset({"output_fit"}), "10 softmax units, sparse categorical cross-entropy"),
    Case("simple_rnn_adding", "the adding problem (Hochreiter 1997; Le 2015)", "SimpleRNN over 60 steps",
         "adding", _case_adding, 10, 50, frozenset({"lstm"}), "LSTM"),
    Case("deep_sigmoid_normal", "the classic deep sigmoid net with N(0,1) weights", "saturated sigmoids",
         "wine", _case_deep_sigmoid, 60, 16, frozenset({"relu_he", "init", "batchnorm", "skip"}), "Xavier init"),
    Case("deep_relu_small_init", "20-layer plain ReLU net with small weights (He 2015's motivation)",
         "the signal shrinks through 20 layers", "digits", _case_deep_relu, 20, 32,
         frozenset({"init", "batchnorm", "skip", "relu_he"}), "He init"),
    Case("cnn_adam_lr_0_1", "Adam(lr=0.1) on a small CNN (common report)", "a learning rate 100x Adam's default",
         "digits_images", _case_cnn_adam_high, 10, 32, frozenset({"lr_down"}), "Adam(1e-3)"),
    Case("zero_init", "all-zero initial weights (common report)", "symmetric ReLU units with zero gradients",
         "cancer", _case_zero_init, 30, 32, frozenset({"init"}), "Glorot init"),
    Case("raw_cancer_features", "unscaled breast-cancer features (areas in the thousands)",
         "inputs far from unit scale", "cancer_raw", _case_raw_cancer, 30, 32, frozenset({"standardize_inputs"}),
         "StandardScaler"),
    # healthy: standard, working models
    Case("healthy_convnet_digits", "Keras's simple convnet example, on the 8x8 digits", "", "digits_images",
         _healthy(_h_convnet), 15, 32),
    Case("healthy_cancer_mlp", "breast-cancer MLP on standardised features", "", "cancer",
         _healthy(lambda: _mlp((30,), [32, 16], 1, "sigmoid", "binary_crossentropy", _keras().optimizers.Adam(1e-3))),
         30, 32),
    Case("healthy_iris", "iris MLP", "", "iris",
         _healthy(lambda: _mlp((4,), [16], 3, "softmax", "sparse_categorical_crossentropy",
                               _keras().optimizers.Adam(1e-2))), 60, 16),
    Case("healthy_wine", "wine MLP", "", "wine",
         _healthy(lambda: _mlp((13,), [32], 3, "softmax", "sparse_categorical_crossentropy",
                               _keras().optimizers.Adam(1e-2))), 40, 16),
    Case("healthy_moons", "two moons MLP", "", "moons",
         _healthy(lambda: _mlp((2,), [32, 32], 1, "sigmoid", "binary_crossentropy", _keras().optimizers.Adam(1e-2))),
         60, 32),
    Case("healthy_diabetes_scaled", "diabetes regression, target standardised by the user", "", "diabetes_scaled",
         _healthy(_h_diabetes), 60, 32),
]


#: Loaders of data names other families add (name -> loader returning ``data``'s tuple).
EXTRA_DATA = {}


def case_data(case):
    """The case's data as its user gives it to ``fit`` (the healthy diabetes case standardises its target)."""
    if case.data in EXTRA_DATA:
        return EXTRA_DATA[case.data]()
    if case.data == "diabetes_scaled":
        x_tr, y_tr, x_te, y_te = data("diabetes")
        mean, std = float(y_tr.mean()), float(y_tr.std())
        return x_tr, (y_tr - mean) / std, x_te, (y_te - mean) / std
    return data(case.data)


# --- one case -------------------------------------------------------------------------------------


def score(model, x, y, task, y_back=None) -> float:
    predicted = model.predict(x, verbose=0, batch_size=512)
    if task == "classification":
        if predicted.shape[-1] == 1:
            labels = (predicted[:, 0] > 0.5).astype("int64")
        else:
            labels = predicted.argmax(axis=-1)
        return float((labels == y).mean())
    p = predicted[:, 0].astype("float64")
    if y_back is not None:
        p = y_back(p)
    return float(1.0 - ((y - p) ** 2).sum() / ((y - y.mean()) ** 2).sum())


def train(case, fixed, seed, callbacks=()):
    keras = _keras()
    keras.utils.set_random_seed(seed)
    model, x_fix, y_fix = case.build(fixed)
    x_tr, y_tr, x_te, y_te = case_data(case)
    task = "classification" if y_tr.dtype.kind == "i" else "regression"
    x_in, x_test = (x_fix(x_tr), x_fix(x_te)) if x_fix else (x_tr, x_te)
    y_in, y_back = (y_fix[0](y_tr), y_fix[1]) if y_fix else (y_tr, None)
    model.fit(x_in, y_in, batch_size=case.batch, epochs=case.epochs, verbose=0, shuffle=False,
              callbacks=list(callbacks))
    return model, score(model, x_test, y_te, task, y_back)


def run_case(case, out: Path) -> dict:
    """Label one case by intervention, record its findings, and run the trials on it."""
    from gradscope import GradientMonitor, try_fixes
    from gradscope.diagnosis import findings_of
    from gradscope.storage import load_run

    keras = _keras()
    run_dir = out / "runs" / case.name
    monitor = GradientMonitor(run=case.name, run_dir=run_dir, config={"case": case.name})
    started = time.perf_counter()
    _, reported = train(case, False, 0, [monitor])
    run_seconds = time.perf_counter() - started
    findings = sorted({f["kind"] for f in findings_of(load_run(run_dir))})
    fixed_score = train(case, True, 0)[1] if case.calls_for else None
    x_tr, y_tr, _, _ = case_data(case)
    keras.utils.set_random_seed(0)
    model, _, _ = case.build(False)
    steps = case.epochs * math.ceil(len(x_tr) / case.batch)
    started = time.perf_counter()
    trial = try_fixes(model, x_tr, y_tr, batch_size=case.batch, max_steps=steps, verbose=False,
                      out=out / "trials" / case.name)
    trial_seconds = time.perf_counter() - started
    arms = [{k: a.get(k) for k in ("arm", "before", "after", "improvement", "floor", "helps", "judged_on", "second_seed", "note")}
            for a in trial.summary["arms"]]
    return {"case": case.name, "source": case.source, "calls_for": sorted(case.calls_for), "fix": case.fix,
            "task": case.task, "reported_score": reported, "fixed_score": fixed_score, "findings": findings,
            "best": trial.summary.get("best"),
            "helped": [a["arm"] for a in arms if a["helps"]], "arms": arms, "steps": steps,
            "run_seconds": run_seconds, "trial_seconds": trial_seconds}


# --- table ----------------------------------------------------------------------------------------


def verdict(result, advice=ADVICE) -> dict:
    """Whether the case counts, what its label is, and what trials and rules said of it."""
    task_floor = HEALTHY_SCORE if result["task"] == "classification" else 0.4
    if not result["calls_for"]:
        ok = result["reported_score"] >= task_floor
        return {"counts": ok, "label": "healthy", "trials_right": result["best"] is None,
                "rules_right": not result["findings"]}
    reported = result["reported_score"]
    gain = result["fixed_score"] - (reported if math.isfinite(reported) else -math.inf)  # NaN: the run blew up
    named = set().union(*(advice.get(a, set()) for a in result["calls_for"]))
    return {"counts": gain >= ESTABLISHED, "label": "fault", "gain": gain,
            "trials_right": result["best"] in result["calls_for"],
            "rules_right": bool(named & set(result["findings"]))}


def table(results, advice=ADVICE) -> str:
    lines = ["| case | source | authors' fix (test score reported -> fixed) | trials' best arm | right? | "
             "rules' findings | name the fix? |", "| --- | --- | --- | --- | :---: | --- | :---: |"]
    tally = {"fault": [0, 0, 0], "healthy": [0, 0, 0]}
    apart = []
    for r in results:
        v = verdict(r, advice)
        if r["calls_for"]:
            fix = f"{r['fix']} ({r['reported_score']:.2f} -> {r['fixed_score']:.2f})"
        else:
            fix = f"none (test score {r['reported_score']:.2f})"
        if not v["counts"]:
            apart.append(r["case"])
            fix += " **not established: set apart**"
        lines.append(f"| {r['case']} | {r['source']} | {fix} | {r['best'] or 'nothing helped'} | "
                     f"{'yes' if v['trials_right'] else 'no'} | {', '.join(r['findings']) or '-'} | "
                     f"{'yes' if v['rules_right'] else 'no'} |")
        if v["counts"]:
            t = tally[v["label"]]
            t[0] += 1
            t[1] += v["trials_right"]
            t[2] += v["rules_right"]
    lines.append("")
    for label, (n, trials, rules) in tally.items():
        what = "the best arm is the authors' fix" if label == "fault" else "nothing helped"
        rule = "a finding names the authors' fix" if label == "fault" else "no finding at all"
        if n:
            lines.append(f"- {label} cases ({n}): trials: {what} {trials}/{n} = {trials / n:.2f}; "
                         f"the rules alone: {rule} {rules}/{n} = {rules / n:.2f}")
    if apart:
        lines.append(f"- set apart (fix not established by intervention): {', '.join(apart)}")
    ratio = sorted(r["trial_seconds"] / max(r["run_seconds"], 1e-9) for r in results)
    lines.append(f"- trials' time / the run's own time: median {ratio[len(ratio) // 2]:.2f}x over {len(results)} cases")
    return "\n".join(lines)


def rejudged(result, out: Path) -> dict:
    """A stored result with its trials (``<out>/trials/<case>/trials.json``) judged again by today's rules,
    with the margins they ran with."""
    from gradscope.trials.result import rejudge

    path = out / "trials" / result["case"] / "trials.json"
    if not path.is_file():
        return result
    stored = json.loads(path.read_text())
    settings = stored.get("settings", {})
    again = rejudge(stored, settings.get("noise_factor", 2.0), settings.get("min_improvement", 0.02))
    return {**result, "best": again["best"], "helped": [a["arm"] for a in again["arms"] if a.get("helps")]}


def main(argv=None, cases=None, default_out=DEFAULT_OUT, description=__doc__, advice=ADVICE):
    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default=str(default_out))
    parser.add_argument("--cases", default="", help="comma-separated case names (default: all)")
    parser.add_argument("--score", action="store_true",
                        help="the table from the stored results, their trials judged again by today's rules "
                             "(gradscope.trials.result.rejudge), train nothing")
    args = parser.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / "results.jsonl"
    done = {}
    if path.exists():
        done = {r["case"]: r for r in map(json.loads, path.read_text().splitlines()) if r}
    chosen = [c for c in (cases or CASES) if not args.cases or c.name in args.cases.split(",")]
    if not args.score:
        warnings.filterwarnings("ignore")
        for case in [c for c in chosen if c.name not in done]:
            result = run_case(case, out)
            with open(path, "a") as f:
                f.write(json.dumps(result) + "\n")
            done[case.name] = result
            print(f"{case.name}: reported {result['reported_score']:.3f} fixed {result['fixed_score']} "
                  f"best={result['best']} helped={result['helped']} findings={result['findings']} "
                  f"run {result['run_seconds']:.1f}s trials {result['trial_seconds']:.1f}s", flush=True)
    results = [done[c.name] for c in chosen if c.name in done]
    if args.score:
        results = [rejudged(r, out) for r in results]
    text = table(results, advice)
    (out / "table.md").write_text(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
