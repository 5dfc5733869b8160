"""A finding: one diagnosed problem, with its evidence, cause and fix."""

from __future__ import annotations

import math
import textwrap
from dataclasses import asdict, dataclass, field

import numpy as np

#: Printed findings wrap at this many characters.
WIDTH = 100

#: Severities, most severe first.
SEVERITIES = ("high", "medium", "low")


@dataclass(repr=False)
class Finding:
    """One diagnosed problem.

    Attributes:
        kind: one of :data:`gradscope.diagnosis.KINDS`.
        severity: ``high``, ``medium`` or ``low``.
        layers: the layers concerned, input side first.
        steps: ``[first, last]`` optimizer steps over which it was seen.
        summary: one sentence.
        evidence: the numbers that triggered it (and ``healthy``: what a healthy run shows).
        why: the cause, when the config tells it.
        recommendation: what to change.
        trial: when its fix was tried (:func:`gradscope.try_fixes`): ``{"status": "confirmed" |
            "unconfirmed" | "not tried", "arm", "text"}``
            (:mod:`gradscope.diagnosis.trial_evidence`).

    Example:
        >>> f = Finding("stalled", "medium", [], [0, 9], "training has stalled",
        ...             evidence={"relative_drop": float("nan")}, recommendation="Raise the learning rate.")
        >>> f.to_dict()["evidence"]
        {'relative_drop': 'nan'}
        >>> print(f)
        stalled (medium; steps 0-9): training has stalled
          fix: Raise the learning rate.
    """

    kind: str
    severity: str
    layers: list
    steps: list
    summary: str
    evidence: dict = field(default_factory=dict)
    why: str = ""
    recommendation: str = ""
    trial: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        """A plain dict that strict JSON can hold (non-finite numbers become strings); the full evidence."""
        return _jsonable(asdict(self))

    def __str__(self) -> str:
        return format_finding(self.to_dict())

    def __repr__(self) -> str:
        layers = f"; {', '.join(map(str, self.layers))}" if self.layers else ""
        return f"<Finding {self.kind} ({self.severity}{layers}): {self.summary}>"

    def _repr_html_(self) -> str:
        """In Jupyter: the finding as the HTML report shows it."""
        from gradscope.display import block, finding_html

        return block(finding_html(self.to_dict()))


class Findings(list):
    """The findings of a run, most severe first; prints (and shows, in a terminal or a notebook
    cell) as a short block per finding, and as the report's HTML in Jupyter.

    Example:
        >>> Findings()
        no problem found
        >>> Findings([Finding("stalled", "medium", [], [0, 9], "training has stalled")])
        stalled (medium; steps 0-9): training has stalled
    """

    def __str__(self) -> str:
        return "\n".join(str(f) for f in self) if self else "no problem found"

    __repr__ = __str__

    def _repr_html_(self) -> str:
        from gradscope.display import block, findings_html

        return block(findings_html(self.to_dict()))

    def to_dict(self) -> list[dict]:
        """Every finding as a plain dict, with its full evidence."""
        return [f.to_dict() for f in self]


def format_finding(f: dict) -> str:
    """A finding (as a dict) in a few lines: kind, severity, layers, steps, summary, why, fix and its trial."""
    trial = f.get("trial") or {}
    where = [f["severity"] + (", unconfirmed" if trial.get("status") == "unconfirmed" else
                              ", confirmed" if trial.get("status") == "confirmed" else "")]
    if f.get("layers"):
        where.append(", ".join(map(str, f["layers"])))
    steps = f.get("steps") or []
    if len(steps) == 2 and steps[0] is not None:
        where.append(f"step {steps[0]}" if steps[0] == steps[1] else f"steps {steps[0]}-{steps[1]}")
    lines = _wrap(f"{f['kind']} ({'; '.join(where)}): {f['summary']}", "    ")
    if f.get("why"):
        lines += _wrap(f"  why: {f['why']}", "       ")
    if f.get("recommendation"):
        lines += _wrap(f"  fix: {f['recommendation']}", "       ")
    if trial.get("text") and trial.get("status") != "not tried":
        lines += _wrap(f"  {trial['text']}", "         ")
    return "\n".join(lines)


def _wrap(text: str, rest: str) -> list[str]:
    """Lines of at most :data:`WIDTH` characters, the second and later indented by ``rest`` (words are never broken)."""
    return textwrap.wrap(text, WIDTH, subsequent_indent=rest,
                         break_long_words=False, break_on_hyphens=False) or [text]


def _jsonable(x):
    if isinstance(x, dict):
        return {k: _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, (np.floating, float)):
        x = float(x)
        return x if math.isfinite(x) else str(x)
    if isinstance(x, np.integer):
        return int(x)
    return x
