import base64
import json
import re
import subprocess
import sys

import pandas as pd
import pytest

from gradscope.storage import load_run
from click.testing import CliRunner

from gradscope.cli import main

TINY = ["--hidden", "16,8", "--epochs", "2", "--batch-size", "50", "-q", "--no-reference"]


def _run(args):
    result = CliRunner().invoke(main, args, catch_exceptions=False)
    return result


def test_analyze_writes_run_dir_and_report(tmp_path, tiny_npz):
    out = tmp_path / "out"
    args = [a for a in TINY if a != "--no-reference"]
    r = _run(["analyze", "--act", "sigmoid", "--init", "normal", "--data", str(tiny_npz), "--out", str(out), *args])
    assert r.exit_code == 0, r.output
    ref = json.loads((out / "runs" / "relu-he" / "run.json").read_text())  # the textbook fix, everything else equal
    assert ref["config"]["role"] == "reference" and ref["status"] == "complete"
    assert {k: v for k, v in ref["config"].items() if k not in ("act", "init", "role", "command")} == {
        k: v for k, v in json.loads((out / "runs" / "sigmoid-normal" / "run.json").read_text())["config"].items()
        if k not in ("act", "init", "role", "command")}
    html = (out / "report.html").read_text()
    assert "relu-he (reference)" in html
    assert "sigmoid-normal: the reference run is its ReLU + He arm" in html  # shown as the trial arm it is
    run_dir = out / "runs" / "sigmoid-normal"
    meta = json.loads((run_dir / "run.json").read_text())
    assert meta["status"] == "complete"
    cfg = meta["config"]
    assert (cfg["act"], cfg["init"], cfg["hidden"], cfg["optimizer"], cfg["lr"]) == ("sigmoid", "normal", [16, 8], "sgd", 0.1)
    assert cfg["data"]["n_train"] == 200 and cfg["data"]["split"] == "the source's own train/test split"
    acc = meta["metrics"]["test_accuracy"]
    assert round(acc * 100) == pytest.approx(acc * 100)  # measured on the 100 test images
    assert re.search(rf"^sigmoid-normal +{acc:.4f} ", r.output, re.M)  # the table prints what was stored
    kinds = [f["kind"] for f in meta["diagnosis"]]
    assert kinds and all({"kind", "layers", "severity", "evidence", "recommendation"} <= set(f) for f in meta["diagnosis"])
    assert kinds[0] in r.output  # the stored diagnosis is the one printed
    records = load_run(run_dir).records
    kernels = records[(records.metric == "grad_norm") & (records.variable == "kernel")]
    assert kernels.groupby("step").size().tolist() == [3] * 8  # 3 Dense layers, 4 steps x 2 epochs
    grads = records[records.metric == "grad_hist"]  # the probe carries its targets: gradient histograms too
    entries = 784 * 16 + 16 * 8 + 8 * 10  # every kernel entry, before the first step and at both epoch ends
    assert grads.groupby("step").value.sum().to_dict() == {-1: entries, 3: entries, 7: entries}
    html = (out / "report.html").read_text()
    assert "sigmoid-normal" in html and "data:image/png;base64," in html
    assert 'id="grad-histograms"' in html
    assert "test acc" in r.output and "sigmoid-normal" in r.output


def test_grid_writes_four_runs_and_one_report(tmp_path, tiny_npz):
    out = tmp_path / "grid"
    r = _run(["analyze", "--act", "sigmoid", "--act", "relu", "--init", "normal", "--init", "he",
              "--data", str(tiny_npz), "--out", str(out), *TINY, "--epochs", "1"])
    assert r.exit_code == 0, r.output
    assert sorted(p.name for p in (out / "runs").iterdir()) == ["relu-he", "relu-normal", "sigmoid-he", "sigmoid-normal"]
    html = (out / "report.html").read_text()
    assert html.count('class="run-row"') == 4


def test_same_seed_same_numbers(tmp_path, tiny_npz):
    paths = []
    for name in ("a", "b"):
        out = tmp_path / name
        assert _run(["analyze", "--act", "relu", "--init", "he", "--data", str(tiny_npz), "--out", str(out), *TINY]).exit_code == 0
        paths.append(out / "runs" / "relu-he")
    pd.testing.assert_frame_equal(load_run(paths[0]).records, load_run(paths[1]).records)


