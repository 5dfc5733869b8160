"""Diagnosis: from a run's records (and config) to findings with evidence, cause and fix.

Pure functions of a records DataFrame; no TensorFlow, no I/O. Each finding names its kind,
the layers and steps it concerns, a severity, the numbers that triggered it next to what a
healthy run shows, why it happens when the config says enough, and what to change.

* :mod:`~gradscope.diagnosis.timeline`: the records summarised window by window (an epoch,
  or enough epochs for a few steps), each window once, so that a finding says when it held
  and diagnosing during training costs the same at any length;
* :mod:`~gradscope.diagnosis.facts`: what the model itself says (classes, activations, the
  output layer and the loss), so that no rule assumes the command line's defaults;
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
    >>> [f.kind for f in diagnose(records, settings=DiagnosisSettings(vanish_min_layers=2))]
    ['vanishing_gradient']
"""

from __future__ import annotations

from gradscope.diagnosis.facts import RunFacts, facts_of
from gradscope.diagnosis.finding import SEVERITIES, Finding, Findings, format_finding
from gradscope.diagnosis.rules import KINDS, RULES
from gradscope.diagnosis.settings import DEFAULT_SETTINGS, DiagnosisSettings
from gradscope.diagnosis.timeline import Timeline
from gradscope.diagnosis.trial_evidence import with_trials
from gradscope.storage.run_dir import has_records

__all__ = ["diagnose", "judge", "findings_of", "timeline_of", "verdict", "Finding", "Findings", "format_finding",
           "DiagnosisSettings", "RunFacts", "facts_of", "Timeline", "KINDS", "RULES", "INCOMPLETE"]


def diagnose(records, config: dict | None = None, settings: DiagnosisSettings | None = None,
             complete: bool = True, facts: RunFacts | None = None) -> Findings:
    """All findings for one run, most severe first.

    Args:
        records: the run's records (schema of :mod:`gradscope.records`).
        config: the run's config (``act``, ``init``, ``lr``, ``layers``, ...), for the *why*,
            when ``facts`` are not given.
        settings: thresholds (default: :data:`~gradscope.diagnosis.settings.DEFAULT_SETTINGS`).
        complete: False for a run that ended early: rules that judge a whole run
            (``Rule.whole_run``, a stall) are not applied to part of one.
        facts: what the model says (:func:`~gradscope.diagnosis.facts.facts_of` a run.json).
    """
    settings = settings or DEFAULT_SETTINGS
    timeline = Timeline.from_records(records, settings)
    return judge(timeline, facts or facts_of(config=config or {}), settings, complete)


def judge(timeline: Timeline, facts: RunFacts, settings: DiagnosisSettings = DEFAULT_SETTINGS,
          complete: bool = True) -> Findings:
    """The findings of a :class:`~gradscope.diagnosis.timeline.Timeline` (most severe first)."""
    if not timeline.windows:
        return Findings()
    rules = [rule for rule in RULES if complete or not rule.whole_run]
    found = []
    for rule in rules:
        finding = rule.check(timeline, facts, settings)
        if finding is not None:
            found.append(finding)
    kinds = {f.kind for f in found}
    suppressed = {rule.kind for rule in RULES if rule.suppressed_by & kinds}
    findings = Findings(f for f in found if f.kind not in suppressed)
    findings.sort(key=lambda f: SEVERITIES.index(f.severity))
    return findings


def timeline_of(run, settings: DiagnosisSettings | None = None) -> Timeline:
    """The windows of a saved run: its summaries (:mod:`~gradscope.diagnosis.summaries`, written while
    it trained), and the records after them summarised now; a run without summaries (written by an
    earlier version, or summarised with other windows than ``settings``') from its records."""
    from gradscope.diagnosis.summaries import timeline_of_rows, window_min_steps_of

    settings = settings or DEFAULT_SETTINGS
    rows, covered = run.summaries()
    if rows is not None and window_min_steps_of(rows) == settings.window_min_steps:
        timeline, rest = timeline_of_rows(rows, settings), run.records_from_part(covered)
    else:
        timeline, rest = Timeline(settings), run.records
    timeline.add_epochs(rest)
    timeline.finish()
    return timeline


