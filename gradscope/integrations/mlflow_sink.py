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

import tempfile
import time

from gradscope.integrations.tracking import DEFAULT_METRICS, EpochMeans, run_files, run_params


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
        self.run_id = run_id
        self.means = EpochMeans(metrics, max_points)
        self.report = report
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
        _, client = self._mlflow()
        client.set_tag(self.run_id, "gradscope.sampled_every_epochs", self.means.plan(info.get("epochs")))
        if not self._params_logged:
            for key, value in run_params(info).items():
                client.log_param(self.run_id, key, value)
            self._params_logged = True

    def append(self, records) -> None:
        self.means.add(records)

    def flush(self) -> None:
        """An epoch ended: its means, when this epoch is one that is logged."""
        logged = self.means.end_epoch()
        if logged is None:
            return
        from mlflow.entities import Metric

        step, values = logged
        _, client = self._mlflow()
        at = int(1000 * time.time())
        client.log_batch(self.run_id, metrics=[Metric(key, value, at, step) for key, value in values.items()])

    def close(self, status: str, findings: list, run_dir) -> None:
        """The run ended: the findings and the report as artifacts, its status as a tag."""
        mlflow, client = self._mlflow()
        client.set_tag(self.run_id, "gradscope.status", status)
        with tempfile.TemporaryDirectory() as tmp:
            for file in run_files(tmp, findings, run_dir, f"gradscope {self._name}", self.report):
                client.log_artifact(self.run_id, str(file), "gradscope")
        if self._started_here:
            client.set_terminated(self.run_id, "FINISHED" if status == "complete" else "KILLED")
            if mlflow.active_run() is not None and mlflow.active_run().info.run_id == self.run_id:
                mlflow.end_run("FINISHED" if status == "complete" else "KILLED")
            self._started_here = False
