"""Own-model runs end to end: complete and self-describing, and honest when they end badly.

Signals and kills are sent to real subprocesses; every run is read back from its files.
"""

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
import warnings

import keras
import numpy as np
import pytest
from click.testing import CliRunner

from gradscope import GradientMonitor, GradscopeError, audit
from gradscope import records as rec
from gradscope.cli import main
from gradscope.diagnosis import findings_of
from gradscope.report import render_report
from gradscope.report.describe import describe
from gradscope.storage import find_runs, load_run

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
rng = np.random.default_rng(0)
X = rng.normal(size=(400, 20)).astype("float32")
Y = (X[:, 0] + X[:, 1] > 0).astype("int64")


def own_model():
    inp = keras.Input((20,), name="features")
    h = keras.layers.Dense(32, activation="relu", name="hidden_a")(inp)
    h = keras.layers.Dense(16, activation="tanh", name="hidden_b")(h)
    out = keras.layers.Dense(2, activation="softmax", name="head")(h)
    model = keras.Model(inp, out, name="my_classifier")
    model.compile(optimizer=keras.optimizers.Adam(0.003), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def test_a_monitored_fit_leaves_a_complete_self_describing_run(tmp_path):
    model = own_model()
    mon = GradientMonitor(run="mine", run_dir=tmp_path / "mine")
    model.fit(X, Y, batch_size=32, epochs=2, validation_split=0.2, callbacks=[mon], verbose=0)
    run = load_run(tmp_path / "mine")
    assert run.status == "complete" and run.name == "mine"
    m = run.meta
    assert m["model"]["class"] == "Functional" and m["model"]["name"] == "my_classifier"
    assert m["model"]["params"] == model.count_params() == 1234
    assert m["model"]["inputs"] == [[None, 20]]
    assert [(layer["name"], layer["class"], layer["activation"], layer["units"], layer["params"])
            for layer in m["model"]["layers"]] == [("hidden_a", "Dense", "relu", 32, 672),
                                                   ("hidden_b", "Dense", "tanh", 16, 528),
                                                   ("head", "Dense", "softmax", 2, 34)]
    assert m["model"]["layers"][0]["kernel_initializer"] == "GlorotUniform"
    assert m["model"]["loss"] == "sparse_categorical_crossentropy"
    assert m["optimizer"] == {"class": "Adam", "learning_rate": 0.003, "beta_1": 0.9, "beta_2": 0.999,
                              "epsilon": 1e-07}
    assert m["training"]["epochs"] == 2 and m["training"]["steps_per_epoch"] == 10 and m["training"]["batch_size"] == 32
    assert set(m["metrics"]) == {"loss", "accuracy", "val_loss", "val_accuracy"}
    assert m["metrics"]["val_accuracy"] == pytest.approx(model.history.history["val_accuracy"][-1])
    assert m["versions"]["keras"] == keras.__version__
    assert m["diagnosis"] == findings_of(run)

    # your own numbers and tags, after evaluate
    _, acc = model.evaluate(X, Y, verbose=0)
    mon.add_to_run(metrics={"test_accuracy": acc}, tags={"data": "two gaussian features"})
    run = load_run(tmp_path / "mine")
    assert run.metrics["test_accuracy"] == pytest.approx(acc) and run.meta["tags"]["data"] == "two gaussian features"

    # the report shows it fully: the model in one line, per-layer activations, never "?"
    html = render_report([run])
    assert "Functional my_classifier: 2 Dense + Dense head, 1,234 params, Adam 0.003" in html
    assert "hidden_a: relu, hidden_b: tanh (head: softmax)" in html
    assert "2 epochs of 10 steps, batch 32" in html and "two gaussian features" in html
    row = html[html.index('class="run-row"'):html.index("</tr>", html.index('class="run-row"'))]
    assert "?" not in row and f"{acc:.4f}" in row


def test_several_fits_continue_one_run(tmp_path):
    model = own_model()
    mon = GradientMonitor(run_dir=tmp_path / "r")
    model.fit(X, Y, batch_size=40, epochs=1, callbacks=[mon], verbose=0)
    model.fit(X, Y, batch_size=40, epochs=2, callbacks=[mon], verbose=0)
    run = load_run(tmp_path / "r")
    assert run.status == "complete"
    assert sorted(run.records.query("metric == 'grad_norm'").step.unique()) == list(range(30))
    assert run.records.query("metric == 'loss'").epoch.tolist() == [0, 1, 2]  # the run's epochs, not each fit's
    assert run.meta["progress"] == {"epochs_done": 3, "epochs": 3, "last_step": 29}
    assert run.meta["training"]["fits"] == 2
    assert describe(run.meta)["training"] == "3 epochs in 2 fits (30 steps), batch 40"


@pytest.mark.parametrize("exc, status", [(KeyboardInterrupt(), "interrupted"), (RuntimeError("disk full"), "failed")])
def test_a_fit_that_raises_leaves_an_interrupted_or_failed_run_with_its_records(tmp_path, exc, status):
    class RaiseAt(keras.layers.Layer):
        """Raises inside the train step (run eagerly) of step 12 (call 1 builds the model): as Ctrl-C or a failing op would."""

        calls = 0

        def call(self, x):
            RaiseAt.calls += 1
            if RaiseAt.calls == 14:
                raise exc
            return x

    inp = keras.Input((20,))
    out = keras.layers.Dense(2, activation="softmax", name="head")(RaiseAt()(keras.layers.Dense(8, name="h")(inp)))
    model = keras.Model(inp, out)
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy", run_eagerly=True)
    mon = GradientMonitor(run_dir=tmp_path / "r")
    with pytest.raises(type(exc)):
        model.fit(X, Y, batch_size=40, epochs=3, callbacks=[mon], verbose=0)
    run = load_run(tmp_path / "r")
    assert run.status == status
    assert sorted(run.records.query("metric == 'grad_norm'").step.unique()) == list(range(12))
    assert run.progress_note == f"{status} after epoch 1 of 3"
    if status == "failed":
        assert run.meta["error"].startswith("RuntimeError: ") and "disk full" in run.meta["error"]
        assert "\n" not in run.meta["error"] and "\x1b" not in run.meta["error"]
    assert "_backend_update_step" not in vars(model.optimizer)  # the optimizer is given back
    stored = run.meta["diagnosis"]  # run.json's copy is what every reader computes
    assert stored[0]["kind"] == "incomplete_run" and stored == findings_of(run)


def test_two_heads_a_changed_learning_rate_and_an_early_stop_are_described(tmp_path):
    inp = keras.Input((20,), name="features")
    h = keras.layers.Dense(16, activation="relu", name="shared")(inp)
    model = keras.Model(inp, [keras.layers.Dense(2, activation="softmax", name="cls")(h),
                              keras.layers.Dense(1, name="reg")(h)], name="two_heads")
    model.compile(optimizer=keras.optimizers.SGD(0.05), loss=["sparse_categorical_crossentropy", "mse"],
                  loss_weights=[1.0, 0.5])
    stops = [keras.callbacks.ReduceLROnPlateau(monitor="loss", patience=0, factor=0.5, min_delta=100.0),
             keras.callbacks.EarlyStopping(monitor="loss", patience=1, min_delta=100.0)]
    model.fit(X, [Y, X[:, :1]], batch_size=40, epochs=6, verbose=0,
              callbacks=[*stops, GradientMonitor(run_dir=tmp_path / "r")])
    meta = load_run(tmp_path / "r").meta
    assert meta["model"]["outputs"] == ["cls", "reg"] and meta["model"]["loss_weights"] == [1.0, 0.5]
    words = describe(meta)
    assert words["model"] == "Functional two_heads: 1 Dense + 2 heads (Dense, Dense), 387 params, SGD 0.05 (down to 0.025)"
    assert words["activation"] == "relu (heads: cls softmax, reg linear)"
    assert words["training"] == "2 of 6 epochs (stopped early) of 10 steps, batch 40"


def test_another_callbacks_error_fails_the_run_at_once_and_the_next_fits_go_on(tmp_path):
    class Boom(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch == 1:
                raise RuntimeError("user bug")

    model = own_model()
    mon = GradientMonitor(run_dir=tmp_path / "r")
    with pytest.raises(RuntimeError, match="user bug"):  # Boom runs before the monitor's own epoch end
        model.fit(X, Y, batch_size=40, epochs=4, validation_split=0.25, callbacks=[Boom(), mon], verbose=0)
    run = load_run(tmp_path / "r")  # while this process lives: not "running"
    assert run.status == "failed" and "RuntimeError: user bug" in run.meta["error"]
    assert run.records.query("metric == 'grad_norm'").step.nunique() == 16  # the unfinished epoch's steps too
    assert "_backend_update_step" not in vars(model.optimizer)

    model.fit(X, Y, batch_size=40, epochs=1, callbacks=[mon], verbose=0)  # the same monitor goes on
    run = load_run(tmp_path / "r")
    grads = run.records.query("metric == 'grad_norm'")
    assert run.status == "complete" and grads.groupby("epoch").step.nunique().tolist() == [8, 8, 10]
    assert "val_loss" not in run.meta["metrics"]  # the last epoch's logs, not the first fit's

    again = own_model()  # a notebook cell run again: a new monitor on the same folder
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        again.fit(X, Y, batch_size=40, epochs=1, callbacks=[GradientMonitor(run_dir=tmp_path / "r")], verbose=0)
    run = load_run(tmp_path / "r")
    assert run.status == "complete" and run.records.query("metric == 'grad_norm'").step.nunique() == 10


def test_a_failing_validation_step_fails_the_run_at_once_and_evaluate_is_given_back(tmp_path):
    model = own_model()
    bad = X[:40, :19]  # one feature short: Keras raises in the first validation step
    with pytest.raises(Exception) as raised:
        model.fit(X, Y, batch_size=40, epochs=3, validation_data=(bad, Y[:40]), verbose=0,
                  callbacks=[GradientMonitor(run_dir=tmp_path / "r")])
    run = load_run(tmp_path / "r")  # while this process lives: not "running"
    assert run.status == "failed" and type(raised.value).__name__ in run.meta["error"]
    assert run.records.query("metric == 'grad_norm'").step.nunique() == 10  # the epoch before validation
    assert not hasattr(model.test_function, "gradscope_inner") and "make_test_function" not in vars(model)
    assert len(model.evaluate(X[:40], Y[:40], verbose=0)) == 2  # the user's evaluate, unguarded, works


def test_a_new_writer_in_this_process_takes_over_a_folder_whose_writer_never_finished(tmp_path):
    from gradscope.storage import RunWriter

    old = RunWriter(tmp_path / "r", {})
    new = RunWriter(tmp_path / "r", {})  # no lock error: the same process, the old run left unfinished
    assert old.superseded and not new.superseded
    old.append(rec.from_logs("r", 0, 0, {"loss": 1.0}))  # the old one writes nothing any more
    new.finish()
    run = load_run(tmp_path / "r")
    assert run.status == "complete" and len(run.records) == 0
    with pytest.raises(GradscopeError, match="taken over"):
        old.reopen()


def test_findings_and_audit_print_as_readable_text():
    from gradscope.models import build_mlp

    model = build_mlp([64, 64, 64], act="sigmoid", init="normal", input_dim=200)
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    x = rng.uniform(0, 1, (256, 200)).astype("float32")
    findings = audit(model, x, np.arange(256) % 10)
    assert [f.kind for f in findings] == ["vanishing_gradient", "saturation"]
    text = str(findings)
    blocks = text.split("\nsaturation (")
    assert len(blocks) == 2 and blocks[0].startswith("vanishing_gradient (") and "dense_0" in blocks[0].splitlines()[0]
    for block, f in zip(blocks, findings):
        lines = block.splitlines()
        heads = [line[:7] for line in lines if not line.startswith("    ")]  # the rest continue the line above
        assert heads == [lines[0][:7]] + ["  why: "] * bool(f.why) + ["  fix: "]  # no evidence dump
        flat = " ".join(" ".join(lines).split())
        assert f.summary in flat and f"why: {f.why}" in flat and flat.endswith(f"fix: {f.recommendation}")
    assert max(len(line) for line in text.splitlines()) <= 100  # a terminal's width
    assert repr(findings) == text  # a bare cell (a notebook's, a REPL's) shows the readable block
    assert [repr(f) for f in findings] == [f"<Finding {f.kind} ({f.severity}; {', '.join(f.layers)}): {f.summary}>"
                                           for f in findings]
    full = findings.to_dict()
    assert full[0]["evidence"]["grad_norm_at_worst_window_start"]["dense_0"] > 0 and len(json.dumps(full)) > 1000


# --- runs that end badly, in real processes ------------------------------------------------------

TRAIN_SCRIPT = textwrap.dedent(
    """
    import os, sys, time
    import numpy as np, keras
    from gradscope import GradientMonitor
    rng = np.random.default_rng(0)
    x = rng.normal(size=(400, 20)).astype("float32"); y = (x[:, 0] > 0).astype("int64")
    model = keras.Sequential([keras.Input((20,)), keras.layers.Dense(8, activation="relu", name="h"),
                              keras.layers.Dense(2, activation="softmax", name="o")])
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy", metrics=["accuracy"])

    class Slow(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            open(sys.argv[2], "w").write(str(epoch + 1))
            time.sleep(0.2)

    model.fit(x, y, batch_size=40, epochs=int(sys.argv[3]), verbose=0,
              callbacks=[GradientMonitor(run_dir=sys.argv[1]), Slow()])
    """
)


def _start(tmp_path, epochs=2000):
    script = tmp_path / "train.py"
    script.write_text(TRAIN_SCRIPT)
    progress = tmp_path / "epochs-done"
    env = {**os.environ, "PYTHONPATH": ROOT, "TF_CPP_MIN_LOG_LEVEL": "3"}
    proc = subprocess.Popen([sys.executable, str(script), str(tmp_path / "run"), str(progress), str(epochs)],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    return proc, progress


def _wait_for(predicate, proc, seconds=120):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return
        if proc.poll() is not None:
            raise AssertionError(f"the process ended early ({proc.returncode}): {proc.stderr.read()[-2000:]}")
        time.sleep(0.05)
    proc.kill()
    raise AssertionError("timed out")


def _epochs_done(progress):
    try:
        return int(progress.read_text() or 0)
    except (OSError, ValueError):
        return 0


def test_sigterm_during_fit_keeps_the_records_marks_the_run_interrupted_and_exits_143(tmp_path):
    proc, progress = _start(tmp_path)
    _wait_for(lambda: _epochs_done(progress) >= 3, proc)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=60) == 143, proc.stderr.read()[-2000:]
    run = load_run(tmp_path / "run")
    assert run.recorded_status == "interrupted" and run.status == "interrupted"
    done = run.meta["progress"]["epochs_done"]
    steps = sorted(run.records.query("metric == 'grad_norm'").step.unique())
    assert done >= 3 and steps == list(range(len(steps))) and len(steps) >= 10 * done  # the unfinished epoch too
    assert run.progress_note == f"interrupted after epoch {done} of 2000"


@pytest.mark.slow  # two TensorFlow processes (~20 s): the slow tier, which CI runs too
def test_a_killed_run_reads_as_interrupted_and_is_diagnosed_as_incomplete(tmp_path):
    proc, progress = _start(tmp_path)
    _wait_for(lambda: _epochs_done(progress) >= 2, proc)
    proc.kill()  # SIGKILL: nothing of gradscope runs
    proc.wait(timeout=60)
    run = load_run(tmp_path / "run")
    assert run.recorded_status == "running"  # what run.json says: nobody finished it
    assert run.status == "interrupted"  # what a reader concludes: its process is gone
    done = run.meta["progress"]["epochs_done"]
    assert run.progress_note == f"ended without finishing after epoch {done} of 2000 (its process is gone)"
    findings = findings_of(run)
    assert findings[0]["kind"] == "incomplete_run" and "stalled" not in {f["kind"] for f in findings}
    r = CliRunner().invoke(main, ["report", str(tmp_path / "run"), "-o", str(tmp_path / "r.html")])
    assert r.exit_code == 0, r.output
    assert f"ended without finishing after epoch {done} of 2000" in (tmp_path / "r.html").read_text()
    r = CliRunner().invoke(main, ["diagnose", str(tmp_path / "run")])
    assert r.output.splitlines()[1].startswith("  incomplete_run (medium")


def test_a_run_killed_before_its_first_flush_is_not_healthy(tmp_path):
    proc, progress = _start(tmp_path)
    _wait_for(lambda: (tmp_path / "run" / "run.json").is_file() and "model" in (tmp_path / "run" / "run.json").read_text(),
              proc)
    proc.kill()
    proc.wait(timeout=60)
    run = load_run(tmp_path / "run")
    findings = findings_of(run)
    assert run.status == "interrupted" and findings[0]["kind"] == "incomplete_run"
    assert findings[0]["severity"] == "high" or run.meta["progress"]["epochs_done"] >= 1
    html = render_report([run])
    assert 'class="verdict-healthy"' not in html and '<td class="verdict-bad">incomplete run</td>' in html


def test_a_live_run_reads_as_running(tmp_path):
    proc, progress = _start(tmp_path)
    try:
        _wait_for(lambda: _epochs_done(progress) >= 1, proc)
        run = load_run(tmp_path / "run")
        assert run.status == "running" and run.progress_note.startswith("still running after epoch")
    finally:
        proc.kill()
        proc.wait(timeout=60)


def test_a_second_writer_of_a_run_gets_a_clear_error_and_the_folder_stays_readable(tmp_path, tiny_npz):
    proc, progress = _start(tmp_path)
    try:
        _wait_for(lambda: _epochs_done(progress) >= 1, proc)
        second = GradientMonitor(run_dir=tmp_path / "run")
        model = own_model()
        # the monitor never breaks a fit: one warning that names the other writer, and training goes on
        with pytest.warns(RuntimeWarning, match=f"is being written by process {proc.pid} on ") as caught:
            history = model.fit(X, Y, batch_size=40, epochs=2, callbacks=[second], verbose=0)
        assert len([w for w in caught if "gradscope is not recording this fit" in str(w.message)]) == 1
        assert len(history.history["loss"]) == 2
        run = load_run(tmp_path / "run")  # untouched, readable
        assert run.status == "running" and run.meta["progress"]["epochs_done"] >= 1
    finally:
        proc.kill()
        proc.wait(timeout=60)


@pytest.mark.slow  # two TensorFlow processes (~20 s): the slow tier, which CI runs too
def test_two_analyze_processes_on_one_out(tmp_path, tiny_npz):
    out = tmp_path / "out"
    env = {**os.environ, "PYTHONPATH": ROOT, "TF_CPP_MIN_LOG_LEVEL": "3"}
    cmd = [sys.executable, "-m", "gradscope.cli", "analyze", "--data", str(tiny_npz), "--hidden", "8",
           "--batch-size", "10", "-q", "--no-reference", "--out", str(out)]
    first = subprocess.Popen([*cmd, "--epochs", "100000"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        _wait_for(lambda: '"epochs_done"' in _read(out / "runs" / "sigmoid-normal" / "run.json"), first)
        second = subprocess.run([*cmd, "--epochs", "2"], env=env, capture_output=True, text=True, timeout=120)
        assert second.returncode == 1
        (line,) = second.stderr.strip().splitlines()  # one line
        assert line.startswith(f"Error: {out / 'runs' / 'sigmoid-normal'} is being written by process {first.pid} on "
                               f"{os.uname().nodename} (since ")
        assert line.endswith("wait for it to finish, or write to another folder (--out)")
        assert "Traceback" not in second.stderr
        (run,) = find_runs([out])
        assert run.status == "running" and len(run.records)  # the first process's run, intact
    finally:
        first.send_signal(signal.SIGTERM)
        assert first.wait(timeout=60) == 143
    (run,) = find_runs([out])
    assert run.status == "interrupted" and (out / "report.html").is_file()


def _read(path):
    try:
        return path.read_text()
    except OSError:
        return ""


def test_the_documented_own_model_example_runs(tmp_path):
    script = os.path.join(ROOT, "docs", "examples", "own_model.py")
    proc = subprocess.run([sys.executable, script, "--out", str(tmp_path / "ex"), "--epochs", "2"],
                          capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PYTHONPATH": ROOT, "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "digits-sigmoid-normal before training: vanishing_gradient" in proc.stdout
    runs = {run.name: run for run in find_runs([tmp_path / "ex"])}
    assert sorted(runs) == ["digits-relu-he", "digits-sigmoid-normal"]
    assert all(r.status == "complete" and "test_accuracy" in r.metrics for r in runs.values())
    assert runs["digits-relu-he"].meta["tags"] == {"data": "scikit-learn digits (8x8)"}
