"""oscillating_loss: the loss goes up and down from epoch to epoch without diverging: steps too large."""

from __future__ import annotations

import numpy as np

from gradscope.diagnosis.finding import Finding
from gradscope.diagnosis.rules import Rule
from gradscope.vocabulary import fmt


def check(t, facts, settings):
    loss = t.losses.to_numpy(dtype=float)
    if len(loss) < settings.oscillation_min_epochs or not np.all(np.isfinite(loss)):
        return None
    rises = int(np.sum(loss[1:] > (1 + settings.oscillation_rise) * loss[:-1]))
    if rises < settings.oscillation_fraction * (len(loss) - 1) or loss.max() > settings.diverged_loss * loss[0]:
        return None
    late = t.windows[len(t.windows) // 2:]
    medians = np.array([t.usable(w).median() for w in late], dtype=float)
    step = float(np.median(medians[~np.isnan(medians)])) if (~np.isnan(medians)).any() else float("nan")
    if not step > settings.oscillation_update_ratio:
        return None
    lr = f"{facts.learning_rate:g}" if facts.learning_rate else "the current learning rate"
    return Finding(
        kind="oscillating_loss",
        severity="medium",
        layers=[],
        steps=[t.first_step, t.last_step],
        summary=f"the training loss rose in {rises} of {len(loss) - 1} epochs (by more than "
                f"{100 * settings.oscillation_rise:.0f}%) without diverging, while each step changes the weights by "
                f"{fmt(100 * step)}% of their norm (median, second half): the steps overshoot",
        evidence={"epoch_losses": [float(v) for v in loss], "rising_epochs": rises,
                  "median_update_ratio_second_half": step,
                  "healthy": "a loss that falls from epoch to epoch, with steps a small fraction of the weights"},
        why=f"{lr} makes steps too large for the loss surface: each overshoots the minimum it aims at",
        recommendation="Lower the learning rate 3-10x (or decay it with a schedule), or use a larger batch; "
                       "with SGD, momentum smooths the steps.",
    )


RULE = Rule("oscillating_loss", "oscillating loss", check, whole_run=True)
