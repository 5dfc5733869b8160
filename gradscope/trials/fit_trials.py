"""Trials run by the monitor at the end of a fit that found something (``GradientMonitor(try_fixes=True)``).

At the start of the run's first fit the monitor hands over the model and what ``fit`` was given:
the model's starting weights are copied, and a bounded sample of the training rows is kept
(:func:`gradscope.trials.trial_data.take_rows`: at most ``max_rows`` rows spread over arrays, or
the first ``max_batches`` batches of a ``tf.data.Dataset``). When the run ends complete and its
diagnosis has a finding, :func:`gradscope.try_fixes` trains every arm from those starting weights,
each arm as long as the fit itself (at most ``max_steps``); the arms are run directories in a
folder beside the run's (``<run_dir>.trials``), and the run's ``run.json`` gets the trials'
summary, so every reader shows each finding with its trial.

Data that cannot be read twice (a generator, a ``PyDataset``) is not sampled: the monitor says so
in one warning and the run goes on. Nothing here ever fails the user's fit.
"""

from __future__ import annotations

import warnings
from pathlib import Path

from gradscope.trials.settings import DEFAULT_TRIAL_SETTINGS, TrialSettings


class FitTrials:
    """The trials of one monitored run: what they need is taken at the fit's start, they run at its end.

    Args:
        settings: how trials are run and judged (default :data:`DEFAULT_TRIAL_SETTINGS`).
        verbose: print the trials' progress and verdict.
    """

    def __init__(self, settings: TrialSettings | None = None, verbose: bool = True):
        self.settings = settings or DEFAULT_TRIAL_SETTINGS
        self.verbose = verbose
        self.result = None  # the TrialResult, once trials ran
        self.skipped: str | None = None  # why they cannot run (said once, in a warning)
        self._said = False
        self._start = None
        self._rows = None
        self._steps = 0

    def begin(self, model, fit: dict | None) -> None:
        """At the run's first fit: the starting weights and a sample of the training rows."""
        if self._start is not None or self.skipped:
            return
        from gradscope.trials.arms import weights_by_layer
        from gradscope.trials.model_parts import read_model
        from gradscope.trials.trial_data import take_rows

        try:
            self._start = weights_by_layer(read_model(model))
            x, y = (fit or {}).get("x"), (fit or {}).get("y")
            if x is None or not (hasattr(x, "__len__") or hasattr(x, "element_spec")):
                raise ValueError("the data given to fit cannot be read twice (a generator or PyDataset); "
                                 "call gradscope.try_fixes(model, x, y) yourself with arrays")
            self._rows = take_rows(x, y, (fit or {}).get("batch_size"), self.settings)
        except Exception as exc:  # the user's data: trials are skipped, the fit goes on
            self.skipped = f"trials skipped: {exc}"
            self._start = None

    def count(self, steps: int) -> None:
        self._steps = max(self._steps, int(steps))

    def end(self, model, run_dir, findings: list) -> None:
        """At the end of a complete run: try the fixes if its diagnosis found something."""
        if self.skipped:
            if not self._said:
                warnings.warn(f"gradscope: {self.skipped}", RuntimeWarning, stacklevel=3)
                self._said = True
            return
        if self._start is None or self.result is not None:
            return
        if not [f for f in findings if f.get("kind") != "incomplete_run"]:
            return  # nothing to fix (a later fit of the same run may still find something)
        from gradscope import try_fixes

        x, y, batch_size, _ = self._rows
        out = Path(f"{run_dir}.trials") if run_dir is not None else None
        try:
            self.result = try_fixes(model, x, y, batch_size=batch_size,
                                    max_steps=max(1, min(self._steps, self.settings.max_steps)), out=out,
                                    settings=self.settings, start_weights=self._start, verbose=self.verbose)
        except Exception as exc:
            self.skipped, self._said = f"trials failed: {exc}", True
            warnings.warn(f"gradscope: {self.skipped}; the run itself is complete", RuntimeWarning, stacklevel=3)
            return
        finally:
            self._rows = None  # hold no copy of the user's data longer than needed
        if run_dir is not None:
            from gradscope.trials.runner import attach

            attach(Path(run_dir), self.result.summary)
