"""``TryFixes``: a callback that tries the fixes at the end of a monitored fit that found something.

It sits beside the run's :class:`~gradscope.GradientMonitor` and has one job: before the fit's
first step it copies the model's starting weights and keeps a bounded sample of what ``fit``
was given (:func:`gradscope.trials.trial_data.take_rows`: at most ``max_rows`` rows spread over
arrays, or the first ``max_batches`` batches of a ``tf.data.Dataset``); when the monitor has
ended the run complete and its diagnosis has a finding, :func:`gradscope.try_fixes` trains every
arm from those starting weights, each arm as long as the fit itself (at most ``max_steps``). The
arms are run directories in a folder beside the run's (``<run_dir>.trials``), and the run's
``run.json`` gets the trials' summary, so every reader shows each finding with its trial.

Data that cannot be read twice (a generator, a ``PyDataset``) is not sampled: the callback says so
in one warning and the fit goes on. Nothing here ever fails the user's fit.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import keras

from gradscope.trials.settings import DEFAULT_TRIAL_SETTINGS, TrialSettings


class TryFixes(keras.callbacks.Callback):
    """Try the fixes that apply at the end of a monitored fit whose diagnosis found something.

    List it after its monitor: ``callbacks=[monitor, TryFixes(monitor)]``. Trials train the
    model several times again, so they are opt-in; the user's trained model is not touched.

    Args:
        monitor: the run's :class:`~gradscope.GradientMonitor` (its findings, steps and run directory).
        settings: how trials are run and judged (default :data:`DEFAULT_TRIAL_SETTINGS`).
        verbose: print the trials' progress and verdict.

    Attributes:
        result: the :class:`gradscope.trials.TrialResult`, once trials ran (else None).
        skipped: why they could not run, when they could not (said once, in a warning).
    """

    def __init__(self, monitor, settings: TrialSettings | None = None, verbose: bool = True):
        super().__init__()
        self.monitor = monitor
        self.settings = settings or DEFAULT_TRIAL_SETTINGS
        self.verbose = verbose
        self.result = None
        self.skipped: str | None = None
        self._said = False
        self._start = None
        self._rows = None
        self._fit = None

    def on_train_begin(self, logs=None):
        """At the run's first fit: what ``fit`` was given (Keras hands callbacks no data: it is read
        from ``fit``'s own frame, as the monitor reads it)."""
        if self._start is None and not self.skipped and self.result is None:
            from gradscope.recorders.keras_compat import fit_arguments

            self._fit = fit_arguments(self.model)

    def on_train_batch_begin(self, batch, logs=None):
        """Before the run's first step (the model is built by then): the starting weights and a
        sample of the training rows."""
        if self._start is not None or self.skipped or self.result is not None:
            return
        from gradscope.trials.arms import weights_by_layer
        from gradscope.trials.model_parts import read_model
        from gradscope.trials.trial_data import take_rows

        fit, self._fit = self._fit or {}, None  # hold no reference to the user's data but the sample
        try:
            self._start = weights_by_layer(read_model(self.model))
            x, y = fit.get("x"), fit.get("y")
            if x is None or not (hasattr(x, "__len__") or hasattr(x, "element_spec")):
                raise ValueError("the data given to fit cannot be read twice (a generator or PyDataset); "
                                 "call gradscope.try_fixes(model, x, y) yourself with arrays")
            self._rows = take_rows(x, y, fit.get("batch_size"), self.settings)
        except Exception as exc:  # the user's data: trials are skipped, the fit goes on
            self.skipped = f"trials skipped: {exc}"
            self._start = None

    def on_train_end(self, logs=None):
        """At the end of a complete run: try the fixes if its diagnosis found something."""
        try:
            self._end()
        except Exception as exc:  # never the user's fit
            self._warn(f"trials failed: {exc}; the run itself is complete")

    def _warn(self, text: str) -> None:
        self.skipped = self.skipped or text
        if not self._said:
            warnings.warn(f"gradscope: {text}", RuntimeWarning, stacklevel=3)
            self._said = True

    def _end(self) -> None:
        if self.skipped:
            self._warn(self.skipped)
            return
        if self._start is None or self.result is not None:
            return
        monitor = self.monitor
        if not monitor.ended_complete:
            if monitor.recording:  # its on_train_end has not run yet
                self._warn("trials skipped: list TryFixes after its GradientMonitor in fit's callbacks")
            return
        findings = monitor.end_findings()
        if not [f for f in findings if f.get("kind") != "incomplete_run"]:
            return  # nothing to fix (a later fit of the same run may still find something)
        from gradscope.trials.runner import attach, try_fixes

        x, y, batch_size, _ = self._rows
        run_dir = monitor.owned_run_dir
        steps = max(1, min(monitor.steps_run, self.settings.max_steps))
        try:
            self.result = try_fixes(self.model, x, y, batch_size=batch_size, max_steps=steps,
                                    out=Path(f"{run_dir}.trials") if run_dir is not None else None,
                                    settings=self.settings, start_weights=self._start, verbose=self.verbose)
        finally:
            self._rows = None  # hold no copy of the user's data longer than needed
        if run_dir is not None:
            attach(Path(run_dir), self.result.summary)
