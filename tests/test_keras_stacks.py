"""Stacks gradscope cannot record say so in one line, write no run and leave the training alone.

Keras 3.5 (older than the trainer gradscope reads) runs in a fresh interpreter of its own venv, which
``.ci/run`` makes. Keras 3 on JAX and PyTorch and legacy Keras 2 (``tf_keras``) are recorded:
``tests/test_keras_backends.py`` and ``tests/test_tf_keras_steps.py``; what only takes Keras 3 models (the
trials) says so in one line for a legacy one.
"""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from gradscope.recorders.keras_compat import stack_problem

SCRIPT = r"""
import json, os, sys, tempfile, warnings
import numpy as np
if os.environ.get("TF_USE_LEGACY_KERAS") == "1":
    import tf_keras as keras
else:
    import keras
import gradscope

rng = np.random.default_rng(0)
x, y = rng.normal(size=(96, 8)).astype("float32"), rng.integers(0, 3, 96)
model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(8, activation="relu"),
                          keras.layers.Dense(3, activation="softmax")])
model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
run_dir = os.path.join(tempfile.mkdtemp(), "run")
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    history = model.fit(x, y, batch_size=32, epochs=2, verbose=0, callbacks=[gradscope.GradientMonitor(run_dir=run_dir)])
ours = [str(w.message) for w in caught if "gradscope" in str(w.message)]
try:
    gradscope.audit(model, x, y)
    audit = "no error"
except gradscope.errors.GradscopeError as exc:
    audit = str(exc)
print(json.dumps({"epochs": len(history.history["loss"]), "warnings": ours, "run_written": os.path.exists(run_dir),
                  "audit": audit}))
"""


#: A Python with a Keras older than 3.7 (TF 2.18 + Keras 3.5), made by ``.ci/run``; those tests skip without it.
OLD_KERAS_PYTHON = os.environ.get("GRADSCOPE_OLD_KERAS_PYTHON")
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_on(env: dict, python: str = sys.executable, script: str = SCRIPT) -> dict:
    env = {**os.environ, **env}
    if python != sys.executable:  # gradscope from this checkout, the rest from that Python's own packages
        env["PYTHONPATH"] = REPO
    out = subprocess.run([python, "-c", script], env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_trials_of_a_legacy_keras_model_are_refused_in_one_line():
    tf_keras = pytest.importorskip("tf_keras")
    from gradscope import try_fixes
    from gradscope.errors import GradscopeError

    model = tf_keras.Sequential([tf_keras.Input((4,)), tf_keras.layers.Dense(2, activation="softmax")])
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    with pytest.raises(GradscopeError) as caught:
        try_fixes(model, np.zeros((40, 4), "float32"), np.zeros(40, "int64"), verbose=False)
    message = str(caught.value)
    assert "legacy Keras 2" in message and "`import keras`" in message and "\n" not in message


def test_a_backend_without_a_step_source_is_named_with_the_ones_recorded():
    line = stack_problem("3.15.1", "openvino", backends=("tensorflow", "jax", "torch"))
    assert "TensorFlow, JAX or PyTorch" in line and "openvino" in line and "\n" not in line


def test_keras_older_than_3_7_is_refused_by_version():
    assert "pip install 'keras>=3.7'" in stack_problem("3.6.0", "tensorflow")
    assert stack_problem("3.7.0", "tensorflow") is None and stack_problem("3.15.1", "tensorflow") is None


@pytest.mark.skipif(not OLD_KERAS_PYTHON, reason="no GRADSCOPE_OLD_KERAS_PYTHON (a Keras 3.3-3.6; .ci/run makes one)")
def test_keras_3_5_trains_on_with_one_warning_and_no_run():
    got = run_on({}, python=OLD_KERAS_PYTHON)
    assert got["epochs"] == 2 and not got["run_written"]
    assert len(got["warnings"]) == 1 and "pip install 'keras>=3.7'" in got["warnings"][0]


@pytest.mark.skipif(not OLD_KERAS_PYTHON, reason="no GRADSCOPE_OLD_KERAS_PYTHON (a Keras 3.3-3.6; .ci/run makes one)")
def test_past_the_version_gate_the_zero_gradient_check_still_records_no_zero():
    """Past the gate, Keras 3.5's trainer leaves the recorder reading gradients of exactly 0 while the weights
    move: the recording stops with its root cause (the variables it cannot read), and no 0 is recorded."""
    script = SCRIPT.replace("import gradscope\n", "import gradscope\nfrom gradscope.recorders import keras_compat\n"
                            "keras_compat.OLDEST_KERAS = (3, 0)\n", 1)
    script += (
        "meta = json.load(open(os.path.join(run_dir, 'run.json')))\n"
        "from gradscope.storage import load_run\n"
        "r = load_run(run_dir).records\n"
        "print(json.dumps({'status': meta['status'], 'error': meta.get('error'),"
        " 'zeros': int(((r.metric == 'grad_norm') & (r.value == 0)).sum())}))\n")
    got = run_on({}, python=OLD_KERAS_PYTHON, script=script)
    assert got["zeros"] == 0 and got["status"] == "failed" and "gradscope stopped recording" in got["error"]
