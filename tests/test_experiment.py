import keras
import numpy as np
import pytest

from gradscope import data
from gradscope.diagnosis import findings_of
from gradscope.experiments.config import TrainConfig
from gradscope.experiments.train import train_run
from gradscope.report import RunView, render_report
from gradscope.storage import Run, load_run


class StopAt(keras.callbacks.Callback):
    def __init__(self, step, exc):
        super().__init__()
        self.step, self.exc = step, exc

    def on_train_batch_begin(self, batch, logs=None):
        if self.model.optimizer.iterations.numpy() == self.step:
            raise self.exc


@pytest.mark.parametrize("exc, status", [(KeyboardInterrupt(), "interrupted"), (RuntimeError("disk full"), "failed")])
def test_a_run_that_dies_keeps_its_records_and_says_so(tmp_path, tiny_npz, exc, status):
    ds = data.load(str(tiny_npz))
    cfg = TrainConfig(hidden=[8], epochs=3, batch_size=50)
    with pytest.raises(type(exc)):
        train_run("relu", "he", cfg, ds, tmp_path / "r", verbose=0, callbacks=[StopAt(6, exc)])
    run = load_run(tmp_path / "r")
    assert run.status == status
    assert sorted(run.records.query("metric == 'grad_norm'").step.unique()) == list(range(6))
    if status == "failed":
        assert run.meta["error"] == "RuntimeError: disk full"
    assert run.meta["progress"]["epochs_done"] == 1 and run.progress_note == f"{status} after epoch 1 of 3"
    findings = findings_of(run)
    assert findings[0]["kind"] == "incomplete_run" and "after epoch 1 of 3" in findings[0]["summary"]
    assert "stalled" not in {f["kind"] for f in findings}  # a stall is not judged on part of a run
    html = render_report([run])
    assert f"({status} after epoch 1 of 3)" in html


def test_layer_ratios_from_records():
    from gradscope import records as rec

    g = np.array([[1.0, 4.0], [2.0, 4.0], [3.0, 6.0]])
    w = np.array([[10.0, 2.0], [10.0, 2.0], [10.0, 3.0]])
    frames = [
        rec.from_step_arrays("r", np.array([s]), s // 2, [("a", 0, "kernel"), ("b", 1, "kernel")],
                             {"grad_norm": g[s:s + 1], "weight_norm": w[s:s + 1], "update_norm": np.ones((1, 2))})
        for s in range(3)
    ]
    ratios = RunView(Run(path=None, meta={"config": {}}, records=rec.concat(frames))).ratios
    assert ratios["grad_start"] == pytest.approx(0.25)
    assert ratios["rel_start"] == pytest.approx(0.1 / 2.0)
    assert ratios["grad_end"] == pytest.approx(3.0 / 6.0)  # last epoch = step 2 only
    assert ratios["rel_end"] == pytest.approx(0.3 / 2.0)
