"""A function run as a ``tf.function`` when the model traces, eagerly for good when it does not.

The probes run at every epoch end on the same batch, so tracing once makes each call one graph
call instead of an eager pass; a model that cannot be traced outside ``fit`` (some subclassed
models, Python side effects in ``call``) is measured eagerly from then on instead of failing.

Example:
    >>> import tensorflow as tf
    >>> double = TracedOnce(lambda x: 2 * x)
    >>> float(double(tf.constant(3.0)))
    6.0
"""

from __future__ import annotations

import contextlib
import logging


class _NoRetracingWarning(logging.Filter):
    """Drops TF's "triggered tf.function retracing" warning: a probe is traced once per model, so a
    loop of fresh models (trials, sweeps) traces it once each, as expected, and TF counts them as one."""

    def filter(self, record) -> bool:
        return "tf.function retracing" not in record.getMessage()


@contextlib.contextmanager
def _quiet_retracing():
    logger = logging.getLogger("tensorflow")
    quiet = _NoRetracingWarning()
    logger.addFilter(quiet)
    try:
        yield
    finally:
        logger.removeFilter(quiet)


class TracedOnce:
    """Call ``fn`` traced (retracing as little as possible); fall back to ``fn`` itself if tracing fails."""

    def __init__(self, fn):
        self.fn = fn
        self._call = None

    def __call__(self, *args):
        import tensorflow as tf

        if self._call is None:
            self._call = tf.function(self.fn, reduce_retracing=True, autograph=False)
        if self._call is self.fn:
            return self.fn(*args)
        try:
            with _quiet_retracing():
                return self._call(*args)
        except Exception:  # does not trace outside fit: eagerly, from now on
            self._call = self.fn
            return self.fn(*args)
