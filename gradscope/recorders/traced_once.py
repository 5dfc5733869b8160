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
            return self._call(*args)
        except Exception:  # does not trace outside fit: eagerly, from now on
            self._call = self.fn
            return self.fn(*args)
