"""The same own-model script gives the same findings on Keras 3 on TensorFlow, JAX and PyTorch and on legacy Keras 2.

``docs/examples/any_keras.py`` draws its weights with NumPy and trains without shuffling, so every Keras
starts from the same numbers and sees the same batches; each runs in a fresh interpreter.
"""

import json
import os
import subprocess
import sys

import pytest

pytest.importorskip("jax")
pytest.importorskip("tf_keras")
pytest.importorskip("torch")

SCRIPT = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "docs", "examples", "any_keras.py")
STACKS = {"tensorflow": {"KERAS_BACKEND": "tensorflow"}, "jax": {"KERAS_BACKEND": "jax"},
          "torch": {"KERAS_BACKEND": "torch"}, "tf_keras": {"TF_USE_LEGACY_KERAS": "1"}}


def run_on(stack: str) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("KERAS_BACKEND", "TF_USE_LEGACY_KERAS")}
    out = subprocess.run([sys.executable, SCRIPT, "--json"], env={**env, **STACKS[stack]}, capture_output=True,
                         text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_one_own_model_script_gives_the_same_findings_on_every_keras():
    got = {stack: run_on(stack) for stack in STACKS}
    assert {s: (g["versions"]["framework"], g["versions"]["keras_backend"]) for s, g in got.items()} == {
        "tensorflow": ("keras", "tensorflow"), "jax": ("keras", "jax"), "torch": ("keras", "torch"),
        "tf_keras": ("tf_keras", "tensorflow")}
    assert all(g["status"] == "complete" for g in got.values())
    found = {stack: g["findings"] for stack, g in got.items()}
    assert found["tensorflow"] and all(f == found["tensorflow"] for f in found.values()), found
    assert got["tf_keras"]["audit"] == got["tensorflow"]["audit"]  # the same loss on the same backend
    # (On JAX and PyTorch the audit may differ: a saturated softmax's cross-entropy is computed from clipped
    # probabilities there, and from the logits on TensorFlow, so the first gradients really differ.)
    for stack in ("jax", "torch"):
        assert got[stack]["loss"] == pytest.approx(got["tensorflow"]["loss"], rel=0.01)
