"""One view per run, computed once: what every figure, table and sentence of a report draws from.

The report's stages are compute (this module: tables and numbers from a run's records, and
its findings) -> structure (:mod:`gradscope.report.render` and :mod:`gradscope.report.text`
lay them out) -> draw (:mod:`gradscope.report.figures`, which only draws). A view reads the
records it needs once, a part at a time (:mod:`gradscope.report.step_tables`: per-layer step
metrics reduced to what is drawn; the few epoch and probe records whole), and hands the same
table to every figure that asks. It never holds a run's records: a report of 64M records costs
what one of 64k does.

The headline numbers are first-to-last layer ratios of the kernel ``grad_norm`` and of
``grad_over_weight`` (how fast a layer learns relative to its weights), at the first recorded
step and averaged over the last recorded epoch.
"""

from __future__ import annotations

import math
from functools import cached_property

import numpy as np
import pandas as pd

from gradscope.diagnosis import findings_of, verdict
from gradscope.diagnosis.time_reach import reach_table, time_profiles
from gradscope.report.step_tables import StepTable, step_tables
from gradscope.storage.records_parquet import frame_without
from gradscope.vocabulary import STEP_METRICS as PER_STEP, TIME_METRIC, WINDOW_METRICS, fmt

#: The per-layer step metrics a report draws (read together, in one pass over the records).
STEP_METRICS = ("grad_norm", "grad_over_weight", "weight_norm", "update_ratio")
_COLUMNS = ["step", "epoch", "layer", "depth", "variable", "metric", "value", "time", "bin"]
_PER_STEP = PER_STEP + WINDOW_METRICS  # the records a report reduces as it reads them


def _ratio_first_last(row: pd.Series) -> float:
    values = row.to_numpy(dtype=float)
    if len(values) < 2:
        return math.nan
    first, last = values[0], values[-1]
    with np.errstate(divide="ignore", invalid="ignore"):
        return float(np.float64(first) / np.float64(last))


def ratio_words(row: pd.Series) -> str:
    """A first-to-last ratio as the summary shows it: ``0/0`` when neither layer gets any gradient.

    Example:
        >>> [ratio_words(pd.Series(v)) for v in ([0.02, 2.0], [0.0, 0.0], [0.0, 1.0], [1.0])]
        ['0.01', '0/0', '0', '-']
    """
    values = row.to_numpy(dtype=float)
    if len(values) < 2:
        return "-"
    if values[0] == 0 and values[-1] == 0:
        return "0/0"
    return fmt(_ratio_first_last(row))


