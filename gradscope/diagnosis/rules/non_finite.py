"""non_finite: a gradient, weight or the loss became NaN or inf; traced to where it started."""

from __future__ import annotations

from gradscope.diagnosis.causes import data_first, output_fix, output_mismatch, trace_non_finite, why_exploding
from gradscope.diagnosis.finding import Finding
from gradscope.diagnosis.rules import Rule
from gradscope.vocabulary import times


def check(t, facts, settings):
    trace = trace_non_finite(t, facts, settings)
    if trace is None:
        return None
    where = (f"the {trace['metric'].replace('_', ' ')} of {trace['layer']}/{trace['variable']}" if trace["layer"]
             else "the loss")
    if trace["cause"] == "explosion":
        grew = ("a gradient became inf" if trace["inf_gradient"] else
                "a step's update went beyond float32's range" if trace["inf_update"] else
                f"gradients grew {times(trace['grad_growth'])} and weights {times(trace['weight_growth'])} before")
        summary = f"values became NaN/inf at step {trace['step']} ({where} first), after norms exploded: {grew}"
        why = why_exploding(facts, settings)
        fix = ("Lower the learning rate, clip gradients (clipnorm=1.0), and use He (ReLU) or Xavier (tanh/sigmoid) "
               "initialisation instead of large random weights.")
    else:
        mismatch = output_mismatch(facts)
        summary = (f"values became NaN/inf at step {trace['step']} ({where} first) while gradients and weights stayed "
                   f"in range (largest growth {times(trace['grad_growth'])} and {times(trace['weight_growth'])}): the loss "
                   "itself went non-finite, not the gradients")
        why = mismatch or "the loss (or an op in the model) produced NaN/inf from finite values: log(0), 0/0, sqrt of a negative"
        fix = (output_fix(facts) if mismatch else
               "Check the inputs and targets for NaN/inf, use from_logits=True instead of taking log of probabilities, "
               "and guard divisions and logarithms; lowering the learning rate will not help.")
    return Finding(
        kind="non_finite",
        severity="high",
        layers=[trace["layer"]] if trace["layer"] else [],
        steps=[trace["step"], t.last_step],
        summary=summary,
        evidence={"first_non_finite": {k: trace[k] for k in ("step", "metric", "layer", "variable")},
                  "cause": trace["cause"], "grad_norm_growth_before": trace["grad_growth"],
                  "weight_norm_growth_before": trace["weight_growth"],
                  "healthy": "all values finite"},
        why=why,
        recommendation=data_first(facts, settings) + fix,
    )


RULE = Rule("non_finite", "non-finite values", check)
