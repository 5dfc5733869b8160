"""A finding: one diagnosed problem, with its evidence, cause and fix."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import numpy as np

#: Severities, most severe first.
SEVERITIES = ("high", "medium", "low")


@dataclass
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

    Example:
        >>> f = Finding("stalled", "medium", [], [0, 9], "training has stalled",
        ...             evidence={"relative_drop": float("nan")})
        >>> f.to_dict()["evidence"]
        {'relative_drop': 'nan'}
    """

    kind: str
    severity: str
    layers: list
    steps: list
    summary: str
    evidence: dict = field(default_factory=dict)
    why: str = ""
    recommendation: str = ""

    def to_dict(self) -> dict:
        """A plain dict that strict JSON can hold (non-finite numbers become strings)."""
        return _jsonable(asdict(self))


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
