"""The report as plain text, for the terminal: the summary table, each run's findings and its trials."""

from __future__ import annotations

from gradscope.diagnosis.finding import format_finding


def summary_table(views) -> str:
    """The compact table ``gradscope analyze`` prints at the end (one row per :class:`~gradscope.report.view.RunView`)."""
    header = f"{'run':<26} {'test acc':>8}  {'grad first/last':>19}  {'(grad/weight) first/last':>24}"
    lines = [header, " " * 37 + f"{'start -> end':>19}  {'start -> end':>24}"]
    for view in views:
        r = view.ratios
        acc = view.metrics.get("test_accuracy")
        acc = "-" if acc is None else f"{acc:.4f}"
        words = r["words"]
        grad = f"{words['grad_start']} -> {words['grad_end']}"
        rel = f"{words['rel_start']} -> {words['rel_end']}"
        name = view.label + ("" if view.status == "complete" else f" ({view.status})")
        lines.append(f"{name:<26} {acc:>8}  {grad:>19}  {rel:>24}")
    baselines = {round(v.baseline_accuracy, 4) for v in views if v.baseline_accuracy is not None}
    if baselines:
        lines.append(f"{'linear baseline':<26} {', '.join(f'{b:.4f}' for b in sorted(baselines)):>8}  "
                     "(logistic regression on the same data and split)")
    return "\n".join(lines)


def findings_text(name: str, findings) -> str:
    """A run's findings (dicts), a short block each: kind, severity, layers, summary, why and fix."""
    if not findings:
        return f"{name}: no problem found"
    blocks = ["  " + format_finding(f).replace("\n", "\n  ") for f in findings]
    return "\n".join([f"{name}:", *blocks])


def trials_text(view) -> str | None:
    """A run's trial table as ``print(result)`` shows it, or None when no trials ran on it."""
    return None if view.trials is None else f"{view.name}: {view.trials}"