@pytest.mark.parametrize(
    "args, message",
    [
        (["--act", "sigmod"], "unknown activation 'sigmod'; did you mean 'sigmoid'?"),
        (["--init", "hee"], "unknown initializer 'hee'"),
        (["--hidden", "12,x"], "--hidden must be comma-separated positive integers"),
        (["--data", "no/such/file.csv"], "data source 'no/such/file.csv' not found"),
        (["--epochs", "0"], "--epochs must be at least 1"),
        (["--lr", "-1"], "--lr must be a positive number"),
    ],
)
def test_bad_input_is_one_clear_line(tmp_path, args, message):
    r = CliRunner().invoke(main, ["analyze", "--out", str(tmp_path / "o"), *args])
    assert r.exit_code != 0
    assert message in r.output
    assert "Traceback" not in r.output
    assert not (tmp_path / "o").exists()  # nothing trained, nothing written


def test_bad_csv_through_the_cli(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("label,pixel0\n1,0\n")
    r = CliRunner().invoke(main, ["analyze", "--data", str(bad), "--out", str(tmp_path / "o")])
    assert r.exit_code == 1 and "Error: " in r.output and "expected 784" in r.output


def test_report_rerenders_and_rejects_non_runs(tmp_path, tiny_npz):
    out = tmp_path / "out"
    assert _run(["analyze", "--data", str(tiny_npz), "--out", str(out), *TINY]).exit_code == 0
    (out / "report.html").unlink()
    r = _run(["report", str(out), "-o", str(tmp_path / "again.html"), "--figures", str(tmp_path / "figs")])
    page = (tmp_path / "again.html").read_text()
    assert r.exit_code == 0 and len(page) > 10_000
    pngs = sorted((tmp_path / "figs").glob("*.png"))  # each figure the page embeds, as a file of the same bytes
    assert "grad-histograms.png" in [p.name for p in pngs] and len(pngs) == page.count('src="data:image/png;base64,')
    for png in pngs:
        assert base64.b64encode(png.read_bytes()).decode("ascii") in page
    r = CliRunner().invoke(main, ["report", str(tmp_path)])
    assert r.exit_code == 1 and "not a gradscope output folder" in r.output


def test_help_report_and_diagnose_do_not_import_tensorflow_nor_scipy_stats(tmp_path, tiny_npz):
    out = tmp_path / "out"
    assert _run(["analyze", "--data", str(tiny_npz), "--out", str(out), *TINY]).exit_code == 0
    (out / "report.html").unlink()
    code = (
        "import sys\nfrom gradscope.cli import main\n"
        f"for args in (['--help'], ['report', {str(out)!r}], ['diagnose', {str(out)!r}]):\n"
        "    try:\n        main(args)\n    except SystemExit as exc:\n"
        "        assert exc.code in (0, None), (args, exc.code)\n"
        "loaded = sorted(m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'keras'))\n"
        "assert not loaded, loaded[:5]\n"
        # the report drew its histograms with seaborn, imported without scipy.stats (needed only for KDEs) ...
        "assert 'seaborn' in sys.modules and 'scipy.stats' not in sys.modules\n"
        "import scipy.stats\n"  # ... which stays importable
        "assert scipy.stats.norm.cdf(0) == 0.5\n"
        "print('ok')\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "Usage: " in proc.stdout and "report: " in proc.stdout and "sigmoid-normal" in proc.stdout
    assert proc.stdout.strip().endswith("ok")
    assert (out / "report.html").stat().st_size > 10_000


def test_ctrl_c_keeps_what_was_recorded_and_renders_it(tmp_path, tiny_npz, monkeypatch):
    import gradscope.experiments.train as experiment

    real = experiment.train_run
    calls = []

    def second_run_interrupted(act, init, *args, **kwargs):
        calls.append(act)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(act, init, *args, **kwargs)

    monkeypatch.setattr(experiment, "train_run", second_run_interrupted)
    out = tmp_path / "cut"
    r = CliRunner().invoke(main, ["analyze", "--act", "sigmoid", "--act", "relu", "--data", str(tiny_npz),
                                  "--out", str(out), *TINY])
    assert r.exit_code == 130
    assert "interrupted: 1 run(s) kept" in r.output
    assert (out / "report.html").read_text().count('class="run-row"') == 1
