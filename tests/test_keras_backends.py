"""Keras 3 on JAX and on PyTorch: GradientMonitor records every step's norms exactly, against the backend's own gradient.

Each case runs in a fresh interpreter with ``KERAS_BACKEND`` set (the backend is chosen at keras's
first import). The independent computation is a hand-written forward pass of the same two-layer
model, differentiated by the backend itself (``jax.grad``, ``torch.autograd.grad``) in float64 and
stepped by plain SGD in a Python loop, from the same starting weights and on the same batches.
"""

import json
import os
import subprocess
import sys

import pytest

SCRIPT = r"""
import json, os, sys, tempfile, warnings
import numpy as np
import keras
backend = keras.backend.backend()
import gradscope
from gradscope.storage import load_run

case = sys.argv[1]
rng = np.random.default_rng(0)
x = rng.normal(size=(96, 8)).astype("float32"); y = rng.integers(0, 3, 96)
keras.utils.set_random_seed(3)
model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(6, activation="tanh"),
                          keras.layers.Dense(3, activation="softmax")])
optimizer = keras.optimizers.Adam(0.05, clipnorm=0.01) if case == "clipped" else keras.optimizers.SGD(0.5)
model.compile(optimizer=optimizer, loss="sparse_categorical_crossentropy",
              steps_per_execution=2 if case == "grouped" else 1, jit_compile=True if case == "compiled" else "auto")
assert case == "compiled" or backend != "jax" or model.jit_compile  # JAX's own compiled step
w = [keras.ops.convert_to_numpy(v.value).astype("float64") for v in model.trainable_variables]
run_dir = os.path.join(tempfile.mkdtemp(), "run")

class Stop(keras.callbacks.Callback):
    def on_train_batch_end(self, batch, logs=None):
        if case in ("interrupted", "failed") and batch == 1 and self.params and self._epoch == 1:
            raise KeyboardInterrupt if case == "interrupted" else ValueError("a callback of the user's broke")
    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

monitor = gradscope.GradientMonitor(run_dir=run_dir)
caught_error = None
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    try:
        history = model.fit(x, y, batch_size=32, epochs=2, shuffle=False, verbose=0, callbacks=[monitor, Stop()])
    except (KeyboardInterrupt, ValueError) as exc:
        caught_error = type(exc).__name__
ours = [str(m.message) for m in caught if "gradscope" in str(m.message)]
try:
    gradscope.audit(model, x, y)
    audit = "no error"
except gradscope.errors.GradscopeError as exc:
    audit = str(exc)
if not os.path.exists(os.path.join(run_dir, "run.json")):
    print(json.dumps({"warnings": ours, "run_written": False, "error": caught_error, "audit": audit})); sys.exit()
run = load_run(run_dir)

if backend == "jax":  # the independent gradient: the backend's own differentiation of a hand-written model
    import jax, jax.numpy as jnp
    jax.config.update("jax_enable_x64", True)

    def grad_of(ws, xb, yb):
        def loss(ws):
            h = jnp.tanh(xb @ ws[0] + ws[1])
            p = jax.nn.softmax(h @ ws[2] + ws[3])
            return -jnp.mean(jnp.log(jnp.take_along_axis(p, yb[:, None], 1)))
        return [np.asarray(g) for g in jax.grad(loss)([jnp.asarray(wi) for wi in ws])]
else:
    import torch

    def grad_of(ws, xb, yb):
        ws = [torch.tensor(wi, requires_grad=True) for wi in ws]
        h = torch.tanh(torch.tensor(xb, dtype=torch.float64) @ ws[0] + ws[1])
        p = torch.softmax(h @ ws[2] + ws[3], dim=1)
        loss = -torch.mean(torch.log(torch.gather(p, 1, torch.tensor(yb)[:, None])))
        return [g.numpy() for g in torch.autograd.grad(loss, ws)]

expected = []  # (step, variable index, grad_norm, update_norm, weight_norm), in float64
for step in range(6):
    b = slice(32 * (step % 3), 32 * (step % 3 + 1))
    g = grad_of(w, x[b].astype("float64"), y[b])
    if case == "clipped":  # one Adam step at most: compare the clipped gradient of step 0
        g = [gi * min(1.0, 0.01 / np.linalg.norm(gi)) for gi in g]
    new = [wi - 0.5 * gi for wi, gi in zip(w, g)]
    for i in range(4):
        expected.append((step, i, float(np.linalg.norm(g[i])), float(np.linalg.norm(new[i] - w[i])),
                         float(np.linalg.norm(new[i]))))
    w = new

r = run.records
names = [tuple(v.path.split("/")[-2:]) for v in model.trainable_variables]
got = {}
for metric in ("grad_norm", "update_norm", "weight_norm"):
    for row in r[r.metric == metric].itertuples():
        got[(metric, int(row.step), names.index((row.layer, row.variable)))] = float(row.value)
print(json.dumps({"warnings": ours, "run_written": True, "status": run.status, "error": caught_error, "audit": audit,
                  "backend": run.meta["versions"]["keras_backend"], "version": run.meta["versions"].get(backend),
                  "expected": expected, "got": [[k[0], k[1], k[2], v] for k, v in got.items()],
                  "epochs_done": run.meta["progress"]["epochs_done"],
                  "model_weights": [float(np.linalg.norm(keras.ops.convert_to_numpy(v.value)))
                                    for v in model.trainable_variables]}))
"""


