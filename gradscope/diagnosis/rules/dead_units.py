"""dead_units: most units of a ReLU layer output 0 for every probe sample."""

from __future__ import annotations

from gradscope.diagnosis.causes import data_first
from gradscope.diagnosis.finding import Finding
from gradscope.diagnosis.rules import Rule
from gradscope.diagnosis.timeline import history, history_text, layers_above


def check(t, facts, settings):
    hit = layers_above(t, "dead_units", "dead", settings.dead, skip=facts.output_layers)  # an output's range is the loss's business
    if hit is None:
        return None
    zero_start = [layer for layer in hit.layers if layer in t.zero_start]
    if zero_start == hit.layers:  # the textbook symmetric init: weights all 0
        why = (f"the kernels of {', '.join(zero_start)} start at 0: every unit outputs ReLU(0) = 0 for every "
               "input and gets no gradient, and all units of a layer stay identical (the symmetry is never broken)")
        fix = "Initialise the weights randomly: He init for ReLU (Var(w) = 2/fan_in); zeros suit biases only."
    else:
        why = ("a large learning rate or large negative biases push ReLU units below 0 for all inputs"
               if (facts.learning_rate or 0) >= settings.large_lr_dead else "")
        fix = "Use He init, a lower learning rate, or LeakyReLU/ELU, which keep a gradient for negative inputs."
    return Finding(
        kind="dead_units",
        severity="high" if hit.fraction > settings.high_fraction else "medium",
        layers=hit.layers,
        steps=hit.found[0].steps,
        summary=f"{100 * hit.fraction:.0f}% of the units of {hit.layer} output 0 for every probe sample and get no "
                f"gradient{history_text(history(t, hit.found))}",
        evidence={"dead_frac_worst_window": hit.worst.worst.dead.round(4).to_dict(),
                  "dead_frac_last_window": t.windows[-1].dead.round(4).to_dict(),
                  **history(t, hit.found), "healthy": f"dead_frac < {settings.dead}"},
        why=why,
        recommendation=data_first(facts, settings) + fix,
    )


RULE = Rule("dead_units", "dead units", check)
