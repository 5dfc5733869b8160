"""Shared by the benchmark scripts: a markdown table of times and their ratios to a base way."""

from __future__ import annotations

import statistics


def ratio_table(times: dict, base: str = "plain", cpu: dict | None = None, unit: str = "s") -> str:
    """Best and median time per way, and their ratios to ``base`` (best to best, median to median).

    The fastest repeat is the least disturbed by the machine; the median is shown beside it.
    """
    best0, median0 = min(times[base]), statistics.median(times[base])
    head = f"| way | best {unit} | median {unit} | ratio vs {base} (best) | ratio (median) |"
    rule = "| --- | ---: | ---: | ---: | ---: |"
    if cpu:
        head += " CPU-time ratio (best) |"
        rule += " ---: |"
    lines = [head, rule]
    for way, t in times.items():
        row = (f"| {way} | {min(t):.3f} | {statistics.median(t):.3f} | {min(t) / best0:.3f} | "
               f"{statistics.median(t) / median0:.3f} |")
        if cpu:
            row += f" {min(cpu[way]) / min(cpu[base]):.3f} |"
        lines.append(row)
    return "\n".join(lines)
