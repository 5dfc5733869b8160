"""When a recorder records: every N-th step, or one record per window of N steps.

The two are different promises, so they have different names everywhere:

* ``every_n_steps=N`` *samples*: steps 0, N, 2N, ... are recorded and the others are not
  (the TF1 hook and session recorder);
* ``window_steps=N`` *aggregates*: each record summarises N consecutive steps, ``grad_norm``
  as their mean and ``grad_norm_max`` as their max, so no spike or NaN is hidden; weight and
  update norms are those of the window's last step (the Keras monitor).

Example:
    >>> [step for step in range(7) if EveryNSteps(3).due(step)]
    [0, 3, 6]
    >>> Window(0)
    Traceback (most recent call last):
    ...
    ValueError: window_steps must be a positive integer; got 0
"""

from __future__ import annotations

from dataclasses import dataclass


def _positive(value, name: str) -> int:
    try:
        n = int(value)
    except (TypeError, ValueError):
        n = 0
    if n < 1 or n != value:
        raise ValueError(f"{name} must be a positive integer; got {value!r}")
    return n


@dataclass(frozen=True)
class EveryNSteps:
    """Record every ``n_steps``-th step, starting with the first."""

    n_steps: int = 1

    def __post_init__(self):
        _positive(self.n_steps, "every_n_steps")

    def due(self, step: int) -> bool:
        """Whether ``step`` (counted from 0) is recorded."""
        return step % self.n_steps == 0


@dataclass(frozen=True)
class Window:
    """Aggregate ``n_steps`` consecutive steps into one record (1: a record per step)."""

    n_steps: int = 1

    def __post_init__(self):
        _positive(self.n_steps, "window_steps")

    @property
    def aggregates(self) -> bool:
        return self.n_steps > 1
