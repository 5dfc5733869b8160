"""saturation: most outputs of a sigmoid/tanh layer sit where the activation is flat."""

from __future__ import annotations

from gradscope.diagnosis.causes import data_first, overshoot
from gradscope.diagnosis.finding import Finding
from gradscope.diagnosis.rules import Rule
from gradscope.diagnosis.timeline import history, history_text, layers_above
from gradscope.vocabulary import SATURATION_MARGIN


def check(t, facts, settings):
    hit = layers_above(t, "saturation", "saturated", settings.saturated, skip=facts.output_layers)  # an output's range is the loss's business
    if hit is None:
        return None
    step_too_large = overshoot(t, facts, settings)
    if step_too_large:
        why = f"{step_too_large}, pushing pre-activations far beyond the activation's linear range"
        fix = "Lower the learning rate first; then Xavier (Glorot) initialisation, or ReLU with He init."
    else:
        why = (f"{'N(0,1) weights' if facts.init == 'normal' else 'weights drawn with a large standard deviation'} "
               "make pre-activations far larger than the activation's linear range" if facts.large_random_init else "")
        fix = ("Use Xavier (Glorot) initialisation or switch to ReLU with He init; BatchNormalization before the "
               "activation keeps inputs near 0.")
    return Finding(
        kind="saturation",
        severity="high" if hit.fraction > settings.high_fraction else "medium",
        layers=hit.layers,
        steps=hit.found[0].steps,
        summary=f"{100 * hit.fraction:.0f}% of the outputs of {hit.layer} are within {SATURATION_MARGIN:g} of an "
                f"asymptote, where the activation's derivative is ~0{history_text(history(t, hit.found))}",
        evidence={"saturated_frac_worst_window": hit.worst.worst.saturated.round(4).to_dict(),
                  "saturated_frac_last_window": t.windows[-1].saturated.round(4).to_dict(),
                  **history(t, hit.found),
                  "healthy": f"saturated_frac < {settings.saturated} (Xavier init keeps most units in the linear range)"},
        why=why,
        recommendation=data_first(facts, settings) + fix,
    )


RULE = Rule("saturation", "saturated units", check)
