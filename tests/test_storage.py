import json

import numpy as np
import pytest

from gradscope import records as rec
from gradscope.errors import GradscopeError
from gradscope.storage import RunWriter, find_runs, load_run


def _frame(step, value):
    return rec.from_step_arrays("r", np.array([step]), 0, [("d", 0, "kernel")],
                                {"grad_norm": np.array([[value]]), "weight_norm": np.ones((1, 1)),
                                 "update_norm": np.ones((1, 1))})


def test_append_roundtrip_keeps_nan_and_inf(tmp_path):
    w = RunWriter(tmp_path / "r", {"act": "relu"})
    w.append(_frame(0, 1.5))
    w.append(_frame(1, float("nan")))
    w.append(_frame(2, float("inf")))
    run = load_run(tmp_path / "r")
    assert run.status == "running"  # not finished: a partial run is still readable
    g = run.records[run.records.metric == "grad_norm"].value.to_numpy()
    assert g[0] == 1.5 and np.isnan(g[1]) and np.isinf(g[2])
    w.finish(metrics={"test_accuracy": 0.5})
    run = load_run(tmp_path / "r")
    assert run.status == "complete" and run.metrics["test_accuracy"] == 0.5
    assert json.loads((tmp_path / "r" / "run.json").read_text())["config"] == {"act": "relu"}


def test_not_a_run(tmp_path):
    with pytest.raises(GradscopeError, match="not a gradscope run"):
        load_run(tmp_path)
    with pytest.raises(GradscopeError, match="not a gradscope output folder"):
        find_runs([tmp_path])
    with pytest.raises(GradscopeError, match="does not exist"):
        find_runs([tmp_path / "missing"])
    (tmp_path / "run.json").write_text("{not json")
    with pytest.raises(GradscopeError, match="cannot read"):
        load_run(tmp_path)


def test_find_runs_in_output_folder(tmp_path):
    for name in ("b", "a"):
        RunWriter(tmp_path / "runs" / name, {}).finish()
    assert [r.name for r in find_runs([tmp_path])] == ["a", "b"]


def test_runs_of_a_sweep_come_in_natural_order(tmp_path):
    for name in ("relu-he-d10", "relu-he-d2", "relu-he-d4", "relu-he-d1"):
        RunWriter(tmp_path / "runs" / name, {}, heartbeat_seconds=0).finish()
    assert [r.name for r in find_runs([tmp_path])] == ["relu-he-d1", "relu-he-d2", "relu-he-d4", "relu-he-d10"]
