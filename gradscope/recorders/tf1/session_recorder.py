"""Record a plain ``sess.run`` training loop, as in classic TF 1.x MNIST code."""

from __future__ import annotations

from gradscope.recorders.tf1.fetched_steps import FetchedSteps
from gradscope.recorders.schedule import DEFAULT_EVERY_STEP
from gradscope.recorders.tf1.graph import build_step_stats


class SessionRecorder:
    """Records per-variable gradient and update norms (and weight norms now and then) of a ``sess.run`` loop.

    Three lines change in a classic loop: create the recorder after ``minimize``, call
    ``recorder.run(sess, ...)`` where the loop called ``sess.run(...)``, and ``close()`` it at
    the end. Steps that are recorded fetch one extra small tensor in the same ``run``; the
    gradients are the ones the train op applies (no second backward pass).

    Args:
        train_op: what ``optimizer.minimize(loss)`` returned.
        run: run id; run_dir, config: write a run directory (optional).
        loss: a scalar tensor to record as ``loss`` on recorded steps (optional).
        every_n_steps: record every N-th step.
        steps_per_epoch: fills the ``epoch`` column (otherwise 0).
        every_step: measured at every recorded step: ``("grad_norm",)`` (default; the update
            too) or ``"all"`` (weight norms too). By default the weight norms are read on the
            first recorded step and every 100 recorded steps, and each step's ``update_ratio``
            uses the norm interpolated between readings.

    Example:
        >>> import numpy as np, tensorflow as tf
        >>> from gradscope import SessionRecorder
        >>> tf1 = tf.compat.v1
        >>> graph = tf.Graph()
        >>> with graph.as_default():
        ...     X = tf1.placeholder(tf.float32, [None, 3])
        ...     w = tf1.get_variable("weight", [3, 1], initializer=tf1.zeros_initializer())
        ...     loss = tf.reduce_mean(tf.square(tf.matmul(X, w) - 1.0))
        ...     train = tf1.train.GradientDescentOptimizer(0.1).minimize(loss)
        ...     recorder = SessionRecorder(train, run="tiny", loss=loss)     # after minimize()
        ...     sess = tf1.Session(graph=graph)
        ...     sess.run(tf1.global_variables_initializer())
        ...     for step in range(3):
        ...         _, loss_val = recorder.run(sess, [train, loss], feed_dict={X: np.ones((4, 3))})
        >>> recorder.close()
        >>> recorder.records.query("metric == 'grad_norm'")[["step", "layer", "variable"]].values.tolist()
        [[0, 'weight', 'kernel'], [1, 'weight', 'kernel'], [2, 'weight', 'kernel']]
    """

    def __init__(self, train_op, run="run", run_dir=None, config=None, writer=None, loss=None,
                 every_n_steps=1, steps_per_epoch=None, first_step=0, every_step=DEFAULT_EVERY_STEP):
        self.stats = build_step_stats(train_op, every_step=every_step)
        self.loss = loss
        self.log = FetchedSteps(self.stats, run=run, run_dir=run_dir, config=config, writer=writer,
                           every_n_steps=every_n_steps, steps_per_epoch=steps_per_epoch)
        self.log.step = first_step

    def run(self, sess, fetches, feed_dict=None, options=None, run_metadata=None):
        """``sess.run(fetches, feed_dict)``, recording this step when it is due."""
        if not self.log.due():
            out = sess.run(fetches, feed_dict=feed_dict, options=options, run_metadata=run_metadata)
        else:
            out, got = sess.run((fetches, self.log.fetches(self.loss)), feed_dict=feed_dict, options=options,
                                run_metadata=run_metadata)
            self.log.add(got["stats"], got.get("loss"), got.get("weights"), got.get("small"))
        self.log.step += 1
        return out

    @property
    def step(self) -> int:
        """The number of the next step."""
        return self.log.step

    @property
    def records(self):
        """Everything recorded so far (schema of :mod:`gradscope.records`)."""
        return self.log.records

    def add_records(self, records) -> None:
        """Add records measured elsewhere (epoch logs, activation statistics) to this run."""
        self.log.add_records(records)

    def close(self) -> None:
        """Write what is still pending (also done at interpreter exit)."""
        self.log.close()
