"""The diagnosis rules, one per finding kind, registered here in the order they run.

A rule is a :class:`Rule`: its kind, how the report says that it found nothing, the function
that checks a run's :class:`~gradscope.diagnosis.timeline.Timeline` (window by window, so a
finding says when it held) and :class:`~gradscope.diagnosis.facts.RunFacts`, and the kinds
that make its finding redundant. Adding a finding kind is one new module here and one line in :data:`RULES`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Rule:
    """One finding kind.

    Attributes:
        kind: the finding's ``kind``.
        absent: the problem in words, for "no ... were found" (e.g. ``"vanishing gradients"``).
        check: ``check(timeline, facts, settings)`` -> a Finding or None (a
            :class:`~gradscope.diagnosis.timeline.Timeline` and
            :class:`~gradscope.diagnosis.facts.RunFacts`).
        suppressed_by: kinds whose finding says the cause, so this one is dropped beside them.
        whole_run: it judges a whole run (not applied to a run that ended early).
    """

    kind: str
    absent: str
    check: Callable
    suppressed_by: frozenset = field(default_factory=frozenset)
    whole_run: bool = False


from gradscope.diagnosis.rules import (  # noqa: E402  (the rules import Rule from here)
    dead_units,
    exploding,
    exploding_through_time,
    non_finite,
    oscillating_loss,
    output_pairing,
    output_target_mismatch,
    saturation,
    slow_convergence,
    stalled,
    unscaled_inputs,
    unscaled_target,
    vanishing,
    vanishing_through_time,
)

#: Every rule, in the order it runs (findings are then sorted by severity, stably).
RULES: tuple[Rule, ...] = (
    non_finite.RULE,
    output_pairing.RULE,
    output_target_mismatch.RULE,
    unscaled_inputs.RULE,
    unscaled_target.RULE,
    exploding.RULE,
    vanishing.RULE,
    vanishing_through_time.RULE,
    exploding_through_time.RULE,
    saturation.RULE,
    dead_units.RULE,
    stalled.RULE,
    oscillating_loss.RULE,
    slow_convergence.RULE,
)

#: Every finding kind.
KINDS: tuple[str, ...] = tuple(rule.kind for rule in RULES)
