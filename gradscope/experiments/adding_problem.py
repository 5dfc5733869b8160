"""The adding problem (Hochreiter & Schmidhuber 1997; Le, Jaitly & Hinton 2015): a long-range
dependency a recurrent network must carry across the whole sequence.

Each sequence has ``length`` steps of two channels: a number drawn from U(0, 1), and a marker
that is 1 at exactly two steps (one in the first half, one in the second) and 0 elsewhere. The
target is the sum of the two marked numbers. Always predicting 1 (the mean of the sum) gives a
mean squared error of 1/6 ~ 0.167 (the sum's variance): a model must get well below that to
have learned anything.

Example:
    >>> x, y = adding_problem(4, 10, seed=0)
    >>> x.shape, y.shape, x[..., 1].sum(axis=1).tolist()
    ((4, 10, 2), (4, 1), [2.0, 2.0, 2.0, 2.0])
    >>> bool(np.allclose(y[:, 0], (x[..., 0] * x[..., 1]).sum(axis=1)))
    True
"""

from __future__ import annotations

import numpy as np

BASELINE_MSE = 1.0 / 6.0  #: the MSE of always predicting 1


def adding_problem(n: int, length: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``n`` sequences of ``length`` steps, shape ``(n, length, 2)``, and their targets ``(n, 1)``."""
    if length < 2:
        raise ValueError(f"the adding problem needs sequences of at least 2 steps, not {length}")
    rng = np.random.default_rng(seed)
    values = rng.uniform(0.0, 1.0, size=(n, length)).astype(np.float32)
    markers = np.zeros((n, length), dtype=np.float32)
    half = length // 2
    rows = np.arange(n)
    markers[rows, rng.integers(0, half, size=n)] = 1.0
    markers[rows, rng.integers(half, length, size=n)] = 1.0
    x = np.stack([values, markers], axis=-1)
    y = (values * markers).sum(axis=1, keepdims=True).astype(np.float32)
    return x, y
