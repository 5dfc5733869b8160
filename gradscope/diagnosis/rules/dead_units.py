"""dead_units: most units of a ReLU layer output 0 for every probe sample."""

from __future__ import annotations

from gradscope.diagnosis.finding import Finding
from gradscope.diagnosis.rules import Rule


def check(s, config, settings):
    if not len(s.dead):
        return None
    hit = s.dead[s.dead > settings.dead]
    if not len(hit):
        return None
    layer = hit.idxmax()
    return Finding(
        kind="dead_units",
        severity="high" if float(hit.max()) > settings.high_fraction else "medium",
        layers=list(hit.index),
        steps=s.steps,
        summary=f"{100 * float(hit.max()):.0f}% of the units of {layer} output 0 for every probe sample "
                "and get no gradient",
        evidence={"dead_frac_last": s.dead.round(4).to_dict(),
                  "healthy": f"dead_frac < {settings.dead}"},
        why=("a large learning rate or large negative biases push ReLU units below 0 for all inputs"
             if (config.get("lr") or 0) >= settings.large_lr_dead else ""),
        recommendation="Use He init, a lower learning rate, or LeakyReLU/ELU, which keep a gradient "
                       "for negative inputs.",
    )


RULE = Rule("dead_units", "dead units", check)
