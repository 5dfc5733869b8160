"""Each variable's ``grad_norm`` as TensorBoard scalars, written as records arrive.

Tags are ``gradscope/grad_norm/<layer>/<variable>``, one scalar per recorded step.
"""

from __future__ import annotations

import pandas as pd


class TensorBoardExport:
    """An output of a :class:`~gradscope.recorders.record_log.RecordLog` that writes ``grad_norm`` scalars.

    Args:
        log_dir: the TensorBoard log directory.

    Raises:
        ImportError: when the tensorboard package is not installed, saying how to install it.
    """

    metric = "grad_norm"

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

    def append(self, records: pd.DataFrame) -> None:
        import tensorflow as tf

        sel = records[records["metric"] == self.metric]
        if not len(sel):
            return
        if self._writer is None:
            self._writer = tf.summary.create_file_writer(str(self.log_dir))
        with self._writer.as_default():
            for (layer, variable), rows in sel.groupby(["layer", "variable"], sort=False):
                name = f"gradscope/{self.metric}/{layer}/{variable}"
                for step, value in zip(rows["step"], rows["value"]):
                    tf.summary.scalar(name, float(value), step=int(step))

    def flush(self) -> None:
        if self._writer is not None:
            self._writer.flush()
