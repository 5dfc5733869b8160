"""gradscope in Jupyter: rich displays, messages during training, the live view and the report inline.

The fast tests check the HTML and text each object shows; the slow one runs the example notebook
(``docs/examples/classic_and_own_model.ipynb``) in a real Jupyter kernel with nbclient and reads the
outputs' mime bundles.
"""

import contextlib
import io
import re
import warnings
from pathlib import Path

import numpy as np
import pytest

from gradscope import display
from gradscope import records as rec
from gradscope.diagnosis import Finding, Findings
from gradscope.storage import RunWriter, load_run

EXAMPLE = Path(__file__).resolve().parents[1] / "docs" / "examples" / "classic_and_own_model.ipynb"

FINDING = Finding("vanishing_gradient", "high", ["dense_0"], [0, 99], "the input layer learns 88x more slowly",
                  evidence={"first_to_last_ratio": 0.0113}, why="sigmoid' <= 0.25",
                  recommendation="Use ReLU with He initialisation.")


def _style_rules(html: str) -> list[str]:
    styles = re.findall(r"<style>(.*?)</style>", html, re.S)
    assert styles, "no stylesheet"
    body = re.sub(r"@media[^{]*\{", "", "".join(styles))
    return [s.strip() for block in re.findall(r"([^{}]+)\{[^{}]*\}", body) for s in block.split(",") if s.strip()]


def test_a_finding_reads_as_text_in_a_cell_and_as_the_report_in_html():
    found = Findings([FINDING])
    assert repr(found) == str(found)  # a bare cell shows the readable block, not [Finding(...)]
    assert repr(found).startswith("vanishing_gradient (high; dense_0; steps 0-99): the input layer")
    assert repr(Findings()) == "no problem found"
    html = found._repr_html_()
    for words in ("vanishing gradient", "high", "dense_0", "the input layer learns 88x more slowly",
                  "sigmoid&#x27; &lt;= 0.25", "Use ReLU with He initialisation.", "0.0113"):
        assert words in html, words
    assert repr(FINDING) == "<Finding vanishing_gradient (high; dense_0): the input layer learns 88x more slowly>"
    assert FINDING._repr_html_().count('class="finding high"') == 1


def test_every_style_rule_stays_inside_gradscopes_container():
    rules = _style_rules(display.block(""))
    assert rules and all(r.startswith(".gradscope") for r in rules), [r for r in rules if not r.startswith(".gradscope")]
    assert rules == display.rules()


def _small_run(tmp_path, diagnosis=None):
    writer = RunWriter(tmp_path / "run", {"act": "relu"}, name="tiny", heartbeat_seconds=0)
    steps = np.arange(30)
    writer.append(rec.from_step_arrays("tiny", steps, 0, [("a", 0, "kernel"), ("b", 1, "kernel")],
                                       {"grad_norm": np.full((30, 2), 0.5), "weight_norm": np.full((30, 2), 2.0),
                                        "update_norm": np.full((30, 2), 0.01)}))
    writer.update(model={"class": "Sequential", "name": "tiny", "params": 12, "layers": [{}, {}]},
                  optimizer={"class": "SGD", "learning_rate": 0.1}, metrics={"test_accuracy": 0.91})
    writer.finish("complete", diagnosis=diagnosis if diagnosis is not None else [FINDING.to_dict()])
    return load_run(tmp_path / "run")


def test_a_run_shows_its_status_model_metrics_and_findings_without_reading_its_records(tmp_path):
    run = _small_run(tmp_path)
    assert repr(run) == "<Run tiny: complete, Sequential tiny, 2 layers, 12 params, SGD 0.1; vanishing_gradient>"
    html = run._repr_html_()
    assert not run.records_read
    for words in ("run tiny", "complete", "Sequential tiny, 2 layers, 12 params, SGD 0.1", "test accuracy", "0.91",
                  "vanishing gradient", "as found when it ended"):
        assert words in html, words


def test_the_report_inline_is_the_file_report_in_a_scoped_block(tmp_path):
    from gradscope.report.notebook import report_of
    from gradscope.report.render import render_report

    run = _small_run(tmp_path)
    inline = report_of(tmp_path / "run")
    assert "<html" not in inline.html and "<body" not in inline.html
    assert all(r.startswith(".gradscope") for r in _style_rules(inline.html))
    page = render_report([load_run(tmp_path / "run")])
    inner = re.search(r'<div class="gradscope page">(.*)</div>\s*</body>', page, re.S).group(1)
    same = re.search(r'<div class="gradscope">(.*)</div>\s*$', inline.html, re.S).group(1)
    generated = re.compile(r"generated [0-9T:-]+")
    assert generated.sub("", same) == generated.sub("", inner)  # the same content as the HTML file
    assert inline.html.count("<img") >= 3 and "Diagnosis" in inline.html
    assert repr(inline) == f"<gradscope report of 1 run(s): {run.name}>"


