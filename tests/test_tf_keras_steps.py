"""Legacy Keras 2 (``tf_keras``): GradientMonitor records every step's norms exactly, against a GradientTape.

Each case runs in a fresh interpreter, as course code written before Keras 3 runs: ``import tf_keras``
(or ``tf.keras`` under ``TF_USE_LEGACY_KERAS=1``). The independent computation is a hand-written
forward pass of the same two-layer model, differentiated by ``tf.GradientTape`` and stepped by plain
SGD in a Python loop, from the same starting weights and on the same batches.
"""

import json
import os
import subprocess
import sys

import pytest

pytest.importorskip("tf_keras")

SCRIPT = r"""
import json, os, sys, tempfile, warnings
import numpy as np
case = sys.argv[1]
if case == "tf.keras":
    import tensorflow as tf
    keras = tf.keras
else:
    import tensorflow as tf
    import tf_keras as keras
import gradscope
from gradscope.storage import load_run

rng = np.random.default_rng(0)
x = rng.normal(size=(96, 8)).astype("float32"); y = rng.integers(0, 3, 96)
keras.utils.set_random_seed(3)
model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(6, activation="tanh"),
                          keras.layers.Dense(3, activation="softmax")])
optimizer = {"clipped": lambda: keras.optimizers.Adam(0.05, clipnorm=0.01),
             "legacy_optimizer": lambda: keras.optimizers.legacy.SGD(0.5)}.get(case, lambda: keras.optimizers.SGD(0.5))()
model.compile(optimizer=optimizer, loss="sparse_categorical_crossentropy")
w = [tf.constant(v.numpy()) for v in model.trainable_variables]
run_dir = os.path.join(tempfile.mkdtemp(), "run")

class Stop(keras.callbacks.Callback):
    def on_train_batch_end(self, batch, logs=None):
        if case in ("interrupted", "failed") and batch == 1 and self._epoch == 1:
            raise KeyboardInterrupt if case == "interrupted" else ValueError("a callback of the user's broke")
    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

monitor = gradscope.GradientMonitor(run_dir=run_dir)
caught_error = None
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    try:
        model.fit(x, y, batch_size=32, epochs=2, shuffle=False, verbose=0, callbacks=[monitor, Stop()])
    except (KeyboardInterrupt, ValueError) as exc:
        caught_error = type(exc).__name__
ours = [str(m.message) for m in caught if "gradscope" in str(m.message)]
audit = [f.kind for f in gradscope.audit(model, x, y)]
run = load_run(run_dir)

def loss(ws, xb, yb):
    h = tf.tanh(xb @ ws[0] + ws[1])
    p = tf.nn.softmax(h @ ws[2] + ws[3])
    return -tf.reduce_mean(tf.math.log(tf.gather(p, yb, axis=1, batch_dims=1)))

expected = []  # (step, variable index, grad_norm, update_norm, weight_norm)
for step in range(6):
    b = slice(32 * (step % 3), 32 * (step % 3 + 1))
    with tf.GradientTape() as tape:
        tape.watch(w)
        value = loss(w, tf.constant(x[b]), tf.constant(y[b]))
    g = tape.gradient(value, w)
    if case == "clipped":  # one Adam step at most: compare the clipped gradient of step 0
        g = [gi * tf.minimum(1.0, 0.01 / tf.norm(gi)) for gi in g]
    new = [wi - 0.5 * gi for wi, gi in zip(w, g)]
    for i in range(4):
        expected.append((step, i, float(tf.norm(g[i])), float(tf.norm(new[i] - w[i])), float(tf.norm(new[i]))))
    w = new

r = run.records
layers = [l.name for l in model.layers]
names = [(l.name, v) for l in model.layers for v in ("kernel", "bias")]
got = {}
for metric in ("grad_norm", "update_norm", "weight_norm"):
    for row in r[r.metric == metric].itertuples():
        got[(metric, int(row.step), names.index((row.layer, row.variable)))] = float(row.value)
print(json.dumps({"warnings": ours, "status": run.status, "error": caught_error, "audit": audit,
                  "versions": run.meta["versions"], "classes": [l["class"] for l in run.meta["model"]["layers"]],
                  "expected": expected, "got": [[k[0], k[1], k[2], v] for k, v in got.items()],
                  "model_weights": [float(np.linalg.norm(v.numpy())) for v in model.trainable_variables]}))
"""


def run_tf_keras(case: str) -> dict:
    env = {**os.environ, "TF_USE_LEGACY_KERAS": "1"} if case == "tf.keras" else dict(os.environ)
    out = subprocess.run([sys.executable, "-c", SCRIPT, case], env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def _table(got):
    return {(metric, step, i): value for metric, step, i, value in got["got"]}


@pytest.mark.parametrize("case", ["sgd", pytest.param("legacy_optimizer", marks=pytest.mark.slow), "tf.keras"])
def test_every_step_of_legacy_keras_is_exact_against_a_gradient_tape_and_a_hand_unrolled_sgd_loop(case):
    got = run_tf_keras(case)
    assert got["warnings"] == [] and got["status"] == "complete"
    assert got["versions"]["framework"] == "tf_keras" and got["versions"]["keras"].startswith("2.")
    assert got["classes"] == ["Dense", "Dense"]
    table = _table(got)
    assert {s for _, s, _ in table} == set(range(6))  # every step, no phantom or missing one
    for step, i, grad, update, weight in got["expected"]:
        assert table[("grad_norm", step, i)] == pytest.approx(grad, rel=1e-5)
        assert table[("update_norm", step, i)] == pytest.approx(update, rel=1e-4, abs=1e-7)
        if ("weight_norm", step, i) in table:
            assert table[("weight_norm", step, i)] == pytest.approx(weight, rel=1e-5)
    last = {i: table[("weight_norm", 5, i)] for i in range(4) if ("weight_norm", 5, i) in table}
    assert last and all(v == pytest.approx(got["model_weights"][i], rel=1e-6) for i, v in last.items())
    assert isinstance(got["audit"], list)  # audit measured the model (its findings are the diagnosis' business)


@pytest.mark.slow
def test_on_legacy_keras_the_gradient_recorded_is_the_one_applied_after_clipping():
    got = run_tf_keras("clipped")
    table = _table(got)
    for _, i, grad, _, _ in got["expected"][:4]:  # step 0: the same weights on both sides
        assert table[("grad_norm", 0, i)] == pytest.approx(grad, rel=1e-4) and grad <= 0.01 + 1e-7


@pytest.mark.parametrize("case, status, error", [("interrupted", "interrupted", "KeyboardInterrupt"),
                                                 pytest.param("failed", "failed", "ValueError", marks=pytest.mark.slow)])
def test_a_legacy_keras_fit_that_dies_keeps_its_steps_and_says_how_it_ended(case, status, error):
    got = run_tf_keras(case)
    assert got["error"] == error and got["status"] == status
    table = _table(got)
    assert {s for m, s, _ in table if m == "grad_norm"} == {0, 1, 2, 3, 4}  # up to the callback that raised
    for step, i, grad, _, _ in got["expected"][:20]:
        assert table[("grad_norm", step, i)] == pytest.approx(grad, rel=1e-5)
