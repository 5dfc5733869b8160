"""gradscope's records in MLflow: per-layer norms and learning speed as metrics, the findings and
the report as artifacts.

``GradientMonitor(sinks=[MLflowSink()])`` logs into the active MLflow run (or starts one named
after the gradscope run, and ends it when the run ends):

* **metrics**, at each epoch end: each kernel layer's epoch mean of ``grad_norm`` and
  ``update_ratio`` (and whatever ``metrics=`` names), as ``gradscope/<metric>/<layer>`` at the
  epoch's last step. Sampled: at most ``max_points`` points a metric. When the fit plans more
  epochs than that, every k-th epoch is logged (k = planned epochs / ``max_points``, rounded up),
  and with no plan known the first ``max_points`` epochs are; the tag
  ``gradscope.sampled_every_epochs`` says which;
* **params** at the first fit: the model's class and parameters, the optimizer and its learning
  rate (``gradscope.*``);
* **artifacts** when the run ends: ``gradscope/findings.json`` (the findings, as ``run.json``
  holds them) and, for a run with a run directory, ``gradscope/report.html`` (the report
  ``gradscope report`` writes), and the tag ``gradscope.status``.

Needs ``pip install 'gradscope[mlflow]'``; MLflow is imported when the first fit starts.
"""

from __future__ import annotations

import json
import math
import tempfile
import time
from pathlib import Path

DEFAULT_METRICS = ("grad_norm", "update_ratio")


class MLflowSink:
    """A sink (:mod:`gradscope.recorders.sinks`) that logs to MLflow.

    Args:
        run_id: log into this MLflow run (default: the active run, or a new one).
        metrics: the per-layer step metrics to log (epoch means of each kernel layer's values).
        max_points: at most this many points a metric.
        report: log the HTML report as an artifact when the run ends (runs with a run directory).

    Example:
        >>> import mlflow  # doctest: +SKIP
        >>> from gradscope import GradientMonitor
        >>> from gradscope.integrations.mlflow_sink import MLflowSink
        >>> with mlflow.start_run():  # doctest: +SKIP
        ...     model.fit(x, y, epochs=5, callbacks=[GradientMonitor(run="mine", run_dir="reports/mine/runs/mine",
        ...                                                          sinks=[MLflowSink()])])
    """

    def __init__(self, run_id: str | None = None, metrics=DEFAULT_METRICS, max_points: int = 1000,
                 report: bool = True):
        if int(max_points) < 1:
            raise ValueError(f"max_points={max_points}: log at least one point a metric")
        self.run_id = run_id
        self.metrics = tuple(metrics)
        self.max_points = int(max_points)
        self.report = report
        self.every = 1  # epochs between logged points
        self.points = 0  # points logged per metric (every metric and layer gets the same epochs)
        self.epochs = 0  # epochs ended
        self._sums: dict = {}  # (metric, layer) -> [sum, count] over the epoch under way
        self._step = 0
        self._started_here = False
        self._params_logged = False
        self._name = None

    def _mlflow(self):
        import mlflow

        if self.run_id is None:
            active = mlflow.active_run()
            if active is None:
                active = mlflow.start_run(run_name=self._name)
                self._started_here = True
            self.run_id = active.info.run_id
        return mlflow, mlflow.MlflowClient()

    def start(self, info: dict) -> None:
        self._name = info.get("run")
        planned = int(info.get("epochs") or 0)
        self.every = max(1, math.ceil(planned / self.max_points)) if planned else 1
        _, client = self._mlflow()
        client.set_tag(self.run_id, "gradscope.sampled_every_epochs",
                       str(self.every) if planned else f"1 (the first {self.max_points} epochs)")
        if not self._params_logged:
            model, optimizer = info.get("model") or {}, info.get("optimizer") or {}
            params = {"gradscope.run": info.get("run"), "gradscope.model": model.get("class"),
                      "gradscope.params": model.get("params"), "gradscope.optimizer": optimizer.get("class"),
                      "gradscope.learning_rate": optimizer.get("learning_rate")}
            for key, value in params.items():
                if value is not None and not isinstance(value, dict):
                    client.log_param(self.run_id, key, value)
            self._params_logged = True

    def append(self, records) -> None:
        sel = records[records["metric"].isin(self.metrics) & (records["variable"] == "kernel")]
        if not len(sel):
            return
        self._step = max(self._step, int(records["step"].max()))
        for (metric, layer), values in sel.groupby(["metric", "layer"], sort=False, observed=True)["value"]:
            finite = values[values.map(math.isfinite)] if len(values) else values
            total = self._sums.setdefault((str(metric), str(layer)), [0.0, 0])
            total[0] += float(finite.sum())
            total[1] += len(finite)

    def flush(self) -> None:
        """An epoch ended: its means, when this epoch is one that is logged."""
        sums, self._sums = self._sums, {}
        epoch, self.epochs = self.epochs, self.epochs + 1
        if not sums or epoch % self.every or self.points >= self.max_points:
            return
        from mlflow.entities import Metric

        _, client = self._mlflow()
        at = int(1000 * time.time())
        client.log_batch(self.run_id, metrics=[Metric(f"gradscope/{metric}/{layer}", total / count, at, self._step)
                                               for (metric, layer), (total, count) in sums.items() if count])
        self.points += 1

    def close(self, status: str, findings: list, run_dir) -> None:
        """The run ended: the findings and the report as artifacts, its status as a tag."""
        mlflow, client = self._mlflow()
        client.set_tag(self.run_id, "gradscope.status", status)
        with tempfile.TemporaryDirectory() as tmp:
            found = Path(tmp) / "findings.json"
            found.write_text(json.dumps(findings or [], indent=2, default=str), encoding="utf-8")
            client.log_artifact(self.run_id, str(found), "gradscope")
            if self.report and run_dir is not None and (Path(run_dir) / "run.json").exists():
                from gradscope.report import write_report
                from gradscope.storage import load_run

                page = write_report([load_run(run_dir)], Path(tmp) / "report.html", title=f"gradscope {self._name}")
                client.log_artifact(self.run_id, str(page), "gradscope")
        if self._started_here:
            client.set_terminated(self.run_id, "FINISHED" if status == "complete" else "KILLED")
            if mlflow.active_run() is not None and mlflow.active_run().info.run_id == self.run_id:
                mlflow.end_run("FINISHED" if status == "complete" else "KILLED")
            self._started_here = False
