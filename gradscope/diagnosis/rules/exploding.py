"""exploding_gradient: steps larger than the weights themselves, norms that blow up to NaN/inf, or a rising loss."""

from __future__ import annotations

import numpy as np

from gradscope.diagnosis.causes import data_first, trace_non_finite, why_exploding
from gradscope.diagnosis.finding import Finding
from gradscope.diagnosis.rules import Rule
from gradscope.diagnosis.timeline import episodes, history, history_text
from gradscope.vocabulary import fmt, times


def check(t, facts, settings):
    def big_steps(w):
        speed = t.usable(w)
        hit = dict(speed[speed > settings.explode_update_ratio])
        return hit or None

    found = episodes(t, t.flags("exploding_gradient", big_steps), severity=lambda d: max(d.values()))
    loss = t.losses.to_numpy(dtype=float)
    rising = bool(len(loss) >= 2 and np.all(np.isfinite(loss)) and loss[0] > 0
                  and loss[-1] > settings.explode_loss_rise * loss[0])
    trace = trace_non_finite(t, facts, settings)
    exploded = trace is not None and trace["cause"] == "explosion"
    # however briefly, a norm beyond float32's range is no passing moment, unless the loss itself went
    # non-finite first (log(0) with the weights still where they started): then the loss is the cause
    overflow = _overflow(t) if trace is None or trace["cause"] != "loss" else None
    if not (found or rising or exploded or overflow):
        return None
    reasons = []
    layers = []
    if overflow and not exploded:
        reasons.append(f"the norm of {overflow['layer']}'s {overflow['metric'].replace('_norm', '')} went beyond "
                       f"float32's range (3.4e38) at step {overflow['step']}")
    if found:
        worst = max(found, key=lambda e: max(e.detail.values()))
        layers = [layer for layer in t.layers if any(layer in e.detail for e in found)]
        largest = max(worst.detail.values())
        size = f"{fmt(100 * largest)}% of" if largest < 10 else f"{times(largest)}"
        reasons.append(f"single steps change {', '.join(layers)} by up to {size} their own "
                       f"norm{history_text(history(t, found), ' ({})')}")
    if exploded:
        reasons.append(f"a gradient norm went beyond float32's range and values became NaN/inf at step {trace['step']}"
                       if trace["inf_gradient"] else
                       f"a step's update went beyond float32's range and values became NaN/inf at step {trace['step']}"
                       if trace["inf_update"] else
                       f"norms grew {times(trace['grad_growth'])} until values became NaN/inf at step {trace['step']}")
    if rising:
        reasons.append(f"the loss rose from {fmt(loss[0])} to {fmt(loss[-1])}")
    return Finding(
        kind="exploding_gradient",
        severity="high",
        layers=layers or ([trace["layer"]] if exploded and trace["layer"] else
                          [overflow["layer"]] if overflow else list(t.layers)),
        steps=found[0].steps if found else [t.first_step, t.last_step],
        summary="gradients explode: " + "; ".join(reasons),
        evidence={"update_ratio_worst_window": ({k: round(float(v), 4) for k, v in worst.detail.items()}
                                                if found else {}),
                  **history(t, found),
                  "epoch_losses": [float(v) for v in loss],
                  "grad_norm_growth_before_non_finite": trace["grad_growth"] if exploded else None,
                  "healthy": f"update_ratio well below {settings.explode_update_ratio:g} (a step changes a layer by a "
                             "small fraction of its norm) and a finite, falling loss"},
        why=why_exploding(facts, settings),
        recommendation=data_first(facts, settings) + (
            "Clip gradients (clipnorm=1.0, the usual fix for recurrent nets) or lower the learning rate."
            if facts.recurrent_classes else
            "Lower the learning rate or clip gradients (clipnorm=1.0); use He init for ReLU (Xavier for tanh/sigmoid); "
            "BatchNormalization keeps activations in range."),
    )


def _overflow(t) -> dict | None:
    """The first window in which a gradient or weight norm was inf (its values may still be finite)."""
    for w in t.windows:
        for metric, norms in (("grad_norm", w.grad_max), ("weight_norm", w.weight_last)):
            for layer, v in norms.items():
                if np.isinf(v):
                    return {"step": w.first_step, "layer": layer, "metric": metric}
    return None


RULE = Rule("exploding_gradient", "exploding gradients", check)
