"""Close a recorder when the interpreter exits, so that nothing recorded is lost.

Example:
    >>> class Recorder:
    ...     def close(self):
    ...         print("closed")
    >>> guard = ExitGuard(Recorder(), "close")  # the recorder is gone: nothing to close at exit
    >>> guard.cancel()
"""

from __future__ import annotations

import atexit
import weakref


class ExitGuard:
    """Calls ``obj.<method>()`` at interpreter exit, if ``obj`` still exists and the guard is not cancelled.

    Holds only a weak reference, so the guard never keeps a recorder alive. Errors at exit are
    swallowed: the interpreter is going away and has no one left to tell.
    """

    def __init__(self, obj, method: str):
        ref = weakref.ref(obj)

        def at_exit():
            alive = ref()
            if alive is not None:
                try:
                    getattr(alive, method)()
                except Exception:  # pragma: no cover - the interpreter is exiting
                    pass

        self._at_exit = at_exit
        atexit.register(at_exit)

    def cancel(self) -> None:
        """Do nothing at exit after all (the recorder was closed)."""
        atexit.unregister(self._at_exit)
