"""Where a plan of runs stands, and how long it has left: one line on stderr at each epoch end.

``analyze``, ``sweep`` and ``paper`` train runs one after another, for minutes (``paper seed``
for half an hour). In a terminal each epoch end prints where the plan is and an estimate of the
time left; the estimate takes every epoch left to cost what the epochs so far cost on average
(deeper runs of a sweep cost more, so it is low early in a sweep that grows deeper). It is
silent with ``-q``, and when stderr is not a terminal (a CI log, a pipe), as the convention is.

Example:
    >>> import io
    >>> clock = iter([0.0, 30.0]).__next__
    >>> progress = PlanProgress(runs=2, epochs=3, stream=io.StringIO(), enabled=False, clock=clock)
    >>> progress.start_run("sigmoid-normal")
    >>> progress.epoch_end({"loss": 2.25, "accuracy": 0.11})
    >>> progress.line()
    'run 1/2 sigmoid-normal: epoch 1/3, loss 2.25, accuracy 0.11; 0:30 elapsed, about 2:30 left'
"""

from __future__ import annotations

import sys
import time


def plan_progress(progress, runs: int, epochs: int) -> "PlanProgress | None":
    """The progress of a plan: ``progress`` itself when it is one, a :class:`PlanProgress` of ``runs``
    runs of ``epochs`` epochs for ``True``, None for ``False`` or None."""
    if progress is True:
        return PlanProgress(runs, epochs)
    return progress or None


def clock_text(seconds: float) -> str:
    """``m:ss`` (``h:mm:ss`` past an hour)."""
    seconds = int(round(max(seconds, 0)))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


class PlanProgress:
    """The progress of ``runs`` runs of ``epochs`` epochs each.

    Args:
        runs: runs to train (runs a resumed sweep keeps are not counted).
        epochs: epochs per run, or a list of each run's epochs, in order (the seed's table: each row
            its own protocol; 0 for a run that reports no epochs, which counts as one).
        stream: where the lines go (default: stderr).
        enabled: print at all (default: when ``stream`` is a terminal).
        clock: seconds, for tests.

    Example:
        >>> import io
        >>> progress = PlanProgress(runs=2, epochs=[1, 3], stream=io.StringIO(), enabled=False,
        ...                         clock=iter([0.0, 10.0]).__next__)
        >>> progress.start_run("logreg"); progress.epoch_end({}); progress.start_run("mlp")
        >>> progress.line()
        'run 2/2 mlp: epoch 0/3; 0:10 elapsed, about 0:30 left'
    """

    def __init__(self, runs: int, epochs, stream=None, enabled: bool | None = None, clock=time.monotonic):
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = bool(getattr(self.stream, "isatty", lambda: False)()) if enabled is None else enabled
        self.runs = max(int(runs), 1)
        self._each = [max(int(e), 1) for e in epochs] if isinstance(epochs, (list, tuple)) else \
            [max(int(epochs), 1)] * self.runs
        self.epochs = self._each[0]
        self._clock = clock
        self._start = None
        self._run = 0
        self._name = ""
        self._epoch = 0
        self._done = 0  # epochs done over the whole plan
        self._logs: dict = {}

    def start_run(self, name: str) -> None:
        """A run begins training."""
        if self._start is None:
            self._start = self._clock()
        self._run += 1
        self._name, self._epoch, self._logs = name, 0, {}
        self.epochs = self._each[min(self._run, len(self._each)) - 1]

    def epoch_end(self, logs=None) -> None:
        """An epoch of the current run ended (``logs``: its loss and accuracy, as Keras gives them)."""
        self._epoch += 1
        self._done += 1
        self._logs = dict(logs or {})
        if self.enabled:
            print(self.line(), file=self.stream, flush=True)

    def line(self) -> str:
        """Where the plan stands, in one line."""
        elapsed = self._clock() - (self._start if self._start is not None else self._clock())
        shown = [f"{k} {float(self._logs[k]):.4g}" for k in ("loss", "accuracy", "val_loss", "val_accuracy")
                 if k in self._logs]
        left = (sum(self._each) - self._done) * elapsed / self._done if self._done else None
        estimate = f"about {clock_text(left)} left" if left is not None else "estimating the time left"
        return (f"run {self._run}/{self.runs} {self._name}: epoch {self._epoch}/{self.epochs}"
                + (", " + ", ".join(shown) if shown else "") + f"; {clock_text(elapsed)} elapsed, {estimate}")

    def callbacks_for(self, name: str) -> list:
        """Start the run ``name``; the Keras callbacks that report its epoch ends here."""
        self.start_run(name)
        return [self.callback()]

    def callback(self):
        """A Keras callback that reports each epoch end here."""
        import keras

        progress = self

        class _EpochEnds(keras.callbacks.Callback):
            def on_epoch_end(self, epoch, logs=None):
                progress.epoch_end(logs)

        return _EpochEnds()