def findings_of(run, settings: DiagnosisSettings | None = None, timeline: Timeline | None = None) -> list[dict]:
    """The findings of a saved run (a :class:`gradscope.storage.Run`), as dicts.

    Always computed with the current rules, from the run's window summaries and any records after
    them (:func:`timeline_of`; or ``timeline``, a recorder's own), so that the report,
    ``gradscope diagnose`` and ``gradscope analyze`` say the same thing; ``run.json`` keeps a
    copy of what was found when the run ended, for readers without gradscope, and for runs
    whose records were not kept (that copy is returned then). A run that did
    not complete is diagnosed on what it recorded, and its first finding says so
    (:data:`INCOMPLETE`), so that missing epochs never read as "healthy" or "stalled".
    """
    settings = settings or DEFAULT_SETTINGS
    if timeline is None:
        stored = run.meta.get("diagnosis")
        kept = has_records(run.path) if run.path is not None and not run.records_read else len(run.records)
        if stored and not kept:
            return list(stored)  # records not kept (e.g. a committed example): what was found when it ended
        timeline = timeline_of(run, settings)
    complete = run.status == "complete"
    findings = [f.to_dict() for f in judge(timeline, facts_of(run.meta), settings, complete)]
    if not complete or not timeline.windows:
        findings.insert(0, incomplete_finding(run, timeline).to_dict())
    findings += warned_findings(run.meta.get("warned") or [], {f["kind"] for f in findings})
    return with_trials(findings, run.meta.get("trials"))


def warned_findings(warned: list[dict], found: set) -> list[dict]:
    """What diagnosis during training warned of (``run.json``'s ``warned``) and the whole run's records
    no longer show: kept in the run's history, said as such."""
    out = []
    for w in warned:
        if w.get("kind") in found:
            continue
        found.add(w["kind"])
        f = {k: v for k, v in w.items() if k != "epoch"}
        f["summary"] = f"warned during training, at epoch {w['epoch']}: {w.get('summary', '')}"
        f["evidence"] = {**(w.get("evidence") or {}), "warned_at_epoch": w["epoch"]}
        out.append(f)
    return out


#: The finding that opens the diagnosis of a run that did not complete.
INCOMPLETE = "incomplete_run"


def incomplete_finding(run, timeline: Timeline) -> Finding:
    """Says that a run did not complete (or recorded no step), how far it got, and what that means
    for its findings (``timeline``: its windows)."""
    n_steps = sum(w.n_steps for w in timeline.windows)
    epochs = len(timeline.losses)
    recorded = (f"{n_steps:,} optimizer steps and {epochs} finished epoch(s)" if n_steps
                else "no optimizer step")
    return Finding(
        kind=INCOMPLETE,
        severity="high" if not n_steps else "medium",
        layers=[],
        steps=[timeline.first_step, timeline.last_step] if n_steps else [None, None],
        summary=(f"the run {run.progress_note}: what follows judges only what it recorded ({recorded})"
                 + ("; a stall cannot be judged on part of a run" if n_steps else "")
                 if run.progress_note else
                 "the run finished but recorded no optimizer step: nothing in it can be judged"),
        evidence={"status": run.status, "recorded_status": run.recorded_status,
                  "progress": run.meta.get("progress") or {}, "recorded_steps": int(n_steps),
                  "healthy": "a complete run"},
        why=run.meta.get("error") or run.meta.get("recording_error") or "",
        recommendation=("Run it to the end before trusting a clean bill of health; with gradscope analyze, "
                        "rerun the same command (sweeps resume where they stopped)."
                        if (run.meta.get("config") or {}).get("command") else
                        "Run the training to the end before trusting a clean bill of health (a GradientMonitor "
                        "kept across fit calls continues the same run)."
                        if run.progress_note else
                        "See the warning gradscope gave during fit (also in run.json's recording_error)."),
    )


def verdict(findings) -> str:
    """A few words for tables: the kinds found (Findings or their dicts), or 'healthy'."""
    kinds = [f["kind"] if isinstance(f, dict) else f.kind for f in findings]
    return ", ".join(kind.replace("_", " ") for kind in kinds) if kinds else "healthy"


def nothing_found() -> str:
    """The sentence for a run without findings, naming every kind looked for."""
    absent = [rule.absent for rule in RULES]
    return f"No {', '.join(absent[:-1])} or {absent[-1]} were found."
