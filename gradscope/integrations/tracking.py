"""What every tracking sink (MLflow, W&B) shares: each kernel layer's epoch means, sampled; the
epoch's histograms; the run's params; its findings and report as files.

Per-step records are many (every variable, every step); tracking tools want a few points a
metric. :class:`EpochMeans` keeps, for the epoch under way, each kernel layer's sum and count of
each metric's finite values, and at the epoch's end gives their means when the epoch is one to
log: at most ``max_points`` a metric, every k-th epoch when the fit plans more epochs than that
(k = planned / ``max_points``, rounded up), the first ``max_points`` epochs when no plan is known.

Example:
    >>> import numpy as np
    >>> from gradscope import records as rec
    >>> means = EpochMeans(("grad_norm",), max_points=2)
    >>> means.plan(4)
    '2'
    >>> for epoch in range(4):
    ...     means.add(rec.from_step_arrays("r", np.array([2 * epoch, 2 * epoch + 1]), epoch, [("h", 0, "kernel")],
    ...                                    {"grad_norm": np.array([[1.0 + epoch], [3.0 + epoch]])}))
    ...     print(means.end_epoch())
    (1, {'gradscope/grad_norm/h': 2.0})
    None
    (5, {'gradscope/grad_norm/h': 4.0})
    None
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

DEFAULT_METRICS = ("grad_norm", "update_ratio")


class EpochMeans:
    """Each kernel layer's epoch means of ``metrics``, sampled to at most ``max_points`` epochs."""

    def __init__(self, metrics=DEFAULT_METRICS, max_points: int = 1000):
        if int(max_points) < 1:
            raise ValueError(f"max_points={max_points}: log at least one point a metric")
        self.metrics = tuple(metrics)
        self.max_points = int(max_points)
        self.every = 1  # epochs between logged points
        self.points = 0  # points given per metric (every metric and layer gets the same epochs)
        self.epochs = 0  # epochs ended
        self._sums: dict = {}  # (metric, layer) -> [sum, count] over the epoch under way
        self._step = 0

    def plan(self, planned_epochs: int) -> str:
        """A fit plans ``planned_epochs`` (0: unknown); returns which epochs are logged, in words."""
        planned = int(planned_epochs or 0)
        self.every = max(1, math.ceil(planned / self.max_points)) if planned else 1
        return str(self.every) if planned else f"1 (the first {self.max_points} epochs)"

    def add(self, records) -> None:
        """A batch of records (the one record schema)."""
        sel = records[records["metric"].isin(self.metrics) & (records["variable"] == "kernel")]
        if not len(sel):
            return
        self._step = max(self._step, int(records["step"].max()))
        for (metric, layer), values in sel.groupby(["metric", "layer"], sort=False, observed=True)["value"]:
            finite = values[values.map(math.isfinite)]
            total = self._sums.setdefault((str(metric), str(layer)), [0.0, 0])
            total[0] += float(finite.sum())
            total[1] += len(finite)

    def end_epoch(self):
        """An epoch ended: ``(its last step, {"gradscope/<metric>/<layer>": mean})`` when it is one to
        log, else None."""
        sums, self._sums = self._sums, {}
        epoch, self.epochs = self.epochs, self.epochs + 1
        if not sums or epoch % self.every or self.points >= self.max_points:
            return None
        self.points += 1
        return self._step, {f"gradscope/{metric}/{layer}": total / count
                            for (metric, layer), (total, count) in sums.items() if count}


class EpochHistograms:
    """The histograms (:mod:`gradscope.histograms`) recorded in the epoch under way, the latest of each.

    Histograms are recorded before the first step and at each epoch end, so an epoch's latest is
    the one at its end. :meth:`take` gives each as ``(counts, edges)`` over its finite bins, on
    gradscope's drawing axis (``log10 |x|`` for gradients and weights; ``x`` within [-1, 1] and
    ``sign(x) (1 + log10 |x|)`` beyond for activations), keyed ``gradscope/<metric>/<layer>``.

    Example:
        >>> import numpy as np
        >>> from gradscope.histograms import histogram_records
        >>> shown = EpochHistograms()
        >>> shown.add(histogram_records("r", 9, 0, [("h", 0, "kernel", "grad_hist", np.array([1e-3, 2e-3, 0.5]))]))
        >>> counts, edges = shown.take()["gradscope/grad_hist/h"]
        >>> int(counts.sum()), len(edges) == len(counts) + 1, float(edges[counts.argmax()])
        (3, True, -3.0)
        >>> shown.take()
        {}
    """

    def __init__(self, metrics=None):
        from gradscope.vocabulary import HISTOGRAM_METRICS

        self.metrics = tuple(HISTOGRAM_METRICS if metrics is None else metrics)
        self._batches: list = []

    def add(self, records) -> None:
        """A batch of records (the one record schema): its histogram records are kept until :meth:`take`."""
        sel = records[records["metric"].isin(self.metrics)]
        if len(sel):
            self._batches.append(sel)

    def take(self) -> dict:
        """``{"gradscope/<metric>/<layer>": (counts, edges)}`` of the latest histogram of each, and forget them."""
        import pandas as pd

        from gradscope.histograms import densities

        batches, self._batches = self._batches, []
        if not batches:
            return {}
        records = pd.concat(batches, ignore_index=True)
        out = {}
        for metric in self.metrics:
            bins = densities(records, metric)
            if not len(bins):
                continue
            bins = bins[bins["step"] == bins.groupby(["layer", "variable"], observed=True)["step"].transform("max")]
            for (layer, variable), rows in bins.groupby(["layer", "variable"], sort=False, observed=True):
                name = "/".join(str(p) for p in ("gradscope", metric, layer) if p)
                if variable and variable != "kernel":
                    name += f"/{variable}"
                edges = np.round(np.append(rows["left"].to_numpy(dtype=np.float64), rows["right"].to_numpy()[-1]), 6)
                out[name] = (rows["count"].to_numpy(dtype=np.float64), edges)
        return out


def run_params(info: dict) -> dict:
    """What a sink's ``start(info)`` says of the model and optimizer, as flat params (known values only).

    Example:
        >>> run_params({"run": "mine", "model": {"class": "Sequential", "params": 865},
        ...             "optimizer": {"class": "SGD", "learning_rate": 0.01}})
        {'gradscope.run': 'mine', 'gradscope.model': 'Sequential', 'gradscope.params': 865, 'gradscope.optimizer': 'SGD', 'gradscope.learning_rate': 0.01}
    """
    model, optimizer = info.get("model") or {}, info.get("optimizer") or {}
    params = {"gradscope.run": info.get("run"), "gradscope.model": model.get("class"),
              "gradscope.params": model.get("params"), "gradscope.optimizer": optimizer.get("class"),
              "gradscope.learning_rate": optimizer.get("learning_rate")}
    return {k: v for k, v in params.items() if v is not None and not isinstance(v, dict)}


def run_files(folder, findings, run_dir, title: str, report: bool = True) -> list[Path]:
    """Write ``findings.json`` (the findings, as ``run.json`` holds them) and, when ``report`` and the
    run has a run directory, ``report.html`` (what ``gradscope report`` writes) into ``folder``;
    returns the files written."""
    folder = Path(folder)
    found = folder / "findings.json"
    found.write_text(json.dumps(findings or [], indent=2, default=str), encoding="utf-8")
    files = [found]
    if report and run_dir is not None and (Path(run_dir) / "run.json").exists():
        from gradscope.report import write_report
        from gradscope.storage import load_run

        files.append(write_report([load_run(run_dir)], folder / "report.html", title=title))
    return files
