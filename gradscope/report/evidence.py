"""A finding's evidence as a small table for the report: one row per item, numbers to 3
significant digits, per-layer values side by side, long lists shortened.

Example:
    >>> evidence_rows({"first_to_last_ratio": 0.02354824455, "epoch_losses": [2.3, 2.29876, 2.2912],
    ...                "grad_norm_first_step": {"dense": 0.1234567, "output": 2.5}, "healthy": "finite"})
    [('first to last ratio', '0.0235'), ('epoch losses', '2.3, 2.3, 2.29'), ('grad norm first step', 'dense 0.123 · output 2.5'), ('healthy', 'finite')]
"""

from __future__ import annotations

import numbers

from gradscope.vocabulary import fmt

MAX_ITEMS = 8  #: per-layer entries shown (the rest counted); longer lists show their first 4 and last 3


def _value(v) -> str:
    if isinstance(v, bool) or v is None:
        return "-" if v is None else ("yes" if v else "no")
    if isinstance(v, numbers.Integral):
        return f"{int(v):,}" if abs(int(v)) >= 10_000 else str(int(v))
    if isinstance(v, numbers.Real):
        return fmt(v)
    if isinstance(v, str):
        try:
            return fmt(float(v)) if v.strip().lower() not in ("", "nan", "inf") else v
        except ValueError:
            return v
    if isinstance(v, dict):
        items = [f"{k} {_value(x)}" for k, x in list(v.items())[:MAX_ITEMS]]
        more = len(v) - MAX_ITEMS
        return " · ".join(items + ([f"(+{more} more)"] if more > 0 else [])) or "none"
    if isinstance(v, (list, tuple)):
        if len(v) > MAX_ITEMS:  # the start and the end of a long series
            return ", ".join([_value(x) for x in v[:4]] + [f"... ({len(v) - 7} more) ..."] + [_value(x) for x in v[-3:]])
        return ", ".join(_value(x) for x in v) or "none"
    return str(v)


def evidence_rows(evidence: dict) -> list[tuple[str, str]]:
    """``(what, value)`` rows of a finding's evidence, in its order, for the report's table."""
    return [(str(k).replace("_", " "), _value(v)) for k, v in (evidence or {}).items()]
