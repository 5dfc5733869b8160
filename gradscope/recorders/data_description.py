"""What the data fed to a model looks like, in a few numbers: the inputs' scale and the target's range.

Most fixes in public bug reports are about the data: inputs far from unit scale (raw pixels
0-255, a feature in the thousands beside one below 1), or a target the output layer and loss
cannot fit (class labels 0-9 fed to one sigmoid unit, prices in the hundreds of thousands fed
to a bounded output). The monitor writes these numbers into ``run.json`` (section
``data``) and :mod:`gradscope.trials` decides from them which arms apply; the rules that judge
them are in :mod:`gradscope.diagnosis.rules`. NumPy only.

Example:
    >>> import numpy as np
    >>> x = np.array([[0.0, 200.0], [1.0, 255.0], [0.5, 10.0]])
    >>> d = describe_inputs(x)
    >>> d["max_abs_mean"], d["max_std"] > 100, d["features"]
    (155.0, True, 2)
    >>> describe_target(np.array([0, 3, 9, 9]))["classes"]
    [0, 3, 9]
"""

from __future__ import annotations

import math

import numpy as np

#: At most this many rows are read to describe the data (a sample spread over the rows).
DESCRIBE_ROWS = 10_000
#: ... and at most about this many values (wide inputs: fewer rows, never fewer than ``MIN_DESCRIBE_ROWS``).
DESCRIBE_VALUES = 2_000_000
MIN_DESCRIBE_ROWS = 1_000
#: A target with at most this many distinct whole values lists them (``classes``).
MAX_LISTED_CLASSES = 100


def _numeric(a):
    try:
        a = np.asarray(a)
    except Exception:  # ragged or non-numeric data: nothing to say
        return None
    if a.dtype.kind not in "biuf" or a.size == 0:
        return None
    return a


def _sample(a, rows: int = DESCRIBE_ROWS):
    if len(a) <= rows:
        return a
    return a[np.linspace(0, len(a) - 1, rows).astype(int)]


def _finite(x: float):
    x = float(x)
    return x if math.isfinite(x) else None