def _installed(module: str) -> bool:
    try:
        __import__(module)
    except ImportError:
        return False
    return True


BACKENDS = [pytest.param(b, marks=pytest.mark.skipif(not _installed(b), reason=f"{b} is not installed"))
            for b in ("jax", "torch")]


def run_on(backend: str, case: str) -> dict:
    env = {**os.environ, "KERAS_BACKEND": backend}
    out = subprocess.run([sys.executable, "-c", SCRIPT, case], env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def _table(got):
    return {(metric, step, i): value for metric, step, i, value in got["got"]}


@pytest.mark.parametrize("backend", BACKENDS)
def test_every_step_is_exact_against_the_backends_own_gradient_and_a_hand_unrolled_sgd_loop(backend):
    got = run_on(backend, "sgd")
    assert got["warnings"] == [] and got["status"] == "complete" and got["backend"] == backend and got["version"]
    table = _table(got)
    assert {s for _, s, _ in table} == set(range(6))  # every step, no phantom or missing one
    for step, i, grad, update, weight in got["expected"]:
        assert table[("grad_norm", step, i)] == pytest.approx(grad, rel=1e-5)
        assert table[("update_norm", step, i)] == pytest.approx(update, rel=1e-4, abs=1e-7)
        if ("weight_norm", step, i) in table:
            assert table[("weight_norm", step, i)] == pytest.approx(weight, rel=1e-5)
    assert got["audit"] == "no error"  # audit measures the model too (the backend's own gradient)
    last = {i: table[("weight_norm", 5, i)] for i in range(4) if ("weight_norm", 5, i) in table}
    assert last and all(v == pytest.approx(got["model_weights"][i], rel=1e-6) for i, v in last.items())


@pytest.mark.slow
@pytest.mark.parametrize("backend", BACKENDS)
def test_the_gradient_recorded_is_the_one_applied_after_clipping(backend):
    got = run_on(backend, "clipped")
    table = _table(got)
    for step, i, grad, _, _ in got["expected"][:4]:  # step 0: the same weights on both sides
        assert table[("grad_norm", 0, i)] == pytest.approx(grad, rel=1e-4) and grad <= 0.01 + 1e-7


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("case, status, error", [("interrupted", "interrupted", "KeyboardInterrupt"),
                                                 pytest.param("failed", "failed", "ValueError", marks=pytest.mark.slow)])
def test_a_fit_that_dies_keeps_its_steps_and_says_how_it_ended(backend, case, status, error):
    got = run_on(backend, case)
    assert got["error"] == error and got["status"] == status
    steps = {s for m, s, _ in _table(got) if m == "grad_norm"}
    assert steps == {0, 1, 2, 3, 4}  # epoch 0's three steps and epoch 1's two, up to the callback that raised
    table = _table(got)
    for step, i, grad, _, _ in got["expected"][:15]:
        assert table[("grad_norm", step, i)] == pytest.approx(grad, rel=1e-5)


@pytest.mark.parametrize("backend, case, says", [
    pytest.param("jax", "grouped", "steps_per_execution=1", marks=[*BACKENDS[0].marks, pytest.mark.slow]),
    pytest.param("torch", "compiled", "jit_compile=False", marks=[*BACKENDS[1].marks, pytest.mark.slow])])
def test_what_a_backend_cannot_record_is_refused_in_one_line_and_the_fit_trains_on(backend, case, says):
    got = run_on(backend, case)
    assert not got["run_written"] and got["error"] is None
    (warning,) = got["warnings"]
    assert says in warning and "training goes on" in warning
