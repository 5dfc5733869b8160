"""GradientNormHook: per-layer gradient norms for MonitoredTrainingSession."""

from __future__ import annotations

import tensorflow as tf

from gradscope.recorders.tf1.fetched_steps import FetchedSteps
from gradscope.recorders.schedule import DEFAULT_EVERY_STEP
from gradscope.recorders.tf1.graph import build_step_stats


class GradientNormHook(tf.compat.v1.train.SessionRunHook):
    """Records per-variable gradient and update norms (weight norms now and then), like ``LoggingTensorHook``.

    The norm tensors are built in :meth:`begin` (before the graph is finalized) from the
    gradients the train op applies; :meth:`before_run` asks for them only on recorded steps
    and :meth:`after_run` turns them into records; :meth:`end` writes what is pending.

    Args:
        train_op: what ``optimizer.minimize(loss)`` returned (default: the graph's
            ``TRAIN_OP`` collection).
        run, run_dir, config, writer: where records go (see :class:`gradscope.recorders.tf1.fetched_steps.FetchedSteps`).
        loss: a scalar tensor to record as ``loss`` on recorded steps.
        every_n_steps: record every N-th ``run`` call.
        steps_per_epoch: fills the ``epoch`` column.
        every_step: as for :class:`gradscope.SessionRecorder`.

    Example:
        >>> import numpy as np
        >>> from gradscope import GradientNormHook
        >>> tf1 = tf.compat.v1
        >>> with tf.Graph().as_default():
        ...     X = tf1.placeholder(tf.float32, [None, 3])
        ...     w = tf1.get_variable("weight", [3, 1], initializer=tf1.zeros_initializer())
        ...     loss = tf.reduce_mean(tf.square(tf.matmul(X, w) - 1.0))
        ...     train_op = tf1.train.AdamOptimizer(0.1).minimize(loss)
        ...     hook = GradientNormHook(train_op, run="tiny", every_n_steps=2)
        ...     with tf1.train.MonitoredTrainingSession(hooks=[hook], log_step_count_steps=None) as sess:
        ...         for _ in range(5):
        ...             _ = sess.run(train_op, feed_dict={X: np.ones((4, 3))})
        >>> sorted(hook.records.query("metric == 'update_norm'").step)
        [0, 2, 4]
    """

    def __init__(self, train_op=None, run="run", run_dir=None, config=None, writer=None, loss=None,
                 every_n_steps=1, steps_per_epoch=None, every_step=DEFAULT_EVERY_STEP):
        self._train_op = train_op
        self._every_step = every_step
        self._loss = loss
        self._options = dict(run=run, run_dir=run_dir, config=config, writer=writer,
                             every_n_steps=every_n_steps, steps_per_epoch=steps_per_epoch)
        self.log: FetchedSteps | None = None
        self._asked = False

    def begin(self):
        train_op = self._train_op
        if train_op is None:
            ops = tf.compat.v1.get_collection(tf.compat.v1.GraphKeys.TRAIN_OP)
            if not ops:
                raise ValueError("GradientNormHook needs train_op= (the graph has no TRAIN_OP collection)")
            train_op = ops[0]
        if self.log is None:
            self.log = FetchedSteps(build_step_stats(train_op, every_step=self._every_step), **self._options)
        self._global_step = tf.compat.v1.train.get_global_step()

    def after_create_session(self, session, coord):
        if self._global_step is not None:
            self.log.step = int(session.run(self._global_step))

    def before_run(self, run_context):
        self._asked = self.log.due()
        if not self._asked:
            return None
        return tf.compat.v1.train.SessionRunArgs(self.log.fetches(self._loss))

    def after_run(self, run_context, run_values):
        if self._asked:
            results = run_values.results
            self.log.add(results["stats"], results.get("loss"), results.get("weights"), results.get("small"))
        self.log.step += 1

    def end(self, session):
        self.log.close()

    @property
    def records(self):
        """Everything recorded so far (schema of :mod:`gradscope.records`)."""
        return self.log.records
