"""The one yardstick all arms share: held-out accuracy for a classifier, held-out R^2 for a regression.

Raw losses are comparable only between arms that train on the same loss and the same target
scale; an arm that changes the output layer, the loss or the target's units is still scored
on the same held-out rows, in the target's original units, by the same measure.

Example:
    >>> import numpy as np
    >>> y = np.array([0, 1, 2, 2])
    >>> rows = correct_rows(y, np.eye(3)[[0, 1, 1, 2]], probabilities=True)
    >>> rows.tolist(), accuracy(rows)
    ([True, True, False, True], 0.75)
    >>> round(r_squared(np.array([1.0, 2.0, 3.0]), np.array([1.0, 2.0, 4.0])), 3)
    0.5
    >>> correct_rows(np.array([0, 1]), np.array([[0.2], [0.9]]), probabilities=True).tolist()
    [True, True]
"""

from __future__ import annotations

import math

import numpy as np

#: How tables name the yardstick of each task.
METRIC_OF = {"classification": "held-out accuracy", "regression": "held-out R^2"}


def predict(model, x, batch: int = 1024) -> np.ndarray:
    """The model's outputs on ``x`` (eager, in batches), as float64."""
    outs = [np.asarray(model(x[i:i + batch], training=False), dtype=np.float64) for i in range(0, len(x), batch)]
    return np.concatenate(outs) if outs else np.zeros((0,))


def class_labels(y) -> np.ndarray:
    """Integer labels of a target: one-hot rows by their largest entry, anything else as it is."""
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] > 1:
        return y.argmax(axis=1)
    return y.reshape(len(y), -1)[:, 0] if y.ndim > 1 else y


def predicted_labels(out, probabilities: bool) -> np.ndarray:
    """The class an output says: the largest of several units, or one unit above 0.5 (0 for logits)."""
    out = np.asarray(out, dtype=np.float64)
    out = out.reshape(len(out), -1)
    if out.shape[1] > 1:
        labels = np.nanargmax(np.where(np.isfinite(out), out, -np.inf), axis=1)
    else:
        labels = (out[:, 0] > (0.5 if probabilities else 0.0)).astype(int)
    labels = labels.astype(np.int64)
    labels[~np.all(np.isfinite(out), axis=1)] = -1  # a non-finite output is never right
    return labels


def correct_rows(y, out, probabilities: bool) -> np.ndarray:
    """Per held-out row: whether the predicted class is the target's."""
    return predicted_labels(out, probabilities) == class_labels(y).astype(np.int64)


def accuracy(rows) -> float:
    return float(np.mean(rows)) if len(rows) else math.nan


def r_squared(y, prediction) -> float:
    """1 - SS_res / SS_tot over every target column (-inf for non-finite predictions)."""
    y = np.asarray(y, dtype=np.float64).reshape(len(y), -1)
    p = np.asarray(prediction, dtype=np.float64).reshape(len(y), -1)
    if p.shape != y.shape:
        p = np.broadcast_to(p[:, :1], y.shape) if p.shape[1] == 1 else p[:, :y.shape[1]]
    if not np.all(np.isfinite(p)):
        return -math.inf
    total = float(((y - y.mean(axis=0)) ** 2).sum())
    residual = float(((y - p) ** 2).sum())
    return 1.0 - residual / total if total > 0 else (0.0 if residual == 0 else -math.inf)


def paired_se(task: str, arm_rows, base_rows, y=None, bootstrap: int = 200, seed: int = 0) -> float:
    """Standard error of (arm score - baseline score) on the same held-out rows.

    For accuracy, the paired per-row difference's standard error; for R^2, a paired bootstrap
    (``arm_rows`` and ``base_rows`` are then the predictions, ``y`` the targets).
    """
    if task == "classification":
        d = np.asarray(arm_rows, dtype=float) - np.asarray(base_rows, dtype=float)
        return float(d.std(ddof=1) / math.sqrt(len(d))) if len(d) > 1 else math.inf
    rng = np.random.default_rng(seed)
    n = len(y)
    diffs = []
    for _ in range(bootstrap):
        idx = rng.integers(0, n, n)
        diffs.append(r_squared(y[idx], arm_rows[idx]) - r_squared(y[idx], base_rows[idx]))
    diffs = np.asarray(diffs)
    diffs = diffs[np.isfinite(diffs)]
    return float(diffs.std(ddof=1)) if len(diffs) > 1 else math.inf
