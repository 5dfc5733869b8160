"""gradscope's records in Weights & Biases: per-layer norms and learning speed, the findings and the report.

``GradientMonitor(sinks=[WandbSink()])`` logs into the current W&B run (``wandb.run``), or one it
starts (named after the gradscope run) and finishes when the run ends:

* **history**, at each epoch end: each kernel layer's epoch mean of ``grad_norm`` and
  ``update_ratio`` as ``gradscope/<metric>/<layer>``, against their own step axis
  ``gradscope/step`` (the optimizer step), so that they never fight the steps other loggers use;
  sampled like MLflow's (:mod:`gradscope.integrations.tracking`: at most ``max_points`` points);
* **histograms**, on the same epochs: each layer's gradient, weight and activation histogram at the
  epoch's end, ``gradscope/<grad_hist|weight_hist|act_hist>/<layer>``, as ``wandb.Histogram`` over
  gradscope's fixed bins (:class:`gradscope.integrations.tracking.EpochHistograms`: on a ``log10 |x|``
  axis for gradients and weights), so W&B's histogram panels compare epochs bin for bin;
* **config** at the first fit: the model and optimizer (``gradscope.*``);
* **an artifact** ``gradscope-<run>`` (type ``gradscope``) when the run ends: ``findings.json`` and,
  for a run with a run directory, ``report.html``; and ``gradscope/status`` in the run's summary.

Works offline (``WANDB_MODE=offline``): the test reads the offline run back with W&B's own
record reader. Needs ``pip install 'gradscope[wandb]'``.
"""

from __future__ import annotations

import tempfile

from gradscope.integrations.tracking import DEFAULT_METRICS, EpochHistograms, EpochMeans, run_files, run_params


class WandbSink:
    """A sink (:mod:`gradscope.recorders.sinks`) that logs to W&B.

    Args:
        project: the W&B project of a run this sink starts (default ``gradscope``).
        metrics: the per-layer step metrics to log (epoch means of each kernel layer's values).
        max_points: at most this many points a metric.
        report: add the HTML report to the artifact when the run ends (runs with a run directory).
        histograms: log the epoch-end histograms (a monitor recording them: ``histograms=True``, its default).
        init: more keyword arguments for ``wandb.init`` when this sink starts the run.
    """

    def __init__(self, project: str = "gradscope", metrics=DEFAULT_METRICS, max_points: int = 1000,
                 report: bool = True, histograms: bool = True, **init):
        self.project = project
        self.means = EpochMeans(metrics, max_points)
        self.histograms = EpochHistograms() if histograms else None
        self.report = report
        self.init = init
        self.run = None
        self._started_here = False
        self._name = None

    def _wandb(self):
        import wandb

        if self.run is None:
            self.run = wandb.run
            if self.run is None:
                self.run = wandb.init(project=self.project, name=self._name, **self.init)
                self._started_here = True
            self.run.define_metric("gradscope/step")
            self.run.define_metric("gradscope/*", step_metric="gradscope/step")
        return wandb

    def start(self, info: dict) -> None:
        self._name = info.get("run")
        self._wandb()
        self.run.config.update({**run_params(info), "gradscope.sampled_every_epochs": self.means.plan(info.get("epochs"))},
                               allow_val_change=True)

    def append(self, records) -> None:
        self.means.add(records)
        if self.histograms is not None:
            self.histograms.add(records)

    def flush(self) -> None:
        logged = self.means.end_epoch()
        shown = self.histograms.take() if self.histograms is not None else {}
        if logged is None:
            return
        step, values = logged
        wandb = self._wandb()
        values.update({name: wandb.Histogram(np_histogram=(counts.tolist(), edges.tolist()))
                       for name, (counts, edges) in shown.items()})
        self.run.log({"gradscope/step": step, **values})

    def close(self, status: str, findings: list, run_dir) -> None:
        wandb = self._wandb()
        self.run.summary["gradscope/status"] = status
        artifact = wandb.Artifact(f"gradscope-{self._name or 'run'}", type="gradscope")
        with tempfile.TemporaryDirectory() as tmp:
            for file in run_files(tmp, findings, run_dir, f"gradscope {self._name}", self.report):
                artifact.add_file(str(file))
            self.run.log_artifact(artifact)
            if self._started_here:
                self.run.finish(exit_code=0 if status == "complete" else 1)
                self.run, self._started_here = None, False
