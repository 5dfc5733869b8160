"""output_pairing: the output layer's activation and the loss do not fit each other."""

from __future__ import annotations

from gradscope.diagnosis.causes import logits_recovered, output_fix, output_mismatch
from gradscope.diagnosis.finding import Finding
from gradscope.diagnosis.rules import Rule


def check(t, facts, settings):
    mismatch = output_mismatch(facts)
    if mismatch is None:
        return None
    losses = [float(v) for v in t.losses]
    non_finite_loss = any(v != v or v in (float("inf"), float("-inf")) for v in losses)
    return Finding(
        kind="output_pairing",
        severity=("high" if non_finite_loss or t.non_finite is not None
                  else "low" if logits_recovered(facts) else "medium"),
        layers=[],
        steps=[t.first_step, t.last_step],
        summary=mismatch,
        evidence={"output_activation": facts.head_activation, "loss": facts.loss, "from_logits": facts.from_logits,
                  "backend": facts.backend, "training_used_the_logits": logits_recovered(facts),
                  "epoch_losses": losses, "non_finite_step": (t.non_finite or {}).get("step"),
                  "healthy": "softmax with a cross-entropy that takes probabilities, or a linear output with "
                             "from_logits=True"},
        why="",
        recommendation=output_fix(facts),
    )


RULE = Rule("output_pairing", "mismatched output and loss", check)
