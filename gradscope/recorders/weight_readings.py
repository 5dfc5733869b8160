"""Exact weight norms read now and then, and the weight norm of each step in between.

A step changes a layer's weights by ~1e-4 of their norm, so measuring the weight norm at every
step costs a reduction per variable per step to learn almost nothing. Recorders read it
exactly at a few steps (the Keras monitor at every epoch end and before the first step, the
TF1 recorders every ``flush_every`` recorded steps) and give each recorded step the norm
interpolated linearly between the readings around it, for its ``update_ratio``.

Example:
    >>> import numpy as np
    >>> readings = WeightReadings(step=-1, norms=np.array([10.0, 2.0]))
    >>> readings.between(np.array([0, 1, 2, 3]), step=3, norms=np.array([10.4, 2.0])).round(2).tolist()
    [[10.1, 2.0], [10.2, 2.0], [10.3, 2.0], [10.4, 2.0]]
    >>> readings.last_step
    3
"""

from __future__ import annotations

import numpy as np


class WeightReadings:
    """The last exact reading of the weight norms, ``(step, norms)`` (weights after that step)."""

    def __init__(self, step: int | None = None, norms: np.ndarray | None = None):
        self.last_step = step
        self.last_norms = None if norms is None else np.asarray(norms, dtype=np.float64)

    def between(self, steps: np.ndarray, step: int, norms: np.ndarray) -> np.ndarray:
        """The norms after each of ``steps`` (rows) interpolated between the last reading and this
        one (``norms`` after ``step``), which then becomes the last."""
        norms = np.asarray(norms, dtype=np.float64)
        if self.last_norms is None or self.last_step is None or step <= self.last_step:
            out = np.repeat(norms[None], len(steps), axis=0)
        else:
            t = np.clip((np.asarray(steps) - self.last_step) / (step - self.last_step), 0.0, 1.0)[:, None]
            out = self.last_norms[None] + t * (norms - self.last_norms)[None]
        self.last_step, self.last_norms = step, norms
        return out
