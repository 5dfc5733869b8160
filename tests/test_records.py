import numpy as np
import pandas as pd
import pytest

from gradscope import records as rec
from gradscope.errors import GradscopeError


def test_from_step_arrays_long_format():
    g = np.array([[1.0, 2.0], [3.0, 4.0]])
    w = np.array([[10.0, 20.0], [10.0, 0.0]])
    u = np.array([[0.1, 0.2], [0.3, 0.4]])
    df = rec.from_step_arrays("r", np.array([5, 6]), 1, [("a", 0, "kernel"), ("b", 1, "bias")],
                              {"grad_norm": g, "weight_norm": w, "update_norm": u})
    rec.validate(df)
    assert list(df.columns) == rec.COLUMNS
    assert len(df) == 2 * 2 * 4
    row = df[(df.step == 6) & (df.layer == "a") & (df.metric == "grad_norm")]
    assert row.value.item() == 3.0
    ratio = df[(df.step == 5) & (df.layer == "b") & (df.metric == "update_ratio")].value.item()
    assert ratio == pytest.approx(0.2 / 20.0)
    # division by a zero weight norm is kept as inf, not dropped
    assert np.isinf(df[(df.step == 6) & (df.layer == "b") & (df.metric == "update_ratio")].value.item())


def test_from_logs_skips_non_numbers():
    df = rec.from_logs("r", 9, 0, {"loss": 0.5, "accuracy": np.float32(0.9), "lr": "x"})
    assert sorted(df.metric) == ["accuracy", "loss"]
    assert (df.layer == "").all() and (df.step == 9).all()


def test_coerce_reports_missing_column():
    with pytest.raises(GradscopeError, match="missing the column"):
        rec.coerce(pd.DataFrame({"run": ["a"]}))


def test_layer_metric_orders_by_depth():
    df = rec.from_step_arrays(
        "r", np.array([0]), 0, [("out", 1, "kernel"), ("in", 0, "kernel")],
        {"grad_norm": np.array([[2.0, 1.0]]), "weight_norm": np.array([[4.0, 8.0]])},
    )
    table = rec.layer_metric(df, "grad_norm")
    assert list(table.columns) == ["in", "out"]
    # a derived metric that records do not store is computed on read, layer by layer
    speed = rec.layer_metric(df, "grad_over_weight")
    assert speed.loc[0].tolist() == [1.0 / 8.0, 2.0 / 4.0]
    assert "update_ratio" not in set(df.metric)  # not derivable without update_norm
