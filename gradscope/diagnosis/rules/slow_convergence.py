"""slow_convergence: still improving at the end, with steps too small to get there: the learning rate is too low."""

from __future__ import annotations

import math

import numpy as np

from gradscope.diagnosis.causes import data_first
from gradscope.diagnosis.finding import Finding
from gradscope.diagnosis.rules import Rule
from gradscope.vocabulary import fmt


def check(t, facts, settings):
    loss = t.losses.to_numpy(dtype=float)
    if len(loss) < settings.slow_min_epochs or not np.all(np.isfinite(loss)):
        return None
    if t.windows and t.fitted(t.windows[-1], facts):  # nothing left to learn
        return None
    tail = max(2, int(round(settings.slow_tail * len(loss))))
    drop = (loss[-tail] - loss[-1]) / loss[-tail] if loss[-tail] > 0 else 0.0
    if drop <= settings.slow_tail_drop:
        return None
    last = t.usable(t.windows[-1]) if t.windows else None
    step = float(last.max()) if last is not None and len(last) else math.nan
    if not step < settings.slow_update_ratio:
        return None
    return Finding(
        kind="slow_convergence",
        severity="medium",
        layers=[],
        steps=[t.first_step, t.last_step],
        summary=f"the loss was still falling at the end ({fmt(100 * drop)}% over the last {tail} epochs) while no "
                f"layer's steps change it by more than {fmt(100 * step)}% of its norm: it learns, slowly",
        evidence={"epoch_losses": [float(v) for v in loss], "tail_relative_drop": drop,
                  "largest_update_ratio_last_window": step,
                  "healthy": "a loss that levels off within the epochs given"},
        why=(f"the learning rate {facts.learning_rate:g} makes steps tiny relative to the weights"
             if facts.learning_rate else "steps are tiny relative to the weights"),
        recommendation=data_first(facts, settings) + "Raise the learning rate (3-10x), use Adam, or train for more epochs.",
    )


RULE = Rule("slow_convergence", "slow convergence", check, whole_run=True)
