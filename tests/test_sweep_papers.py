"""Depth sweeps (with resume) and the paper reproductions, on tiny configs."""

import json

import pytest
from click.testing import CliRunner

from gradscope.cli import main
from gradscope.storage import find_runs

TINY = ["--width", "8", "--epochs", "1", "--batch-size", "50", "-q"]


@pytest.mark.slow
def test_sweep_trains_each_depth_and_resumes(tmp_path, tiny_npz):
    out = tmp_path / "sweep"
    args = ["sweep", "--depth", "1,3", "--act", "sigmoid", "--act", "relu", "--init", "he",
            "--data", str(tiny_npz), "--out", str(out), *TINY]
    r = CliRunner().invoke(main, args, catch_exceptions=False)
    assert r.exit_code == 0, r.output
    names = sorted(run.name for run in find_runs([out]))
    assert names == ["relu-he-d1", "relu-he-d3", "sigmoid-he-d1", "sigmoid-he-d3"]
    cfg = json.loads((out / "runs" / "relu-he-d3" / "run.json").read_text())["config"]
    assert cfg["hidden"] == [8, 8, 8]
    html = (out / "report.html").read_text()
    assert 'id="depth"' in html and 'id="depth-profiles"' in html
    assert (out / "depth.png").stat().st_size > 10_000 and f"depth figure: {out / 'depth.png'}" in r.output

    # an interrupted sweep: one run never finished, one never started
    (out / "runs" / "sigmoid-he-d3" / "run.json").write_text(
        (out / "runs" / "sigmoid-he-d3" / "run.json").read_text().replace('"complete"', '"interrupted"'))
    stamp = (out / "runs" / "relu-he-d1" / "records" / "part-000000.parquet").stat().st_mtime_ns
    r = CliRunner().invoke(main, args[:2] + ["1,3,4"] + args[3:], catch_exceptions=False)
    assert r.exit_code == 0, r.output
    assert "relu-he-d1: already complete, kept" in r.output
    assert "sigmoid-he-d3: 784-8-8-8-10" in r.output  # retrained
    assert (out / "runs" / "relu-he-d4").is_dir()
    assert (out / "runs" / "relu-he-d1" / "records" / "part-000000.parquet").stat().st_mtime_ns == stamp


def test_sweep_rejects_bad_depths(tmp_path):
    r = CliRunner().invoke(main, ["sweep", "--depth", "2,x", "--out", str(tmp_path / "o")])
    assert r.exit_code == 1 and "--depth must be comma-separated positive integers" in r.output


@pytest.mark.slow
def test_paper_glorot2010_on_a_tiny_net(tmp_path, tiny_npz):
    out = tmp_path / "glorot"
    r = CliRunner().invoke(main, ["paper", "glorot2010", "--width", "16", "--epochs", "1", "--data", str(tiny_npz),
                                  "--out", str(out)], catch_exceptions=False)
    assert r.exit_code == 0, r.output
    paper = json.loads((out / "paper.json").read_text())
    assert set(paper["probes"]) == {"tanh-standard", "tanh-xavier", "sigmoid-standard", "sigmoid-xavier"}
    probe = paper["probes"]["tanh-standard"]["at_init"]
    assert len(probe["gradient_std"]) == 5 and len(probe["activation_hist"]) == 5
    assert all({"claim", "reproduced", "evidence"} <= set(f) for f in paper["findings"])
    # a standard-init tanh stack shrinks back-propagated gradients toward the input even when tiny
    assert probe["gradient_std"][0] < probe["gradient_std"][-1]
    html = (out / "report.html").read_text()
    assert 'id="paper-findings"' in html and 'id="paper-histograms"' in html
    assert (out / "gradients.png").stat().st_size > 10_000 and (out / "histograms.png").stat().st_size > 10_000
    # re-rendering from the saved folder keeps the paper sections
    (out / "report.html").unlink()
    assert CliRunner().invoke(main, ["report", str(out)]).exit_code == 0
    assert 'id="paper-findings"' in (out / "report.html").read_text()


@pytest.mark.slow
def test_paper_he2015_on_a_tiny_net(tmp_path, tiny_npz):
    out = tmp_path / "he"
    r = CliRunner().invoke(main, ["paper", "he2015", "--width", "8", "--depth", "2,4", "--epochs", "1",
                                  "--data", str(tiny_npz), "--out", str(out)], catch_exceptions=False)
    assert r.exit_code == 0, r.output
    paper = json.loads((out / "paper.json").read_text())
    assert sorted(paper["probes"]) == ["relu-he-d2", "relu-he-d4", "relu-xavier-d2", "relu-xavier-d4"]
    assert paper["findings"][-1]["claim"].startswith("depth needed")


def test_glorot2010_claim_standard_init_shrinks_back_propagated_gradients_far_more_than_normalised():
    """Glorot & Bengio 2010, Fig. 7 (tanh, 5 hidden layers, at initialisation): the spread of dL/dz at the
    input-side layer, as a share of the output side's, is far smaller under U[-1/sqrt(n), 1/sqrt(n)] than
    under the normalised (Xavier) init, which keeps the layers comparable."""
    import numpy as np

    from gradscope.experiments.papers import _layer_signals
    from gradscope.models import build_mlp

    rng = np.random.default_rng(0)
    x, y = rng.uniform(0, 1, (500, 784)).astype("float32"), rng.integers(0, 10, 500)  # MNIST-shaped pixels
    ratio = {}
    for init in ("standard", "xavier"):
        _, grads = _layer_signals(build_mlp([256] * 5, act="tanh", init=init, seed=0), x, y)
        spread = [float(np.std(g)) for g in grads]
        ratio[init] = spread[0] / spread[-1]
    assert ratio["standard"] < 0.3 * ratio["xavier"] and ratio["standard"] < 0.2 and 0.3 < ratio["xavier"] < 2, ratio
