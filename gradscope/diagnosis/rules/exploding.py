"""exploding_gradient: steps larger than the weights themselves, non-finite values, or a rising loss."""

from __future__ import annotations

import numpy as np

from gradscope.diagnosis.causes import why_exploding
from gradscope.diagnosis.finding import Finding
from gradscope.diagnosis.rules import Rule
from gradscope.vocabulary import fmt


def check(s, config, settings):
    big_steps = s.update_ratio_first[s.update_ratio_first > settings.explode_update_ratio]
    loss = s.loss.to_numpy(dtype=float)
    non_finite_loss = bool(len(loss) and np.any(~np.isfinite(loss)))
    rising = bool(len(loss) >= 2 and np.all(np.isfinite(loss)) and loss[-1] > settings.explode_loss_rise * loss[0])
    if not (len(big_steps) or non_finite_loss or rising or s.non_finite_step is not None):
        return None
    growth = s.growth.replace([np.inf], np.nan).dropna()
    layers = [layer for layer in s.layers if layer in big_steps.index] or s.non_finite_layers or s.layers
    evidence = {"update_ratio_first_epoch": s.update_ratio_first.round(4).to_dict(),
                "grad_norm_growth_first_epoch": growth.round(3).to_dict(),
                "epoch_losses": [float(v) for v in loss],
                "healthy": f"update_ratio well below {settings.explode_update_ratio:g} (a step changes a layer by a "
                           "small fraction of its norm) and a finite, falling loss"}
    reasons = []
    if len(big_steps):
        reasons.append(f"single steps change {', '.join(big_steps.index)} by up to "
                       f"{fmt(float(big_steps.max()))}x their own norm")
    if non_finite_loss or s.non_finite_step is not None:
        reasons.append("values became NaN/inf" + (f" at step {s.non_finite_step}" if s.non_finite_step is not None else ""))
    if rising:
        reasons.append(f"the loss rose from {fmt(loss[0])} to {fmt(loss[-1])}")
    return Finding(
        kind="exploding_gradient",
        severity="high",
        layers=layers,
        steps=s.steps,
        summary="gradients explode: " + "; ".join(reasons),
        evidence=evidence,
        why=why_exploding(config, settings),
        recommendation="Lower the learning rate or clip gradients (clipnorm=1.0); use He init for ReLU "
                       "(Xavier for tanh/sigmoid); BatchNormalization keeps activations in range.",
    )


RULE = Rule("exploding_gradient", "exploding gradients", check)
