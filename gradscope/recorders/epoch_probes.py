"""What the Keras monitor measures at each epoch end besides the steps: the probes of one run.

On a probe batch (given, read on the host from the arrays ``fit`` was given, or kept by
:class:`~gradscope.recorders.activation_probe.ProbeCapture` from the first batches the train step
sees) it measures the outputs of every layer with a non-linear activation
(:mod:`gradscope.recorders.activation_stats`) and, for recurrent layers of Keras 3 on TensorFlow,
the gradient per time step (:mod:`gradscope.recorders.time_gradients`), and the histograms of
kernels, their gradients and those outputs (:mod:`gradscope.recorders.histogram_probe`; also before
the run's first step). The batch is kept for the whole run, so every epoch is measured on the same rows.
"""

from __future__ import annotations

import warnings

from gradscope import records as rec
from gradscope.recorders.activation_probe import (ActivationProbe, ProbeCapture, cut_rows, probe_inputs, probe_targets,
                                                  rows_in, rows_of, watched_layers)
from gradscope.recorders.activation_stats import activation_records
from gradscope.recorders.histogram_probe import HistogramProbe
from gradscope.recorders.time_gradients import TimeGradientProbe, recurrent_layers, time_records


class EpochProbes:
    """The probes of one run.

    Args:
        probe: the monitor's ``probe`` argument: inputs, an ``(x, y)`` tuple, a ``tf.data.Dataset``,
            None (taken from what ``fit`` is given) or False (no probes).
        histograms: also measure the histograms (``weight_hist`` even without a probe batch).
    """

    def __init__(self, probe=None, histograms: bool = True):
        self.probe = probe
        self.histograms = histograms
        self._histograms: HistogramProbe | None = None
        self._x = None
        self._y = None  # targets of the probe batch, for gradients through time
        self._activations: ActivationProbe | None = None
        self._time: TimeGradientProbe | None = None
        self._capture: ProbeCapture | None = None
        self._built_for = None  # (model, its layer table, through_time) the probes were made for

    def setup(self, model, table, fit: dict | None, through_time: bool, can_capture: bool) -> None:
        """Prepare the probes of a ``fit`` of ``model`` (``table``: its layer table; ``fit``: what
        ``fit`` was given). ``through_time``: gradients through time can be measured on this stack;
        ``can_capture``: the train step can keep a probe batch (on TensorFlow, not XLA-compiled).
        A later ``fit`` of the same model keeps the probes made for the first, and their traces."""
        built_for = (id(model), frozenset(table.items()), through_time)  # the probes hold the model: its id stays
        fresh = built_for != self._built_for
        self._built_for = built_for
        gradients = through_time and self.probe is not False
        if fresh:
            self._activations = self._time = None
            self._histograms = HistogramProbe(model, table, gradients) if self.histograms else None
        if self.probe is False:
            return
        recurrent = recurrent_layers(model, table) if through_time else []
        if fresh:
            self._time = TimeGradientProbe(model, recurrent) if recurrent else None
        if (recurrent or gradients and self._histograms is not None) and self._y is None:  # gradients need targets
            self._y = probe_targets(self.probe) if self.probe is not None else \
                (rows_of(fit["y"]) if fit is not None and fit.get("y") is not None else None)
        layers = watched_layers(model, table)
        if not layers:
            return
        if fresh:
            self._activations = ActivationProbe(model, layers)
        if self._x is not None:
            return
        if self.probe is not None:
            self._x = probe_inputs(self.probe)
            return
        rows = rows_of(fit["x"]) if fit is not None else None
        if rows is not None:  # read on the host from the arrays fit was given: the train step is left alone
            self._x = rows
            return
        if not can_capture:
            warnings.warn(
                "GradientMonitor cannot keep a probe batch from this train step (XLA-compiled, or not on "
                "TensorFlow) when fit is not given arrays; pass probe=x_sample to get activation statistics.",
                stacklevel=4,
            )
            return
        self._capture = ProbeCapture(model)

    @property
    def error(self):
        """An error of ours raised (and set aside) while Keras traced the step that keeps the batch, or None."""
        return self._capture.error if self._capture is not None else None

    def batch_rows(self):
        """The batch size the train step was seen to use (when it keeps the probe batch), else None."""
        return self._capture.batch_rows() if self._capture is not None else None

    @property
    def captures(self) -> bool:
        """Whether the train step keeps the probe batch (then ``batch_rows`` knows the batch size)."""
        return self._capture is not None

    @property
    def inputs(self):
        """The probe inputs kept for the run (None until the first batch is known)."""
        return self._batch()

    def _batch(self):
        """The probe inputs (taken from the capture on first use: every later epoch uses the same rows), or None."""
        if self._x is None and self._capture is not None:
            self._x = self._capture.value()
        return self._x

    def records(self, run: str, step: int, epoch: int, statistics: bool = True):
        """The probes' records at the end of an epoch (``step``: its last step); ``statistics=False``:
        the histograms only (before the first step)."""
        frames = []
        outputs = self._activations(self._x) if self._activations is not None and self._batch() is not None else []
        if outputs and statistics:
            frames.append(activation_records(run, step, epoch, outputs))
        if self._histograms is not None:
            frames.append(self._histogram_records(run, step, epoch, outputs))
        if not statistics:
            return rec.concat(frames) if frames else rec.empty()
        if self._time is not None and self._y is not None and self._batch() is not None:
            frames.append(time_records(run, step, epoch, self._time(*self._pair())))
        return rec.concat(frames) if frames else rec.empty()

    def _pair(self):
        """The probe batch and its targets, cut to the rows both have (either None when not known)."""
        x, y = self._batch(), self._y
        if x is None or y is None:
            return x, y
        n = min(rows_in(x), rows_in(y))
        return cut_rows(x, n), cut_rows(y, n)

    def _histogram_records(self, run: str, step: int, epoch: int, outputs):
        from gradscope.histograms import histogram_records

        return histogram_records(run, step, epoch, self._histograms.items(*self._pair(), outputs))

    def release(self) -> None:
        """Give the train step back (the capture); the batch itself is kept for the run's next fit."""
        capture, self._capture = self._capture, None
        if capture is not None:
            capture.release()
