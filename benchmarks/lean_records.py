"""Do the findings change when the monitor records lean? Measured on the labelled suite's runs.

The suite's runs were recorded with every metric at every step. Since the default monitor
measures only the gradient (and the update) in the step and reads weight norms exactly at
epoch ends, this script rebuilds what the lean default would have recorded from each stored
run: ``weight_norm`` kept at each epoch's last step (and at every step for variables of at
most :data:`gradscope.recorders.step_rows.SMALL_VARIABLE` values, which the default still
measures in the step), ``update_ratio`` recomputed against the weight norm interpolated
between epoch ends, as the monitor does. It then diagnoses both versions with the current
rules and counts the runs whose verdict (the finding kinds the suite scores) differs.

    python benchmarks/lean_records.py            # every stored run of benchmarks/results/suite
    python benchmarks/lean_records.py --limit 20
    python benchmarks/lean_records.py --no-small   # interpolate every variable's weight norm

No training: the models are only built (for their variables' sizes).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np
import pandas as pd

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from diagnosis_suite import DEFAULT_OUT, END_STATE_KINDS, KINDS, load_results  # noqa: E402


def variable_sizes(cfg) -> list[int]:
    """Sizes of the config's trainable variables, in record order."""
    from suite import families as F

    model = F.build(cfg)
    return [int(np.prod(v.shape)) for v in model.trainable_variables]


def lean(records: pd.DataFrame, sizes: list[int], small_limit: int | None = None) -> pd.DataFrame:
    """What the default monitor would have recorded, from records of every metric at every step."""
    from gradscope.recorders.step_rows import SMALL_VARIABLE
    from gradscope.recorders.weight_readings import WeightReadings

    weights = records[records.metric == "weight_norm"]
    table = weights.pivot_table(index="step", columns=["depth", "layer", "variable"], values="value", sort=False, dropna=False)
    order = list(dict.fromkeys(zip(weights.depth, weights.layer, weights.variable)))
    table = table[order]
    if len(order) != len(sizes):
        raise ValueError(f"{len(order)} recorded variables, {len(sizes)} in the model")
    small = np.array([s <= (SMALL_VARIABLE if small_limit is None else small_limit) for s in sizes])
    steps = table.index.to_numpy()
    ends = weights.groupby("epoch").step.max().sort_values().to_numpy()
    initial = records[records.metric == "weight_norm_initial"]
    first = initial.set_index(["depth", "layer", "variable"]).value.reindex(order).to_numpy()
    readings = WeightReadings(int(steps[0]) - 1, first)
    interpolated = np.empty(table.shape)
    previous = int(steps[0]) - 1
    for end in ends:
        rows = (steps > previous) & (steps <= end)
        interpolated[rows] = readings.between(steps[rows], int(end), table.loc[end].to_numpy())
        previous = end
    interpolated[:, small] = table.to_numpy()[:, small]
    interp = pd.DataFrame(interpolated, index=table.index, columns=table.columns)
    keep_weight = weights.step.isin(ends) | weights.set_index(["depth", "layer", "variable"]).index.isin(
        [k for k, s in zip(order, small) if s])
    out = records[(records.metric != "weight_norm") & (records.metric != "update_ratio")]
    updates = records[records.metric == "update_norm"].copy()
    w = interp.stack(["depth", "layer", "variable"], future_stack=True).rename("w").reset_index()
    updates = updates.merge(w, on=["step", "depth", "layer", "variable"], how="left")
    with np.errstate(divide="ignore", invalid="ignore"):
        updates["value"] = updates.value / updates.w
    updates["metric"] = "update_ratio"
    return pd.concat([out, weights[keep_weight.to_numpy()], updates[records.columns]], ignore_index=True)


def verdict(run, settings=None) -> set:
    from gradscope.diagnosis import findings_of

    return {f["kind"] for f in findings_of(run, settings) if f["kind"] in KINDS
            and not (f["kind"] in END_STATE_KINDS and f["evidence"].get("resolved_at_step") is not None)}


def main(argv=None) -> int:
    from gradscope.storage import Run, load_run

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", type=Path, default=DEFAULT_OUT / "results.jsonl")
    parser.add_argument("--limit", type=int, default=0)
    parser.add_argument("--no-small", action="store_true",
                        help="interpolate the weight norms of small variables too (a harder test)")
    args = parser.parse_args(argv)
    results = load_results(args.results)[: args.limit or None]
    same = changed = 0
    lines = []
    for result in results:
        run = load_run(result["run_dir"])
        full = verdict(run)
        thin = lean(run.records, variable_sizes(result["config"]), 0 if args.no_small else None)
        kept = len(thin) / max(len(run.records), 1)
        lean_verdict = verdict(Run(None, run.meta, records=thin, label=run.label))
        if lean_verdict == full:
            same += 1
        else:
            changed += 1
            lines.append(f"  {run.name}: full {sorted(full)} lean {sorted(lean_verdict)}")
        print(f"{run.name}: {'same' if lean_verdict == full else 'CHANGED'} ({kept:.0%} of the records)", flush=True)
    print(f"\n{same} of {same + changed} runs: the same finding kinds from lean records; {changed} changed")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
