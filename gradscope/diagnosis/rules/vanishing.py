"""vanishing_gradient: the input side learns far more slowly than the output side."""

from __future__ import annotations

import math

import numpy as np

from gradscope.diagnosis.causes import vanishing_remedy, why_vanishing
from gradscope.diagnosis.finding import Finding
from gradscope.diagnosis.rules import Rule
from gradscope.diagnosis.signals import decay_per_layer
from gradscope.vocabulary import fmt


def check(s, config, settings):
    speed = s.update_ratio_first.replace([np.inf, -np.inf], np.nan).dropna()
    if len(speed) < 2 or speed.iloc[-1] <= 0 or s.non_finite_step is not None:
        return None
    ratio = float(speed.iloc[0] / speed.iloc[-1])
    sat_input = float(s.saturated_first.iloc[0]) if len(s.saturated_first) else 0.0
    if not (ratio < settings.vanish_ratio or sat_input > settings.vanish_saturated_input):
        return None
    rel = s.rel_first.replace([np.inf, -np.inf], np.nan).dropna()
    decay = decay_per_layer(speed)
    slow = [layer for layer in speed.index if speed[layer] < settings.vanish_ratio * speed.iloc[-1]] or [speed.index[0]]
    first_grad = float(s.grad_first.iloc[0]) if len(s.grad_first) else math.nan
    if ratio < settings.vanish_ratio:
        summary = (f"the input layer learns {fmt(1 / ratio, 2)}x more slowly than the output layer "
                   f"(update_ratio {fmt(float(speed.iloc[0]))} vs {fmt(float(speed.iloc[-1]))} per step)"
                   + (f", shrinking {fmt(1 / decay, 2)}x per layer toward the input" if math.isfinite(decay) and decay < 1 else "")
                   + (f", although its gradient norm is {fmt(first_grad)}" if first_grad > settings.mention_grad_above else ""))
    else:
        summary = (f"{100 * sat_input:.0f}% of the first hidden layer's outputs are saturated, so almost no "
                   "gradient passes through it to its weights")
    return Finding(
        kind="vanishing_gradient",
        severity="high" if ratio < settings.vanish_high or sat_input > settings.high_fraction else "medium",
        layers=slow,
        steps=s.steps,
        summary=summary,
        evidence={
            "update_ratio_first_epoch": speed.round(6).to_dict(),
            "grad_over_weight_first_epoch": rel.round(6).to_dict(),
            "first_to_last_ratio": ratio,
            "per_layer_decay": decay,
            "first_hidden_layer_saturated_frac": sat_input,
            "grad_norm_first_step": s.grad_first.round(6).to_dict(),
            "healthy": f"input/output update_ratio >= {settings.vanish_ratio:g} (ReLU + He init keeps layers learning "
                       "at comparable rates)",
        },
        why=why_vanishing(s, config, settings),
        recommendation=vanishing_remedy(config),
    )


# an exploding output side also makes the input side look slow: the explosion is the cause
RULE = Rule("vanishing_gradient", "vanishing gradients", check,
            suppressed_by=frozenset({"exploding_gradient", "non_finite"}))
