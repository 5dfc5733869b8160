"""Diagnosis while training: warn once per finding kind as soon as it appears, stop on request."""

from __future__ import annotations

import warnings

from gradscope.diagnosis import KINDS, diagnose


class OnlineDiagnosis:
    """Diagnoses the records so far at each check; warns once per kind; says when to stop.

    Args:
        config: the run's config, for the *why* of findings.
        stop_on: finding kinds that should stop training.

    Raises:
        ValueError: for an unknown kind in ``stop_on``.

    Example:
        >>> OnlineDiagnosis({}, stop_on=("vanish",))
        Traceback (most recent call last):
        ...
        ValueError: stop_on has unknown kind(s) ['vanish']; choose from ['non_finite', 'exploding_gradient', 'vanishing_gradient', 'saturation', 'dead_units', 'stalled']
    """

    def __init__(self, config=None, stop_on=()):
        unknown = sorted(set(stop_on) - set(KINDS))
        if unknown:
            raise ValueError(f"stop_on has unknown kind(s) {unknown}; choose from {list(KINDS)}")
        self.config = dict(config or {})
        self.stop_on = tuple(stop_on)
        self.findings: list = []

    def check(self, records, epoch: int) -> bool:
        """Diagnose ``records``; warn for each new kind; return whether training should stop."""
        seen = {f.kind for f in self.findings}
        stop = False
        for finding in diagnose(records, self.config):
            if finding.kind in seen:
                continue
            self.findings.append(finding)
            warnings.warn(
                f"gradscope, epoch {epoch + 1}: {finding.kind}: {finding.summary}. "
                f"Fix: {finding.recommendation}",
                stacklevel=3,
            )
            stop = stop or finding.kind in self.stop_on
        return stop