def describe_inputs(x) -> dict | None:
    """The scale of an input array: per-feature (last axis) means and standard deviations, summarised.

    Returns:
        ``{"shape", "rows", "features", "max_abs_mean", "max_std", "min_std", "rms", "min", "max",
        "non_finite"}`` (numbers over at most :data:`DESCRIBE_ROWS` rows), or None for data that
        is not one numeric array.
    """
    a = _numeric(x)
    if a is None:
        return None
    features = int(a.shape[-1]) if a.ndim > 1 else 1
    a = _sample(a, max(MIN_DESCRIBE_ROWS, min(DESCRIBE_ROWS, DESCRIBE_VALUES // max(1, math.prod(a.shape[1:])))))
    flat = a.reshape(-1, features)
    if flat.dtype.kind != "f":
        flat = flat.astype(np.float64)
    finite = np.isfinite(flat)
    bad = int(flat.size - np.count_nonzero(finite))
    with np.errstate(all="ignore"):
        if bad:  # the slow path: NaN-aware reductions over a copy with the non-finite values masked
            flat = np.where(finite, flat.astype(np.float64), np.nan)
            mean, std = np.nanmean(flat, axis=0), np.nanstd(flat, axis=0)
            rms, low, high = np.sqrt(np.nanmean(flat ** 2)), np.nanmin(flat), np.nanmax(flat)
        else:
            mean = flat.mean(axis=0, dtype=np.float64)
            std = np.sqrt(np.square(flat - mean).mean(axis=0))
            rms, low, high = np.sqrt(np.mean(np.square(mean)) + np.mean(np.square(std))), flat.min(), flat.max()
    varying = std[np.isfinite(std) & (std > 0)]
    return {
        "shape": [None, *map(int, np.shape(x)[1:])],
        "rows": int(len(x)),
        "features": int(flat.shape[1]),
        "max_abs_mean": _finite(np.nanmax(np.abs(mean))) if np.isfinite(mean).any() else None,
        "max_std": _finite(np.nanmax(std)) if np.isfinite(std).any() else None,
        "min_std": _finite(varying.min()) if len(varying) else None,
        "rms": _finite(rms),
        "min": _finite(low),
        "max": _finite(high),
        "non_finite": bad,
    }


def describe_target(y) -> dict | None:
    """The range of a target array: its shape, whole-number classes or spread, and whether it is one-hot.

    Returns:
        ``{"shape", "min", "max", "mean", "std", "whole", "classes" (whole values, when few),
        "one_hot", "non_finite"}``, or None for data that is not one numeric array.
    """
    a = _numeric(y)
    if a is None:
        return None
    a = _sample(a).astype(np.float64)
    finite = a[np.isfinite(a)]
    if not len(finite):
        return {"shape": [None, *map(int, np.shape(y)[1:])], "non_finite": int(a.size)}
    whole = bool(np.all(finite == np.round(finite)))
    one_hot = bool(a.ndim == 2 and a.shape[1] > 1 and np.all((a == 0) | (a == 1)) and np.all(a.sum(axis=1) == 1))
    out = {
        "shape": [None, *map(int, np.shape(y)[1:])],
        "min": float(finite.min()), "max": float(finite.max()),
        "mean": float(finite.mean()), "std": float(finite.std()),
        "whole": whole, "one_hot": one_hot, "non_finite": int(a.size - len(finite)),
    }
    if whole and not one_hot:
        values = np.unique(finite)
        if len(values) <= MAX_LISTED_CLASSES:
            out["classes"] = [int(v) for v in values]
    return out


def describe_data(x, y) -> dict:
    """``{"inputs": ..., "target": ...}`` for ``run.json`` (a part is left out when it cannot be described)."""
    out = {}
    inputs = describe_inputs(x)
    if inputs is not None:
        out["inputs"] = inputs
    target = describe_target(y) if y is not None else None
    if target is not None:
        out["target"] = target
    return out


def _first_batches(dataset, batches: int = 20):
    """Inputs and targets of a ``tf.data.Dataset``'s first batches (a dataset is read again at no cost
    to the fit), as arrays; targets None when it yields inputs only."""
    xs, ys = [], []
    for element in dataset.take(batches):
        if isinstance(element, (tuple, list)):
            xs.append(np.asarray(element[0]))
            if len(element) > 1 and element[1] is not None:
                ys.append(np.asarray(element[1]))
        else:
            xs.append(np.asarray(element))
    if not xs:
        return None, None
    return np.concatenate(xs), (np.concatenate(ys) if len(ys) == len(xs) else None)


def describe_fit_data(fit: dict | None) -> dict:
    """The scale of the inputs and the range of the targets ``fit`` was given (``fit``: its arguments,
    :func:`gradscope.recorders.keras_compat.fit_arguments`): a sample of :data:`DESCRIBE_ROWS` rows of
    arrays, the first batches of a ``tf.data.Dataset``; ``{}`` for data that cannot be read without
    consuming it, and for anything that fails (the data is the user's: never fail their fit over a
    description)."""
    if fit is None:
        return {}
    from gradscope.recorders.activation_probe import rows_of

    try:
        x, y = rows_of(fit["x"], DESCRIBE_ROWS), None
        if x is not None and fit.get("y") is not None:
            y = rows_of(fit["y"], DESCRIBE_ROWS)
        if x is None and type(fit["x"]).__module__.startswith("tensorflow"):
            import tensorflow as tf

            if isinstance(fit["x"], tf.data.Dataset):
                x, y = _first_batches(fit["x"])
        return describe_data(x, y) if x is not None else {}
    except Exception:
        return {}


def data_key(fit: dict | None):
    """What tells the data of one ``fit`` from another's, cheaply: the objects given as ``x`` and ``y``
    (their identity, shape and type, and for arrays a few values at both ends), so that a second ``fit``
    on the same arrays is not described again. None when there is nothing to tell by."""
    if fit is None or fit.get("x") is None:
        return None

    def key(value):
        if value is None:
            return None
        out = (id(value), type(value).__name__, getattr(value, "shape", None) and tuple(value.shape))
        if isinstance(value, np.ndarray) and value.size:
            flat = value.reshape(-1)
            out += (flat[:32].tobytes(), flat[-32:].tobytes())
        return out

    return key(fit["x"]), key(fit.get("y"))

