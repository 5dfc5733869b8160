"""Diagnosis while training: each epoch adds its own records, so an epoch costs the same at any length.

Warns once per finding kind as soon as it appears, and says when to stop (``stop_on``).
Rules that judge a whole run (a stall, an oscillating or slow loss) wait for the end of it.
"""

from __future__ import annotations

from gradscope.diagnosis import KINDS, judge
from gradscope.diagnosis.facts import RunFacts, facts_of
from gradscope.diagnosis.settings import DEFAULT_SETTINGS
from gradscope.diagnosis.timeline import Timeline
from gradscope.display import say_finding


class OnlineDiagnosis:
    """Keeps a :class:`~gradscope.diagnosis.timeline.Timeline` of the run; judges it at each epoch end.

    Args:
        config: the run's config, for the *why* of findings (when no facts are given later).
        stop_on: finding kinds that should stop training.
        timeline: a timeline its owner adds the epochs to (a recording session's); default: its
            own, which :meth:`check` adds them to.

    Raises:
        ValueError: for an unknown kind in ``stop_on``.

    Example:
        >>> OnlineDiagnosis({}, stop_on=("vanish",))
        Traceback (most recent call last):
        ...
        ValueError: stop_on has unknown kind(s) ['vanish']; choose from ['non_finite', 'output_pairing', ...]
    """

    def __init__(self, config=None, stop_on=(), settings=DEFAULT_SETTINGS, timeline: Timeline | None = None):
        unknown = sorted(set(stop_on) - set(KINDS))
        if unknown:
            raise ValueError(f"stop_on has unknown kind(s) {unknown}; choose from {list(KINDS)}")
        self.facts: RunFacts = facts_of(config=dict(config or {}))
        self.stop_on = tuple(stop_on)
        self.settings = settings
        self.timeline = timeline if timeline is not None else Timeline(settings)
        self.findings: list = []
        self.warned: list[dict] = []  # each warning as data: the finding and the epoch it came at

    def describe(self, meta: dict) -> None:
        """Learn the run's facts from the monitor's run description (model, optimizer, config)."""
        self.facts = facts_of(meta)

    def check(self, new_records, epoch: int) -> bool:
        """Add an epoch's records (None: its timeline's owner added them); warn for each new kind; return
        whether training should stop."""
        if new_records is not None:
            self.timeline.add(new_records)
        seen = {f.kind for f in self.findings}
        stop = False
        for finding in judge(self.timeline, self.facts, self.settings, complete=False):
            if finding.kind in seen:
                continue
            self.findings.append(finding)
            self.warned.append({"epoch": epoch + 1, **finding.to_dict()})
            say_finding(finding.to_dict(), f"epoch {epoch + 1}")
            stop = stop or finding.kind in self.stop_on
        return stop

    def finish(self) -> list:
        """At the end of training: judge the whole run too (a stall, oscillation or slow convergence)."""
        self.timeline.finish()
        seen = {f.kind for f in self.findings}
        for finding in judge(self.timeline, self.facts, self.settings, complete=True):
            if finding.kind not in seen:
                self.findings.append(finding)
        return self.findings
