"""Diagnosis: from a run's records (and config) to findings with evidence, cause and fix.

Pure functions of a records DataFrame; no TensorFlow, no I/O. Each finding names its kind,
the layers and steps it concerns, a severity, the numbers that triggered it next to what a
healthy run shows, why it happens when the config says enough, and what to change.

* :mod:`~gradscope.diagnosis.signals`: the numbers the rules look at, computed once per run;
* :mod:`~gradscope.diagnosis.rules`: one rule per finding kind, registered in one place;
* :mod:`~gradscope.diagnosis.settings`: every threshold, in one settings object;
* :func:`findings_of`: the one source of a saved run's findings, for every reader.

Example:
    >>> import numpy as np
    >>> from gradscope import records as rec
    >>> meta = [("dense_0", 0, "kernel"), ("output", 1, "kernel")]
    >>> records = rec.concat([rec.from_step_arrays(
    ...     "r", np.array([s]), 0, meta,
    ...     {"grad_norm": np.array([[0.01, 1.0]]), "weight_norm": np.array([[30.0, 4.0]]),
    ...      "update_norm": np.array([[0.001, 0.1]])}) for s in range(5)])
    >>> [f.kind for f in diagnose(records)]
    ['vanishing_gradient']
"""

from __future__ import annotations

from gradscope.diagnosis.finding import SEVERITIES, Finding
from gradscope.diagnosis.rules import KINDS, RULES
from gradscope.diagnosis.settings import DEFAULT_SETTINGS, DiagnosisSettings
from gradscope.diagnosis.signals import signals

__all__ = ["diagnose", "findings_of", "verdict", "Finding", "DiagnosisSettings", "KINDS", "RULES"]


def diagnose(records, config: dict | None = None, settings: DiagnosisSettings | None = None) -> list[Finding]:
    """All findings for one run, most severe first.

    Args:
        records: the run's records (schema of :mod:`gradscope.records`).
        config: the run's config (``act``, ``init``, ``lr``, ``layers``, ...), for the *why*.
        settings: thresholds (default: :data:`~gradscope.diagnosis.settings.DEFAULT_SETTINGS`).
    """
    config = config or {}
    settings = settings or DEFAULT_SETTINGS
    s = signals(records, settings)
    found = [f for f in (rule.check(s, config, settings) for rule in RULES) if f is not None]
    kinds = {f.kind for f in found}
    suppressed = {rule.kind for rule in RULES if rule.suppressed_by & kinds}
    findings = [f for f in found if f.kind not in suppressed]
    findings.sort(key=lambda f: SEVERITIES.index(f.severity))
    return findings


def findings_of(run, settings: DiagnosisSettings | None = None) -> list[dict]:
    """The findings of a saved run (a :class:`gradscope.storage.Run`), as dicts.

    Always computed from the run's records with the current rules, so that the report,
    ``gradscope diagnose`` and ``gradscope analyze`` say the same thing; ``run.json`` keeps a
    copy of what was found when the run ended, for readers without gradscope.
    """
    return [f.to_dict() for f in diagnose(run.records, run.config, settings)]


def verdict(findings) -> str:
    """A few words for tables: the kinds found (Findings or their dicts), or 'healthy'."""
    kinds = [f["kind"] if isinstance(f, dict) else f.kind for f in findings]
    return ", ".join(kind.replace("_", " ") for kind in kinds) if kinds else "healthy"


def nothing_found() -> str:
    """The sentence for a run without findings, naming every kind looked for."""
    absent = [rule.absent for rule in RULES]
    return f"No {', '.join(absent[:-1])} or {absent[-1]} were found."
