"""The monitor's live view in a notebook: one output, updated in place at each epoch end.

``GradientMonitor(live=True)`` shows, under the cell that trains, each layer's learning speed and
gradient norm for the epoch that just ended (beside the first epoch's), the learning speed per
layer over the epochs so far, and the findings as they appear (with ``diagnose=True``). It is one
display handle, updated: not a new output per epoch. It reads the windows the recording session
summarises anyway (no record is read again), and keeps its own cost. In a terminal it does nothing.
"""

from __future__ import annotations

import time


class LiveView:
    """One notebook output, updated at each epoch end (nothing outside a notebook).

    Attributes:
        updates: how many times it was drawn.
        seconds: the time those drawings took, in all (``seconds / updates``: its cost an epoch).
    """

    def __init__(self):
        self._handle = None
        self.updates = 0
        self.seconds = 0.0

    def update(self, name: str, windows, findings) -> None:
        """Draw the view of run ``name`` from its summarised ``windows`` and ``findings`` (dicts)."""
        from gradscope.display import block, in_notebook, live_html

        if not windows or not in_notebook():
            return
        started = time.perf_counter()
        from IPython.display import display

        last = windows[-1]
        text = f"gradscope live: {name}, epoch {last.last_epoch + 1}"
        bundle = {"text/plain": text, "text/html": block(live_html(name, windows, findings))}
        if self._handle is None:
            self._handle = display(bundle, raw=True, display_id=True)
        else:
            self._handle.update(bundle, raw=True)
        self.updates += 1
        self.seconds += time.perf_counter() - started
