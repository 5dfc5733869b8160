"""What a recorder measures in the traced step, and when: the plan of a recording.

When: two different promises, with different names everywhere:

* ``every_n_steps=N`` *samples*: steps 0, N, 2N, ... are recorded and the others are not, and
  cost nothing (no reduction runs on them);
* ``window_steps=N`` *aggregates*: each record summarises N consecutive steps, ``grad_norm``
  as their mean and ``grad_norm_max`` as their max, so no spike or NaN is hidden; the other
  measured metrics are those of the window's last step. Every step is measured (a max needs
  them all), so a window costs what recording every step costs; the records are N times fewer.

What: ``every_step`` names the metrics reduced inside the traced step at each recorded step.
The default is the gradient and the update (``grad_norm``; ``update_norm`` is always added:
for plain SGD the update ``lr * g`` is the very tensor the gradient's norm is read from, so it
costs nothing more). Weight norms move ~1e-4 relative per step: they are read on the host,
exactly, at every epoch end and before the first step, and the update ratio of each step uses
the weight norm interpolated between them. ``every_step="all"`` also measures the weight norm
at every step.

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


ALL = "all"
DEFAULT_EVERY_STEP = ("grad_norm",)


@dataclass(frozen=True)
class Plan:
    """What is measured in the traced step (``every_step``), and when (sampling or windows).

    Example:
        >>> Plan.of(every_step="all").every_step
        ('grad_norm', 'weight_norm', 'update_norm')
        >>> Plan.of(every_n_steps=10, window_steps=10)
        Traceback (most recent call last):
        ...
        ValueError: every_n_steps samples steps and window_steps aggregates them: choose one
    """

    every_step: tuple = DEFAULT_EVERY_STEP
    sample: EveryNSteps = EveryNSteps(1)
    window: Window = Window(1)

    @classmethod
    def of(cls, every_step=DEFAULT_EVERY_STEP, every_n_steps=1, window_steps=1) -> Plan:
        from gradscope.vocabulary import MEASURED_METRICS

        sample, window = EveryNSteps(every_n_steps), Window(window_steps)
        if sample.n_steps > 1 and window.n_steps > 1:
            raise ValueError("every_n_steps samples steps and window_steps aggregates them: choose one")
        names = tuple(MEASURED_METRICS) if every_step == ALL else tuple(every_step)
        unknown = [m for m in names if m not in MEASURED_METRICS]
        if unknown or "grad_norm" not in names:
            raise ValueError(f"every_step must name grad_norm and any of {MEASURED_METRICS}, or be 'all'; "
                             f"got {every_step!r}")
        return cls(tuple(m for m in MEASURED_METRICS if m in names), sample, window)

    def with_measured(self, *metrics) -> Plan:
        """The same plan also measuring ``metrics`` in the step (e.g. an update that cannot be derived)."""
        from gradscope.vocabulary import MEASURED_METRICS

        names = set(self.every_step) | set(metrics)
        return Plan(tuple(m for m in MEASURED_METRICS if m in names), self.sample, self.window)
