"""The command line where it runs unattended: diagnose gating a CI job, -V, and shell completion."""

import json

import numpy as np
import pytest
from click.testing import CliRunner

from gradscope.cli import FINDINGS_EXIT_CODE, main
from gradscope.recorders.session import RecordingSession

VARIABLES = [("dense_0", 0, "kernel"), ("dense_1", 1, "kernel"), ("head", 2, "kernel")]


def _run(path, first_layer_grad):
    """A saved run (no training): the input layer's gradient ``first_layer_grad`` times the others'."""
    session = RecordingSession(run=path.name, run_dir=path, variables=VARIABLES, config={"act": "sigmoid"})
    session.open()
    session.start_weights(0, 0, np.array([30.0, 8.0, 4.0]))
    for epoch in range(4):
        steps = np.arange(epoch * 12, (epoch + 1) * 12)
        grads = np.tile([first_layer_grad, 0.1, 0.1], (len(steps), 1))
        session.add_steps(steps, epoch, {"grad_norm": grads, "update_norm": grads * 0.1},
                          weights=(int(steps[-1]), np.array([30.0, 8.0, 4.0]) + 0.1 * (epoch + 1)))
        session.end_epoch(int(steps[-1]), epoch, {"loss": 2.0 / (epoch + 1), "accuracy": 0.3 + 0.1 * epoch})
    session.finish("complete")
    return path


def test_diagnose_fail_on_exits_4_when_a_finding_is_that_severe_and_0_when_none_is(tmp_path):
    sick, well = _run(tmp_path / "sick", 0.00001), _run(tmp_path / "well", 0.1)
    found = json.loads(CliRunner().invoke(main, ["diagnose", str(sick), "--json"]).output)["sick"]
    severities = {f["severity"] for f in found}
    assert severities and "vanishing_gradient" in {f["kind"] for f in found}
    level = "high" if "high" in severities else "medium"
    r = CliRunner().invoke(main, ["diagnose", str(sick), "--fail-on", level])
    assert r.exit_code == FINDINGS_EXIT_CODE == 4 and "vanishing_gradient" in r.output
    assert CliRunner().invoke(main, ["diagnose", str(sick)]).exit_code == 0  # without --fail-on: a report only
    r = CliRunner().invoke(main, ["diagnose", str(well), "--fail-on", "low"])
    assert r.exit_code == 0, r.output
    assert CliRunner().invoke(main, ["diagnose", str(well), "--fail-on", "worst"]).exit_code == 2


def test_dash_capital_v_is_the_version():
    r = CliRunner().invoke(main, ["-V"])
    assert r.exit_code == 0 and "version" in r.output


def test_shell_completion_knows_the_activations_and_initializers():
    def complete(words):
        env = {"_GRADSCOPE_COMPLETE": "bash_complete", "COMP_WORDS": words, "COMP_CWORD": str(len(words.split()) - 1)}
        return CliRunner().invoke(main, [], prog_name="gradscope", env=env).output

    assert "plain,sigmoid" in complete("gradscope analyze --act si").splitlines()
    assert {"plain,he", "plain,he_uniform"} & set(complete("gradscope analyze --init he").splitlines())
    assert "plain,diagnose" in complete("gradscope diag").splitlines()


def test_analyze_json_prints_one_document_of_the_runs_on_stdout(tmp_path, tiny_npz):
    out = tmp_path / "out"
    r = CliRunner().invoke(main, ["analyze", "--act", "sigmoid", "--init", "normal", "--data", str(tiny_npz),
                                  "--out", str(out), "--hidden", "16,8", "--epochs", "2", "--batch-size", "50",
                                  "--no-baseline", "--json"])
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)  # nothing else on stdout
    assert [run["name"] for run in doc["runs"]] == ["sigmoid-normal", "relu-he"]
    stored = json.loads((out / "runs" / "sigmoid-normal" / "run.json").read_text())
    first = doc["runs"][0]
    assert first["status"] == "complete" and first["metrics"]["test_accuracy"] == stored["metrics"]["test_accuracy"]
    assert [f["kind"] for f in first["findings"]] == [f["kind"] for f in stored["diagnosis"]]
    assert doc["report"].endswith("report.html") and "== sigmoid-normal" in r.stderr


