"""One own-model script, whichever Keras runs it: Keras 3 on TensorFlow, JAX or PyTorch, or legacy Keras 2.

A small sigmoid MLP with N(0, 1) weights on scikit-learn's 8x8 digits, audited before training and
monitored while it trains; it prints what gradscope found. The weights are drawn with NumPy, so every
Keras starts from the same numbers and sees the same batches:

    python docs/examples/any_keras.py                          # Keras 3 on TensorFlow
    KERAS_BACKEND=jax python docs/examples/any_keras.py        # Keras 3 on JAX
    KERAS_BACKEND=torch python docs/examples/any_keras.py      # Keras 3 on PyTorch
    TF_USE_LEGACY_KERAS=1 python docs/examples/any_keras.py    # legacy Keras 2 (tf.keras is tf_keras)

``--json`` prints the findings as one line of JSON (``tests/test_any_keras.py`` compares them).
"""

import argparse
import json
import os
import tempfile

import numpy as np
from sklearn.datasets import load_digits

if os.environ.get("TF_USE_LEGACY_KERAS") == "1":
    import tensorflow as tf

    keras = tf.keras  # legacy Keras 2 (tf_keras), as course code from before Keras 3 has it
else:
    import keras

import gradscope
from gradscope.diagnosis import findings_of

parser = argparse.ArgumentParser()
parser.add_argument("--epochs", type=int, default=6)
parser.add_argument("--out", default=None, help="the run directory (default: a new temporary one)")
parser.add_argument("--json", action="store_true")
args = parser.parse_args()

x, y = load_digits(return_X_y=True)
x = (x / 16.0).astype("float32")
model = keras.Sequential([keras.Input((64,))] + [keras.layers.Dense(64, activation="sigmoid") for _ in range(4)]
                         + [keras.layers.Dense(10, activation="softmax")])
rng = np.random.default_rng(0)
for layer in model.layers:  # N(0, 1) weights, zero biases: the same start in every Keras
    kernel, bias = layer.get_weights()
    layer.set_weights([rng.normal(0.0, 1.0, kernel.shape).astype("float32"), np.zeros_like(bias)])
model.compile(optimizer=keras.optimizers.SGD(0.1), loss="sparse_categorical_crossentropy", metrics=["accuracy"])

before = gradscope.audit(model, x[:256], y[:256])
run_dir = args.out or os.path.join(tempfile.mkdtemp(), "any-keras")
monitor = gradscope.GradientMonitor(run="any-keras", run_dir=run_dir)
model.fit(x, y, batch_size=32, epochs=args.epochs, shuffle=False, callbacks=[monitor], verbose=0)
run = gradscope.load_run(run_dir)
found = findings_of(run)  # what `gradscope diagnose` and the report say of the run
if args.json:
    print(json.dumps({"versions": run.meta["versions"], "status": run.status,
                      "audit": [[f.kind, f.severity, list(f.layers)] for f in before],
                      "findings": [[f["kind"], f["severity"], list(f["layers"])] for f in found],
                      "loss": run.meta["metrics"]["loss"]}))
else:
    v = run.meta["versions"]
    print(f"{v['framework']} {v['keras']} on {v['keras_backend']}: run {run.status}, loss {run.meta['metrics']['loss']:.4f}")
    print("before training:", before or "no problem predicted")
    print("after training:", "; ".join(f"{f['kind']} ({f['severity']}): {f['summary']}" for f in found) or "nothing")
