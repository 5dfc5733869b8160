"""Where records go besides the run directory: the sink protocol.

A sink is any object with ``append(records)``: ``GradientMonitor(sinks=[...])`` hands it every
batch of records as they are made (a DataFrame of the one record schema, :mod:`gradscope.records`:
``run, step, epoch, layer, depth, variable, metric, value, time``). It may also have:

* ``start(info)``: a fit begins; ``info`` is a dict with ``run``, ``epochs`` (planned, 0 when
  unknown), ``config`` and the model and optimizer as ``run.json`` describes them;
* ``flush()``: an epoch ended (its records are all appended);
* ``close(status, findings, run_dir)``: the run ended as ``status`` (``complete``,
  ``interrupted``, ``failed``); ``findings`` are its findings as dicts, ``run_dir`` its run
  directory (None without one).

A sink is a guest in someone else's ``fit``, as the monitor is: when one of its methods raises,
gradscope says so in one warning, stops calling that sink, and training and recording go on.

Example:
    >>> class Count:
    ...     def __init__(self):
    ...         self.records = 0
    ...     def append(self, records):
    ...         self.records += len(records)
    >>> sink = GuardedSink(Count())
    >>> from gradscope import records as rec
    >>> sink.append(rec.from_logs("r", 0, 0, {"loss": 1.0})); sink.flush(); sink.sink.records
    1
"""

from __future__ import annotations

import warnings
from typing import Protocol, runtime_checkable

from gradscope.errors import GradscopeError


@runtime_checkable
class Sink(Protocol):
    """What a sink must have (see the module's text for what it may have)."""

    def append(self, records) -> None: ...


def check_sinks(sinks) -> list:
    """``sinks`` as a list, each with ``append``.

    Raises:
        GradscopeError: naming the one that has none.
    """
    sinks = list(sinks or [])
    for sink in sinks:
        if not callable(getattr(sink, "append", None)):
            raise GradscopeError(f"sinks=[{type(sink).__name__}(...)]: a sink needs an append(records) method "
                                 "(and may have start(info), flush(), close(status, findings, run_dir))")
    return sinks


def check_writer(writer) -> None:
    """``writer=`` takes a gradscope run writer; an object of one's own belongs in ``sinks=``.

    Raises:
        GradscopeError: when ``writer`` is not a run writer, saying where it goes instead.
    """
    if writer is not None and not all(callable(getattr(writer, m, None)) for m in ("append", "update", "finish")):
        raise GradscopeError(f"writer= takes a gradscope RunWriter (a run directory), not a {type(writer).__name__}: "
                             "to send records to a store of your own, pass it as sinks=[...] (an object with "
                             "append(records); see gradscope.recorders.sinks)")


class GuardedSink:
    """A sink whose errors become one warning: after its first, it is called no more."""

    def __init__(self, sink):
        self.sink = sink
        self.failed: str | None = None

    def _call(self, name: str, *args) -> None:
        method = getattr(self.sink, name, None)
        if self.failed is not None or not callable(method):
            return
        try:
            method(*args)
        except Exception as exc:
            self.failed = f"{type(exc).__name__}: {exc}"
            warnings.warn(f"gradscope: the sink {type(self.sink).__name__} raised in {name}() ({self.failed}); "
                          "it gets no more records, and training and recording go on", RuntimeWarning, stacklevel=2)

    def append(self, records) -> None:
        self._call("append", records)

    def start(self, info: dict) -> None:
        self._call("start", info)

    def flush(self) -> None:
        self._call("flush")

    def close(self, status: str, findings: list, run_dir) -> None:
        self._call("close", status, findings, run_dir)