def test_a_plan_in_a_terminal_says_run_k_of_n_the_epoch_and_the_time_left(tmp_path, tiny_npz, monkeypatch):
    import io

    from gradscope.experiments import plans
    from gradscope.experiments.config import TrainConfig
    from gradscope.experiments.progress import PlanProgress

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    seen = Terminal()
    progress = PlanProgress(runs=2, epochs=2, stream=seen)
    assert progress.enabled and not PlanProgress(1, 1, stream=io.StringIO()).enabled  # not a terminal: silent
    plans.analyze(["sigmoid"], ["normal"], TrainConfig(hidden=[8], epochs=2, batch_size=50), data=str(tiny_npz),
                  out=tmp_path / "out", echo=lambda *a: None, baseline=False, progress=progress)
    lines = seen.getvalue().splitlines()
    assert [line.split(":")[0] for line in lines] == ["run 1/2 sigmoid-normal"] * 2 + ["run 2/2 relu-he"] * 2
    assert "epoch 2/2, loss " in lines[1] and "elapsed, about " in lines[0] and lines[-1].endswith("about 0:00 left")


@pytest.mark.slow
def test_the_seed_table_says_where_it_stands_for_every_row_whatever_trains_it(tmp_path, tiny_csv):
    import io

    from gradscope.experiments.progress import PlanProgress
    from gradscope.experiments.seed_table import parse_rows, run_seed_table

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    seen = Terminal()
    rows = parse_rows("sklearn,tf1-softmax,keras-softmax")  # scikit-learn, a TF1 graph, Keras
    progress = PlanProgress(runs=len(rows), epochs=[0, 2, 2], stream=seen)
    run_seed_table(rows, data=str(tiny_csv), out=tmp_path / "seed", echo=lambda *a: None, epochs=2, progress=progress)
    lines = seen.getvalue().splitlines()
    assert [line.split(":")[0] for line in lines] == ["run 1/3 sklearn"] + ["run 2/3 tf1-softmax"] * 2 + \
        ["run 3/3 keras-softmax"] * 2, lines
    assert "epoch 2/2, loss " in lines[2] and lines[-1].endswith("about 0:00 left")


def _in_a_terminal(args, cwd):
    """Run ``gradscope ARGS`` with its stderr on a real pseudo-terminal; returns what it wrote there."""
    import os
    import pty
    import subprocess
    import sys

    main_fd, terminal = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "gradscope.cli", *args], cwd=cwd, stdout=subprocess.DEVNULL,
                            stderr=terminal, stdin=subprocess.DEVNULL)
    os.close(terminal)
    seen = b""
    while True:
        try:
            chunk = os.read(main_fd, 4096)
        except OSError:  # the terminal closed: the process is done with it
            break
        if not chunk:
            break
        seen += chunk
    assert proc.wait(timeout=600) == 0, seen.decode(errors="replace")[-2000:]
    os.close(main_fd)
    return seen.decode(errors="replace").replace("\r\n", "\n")


@pytest.mark.slow
def test_progress_lines_on_a_real_terminal_and_none_with_quiet(tmp_path, tiny_npz):
    args = ["analyze", "--act", "sigmoid", "--init", "normal", "--hidden", "8", "--epochs", "2", "--batch-size", "50",
            "--no-reference", "--data", str(tiny_npz)]
    said = _in_a_terminal([*args, "--out", str(tmp_path / "loud")], tmp_path)
    lines = [line for line in said.splitlines() if line.startswith("run 1/1 sigmoid-normal: epoch")]
    assert len(lines) == 2 and "epoch 2/2" in lines[1] and "left" in lines[1], said[-2000:]
    quiet = _in_a_terminal([*args, "-q", "--out", str(tmp_path / "quiet")], tmp_path)
    assert "run 1/1" not in quiet, quiet[-2000:]
