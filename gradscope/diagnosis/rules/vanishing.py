"""vanishing_gradient: the input side learns far more slowly than the output side."""

from __future__ import annotations

import math

from gradscope.diagnosis.causes import data_first, vanishing_remedy, why_vanishing
from gradscope.diagnosis.finding import Finding
from gradscope.diagnosis.rules import Rule
from gradscope.diagnosis.timeline import decay_per_layer, episodes, history, history_text
from gradscope.vocabulary import fmt, times


def check(t, facts, settings):
    def slow_input(w):
        if w.non_finite is not None or t.fitted(w, facts):
            return None
        speed = t.usable(w, zeros=True)
        if len(speed) < max(2, settings.vanish_min_layers) or not speed.iloc[-1] > 0:
            return None
        ratio = float(speed.iloc[0] / speed.iloc[-1])
        return {"ratio": ratio, "speed": speed} if ratio < settings.vanish_ratio else None

    found = episodes(t, t.flags("vanishing_gradient", slow_input), severity=lambda d: -d["ratio"])
    if not found:
        return None
    worst = min(found, key=lambda e: e.detail["ratio"])
    d, w = worst.detail, worst.worst
    speed, ratio = d["speed"], d["ratio"]
    sat = float(w.saturated.iloc[0]) if len(w.saturated) else 0.0
    decay = decay_per_layer(speed)
    first_grad = float(w.grad_first.iloc[0]) if len(w.grad_first) else math.nan
    when = history_text(history(t, found))
    if ratio > 0:
        summary = (f"the input layer learns {times(1 / ratio)} more slowly than the output layer "
                   f"(update_ratio {fmt(float(speed.iloc[0]))} vs {fmt(float(speed.iloc[-1]))} per step)"
                   + (f", shrinking {times(1 / decay)} per layer toward the input" if math.isfinite(decay) and decay < 1 else "")
                   + (f", although its gradient norm is {fmt(first_grad)}" if first_grad > settings.mention_grad_above else "")
                   + when)
    else:
        stopped = [layer for layer in speed.index if speed[layer] == 0]
        summary = (f"no gradient reaches {', '.join(stopped)}: the input side does not learn while the output layer "
                   f"does (update_ratio {fmt(float(speed.iloc[-1]))} per step){when}")
    slow = [layer for layer in speed.index if speed[layer] < settings.vanish_ratio * speed.iloc[-1]] or [speed.index[0]] \
        if len(speed) else list(t.layers[:1])
    high = ratio < settings.vanish_high
    return Finding(
        kind="vanishing_gradient",
        severity="high" if high else "medium",
        layers=slow,
        steps=found[0].steps,
        summary=summary,
        evidence={
            "update_ratio_worst_window": speed.round(6).to_dict(),
            "grad_over_weight_worst_window": w.rel.round(6).to_dict(),
            "first_to_last_ratio": ratio,
            "per_layer_decay": decay,
            "first_hidden_layer_saturated_frac": sat,
            "grad_norm_at_worst_window_start": w.grad_first.round(6).to_dict(),
            **history(t, found),
            "healthy": f"input/output update_ratio >= {settings.vanish_ratio:g} (ReLU + He init keeps layers learning "
                       "at comparable rates)",
        },
        why=why_vanishing(w, facts, settings),
        recommendation=data_first(facts, settings) + vanishing_remedy(facts),
    )


# an exploding output side also makes the input side look slow: the explosion is the cause
RULE = Rule("vanishing_gradient", "vanishing gradients", check,
            suppressed_by=frozenset({"exploding_gradient", "non_finite"}))
