"""Train the seed's TF1 MLP in a plain ``sess.run`` loop, recorded by a SessionRecorder."""

from __future__ import annotations

import numpy as np

from gradscope import records as rec
from gradscope.errors import GradscopeError
from gradscope.data import N_CLASSES

ACTIVATION_SNAPSHOTS = 30  # activation statistics at most this many times per run


def train_tf1(act, init, cfg, dataset, writer, run, verbose=True, echo=print, epoch_end=None):
    """Train the TF1 MLP with a SessionRecorder writing into ``writer``; returns test metrics.

    ``cfg`` is a :class:`gradscope.experiments.config.TrainConfig`; with ``cfg.full_batch``
    every step uses all training rows and ``cfg.epochs`` counts steps (one pass each), as in
    the seed.

    Returns:
        ``(test accuracy, test loss, steps)``.
    """
    import tensorflow as tf

    from gradscope.models import build_tf1_mlp
    from gradscope.recorders.activation_stats import activation_records
    from gradscope.recorders.tf1 import SessionRecorder

    if cfg.val_split:
        raise GradscopeError("--val-split is not supported with --framework tf1")
    tf1 = tf.compat.v1
    g = build_tf1_mlp(cfg.hidden, act, init, cfg.lr, cfg.optimizer, cfg.seed)
    eye = np.eye(N_CLASSES, dtype=np.float32)
    x_tr, t_tr = dataset.x_train, eye[dataset.y_train]
    n = len(x_tr)
    batch = n if cfg.full_batch else min(cfg.batch_size, n)
    steps_per_epoch = -(-n // batch)
    from gradscope.recorders.activation_probe import rows_of

    probe = rows_of(x_tr)
    snapshot_every = max(1, cfg.epochs // ACTIVATION_SNAPSHOTS)
    rng = np.random.default_rng(cfg.seed)

    def activation_stats(sess, step, epoch):
        outputs = sess.run([t for _, _, t in g.hidden], feed_dict={g.x: probe})
        return activation_records(run, step, epoch, [(name, depth, g.act, out)
                                                     for (name, depth, _), out in zip(g.hidden, outputs)])

    with g.graph.as_default(), tf1.Session(graph=g.graph) as sess:
        recorder = SessionRecorder(g.train, run=run, writer=writer, steps_per_epoch=steps_per_epoch)
        sess.run(g.init)
        try:
            for epoch in range(cfg.epochs):
                order = np.arange(n) if cfg.full_batch else rng.permutation(n)
                losses, accs = [], []
                for start in range(0, n, batch):
                    idx = order[start:start + batch]
                    _, loss, acc = recorder.run(sess, [g.train, g.loss, g.accuracy],
                                                feed_dict={g.x: x_tr[idx], g.t: t_tr[idx]})
                    losses.append(loss * len(idx))
                    accs.append(acc * len(idx))
                step = recorder.step - 1
                logs = {"loss": sum(losses) / n, "accuracy": sum(accs) / n}
                recorder.add_records(rec.from_logs(run, step, epoch, logs))
                if epoch_end is not None:  # where a plan of runs stands (experiments/progress.py)
                    epoch_end(logs)
                writer.update(progress={"epochs_done": epoch + 1, "epochs": cfg.epochs, "last_step": step},
                              metrics=logs)
                snapshot = epoch % snapshot_every == 0 or epoch == cfg.epochs - 1
                if snapshot:
                    recorder.add_records(activation_stats(sess, step, epoch))
                if verbose and snapshot:
                    echo(f"epoch {epoch + 1}/{cfg.epochs} - loss: {logs['loss']:.4f} - accuracy: {logs['accuracy']:.4f}")
        finally:
            recorder.close()
        test_loss, test_acc = sess.run([g.loss, g.accuracy], feed_dict={g.x: dataset.x_test, g.t: eye[dataset.y_test]})
        steps = recorder.step
    return float(test_acc), float(test_loss), steps
