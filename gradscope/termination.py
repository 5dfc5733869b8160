"""SIGTERM handled like Ctrl-C: the run ends as ``interrupted``, with what it recorded kept.

A batch scheduler or ``kill`` sends SIGTERM; by default Python dies on it at once, losing the
records of the unfinished epoch and leaving ``run.json`` saying ``running``. While gradscope
trains (``gradscope analyze``, or inside a monitored ``fit``) SIGTERM raises
:class:`Terminated` instead, which the recorders handle like ``KeyboardInterrupt`` and which
ends the process with exit code 143 (128 + 15, what a shell reports for SIGTERM) when nothing
catches it.

Example:
    >>> issubclass(Terminated, SystemExit), Terminated().code
    (True, 143)
    >>> is_interrupt(KeyboardInterrupt()), is_interrupt(Terminated()), is_interrupt(ValueError())
    (True, True, False)
"""

from __future__ import annotations

import contextlib
import signal
import threading

EXIT_CODE = 128 + signal.SIGTERM  # 143
INTERRUPTED_EXIT_CODE = 130  # 128 + SIGINT: Ctrl-C


class Terminated(SystemExit):
    """Raised in the main thread when the process receives SIGTERM during training."""

    def __init__(self, code: int = EXIT_CODE):
        super().__init__(code)

    def __str__(self) -> str:
        return "terminated by SIGTERM"


def is_interrupt(exc: BaseException) -> bool:
    """Whether an exception ends a run as ``interrupted`` (Ctrl-C or SIGTERM) rather than ``failed``."""
    return isinstance(exc, (KeyboardInterrupt, Terminated))


def _raise_terminated(signum, frame):
    raise Terminated()


class SigtermGuard:
    """While installed, SIGTERM raises :class:`Terminated` in the main thread.

    Installing does nothing off the main thread, or when the program has a SIGTERM handler of
    its own (gradscope never overrides a program's own SIGTERM handling). ``restore()`` puts
    back what was there.
    """

    def __init__(self):
        self._previous = None
        self.installed = False

    def install(self) -> SigtermGuard:
        if self.installed or threading.current_thread() is not threading.main_thread():
            return self
        previous = signal.getsignal(signal.SIGTERM)
        if previous not in (signal.SIG_DFL, None):
            return self
        signal.signal(signal.SIGTERM, _raise_terminated)
        self._previous, self.installed = previous, True
        return self

    def restore(self) -> None:
        if self.installed and threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, self._previous if self._previous is not None else signal.SIG_DFL)
        self.installed = False


@contextlib.contextmanager
def sigterm_raises():
    """Within the block, SIGTERM raises :class:`Terminated` (see :class:`SigtermGuard`)."""
    guard = SigtermGuard().install()
    try:
        yield
    finally:
        guard.restore()