def test_show_outside_a_notebook_prints_the_text_report(tmp_path, capsys):
    import gradscope

    _small_run(tmp_path)
    gradscope.show(tmp_path / "run")
    out = capsys.readouterr().out
    assert "tiny" in out and "test acc" in out


def test_a_finding_during_training_is_one_line_on_stderr_and_no_warning():
    with warnings.catch_warnings(record=True) as caught, contextlib.redirect_stderr(io.StringIO()) as said:
        warnings.simplefilter("always")
        display.say_finding(FINDING.to_dict(), "epoch 2")
    assert not caught
    lines = said.getvalue().splitlines()
    assert lines == ["gradscope, epoch 2: vanishing_gradient: the input layer learns 88x more slowly. "
                     "Fix: Use ReLU with He initialisation."]


def test_a_monitor_shows_its_run_and_the_last_epochs_layers(tmp_path):
    import keras

    from gradscope import GradientMonitor

    x = np.random.default_rng(0).normal(size=(256, 6)).astype("float32")
    y = (x[:, 0] > 0).astype("int64")
    model = keras.Sequential([keras.Input((6,)), keras.layers.Dense(8, activation="relu", name="h"),
                              keras.layers.Dense(2, activation="softmax", name="head")])
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    monitor = GradientMonitor(run="tiny", live=True)
    assert repr(monitor) == "<GradientMonitor tiny: not started: pass it to fit(callbacks=[...]), 0 steps recorded>"
    model.fit(x, y, batch_size=16, epochs=2, callbacks=[monitor], verbose=0)
    assert repr(monitor) == "<GradientMonitor tiny: ended complete, 32 steps recorded>"
    html = monitor._repr_html_()
    assert "GradientMonitor: run tiny" in html and "epoch 2, steps 16-31" in html
    assert re.search(r"</span> h</td>.*</span> head</td>", html, re.S)
    assert monitor.live.updates == 0  # not a notebook: the live view draws nothing
    view = display.live_html("tiny", monitor._session.windows, [])
    assert "<svg" in view and view.count("<polyline") == 2  # a line per layer


@pytest.mark.slow
def test_the_example_notebook_runs_in_a_real_kernel(tmp_path):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    nb = nbformat.read(EXAMPLE, as_version=4)
    assert all(not c.get("outputs") for c in nb.cells if c.cell_type == "code"), "commit the notebook without outputs"
    nbclient.NotebookClient(nb, timeout=600, kernel_name="python3",
                            resources={"metadata": {"path": str(tmp_path)}}).execute()
    code = [c for c in nb.cells if c.cell_type == "code"]
    outputs = [o for c in code for o in c.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    stderr = "".join(o.text for o in outputs if o.output_type == "stream" and o.name == "stderr")
    assert "Warning" not in stderr and "gradscope/" not in stderr, stderr  # no warning with our source line

    def bundles(cell):
        return [o.data for o in cell.outputs if o.output_type in ("display_data", "execute_result")]

    audit, fit, own, run, show = code[1], code[2], code[3], code[4], code[5]
    assert any('class="finding' in b.get("text/html", "") for b in bundles(audit))
    assert any(b["text/plain"].startswith(("vanishing_gradient", "saturation")) for b in bundles(audit))
    live = [b for b in bundles(fit) if b.get("text/plain", "").startswith("gradscope live")]
    assert len(live) == 1 and live[0]["text/plain"] == "gradscope live: sigmoid-normal, epoch 3"  # one output, updated
    assert "<svg" in live[0]["text/html"]
    said = [b for b in bundles(fit) if b.get("text/plain", "").startswith("gradscope, epoch")]
    assert said and all('class="finding' in b["text/html"] for b in said)
    assert "GradientMonitor: run sigmoid-normal" in bundles(fit)[-1]["text/html"]
    assert [b for b in bundles(own) if b.get("text/plain", "").startswith("gradscope live: my-model")]
    assert bundles(run)[-1]["text/plain"].startswith("<Run sigmoid-normal: complete")
    assert "run sigmoid-normal" in bundles(run)[-1]["text/html"]
    report = bundles(show)[-1]["text/html"]
    assert report.count("<img") >= 3 and "my-model" in report and "sigmoid-normal" in report
    assert all(r.startswith(".gradscope") for r in _style_rules(report))
