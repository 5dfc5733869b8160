"""A labelled suite for the diagnosis: ground truth by intervention, three detectors compared.

Trains MLPs over depth (2-10 hidden layers), width, activation (sigmoid, tanh, relu),
initialisation (N(0,1), N(0,0.01), Xavier, He), optimizer and learning rate on MNIST, each
with a GradientMonitor, and labels each run with rules that use none of the detectors'
thresholds or signals (docs/diagnosis.md):

* non_finite: the Keras loss was NaN/inf in some epoch, or the final weights are not finite.
* exploding_gradient: non_finite, or an epoch's loss exceeded twice the untrained model's loss,
  or a layer's weights grew to more than 100x their initial norm.
* vanishing_gradient: the first hidden layer did not learn: a logistic-regression probe trained
  on its outputs classifies test images less than 1 point better after training than at
  initialisation, while training stayed finite and the layer's units are not dead. (Measured
  too, for the record: the test accuracy lost by resetting the first layer, or the output
  layer, to its initial weights after training.)
* dead_units: measured at the end on 1,000 test images: some ReLU layer has >= 50% of its
  units outputting 0 for all of them.
* saturation: measured at the end on 1,000 test images: in some sigmoid/tanh layer > 50% of
  the (image, unit) derivatives are below 5% of the activation's maximum derivative.
* stalled: the final training accuracy is below 0.2, or the final training loss is above 90%
  of the untrained model's.

Detectors: gradscope's diagnosis (records + config), AUTOTRAINER's rules (ICSE 2021) and
DeepDiagnosis' rules (ICSE 2022), re-implemented from their papers' thresholds. Configs are
shuffled with a fixed seed and split in two: thresholds are tuned on the first half, and the
table reports the second (held-out) half.

    python benchmarks/diagnosis_suite.py                 # 72 configs, ~5 min on 2 cores
    python benchmarks/diagnosis_suite.py --quick         # 12 configs, for a smoke test
    python benchmarks/diagnosis_suite.py --rescore results.json   # re-score saved runs
    python benchmarks/diagnosis_suite.py --rescore results.json --set vanish_ratio=0.05  # other thresholds
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import os
import random
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from gradscope.diagnosis import KINDS, DiagnosisSettings  # noqa: E402  (no TensorFlow)

SATURATING = {"sigmoid", "tanh"}
SETTINGS = DiagnosisSettings()  # what gradscope_verdict uses; main() applies --set


def configs(quick=False):
    """The suite's training configs, in a fixed shuffled order."""
    out = []
    for depth, act, init in itertools.product((2, 4, 6, 8, 10), ("sigmoid", "tanh", "relu"),
                                              ("normal", "normal_0.01", "xavier", "he")):
        out.append(dict(depth=depth, width=128, act=act, init=init, optimizer="sgd", lr=0.1))
    extra = [
        dict(depth=3, width=256, act="relu", init="he", optimizer="sgd", lr=2.0),
        dict(depth=3, width=256, act="relu", init="xavier", optimizer="sgd", lr=1.5),
        dict(depth=4, width=64, act="relu", init="he", optimizer="adam", lr=1e-3),
        dict(depth=4, width=64, act="sigmoid", init="xavier", optimizer="adam", lr=1e-3),
        dict(depth=6, width=512, act="tanh", init="xavier", optimizer="sgd", lr=0.01),
        dict(depth=2, width=32, act="relu", init="normal", optimizer="sgd", lr=0.001),
        dict(depth=8, width=64, act="sigmoid", init="normal", optimizer="adam", lr=1e-3),
        dict(depth=3, width=128, act="relu", init="he", optimizer="sgd", lr=0.5),
        dict(depth=5, width=256, act="tanh", init="normal", optimizer="sgd", lr=0.01),
        dict(depth=10, width=64, act="relu", init="xavier", optimizer="sgd", lr=0.1),
        dict(depth=2, width=512, act="sigmoid", init="he", optimizer="sgd", lr=1.0),
        dict(depth=3, width=128, act="relu", init="he", optimizer="adam", lr=0.05),
    ]
    out += extra
    random.Random(0).shuffle(out)
    return out[:12] if quick else out


