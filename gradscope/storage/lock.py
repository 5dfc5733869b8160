"""One writer per run directory: an exclusive lock held while a run is written.

Two processes writing one run would interleave their records; the second one to start gets a
clear error naming the first instead. The lock is an OS file lock (released by the kernel if
the writer dies), so a killed run never blocks the next one.

Example:
    >>> import tempfile
    >>> folder = tempfile.mkdtemp()
    >>> first = RunLock(folder)
    >>> RunLock(folder)
    Traceback (most recent call last):
    ...
    gradscope.errors.GradscopeError: ... is being written by process ... on ...; wait for it to finish, or write to another folder (--out)
    >>> first.release()
    >>> RunLock(folder).release()
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from gradscope.errors import GradscopeError
from gradscope.storage.process import now_iso, this_process

LOCK_FILE = ".lock"

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX: no locking
    fcntl = None


class RunLock:
    """Hold the lock of a run directory (created if missing).

    Raises:
        GradscopeError: when another process (or another writer in this one) holds it.
    """

    def __init__(self, folder):
        self.path = Path(folder) / LOCK_FILE
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        if fcntl is not None:
            try:
                fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                owner = self._owner()
                os.close(self._fd)
                self._fd = None
                who = (f"process {owner['pid']} on {owner.get('host', 'an unknown host')} (since "
                       f"{owner.get('since', 'an unknown time')})" if "pid" in owner else "another process")
                raise GradscopeError(
                    f"{self.path.parent} is being written by {who}; wait for it to finish, "
                    "or write to another folder (--out)"
                ) from None
        info = {**this_process(), "since": now_iso()}
        os.ftruncate(self._fd, 0)
        os.pwrite(self._fd, json.dumps(info).encode(), 0)

    def _owner(self) -> dict:
        try:
            return json.loads(self.path.read_text(encoding="utf-8") or "{}")
        except (OSError, ValueError):
            return {}

    @property
    def held(self) -> bool:
        return self._fd is not None

    def release(self) -> None:
        """Let the next writer in (idempotent)."""
        if self._fd is None:
            return
        if fcntl is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
        os.close(self._fd)
        self._fd = None

    def __del__(self):
        try:
            self.release()
        except Exception:  # pragma: no cover - interpreter shutdown
            pass
