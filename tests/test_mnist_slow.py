"""Real MNIST end to end: the contrast the project exists to show (marked slow, about 40 s)."""

import json

import pytest
from click.testing import CliRunner

from gradscope.cli import main

pytestmark = pytest.mark.slow


def _meta(out, run):
    return json.loads((out / "runs" / run / "run.json").read_text())


def test_full_mnist_relu_he_reaches_97_percent(tmp_path, shared_mnist):
    out = tmp_path / "mnist"
    r = CliRunner().invoke(main, ["analyze", "--data", shared_mnist, "--act", "relu", "--init", "he",
                                  "--out", str(out), "-q"], catch_exceptions=False)
    assert r.exit_code == 0, r.output
    assert _meta(out, "relu-he")["metrics"]["test_accuracy"] >= 0.97


def test_default_sample_shows_the_contrast(tmp_path):
    out = tmp_path / "sample"
    r = CliRunner().invoke(main, ["analyze", "--act", "sigmoid", "--act", "relu", "--init", "normal",
                                  "--init", "he", "--out", str(out), "-q"], catch_exceptions=False)
    assert r.exit_code == 0, r.output
    acc = {run: _meta(out, run)["metrics"]["test_accuracy"] for run in
           ("relu-he", "sigmoid-normal", "sigmoid-he", "relu-normal")}
    # design.md section 6 (sample, 10 epochs): relu/he 0.93, sigmoid/normal 0.58,
    # sigmoid/he 0.21, relu/normal 0.10 (NaN)
    assert acc["relu-he"] > 0.9
    assert 0.4 < acc["sigmoid-normal"] < 0.75
    assert acc["relu-normal"] < 0.2
    assert acc["relu-he"] > acc["sigmoid-normal"] > acc["relu-normal"]
