"""saturation: most outputs of a sigmoid/tanh layer sit where the activation is flat."""

from __future__ import annotations

from gradscope.diagnosis.finding import Finding
from gradscope.diagnosis.rules import Rule
from gradscope.vocabulary import LARGE_RANDOM_INIT, SATURATION_MARGIN


def check(s, config, settings):
    if not len(s.saturated):
        return None
    worst = s.saturated_first.combine(s.saturated, max, fill_value=0) if len(s.saturated_first) else s.saturated
    hit = worst[worst > settings.saturated]
    if not len(hit):
        return None
    layer = hit.idxmax()
    return Finding(
        kind="saturation",
        severity="high" if float(hit.max()) > settings.high_fraction else "medium",
        layers=[layer for layer in s.saturated.index if layer in hit.index],
        steps=s.steps,
        summary=f"{100 * float(hit.max()):.0f}% of the outputs of {layer} are within {SATURATION_MARGIN:g} of an "
                "asymptote, where the activation's derivative is ~0",
        evidence={"saturated_frac_first": s.saturated_first.round(4).to_dict(),
                  "saturated_frac_last": s.saturated.round(4).to_dict(),
                  "healthy": f"saturated_frac < {settings.saturated} (Xavier init keeps most units in the linear range)"},
        why=("N(0,1) weights make pre-activations far larger than the activation's linear range"
             if config.get("init") == LARGE_RANDOM_INIT else ""),
        recommendation="Use Xavier (Glorot) initialisation or switch to ReLU with He init; "
                       "BatchNormalization before the activation keeps inputs near 0.",
    )


RULE = Rule("saturation", "saturated units", check)