class RunView:
    """A saved run as the report sees it (tables are computed on first use, then kept).

    Args:
        run: a :class:`gradscope.storage.Run`.

    Example:
        >>> import numpy as np
        >>> from gradscope import records as rec
        >>> from gradscope.storage import Run
        >>> g = np.array([[1.0, 4.0], [2.0, 4.0], [3.0, 6.0]])
        >>> w = np.array([[10.0, 2.0], [10.0, 2.0], [10.0, 3.0]])
        >>> records = rec.concat([rec.from_step_arrays(
        ...     "r", np.array([s]), s // 2, [("a", 0, "kernel"), ("b", 1, "kernel")],
        ...     {"grad_norm": g[s:s + 1], "weight_norm": w[s:s + 1]}) for s in range(3)])
        >>> view = RunView(Run(path=None, meta={"run": "r", "config": {}}, records=records))
        >>> [round(view.ratios[k], 3) for k in ("grad_start", "grad_end", "rel_start", "rel_end")]
        [0.25, 0.5, 0.05, 0.15]
    """

    def __init__(self, run):
        self.run = run

    @property
    def name(self) -> str:
        return self.run.name

    @property
    def status(self) -> str:
        return self.run.status

    @property
    def role(self) -> str | None:
        """What the run is for in its report (``"reference"``: the textbook fix trained beside it), or None."""
        return self.config.get("role")

    @property
    def label(self) -> str:
        """The run's name, with its role when it has one: ``relu-he (reference)``."""
        return f"{self.name} ({self.role})" if self.role else self.name

    @property
    def config(self) -> dict:
        return self.run.config

    @property
    def metrics(self) -> dict:
        return self.run.metrics

    @cached_property
    def _read(self) -> tuple[dict, pd.DataFrame]:
        """One pass over the run's records: the step tables, and the records that are not per step
        or per window (epoch logs, activation statistics, gradients through time, weight norms),
        which are few and kept."""
        sparse = []

        def parts():
            for part in self.run.record_parts(columns=_COLUMNS):
                sparse.append(frame_without(part, _PER_STEP))
                yield part

        tables = step_tables(parts(), STEP_METRICS)
        kept = [f for f in sparse if len(f)]
        return tables, (pd.concat(kept, ignore_index=True) if kept else pd.DataFrame(columns=_COLUMNS))

    def _records_of(self, metric: str) -> pd.DataFrame:
        """The run's records of ``metric``, one of those :attr:`_read` keeps (not a per-step one)."""
        records = self._read[1]
        return records[records["metric"] == metric]

    def table(self, metric: str) -> StepTable:
        """A metric of every layer's kernel over the recorded steps, input layer first
        (one of :data:`STEP_METRICS`)."""
        return self._read[0][metric]

    @cached_property
    def findings(self) -> list[dict]:
        """The run's findings (see :func:`gradscope.diagnosis.findings_of`)."""
        return findings_of(self.run)

    @property
    def verdict(self) -> str:
        return verdict(self.findings)

    @cached_property
    def trials(self):
        """The :class:`gradscope.trials.TrialResult` of the trials run on this run's model (``run.json``'s
        ``trials``), or None when none ran."""
        from gradscope.trials.result import TrialResult

        summary = self.run.meta.get("trials")
        return TrialResult(summary, self.findings) if summary else None

    @cached_property
    def ratios(self) -> dict:
        """First-to-last layer ratios of kernel ``grad_norm`` and ``grad_over_weight``.

        A dict with ``grad_start``, ``grad_end``, ``rel_start``, ``rel_end`` (NaN when the run
        has fewer than two layers or no steps), ``words`` (each of them as the summary writes
        it, see :func:`ratio_words`), ``layers``, and ``grad_norm_start`` /
        ``rel_start_layers`` listing the per-layer values at the first step, input layer first.
        """
        grad, rel = self.table("grad_norm"), self.table("grad_over_weight")
        out = {k: math.nan for k in ("grad_start", "grad_end", "rel_start", "rel_end")}
        out.update(grad_norm_start=[], rel_start_layers=[], layers=list(grad.layers),
                   words={k: "-" for k in ("grad_start", "grad_end", "rel_start", "rel_end")})
        if grad.empty:
            return out
        rows = {"grad_start": grad.first, "rel_start": rel.first.reindex(grad.layers),
                "grad_end": grad.last_epoch_mean, "rel_end": rel.last_epoch_mean.reindex(grad.layers)}
        for key, row in rows.items():
            out[key] = _ratio_first_last(row)
            out["words"][key] = ratio_words(row)
        for when in ("start", "end"):  # no gradient at either end: grad/weight is 0/0 too
            if out["words"][f"grad_{when}"] == "0/0" and math.isnan(out[f"rel_{when}"]):
                out["words"][f"rel_{when}"] = "0/0"
        out["grad_norm_start"] = [float(v) for v in rows["grad_start"]]
        out["rel_start_layers"] = [float(v) for v in rows["rel_start"]]
        return out

    def activation_table(self, metric: str) -> pd.DataFrame | None:
        """A layer x epoch table of an activation metric (``saturated_frac``, ``dead_frac``), or None."""
        sel = self._records_of(metric)
        if not len(sel):
            return None
        table = sel.pivot_table(index=["depth", "layer"], columns="epoch", values="value", aggfunc="mean")
        table.index = [layer for _, layer in table.index]
        return table

    def histograms(self, metric: str) -> pd.DataFrame:
        """The run's histograms of ``metric`` (``grad_hist``, ``weight_hist``, ``act_hist``), one row per
        (histogram, bin) with its density on the drawing axis (:func:`gradscope.histograms.densities`)."""
        from gradscope.histograms import densities

        if metric not in self._densities:
            self._densities[metric] = densities(self._records_of(metric), metric)
        return self._densities[metric]

    @cached_property
    def _densities(self) -> dict:
        return {}

    def epoch_series(self, metric: str) -> pd.Series:
        """An epoch metric (``loss``, ``val_accuracy``, ...) by epoch."""
        df = self._records_of(metric)
        return df[df["layer"] == ""].groupby("epoch")["value"].last()

    @cached_property
    def _time_profiles(self) -> pd.DataFrame:
        return time_profiles(self._records_of(TIME_METRIC))

    def time_tables(self) -> dict:
        """Per recurrent layer, ``||dL/dh_t||`` as an (epoch probe x time step) table."""
        profiles = self._time_profiles
        if profiles.empty:
            return {}
        return {layer: profiles.xs(layer, level="layer") for layer in profiles.index.unique(level="layer")}

    @cached_property
    def reach(self) -> pd.DataFrame:
        """Per recurrent layer and probe: the gradient's reach through time (:func:`gradscope.diagnosis.time_reach.reach_table`)."""
        return reach_table(pd.DataFrame(), profiles=self._time_profiles)

    @property
    def baseline_accuracy(self) -> float | None:
        """The linear baseline's test accuracy on the run's data and split (``config.linear_baseline``), or None."""
        baseline = self.config.get("linear_baseline")
        if not isinstance(baseline, dict) or baseline.get("test_accuracy") is None:
            return None
        return float(baseline["test_accuracy"])

    @property
    def reach_words(self) -> str:
        """``"rnn: 12 &rarr; 95 of 100 steps"`` per recurrent layer ('' without gradients through time)."""
        table = self.reach
        words = []
        for layer, rows in table.groupby("layer", sort=False):
            words.append(f"{layer}: {int(rows['reach'].iloc[0])} &rarr; {int(rows['reach'].iloc[-1])} "
                         f"of {int(rows['length'].iloc[-1])} steps")
        return "; ".join(words)

    @property
    def depth(self) -> int:
        """The number of hidden layers the config names (0 when it names none)."""
        return len(self.config.get("hidden") or [])


def views_of(runs) -> list[RunView]:
    """A view of each run, in order."""
    return [RunView(run) for run in runs]
