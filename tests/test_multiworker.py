"""MultiWorkerMirroredStrategy for real: two worker processes on this machine, one run directory.

Both workers are started here with a ``TF_CONFIG`` naming two 127.0.0.1 ports; each trains the
same model on its shard of every global batch, and the gradients are all-reduced across the
processes. The chief (worker 0) writes the run directory; the other worker records in memory.
The recorded gradient norms must equal a hand-unrolled single-process loop (``GradientTape``,
plain SGD) on the same global batch.
"""

import json
import os
import socket
import subprocess
import sys
import textwrap

import numpy as np
import pytest

WORKER = textwrap.dedent(
    """
    import json, os, sys
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
    import numpy as np, tensorflow as tf, keras
    from gradscope import GradientMonitor

    out, index = sys.argv[1], int(sys.argv[2])
    strategy = tf.distribute.MultiWorkerMirroredStrategy()
    data = np.load(os.path.join(out, "data.npz"))
    with strategy.scope():
        model = keras.Sequential([keras.Input((10,)), keras.layers.Dense(8, activation="tanh", name="h"),
                                  keras.layers.Dense(3, activation="softmax", name="o")])
        optimizer = keras.optimizers.SGD(0.1)
        model.compile(optimizer=optimizer, loss="sparse_categorical_crossentropy")
    model.set_weights([data[f"w{i}"] for i in range(4)])
    loss_fn = keras.losses.SparseCategoricalCrossentropy(reduction=None)
    GLOBAL_BATCH = 64
    dataset = tf.data.Dataset.from_tensor_slices((data["x"], data["y"])).repeat().batch(GLOBAL_BATCH)
    batches = iter(strategy.experimental_distribute_dataset(dataset))

    @tf.function
    def train_step(batch):
        def step(x, y):
            with tf.GradientTape() as tape:
                loss = tf.nn.compute_average_loss(loss_fn(y, model(x, training=True)), global_batch_size=GLOBAL_BATCH)
            optimizer.apply(tape.gradient(loss, model.trainable_variables), model.trainable_variables)
            return loss
        return strategy.run(step, args=batch)

    # Keras 3's fit() does not run under MultiWorkerMirroredStrategy (keras-team/keras#20585): a
    # custom loop, driving the monitor through the Keras callback protocol.
    chief = index == 0
    monitor = GradientMonitor(run="two-workers", run_dir=os.path.join(out, "run") if chief else None, probe=False)
    callbacks = keras.callbacks.CallbackList([monitor], model=model, epochs=3, steps=1)
    callbacks.on_train_begin()
    for epoch in range(3):
        callbacks.on_epoch_begin(epoch)
        train_step(next(batches))
        callbacks.on_epoch_end(epoch, {})
    callbacks.on_train_end()
    r = monitor.records
    g = r[r.metric == "grad_norm"].sort_values(["step", "depth", "variable"])
    print(json.dumps({"replicas": strategy.num_replicas_in_sync, "grad": g.value.tolist(),
                      "steps": g.step.tolist()}))
    """
)


def _free_ports(n):
    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def _reference(data, steps=3, lr=0.1):
    """Plain SGD on the whole global batch, unrolled by hand: each step's gradient norms."""
    import keras
    import tensorflow as tf

    model = keras.Sequential([keras.Input((10,)), keras.layers.Dense(8, activation="tanh", name="h"),
                              keras.layers.Dense(3, activation="softmax", name="o")])
    model.set_weights([data[f"w{i}"] for i in range(4)])
    loss_fn = keras.losses.SparseCategoricalCrossentropy()
    norms = []
    for _ in range(steps):
        with tf.GradientTape() as tape:
            loss = loss_fn(data["y"], model(data["x"], training=True))
        grads = tape.gradient(loss, model.trainable_variables)
        norms.append([float(np.linalg.norm(g.numpy())) for g in grads])  # kernel, bias per layer, input first
        for v, g in zip(model.trainable_variables, grads):
            v.assign_sub(lr * g)
    return norms


def test_two_worker_processes_write_one_run_whose_gradients_equal_one_process(tmp_path):
    from gradscope.storage import load_run

    rng = np.random.default_rng(0)
    data = {"x": rng.normal(size=(64, 10)).astype("float32"), "y": rng.integers(0, 3, 64),
            "w0": rng.normal(0, 0.5, (10, 8)).astype("float32"), "w1": rng.normal(0, 0.1, 8).astype("float32"),
            "w2": rng.normal(0, 0.5, (8, 3)).astype("float32"), "w3": np.zeros(3, "float32")}
    np.savez(tmp_path / "data.npz", **data)
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    ports = _free_ports(2)
    cluster = {"worker": [f"127.0.0.1:{p}" for p in ports]}
    procs = []
    for index in range(2):
        env = {**os.environ, "PYTHONPATH": os.getcwd(),
               "TF_CONFIG": json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}})}
        procs.append(subprocess.Popen([sys.executable, str(script), str(tmp_path), str(index)], env=env,
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    outs = []
    try:
        for proc in procs:
            stdout, stderr = proc.communicate(timeout=300)
            assert proc.returncode == 0, stderr[-3000:]
            outs.append(json.loads(stdout.strip().splitlines()[-1]))
    finally:
        for proc in procs:
            proc.kill()
    assert [o["replicas"] for o in outs] == [2, 2]
    # the reference, ordered as the records are (step, then depth, then variable name: bias before kernel)
    expect = [n for step in _reference(data) for n in (step[1], step[0], step[3], step[2])]
    chief = load_run(tmp_path / "run")
    assert chief.status == "complete"
    g = chief.records[chief.records.metric == "grad_norm"].sort_values(["step", "depth", "variable"])
    assert g.step.unique().tolist() == [0, 1, 2]  # one record per step, not one per worker
    np.testing.assert_allclose(g.value.to_numpy(), expect, rtol=1e-5)
    np.testing.assert_allclose(outs[1]["grad"], outs[0]["grad"], rtol=1e-6)  # the other worker saw the same
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data.npz", "run", "worker.py"]  # one run directory


