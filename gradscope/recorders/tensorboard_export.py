"""gradscope's records in TensorBoard: per-variable scalars as records arrive, the findings as text.

A sink (:mod:`gradscope.recorders.sinks`) that ``GradientMonitor(tensorboard_dir=...)`` adds:

* every step: ``gradscope/grad_norm/<layer>/<variable>`` and ``gradscope/update_ratio/<layer>/<variable>``
  (the learning speed);
* every epoch end: each layer's activation statistics on the probe batch,
  ``gradscope/<act_mean|act_std|saturated_frac|dead_frac>/<layer>``;
* before the first step and every epoch end: the histograms (:mod:`gradscope.histograms`) of every
  kernel's gradient on the probe batch and of its weights, ``gradscope/<grad_hist|weight_hist>/<layer>/<variable>``
  (on a log10 |x| axis), and of each layer's outputs, ``gradscope/act_hist/<layer>`` (linear within
  [-1, 1], ``sign(x) (1 + log10 |x|)`` beyond): gradscope's fixed bins, written as they are, so that
  TensorBoard's histogram and distribution views compare epochs and runs bin for bin;
* when the run ends: the findings as one text summary, ``gradscope/findings`` (markdown: kind,
  severity, layers, summary and fix, one paragraph each).

Read back with TensorBoard's own reader (``EventAccumulator``): scalars are tensors of the
``scalars`` plugin, histograms ``(k, 3)`` tensors (left edge, right edge, count) of the
``histograms`` plugin, the findings a string tensor of the ``text`` plugin.
"""

from __future__ import annotations

import pandas as pd

from gradscope.vocabulary import HISTOGRAM_METRICS

#: Metrics written as scalars: per step (per variable) and per epoch end (per layer).
STEP_SCALARS = ("grad_norm", "update_ratio")
EPOCH_SCALARS = ("act_mean", "act_std", "saturated_frac", "dead_frac")


def findings_markdown(findings) -> str:
    """Findings (dicts) as markdown for TensorBoard's text plugin.

    Example:
        >>> print(findings_markdown([{"kind": "stalled", "severity": "medium", "layers": [], "summary": "no progress",
        ...                           "recommendation": "Raise the learning rate."}]))
        **stalled** (medium): no progress
        <BLANKLINE>
        *fix*: Raise the learning rate.
    """
    if not findings:
        return "no problem found"
    blocks = []
    for f in findings:
        where = f["severity"] + (f"; {', '.join(map(str, f['layers']))}" if f.get("layers") else "")
        block = f"**{f['kind']}** ({where}): {f['summary']}"
        if f.get("recommendation"):
            block += f"\n\n*fix*: {f['recommendation']}"
        blocks.append(block)
    return "\n\n---\n\n".join(blocks)


class TensorBoardExport:
    """Writes records to a TensorBoard log directory as they arrive (a sink: ``append``, ``flush``, ``close``).

    Args:
        log_dir: the TensorBoard log directory.

    Raises:
        ImportError: when the tensorboard package is not installed, saying how to install it.
    """

    def __init__(self, log_dir):
        try:
            import tensorboard  # noqa: F401
        except ImportError:
            raise ImportError(
                "GradientMonitor(tensorboard_dir=...) needs the tensorboard package: "
                "pip install 'gradscope[tensorboard]'"
            ) from None
        self.log_dir = log_dir
        self._writer = None

    def _summaries(self):
        import tensorflow as tf

        if self._writer is None:
            self._writer = tf.summary.create_file_writer(str(self.log_dir))
        return tf, self._writer

    def append(self, records: pd.DataFrame) -> None:
        per_step = records[records["metric"].isin(STEP_SCALARS)]
        per_epoch = records[records["metric"].isin(EPOCH_SCALARS) & (records["layer"] != "")]
        histograms = records[records["metric"].isin(HISTOGRAM_METRICS)]
        if len(histograms):
            self._histograms(histograms)
        if not len(per_step) and not len(per_epoch):
            return
        tf, writer = self._summaries()
        with writer.as_default():
            for (metric, layer, variable), rows in per_step.groupby(["metric", "layer", "variable"], sort=False,
                                                                    observed=True):
                name = f"gradscope/{metric}/{layer}/{variable}"
                for step, value in zip(rows["step"], rows["value"]):
                    tf.summary.scalar(name, float(value), step=int(step))
            for (metric, layer), rows in per_epoch.groupby(["metric", "layer"], sort=False, observed=True):
                for step, value in zip(rows["step"], rows["value"]):
                    tf.summary.scalar(f"gradscope/{metric}/{layer}", float(value), step=int(step))

    def _histograms(self, records: pd.DataFrame) -> None:
        """Each histogram as the histogram plugin's ``(k, 3)`` tensor of its finite bins (the step before
        the first, -1, is written at 0)."""
        from tensorboard.plugins.histogram import metadata

        from gradscope.histograms import densities

        tf, writer = self._summaries()
        with writer.as_default():
            for metric in HISTOGRAM_METRICS:
                bins = densities(records, metric)
                for (layer, variable, step), rows in bins.groupby(["layer", "variable", "step"], sort=False,
                                                                  observed=True):
                    name = "/".join(p for p in ("gradscope", metric, layer, variable) if p)
                    tf.summary.write(name, tf.constant(rows[["left", "right", "count"]].to_numpy(dtype="float64")),
                                     step=max(int(step), 0), metadata=metadata.create_summary_metadata(name, ""))

    def flush(self) -> None:
        if self._writer is not None:
            self._writer.flush()

    def close(self, status: str, findings, run_dir=None) -> None:
        """The run ended: its findings as one text summary (at the last step written)."""
        tf, writer = self._summaries()
        with writer.as_default():
            tf.summary.text("gradscope/findings", f"run {status}\n\n" + findings_markdown(findings), step=0)
        writer.flush()
