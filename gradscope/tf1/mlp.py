"""The seed course's TF 1.x MLP, rebuilt with ``tf.compat.v1`` and recorded with SessionRecorder.

Placeholders for pixels and one-hot labels, ``get_variable`` kernels with the chosen
initialiser, N(0, 1) biases (as the seed had them), the chosen activation,
``softmax_cross_entropy_with_logits`` and ``GradientDescentOptimizer(lr).minimize(loss)``;
trained in a plain ``sess.run`` loop, on mini-batches or, as the seed did, on the whole
training set at every step.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from gradscope import records as rec
from gradscope.activations import PROBE_SIZE, activation_records
from gradscope.errors import GradscopeError
from gradscope.tf1.session_recorder import SessionRecorder

tf1 = tf.compat.v1
ACTIVATION_SNAPSHOTS = 30


def initializer(name: str, seed: int | None):
    """A ``tf.compat.v1`` initializer for a gradscope ``--init`` name."""
    table = {
        "normal": lambda: tf1.random_normal_initializer(0.0, 1.0, seed=seed),
        "xavier": lambda: tf1.glorot_uniform_initializer(seed=seed),
        "glorot_uniform": lambda: tf1.glorot_uniform_initializer(seed=seed),
        "glorot_normal": lambda: tf1.glorot_normal_initializer(seed=seed),
        # the seed's tf.contrib.layers.variance_scaling_initializer(): factor 2, fan-in, truncated normal
        "he": lambda: tf1.variance_scaling_initializer(2.0, "fan_in", "truncated_normal", seed=seed),
        "he_normal": lambda: tf1.variance_scaling_initializer(2.0, "fan_in", "truncated_normal", seed=seed),
        "he_uniform": lambda: tf1.variance_scaling_initializer(2.0, "fan_in", "uniform", seed=seed),
        "lecun_normal": lambda: tf1.variance_scaling_initializer(1.0, "fan_in", "truncated_normal", seed=seed),
        "lecun_uniform": lambda: tf1.variance_scaling_initializer(1.0, "fan_in", "uniform", seed=seed),
        "standard": lambda: tf1.variance_scaling_initializer(1.0 / 3.0, "fan_in", "uniform", seed=seed),
        "zeros": lambda: tf1.zeros_initializer(),
    }
    if name not in table:
        raise GradscopeError(
            f"initializer {name!r} is not available with --framework tf1; choose one of {', '.join(table)}"
        )
    return table[name]()


def build_graph(hidden, act, init, lr, optimizer="sgd", seed=0, n_inputs=784, n_classes=10):
    """Build the seed MLP in a new ``tf.Graph``; returns a dict of its tensors and ops."""
    from gradscope.models import check_activation

    activation = check_activation(act)
    graph = tf.Graph()
    with graph.as_default():
        tf1.set_random_seed(seed)
        x = tf1.placeholder(tf.float32, [None, n_inputs], name="X")
        t = tf1.placeholder(tf.float32, [None, n_classes], name="T")
        layer, hidden_out = x, []
        sizes = [n_inputs, *hidden, n_classes]
        for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
            last = i == len(sizes) - 2
            with tf1.variable_scope("output" if last else f"dense_{i}"):
                w = tf1.get_variable("kernel", shape=[n_in, n_out], initializer=initializer(init, seed + i))
                b = tf1.get_variable("bias", shape=[n_out],
                                     initializer=tf1.random_normal_initializer(0.0, 1.0, seed=seed + 100 + i))
                z = tf.matmul(layer, w) + b
                if not last:
                    layer = tf.convert_to_tensor(activation(z))
                    hidden_out.append((f"dense_{i}", i, layer))
        logits = z
        loss = tf.reduce_mean(tf.nn.softmax_cross_entropy_with_logits(logits=logits, labels=t))
        if optimizer == "sgd":
            opt = tf1.train.GradientDescentOptimizer(lr)
        elif optimizer == "adam":
            opt = tf1.train.AdamOptimizer(lr)
        else:
            raise GradscopeError(f"unknown optimizer {optimizer!r}; choose sgd or adam")
        train = opt.minimize(loss)
        correct = tf.equal(tf.argmax(logits, 1), tf.argmax(t, 1))
        accuracy = tf.reduce_mean(tf.cast(correct, tf.float32))
        init_op = tf1.global_variables_initializer()
    return {"act_name": act, "graph": graph, "x": x, "t": t, "loss": loss, "accuracy": accuracy, "train": train,
            "init": init_op, "hidden": hidden_out}


def train(act, init, cfg, dataset, writer, run, verbose=True, echo=print):
    """Train the TF1 MLP with a SessionRecorder writing into ``writer``; returns test metrics.

    ``cfg`` is a :class:`gradscope.experiment.TrainConfig`; with ``cfg.full_batch`` every step
    uses all training rows and ``cfg.epochs`` counts steps (one pass each), as in the seed.
    """
    g = build_graph(cfg.hidden, act, init, cfg.lr, cfg.optimizer, cfg.seed)
    eye = np.eye(10, dtype=np.float32)
    x_tr, t_tr = dataset.x_train, eye[dataset.y_train]
    n = len(x_tr)
    batch = n if cfg.full_batch else min(cfg.batch_size, n)
    steps_per_epoch = -(-n // batch)
    probe = x_tr[:PROBE_SIZE]
    snapshot_every = max(1, cfg.epochs // ACTIVATION_SNAPSHOTS)
    rng = np.random.default_rng(cfg.seed)
    with g["graph"].as_default(), tf1.Session(graph=g["graph"]) as sess:
        recorder = SessionRecorder(g["train"], run=run, writer=writer, steps_per_epoch=steps_per_epoch)
        sink = recorder.log.sink
        sess.run(g["init"])
        try:
            for epoch in range(cfg.epochs):
                order = np.arange(n) if cfg.full_batch else rng.permutation(n)
                losses, accs = [], []
                for start in range(0, n, batch):
                    idx = order[start:start + batch]
                    _, loss, acc = recorder.run(sess, [g["train"], g["loss"], g["accuracy"]],
                                                feed_dict={g["x"]: x_tr[idx], g["t"]: t_tr[idx]})
                    losses.append(loss * len(idx))
                    accs.append(acc * len(idx))
                step = recorder.step - 1
                logs = {"loss": sum(losses) / n, "accuracy": sum(accs) / n}
                recorder.log.flush()
                sink.add(rec.from_logs(run, step, epoch, logs))
                if epoch % snapshot_every == 0 or epoch == cfg.epochs - 1:
                    sink.add(_activation_records(sess, g, probe, run, step, epoch))
                if verbose and (epoch % snapshot_every == 0 or epoch == cfg.epochs - 1):
                    echo(f"epoch {epoch + 1}/{cfg.epochs} - loss: {logs['loss']:.4f} - accuracy: {logs['accuracy']:.4f}")
        finally:
            recorder.close()
        test_loss, test_acc = sess.run([g["loss"], g["accuracy"]],
                                       feed_dict={g["x"]: dataset.x_test, g["t"]: eye[dataset.y_test]})
        steps = recorder.step
    return float(test_acc), float(test_loss), steps


def _activation_records(sess, g, probe, run, step, epoch):
    outputs = sess.run([t for _, _, t in g["hidden"]], feed_dict={g["x"]: probe})
    return activation_records(run, step, epoch,
                              [(name, depth, g["act_name"], out) for (name, depth, _), out in zip(g["hidden"], outputs)])