def _model(cfg, seed=0):
    import keras

    from gradscope.models import build_mlp

    keras.utils.set_random_seed(seed)
    model = build_mlp([cfg["width"]] * cfg["depth"], act=cfg["act"], init=cfg["init"], seed=seed)
    opt = keras.optimizers.SGD(cfg["lr"]) if cfg["optimizer"] == "sgd" else keras.optimizers.Adam(cfg["lr"])
    model.compile(optimizer=opt, loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def _hidden_outputs(model, x):
    """Pre-activations and outputs of each hidden Dense layer on x (numpy)."""
    import numpy as np

    out, h = [], x
    for layer in model.layers[:-1]:
        z = h @ layer.kernel.numpy() + layer.bias.numpy()
        a = np.asarray(layer.activation(z))
        out.append((z, a))
        h = a
    return out


def _probe_gain(w_init, w_end, act, x_tr, y_tr, x_te, y_te):
    """Test-accuracy gain of a linear probe on the first hidden layer: trained vs initial weights."""
    import keras
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    fn = keras.activations.get(act)

    def probe_acc(w):
        h_tr = np.asarray(fn(x_tr[:2000] @ w[0] + w[1]))
        h_te = np.asarray(fn(x_te @ w[0] + w[1]))
        mu, sd = h_tr.mean(0), h_tr.std(0) + 1e-8
        clf = LogisticRegression(max_iter=300)
        clf.fit((h_tr - mu) / sd, y_tr[:2000])
        return clf.score((h_te - mu) / sd, y_te)

    return float(probe_acc(w_end) - probe_acc(w_init))


def _derivative_fraction(act, z):
    """Fraction of (sample, unit) derivatives below 5% of the activation's maximum derivative."""
    import numpy as np

    if act == "sigmoid":
        s = 1 / (1 + np.exp(-np.clip(z, -60, 60)))
        d = s * (1 - s) / 0.25
    else:
        d = 1 - np.tanh(z) ** 2
    return float(np.mean(d < 0.05))


def run_config(cfg, ds, epochs):
    """Train one config; return its records, labels and baseline verdicts."""
    import keras
    import numpy as np
    import tensorflow as tf

    from gradscope import GradientMonitor

    model = _model(cfg)
    x_tr, y_tr, x_te, y_te = ds.x_train, ds.y_train, ds.x_test[:1000], ds.y_test[:1000]
    init_weights = [w.copy() for w in model.get_weights()]
    init_loss = float(model.evaluate(x_tr, y_tr, verbose=0)[0])
    loss_fn = keras.losses.SparseCategoricalCrossentropy()

    def mean_abs_grads(m):
        with tf.GradientTape() as tape:
            loss = loss_fn(y_tr[:256], m(x_tr[:256], training=True))
        grads = tape.gradient(loss, [layer.kernel for layer in m.layers])
        return [float(np.mean(np.abs(g.numpy()))) for g in grads], [float(np.mean(g.numpy() == 0)) for g in grads[:-1]]

    mag_start, _ = mean_abs_grads(model)
    monitor = GradientMonitor(run=str(cfg), probe=x_tr[:256])
    t0 = time.perf_counter()
    history = model.fit(x_tr, y_tr, batch_size=100, epochs=epochs, verbose=0, callbacks=[monitor])
    seconds = time.perf_counter() - t0
    losses = [float(v) for v in history.history["loss"]]
    mag_end, zero_frac_end = mean_abs_grads(model)
    weights = model.get_weights()
    finite_weights = all(np.all(np.isfinite(w)) for w in weights)
    test_acc = float(model.evaluate(x_te, y_te, verbose=0)[1]) if finite_weights else 0.1
    train_loss, train_acc = model.evaluate(x_tr, y_tr, verbose=0) if finite_weights else (math.nan, 0.0)

    def acc_with(layer_index, values):
        m = _model(cfg)
        m.set_weights(weights)
        layer = m.layers[layer_index]
        layer.kernel.assign(values[0])
        layer.bias.assign(values[1])
        return float(m.evaluate(x_te, y_te, verbose=0)[1])

    n_layers = len(model.layers)
    drop_first = test_acc - acc_with(0, init_weights[0:2]) if finite_weights else 0.0
    drop_last = test_acc - acc_with(n_layers - 1, init_weights[-2:]) if finite_weights else 0.0

    probe_gain = _probe_gain(init_weights[:2], weights[:2], cfg["act"], x_tr, y_tr, x_te, y_te) if finite_weights else 0.0
    hidden = _hidden_outputs(model, x_te) if finite_weights else []
    dead_frac = [float(np.mean(np.all(a == 0, axis=0))) for _, a in hidden] if cfg["act"] == "relu" else []
    sat_frac = [_derivative_fraction(cfg["act"], z) for z, _ in hidden] if cfg["act"] in SATURATING else []
    on_frac_le0 = [float(np.mean(a <= 0)) for _, a in hidden] if cfg["act"] == "relu" else []
    sat_z5 = [float(np.mean(np.abs(z) >= 5)) for z, _ in hidden] if cfg["act"] in SATURATING else []
    kernel_growth = [float(np.linalg.norm(w) / max(np.linalg.norm(w0), 1e-12))
                     for w, w0 in zip(weights[0::2], init_weights[0::2])] if finite_weights else []

    non_finite = (not finite_weights) or any(not math.isfinite(v) for v in losses)
    labels = {
        "non_finite": non_finite,
        "exploding_gradient": non_finite or max(losses) > 2 * init_loss or any(g > 100 for g in kernel_growth),
        "vanishing_gradient": (not non_finite) and probe_gain < 0.01 and not (dead_frac and dead_frac[0] >= 0.5),
        "dead_units": any(f >= 0.5 for f in dead_frac),
        "saturation": any(f > 0.5 for f in sat_frac),
        "stalled": train_acc < 0.2 or not (train_loss <= 0.9 * init_loss),
    }
    return {
        "config": cfg,
        "labels": labels,
        "measured": {"init_loss": init_loss, "epoch_losses": losses, "test_accuracy": test_acc,
                     "train_accuracy": float(train_acc), "reset_first_drop": drop_first,
                     "reset_output_drop": drop_last, "first_layer_probe_gain": probe_gain, "dead_frac": dead_frac, "saturated_deriv_frac": sat_frac,
                     "kernel_growth": kernel_growth, "seconds": seconds},
        "baseline_inputs": {"mean_abs_grad_start": mag_start, "mean_abs_grad_end": mag_end,
                            "zero_grad_frac_end": zero_frac_end, "outputs_le0_frac": on_frac_le0,
                            "sat_z5_frac": sat_z5},
        "records": monitor.records.to_dict(orient="list"),
    }


# --- detectors ------------------------------------------------------------------------


def gradscope_verdict(result):
    import pandas as pd

    from gradscope import records as rec
    from gradscope.diagnosis import diagnose

    records = rec.coerce(pd.DataFrame(result["records"]))
    cfg = result["config"]
    config = {"act": cfg["act"], "init": cfg["init"], "lr": cfg["lr"],
              "layers": [784] + [cfg["width"]] * cfg["depth"] + [10]}
    kinds = {f.kind for f in diagnose(records, config, SETTINGS)}
    return {k: k in kinds for k in KINDS}


def autotrainer_verdict(result):
    """AUTOTRAINER (ICSE 2021) rules on the recorded per-step kernel gradient norms."""
    import numpy as np
    import pandas as pd

    r = pd.DataFrame(result["records"])
    g = r[(r.metric == "grad_norm") & (r.variable == "kernel")].pivot_table(index="step", columns="depth", values="value")
    first, last = g.iloc[:, 0].to_numpy(), g.iloc[:, -1].to_numpy()
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = first / last
    nan = bool(np.any(~np.isfinite(g.to_numpy())))
    losses = np.array(result["measured"]["epoch_losses"], dtype=float)
    explode = nan or bool(np.any(ratio > 70)) or bool(np.any(~np.isfinite(losses))) or bool(np.any(losses >= 1e5))
    return {
        "vanishing_gradient": bool(np.any((ratio < 1e-3) & (first < 1e-4))),
        "exploding_gradient": explode,
        "dead_units": any(f >= 0.7 for f in result["baseline_inputs"]["zero_grad_frac_end"])
                      if result["config"]["act"] == "relu" else False,
        "saturation": None,
        "stalled": None,
        "non_finite": nan or bool(np.any(~np.isfinite(losses))),
    }


def deepdiagnosis_verdict(result):
    """DeepDiagnosis (ICSE 2022) rules: mean |dW|, dead nodes, saturation, non-finite values."""
    import numpy as np

    b = result["baseline_inputs"]
    losses = np.array(result["measured"]["epoch_losses"], dtype=float)
    mags = np.array(b["mean_abs_grad_start"] + b["mean_abs_grad_end"], dtype=float)
    nonfinite = bool(np.any(~np.isfinite(losses))) or bool(np.any(~np.isfinite(mags)))
    return {
        "vanishing_gradient": bool(np.any(mags[np.isfinite(mags)] < 1e-7)),
        "exploding_gradient": nonfinite,
        "dead_units": any(f >= 0.7 for f in b["outputs_le0_frac"]),
        "saturation": any(f > 0.5 for f in b["sat_z5_frac"]),
        "stalled": None,
        "non_finite": nonfinite,
    }


DETECTORS = {"gradscope": gradscope_verdict, "AUTOTRAINER": autotrainer_verdict,
             "DeepDiagnosis": deepdiagnosis_verdict}


def score(results, detector):
    """Precision and recall per kind (None where the detector has no rule for the kind)."""
    out = {}
    for kind in KINDS:
        tp = fp = fn = 0
        has_rule = True
        for res in results:
            verdict = DETECTORS[detector](res)[kind]
            if verdict is None:
                has_rule = False
                break
            truth = res["labels"][kind]
            tp += verdict and truth
            fp += verdict and not truth
            fn += (not verdict) and truth
        if not has_rule:
            out[kind] = None
            continue
        precision = tp / (tp + fp) if tp + fp else (1.0 if fn == 0 else 0.0)
        recall = tp / (tp + fn) if tp + fn else 1.0
        out[kind] = {"precision": precision, "recall": recall, "positives": tp + fn, "tp": tp, "fp": fp, "fn": fn}
    return out


def table(results, title):
    lines = [f"{title} ({len(results)} runs)", "",
             "| kind | positives | gradscope P / R | AUTOTRAINER P / R | DeepDiagnosis P / R |",
             "| --- | ---: | ---: | ---: | ---: |"]
    scores = {d: score(results, d) for d in DETECTORS}
    for kind in KINDS:
        cells = []
        for d in DETECTORS:
            s = scores[d][kind]
            cells.append("no rule" if s is None else f"{s['precision']:.2f} / {s['recall']:.2f}")
        positives = scores["gradscope"][kind]["positives"]
        lines.append(f"| {kind} | {positives} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default="sample")
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="12 configs, 2 epochs")
    parser.add_argument("--out", default="benchmarks/results/diagnosis_suite.json")
    parser.add_argument("--rescore", help="score saved results instead of training")
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                        help="a diagnosis threshold to use instead of the default (gradscope.diagnosis.settings)")
    args = parser.parse_args(argv)
    global SETTINGS
    overrides = dict(item.split("=", 1) for item in args.set)
    SETTINGS = DiagnosisSettings(**{k: type(getattr(SETTINGS, k))(v) for k, v in overrides.items()})
    if args.rescore:
        with open(args.rescore) as f:
            results = json.load(f)
    else:
        import warnings

        warnings.filterwarnings("ignore")
        from gradscope import data

        ds = data.load(args.data)
        cfgs = configs(args.quick)
        epochs = 2 if args.quick else args.epochs
        results = []
        started = time.perf_counter()
        for i, cfg in enumerate(cfgs):
            res = run_config(cfg, ds, epochs)
            results.append(res)
            truth = [k for k, v in res["labels"].items() if v]
            print(f"[{i + 1}/{len(cfgs)}] {cfg} acc={res['measured']['test_accuracy']:.3f} truth={truth}",
                  flush=True)
        print(f"trained {len(cfgs)} configs in {time.perf_counter() - started:.0f} s")
        os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
        with open(args.out, "w") as f:
            json.dump(results, f)
    half = len(results) // 2
    print()
    print(table(results[:half], "Tuning half"))
    print()
    print(table(results[half:], "Held-out half"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
