"""How trials spend their budget: successive halving (Jamieson & Talwalkar 2016; Li et al.'s Hyperband).

Every candidate arm trains the first rung (``1/2**rungs`` of the most steps an arm may take) on
the same ordered batches; the better half by held-out score goes on to the next rung, twice as
long, and so on, until the best reach the end. Arms clearly behind stop after a few steps; every
arm is compared with the baseline (and its second seed, which train to the end first) at the
rung where it stopped. The order in which arms are listed does not matter.

The most steps an arm may take follow from the budget:
``budget = 2 * max_steps + sum over rungs of (arms at that rung) * (rung's new steps)``.

Example:
    >>> s = schedule(7, budget_steps=500, rungs=2, min_rung_steps=10, max_steps=2000)
    >>> s.rung_steps, s.checks, s.max_steps, s.arms_at
    (21, (1, 2, 4), 84, (7, 4, 2))
    >>> survivors([0.5, 0.4, 0.6, 0.3, float("nan")], keep=2)
    [2, 0]
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class Schedule:
    """Rungs of ``rung_steps`` steps each: arms are checked after ``checks[k] * rung_steps`` steps, and
    ``arms_at[k]`` candidates train up to check ``k``."""

    rung_steps: int
    checks: tuple
    arms_at: tuple

    @property
    def max_steps(self) -> int:
        return self.rung_steps * self.checks[-1]

    @property
    def epochs(self) -> int:
        return self.checks[-1]

    def steps_at(self, check: int) -> int:
        return self.rung_steps * self.checks[check]

    @property
    def total_steps(self) -> int:
        """Every arm's steps together (the baseline and its second seed go to the end)."""
        total, before = 2 * self.max_steps, 0
        for k, arms in enumerate(self.arms_at):
            total += arms * (self.steps_at(k) - before)
            before = self.steps_at(k)
        return total


def _arms_at(candidates: int, rungs: int) -> tuple:
    out, left = [], candidates
    for _ in range(rungs + 1):
        out.append(left)
        left = max(1, math.ceil(left / 2)) if left > 1 else left
    return tuple(out)


def schedule(candidates: int, budget_steps: int, rungs: int, min_rung_steps: int, max_steps: int) -> Schedule:
    """The rungs for ``candidates`` arms (besides the baseline and its second seed) in ``budget_steps`` steps."""
    while True:
        arms = _arms_at(candidates, rungs)
        # cost per rung width: 2 * 2**rungs for the two baselines, plus each rung's arms times its new width
        units = 2 * 2 ** rungs + sum(n * (2 ** k - (2 ** (k - 1) if k else 0)) for k, n in enumerate(arms))
        width = min(budget_steps / units, max_steps / 2 ** rungs)
        if width >= min_rung_steps or rungs == 0:
            break
        rungs -= 1
    return Schedule(max(1, int(width)), tuple(2 ** k for k in range(rungs + 1)), arms)


def survivors(scores: list, keep: int, margins=None, changes=None, floor: float = -math.inf) -> list:
    """Indices of the ``keep`` best scores (non-finite ones never survive), best first, and of any arm
    tied with the last of them (within the larger of the two arms' ``margins``: the noise an arm
    must clear), above ``floor`` (the baseline), whose change is smaller than that arm's
    (``changes``: :attr:`gradscope.vocabulary.Fix.change` per arm): a tie at the cut is not a loss
    for an arm that the final ranking would put first in a tie (:func:`gradscope.trials.result.ranked`).

    Example:
        >>> survivors([0.93, 0.90, 0.89, 0.70], keep=2, margins=[0.07] * 4, changes=[5, 3, 1, 1], floor=0.5)
        [0, 1, 2]
    """
    ranked = sorted((i for i, s in enumerate(scores) if math.isfinite(s)), key=lambda i: -scores[i])
    kept = ranked[:keep]
    if kept and margins is not None and changes is not None:
        last = kept[-1]
        kept += [i for i in ranked[keep:] if scores[i] >= scores[last] - max(margins[i], margins[last])
                 and scores[i] > floor and changes[i] < changes[last]]
    return kept
