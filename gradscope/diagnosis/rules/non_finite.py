"""non_finite: a gradient, weight or the loss became NaN or inf."""

from __future__ import annotations

from gradscope.diagnosis.causes import why_exploding
from gradscope.diagnosis.finding import Finding
from gradscope.diagnosis.rules import Rule


def check(s, config, settings):
    if s.non_finite_step is None:
        return None
    return Finding(
        kind="non_finite",
        severity="high",
        layers=s.non_finite_layers,
        steps=[s.non_finite_step, s.last_step],
        summary=f"gradients, weights or the loss became NaN/inf at step {s.non_finite_step}; "
                "training can no longer recover",
        evidence={"first_non_finite_step": s.non_finite_step,
                  "grad_norm_at_first_step": s.grad_first.round(6).to_dict(),
                  "healthy": "all values finite"},
        why=why_exploding(config, settings),
        recommendation="Lower the learning rate, clip gradients (clipnorm=1.0), and use He (ReLU) or "
                       "Xavier (tanh/sigmoid) initialisation instead of large random weights.",
    )


RULE = Rule("non_finite", "non-finite values", check)
