"""Who is writing a run, and whether that process still lives: what lets a reader tell a run that
is still training from one whose process was killed (SIGKILL, power loss).

A writer stores :func:`this_process` in ``run.json`` and refreshes a heartbeat while it runs. A
reader on the same machine (same host and boot) asks the kernel whether that process, started at
that time, still exists; a reader elsewhere (a shared folder) trusts the heartbeat's age.

Example:
    >>> info = this_process()
    >>> is_alive(info, heartbeat=None)
    True
    >>> is_alive({**info, "pid": 2 ** 22 + 1}, heartbeat=None)
    False
"""

from __future__ import annotations

import datetime as _dt
import os
import socket

HEARTBEAT_SECONDS = 30.0  #: how often a writer refreshes its heartbeat
STALE_SECONDS = 600.0  #: a heartbeat older than this, seen from another machine, means the writer is gone


def now_iso() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def _boot_id() -> str | None:
    try:
        with open("/proc/sys/kernel/random/boot_id", encoding="ascii") as f:
            return f.read().strip()
    except OSError:
        return None


def _start_ticks(pid: int) -> int | None:
    """The process's start time in clock ticks since boot (Linux), which tells a reused pid apart."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as f:
            stat = f.read()
    except OSError:
        return None
    try:
        return int(stat[stat.rindex(")") + 2:].split()[19])
    except (ValueError, IndexError):
        return None


def this_process() -> dict:
    """``{pid, host, boot_id, start_ticks}`` of the current process."""
    pid = os.getpid()
    return {"pid": pid, "host": socket.gethostname(), "boot_id": _boot_id(), "start_ticks": _start_ticks(pid)}


def _pid_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    except OSError:
        return False
    return True


def is_alive(process: dict | None, heartbeat: str | None, now: _dt.datetime | None = None) -> bool:
    """Whether the process that wrote a run still runs (None process info: judged by the heartbeat alone)."""
    process = process or {}
    here = this_process()
    same_machine = (process.get("host") == here["host"] and process.get("boot_id") is not None
                    and process.get("boot_id") == here["boot_id"])
    if same_machine and process.get("pid") is not None:
        pid = int(process["pid"])
        if not _pid_exists(pid):
            return False
        started = process.get("start_ticks")
        return started is None or _start_ticks(pid) in (None, started)
    if heartbeat is None:
        return False
    try:
        beat = _dt.datetime.fromisoformat(heartbeat)
    except ValueError:
        return False
    now = now or _dt.datetime.now(_dt.timezone.utc)
    return (now - beat).total_seconds() < STALE_SECONDS
