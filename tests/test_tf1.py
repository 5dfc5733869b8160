"""TF1-compat recording: plain sess.run loops, MonitoredTrainingSession hooks and the CLI.

Every check compares the recorded norms with an independent eager GradientTape replay of the
same steps from the same initial weights.
"""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from gradscope.storage import load_run
import tensorflow as tf
from click.testing import CliRunner

from gradscope.cli import main
from gradscope.recorders.tf1 import GradientNormHook, SessionRecorder, build_step_stats

tf1 = tf.compat.v1
rng = np.random.default_rng(0)
X_DATA = rng.random((40, 20)).astype("float32")
T_DATA = np.eye(4, dtype="float32")[rng.integers(0, 4, 40)]


def seed_like_graph(optimizer="sgd", lr=0.1, global_step=False):
    """Unscoped variables like the seed: get_variable('weight2'), tf.Variable biases."""
    g = tf.Graph()
    with g.as_default():
        tf1.set_random_seed(1)
        X = tf1.placeholder(tf.float32, [None, 20])
        T = tf1.placeholder(tf.float32, [None, 4])
        w2 = tf1.get_variable("weight2", [20, 16], initializer=tf1.variance_scaling_initializer(2.0))
        b2 = tf1.Variable(tf1.random_normal([16]))
        w3 = tf1.get_variable("weight3", [16, 4], initializer=tf1.variance_scaling_initializer(2.0))
        b3 = tf1.Variable(tf1.random_normal([4]))
        logit = tf.matmul(tf.nn.sigmoid(tf.matmul(X, w2) + b2), w3) + b3
        loss = tf.reduce_mean(tf.nn.softmax_cross_entropy_with_logits(logits=logit, labels=T))
        opt = tf1.train.GradientDescentOptimizer(lr) if optimizer == "sgd" else tf1.train.AdamOptimizer(lr)
        gs = tf1.train.get_or_create_global_step() if global_step else None
        train = opt.minimize(loss, global_step=gs)
    return g, dict(X=X, T=T, loss=loss, train=train, variables=[w2, b2, w3, b3])


def replay(weights, steps, lr=0.1):
    """Eager GradientTape + SGD replay: per step, (grad norms, weight norms after, update norms)."""
    vs = [tf.Variable(w) for w in weights]
    out = []
    for _ in range(steps):
        with tf.GradientTape() as tape:
            logit = tf.matmul(tf.nn.sigmoid(tf.matmul(X_DATA, vs[0]) + vs[1]), vs[2]) + vs[3]
            loss = tf.reduce_mean(tf.nn.softmax_cross_entropy_with_logits(logits=logit, labels=T_DATA))
        grads = tape.gradient(loss, vs)
        before = [v.numpy().copy() for v in vs]
        for v, g in zip(vs, grads):
            v.assign_sub(lr * g)
        out.append((
            [np.linalg.norm(g.numpy()) for g in grads],
            [np.linalg.norm(v.numpy()) for v in vs],
            [np.linalg.norm(v.numpy() - b) for v, b in zip(vs, before)],
        ))
    return out


def by_step(records, step, metric):
    r = records[(records.step == step) & (records.metric == metric)]
    return r.value.to_numpy()


@pytest.mark.parametrize("every_step", ["all", ("grad_norm",)])
def test_plain_loop_matches_gradient_tape_and_names_layers_from_the_graph(tmp_path, every_step):
    g, t = seed_like_graph()
    with g.as_default():
        recorder = SessionRecorder(t["train"], run="seed", run_dir=tmp_path / "seed", loss=t["loss"],
                                   every_step=every_step)
        sess = tf1.Session(graph=g)
        sess.run(tf1.global_variables_initializer())
        w0 = sess.run(t["variables"])
        for _ in range(3):
            recorder.run(sess, [t["train"], t["loss"]], feed_dict={t["X"]: X_DATA, t["T"]: T_DATA})
        recorder.close()
    r = recorder.records
    meta = r[r.metric == "grad_norm"].drop_duplicates(["layer", "variable"])[["layer", "depth", "variable"]]
    assert meta.values.tolist() == [["weight2", 0, "kernel"], ["weight2", 0, "bias"],
                                    ["weight3", 1, "kernel"], ["weight3", 1, "bias"]]
    for step, (grads, weights, updates) in enumerate(replay(w0, 3)):
        np.testing.assert_allclose(by_step(r, step, "grad_norm"), grads, rtol=1e-5)
        np.testing.assert_allclose(by_step(r, step, "update_norm"), updates, rtol=1e-4)
        if every_step == "all" or step == 0:  # by default the weights are read on the first step (and every 100)
            np.testing.assert_allclose(by_step(r, step, "weight_norm"), weights, rtol=1e-5)
            np.testing.assert_allclose(by_step(r, step, "update_ratio"), np.array(updates) / weights, rtol=1e-4)
        else:
            assert len(by_step(r, step, "weight_norm")) == 0
    assert len(by_step(r, 2, "loss")) == 1
    meta_json = json.loads((tmp_path / "seed" / "run.json").read_text())
    assert meta_json["status"] == "complete"  # ended as every recorder ends a run: findings copied, steps counted
    assert isinstance(meta_json["diagnosis"], list) and meta_json["timings"]["steps"] == 3


def test_no_second_backward_pass_is_built():
    g, t = seed_like_graph()
    with g.as_default():
        n_before = len([op for op in g.get_operations() if "gradients" in op.name])
        build_step_stats(t["train"])
        n_after = len([op for op in g.get_operations() if "gradients" in op.name])
    assert n_after == n_before


def test_adam_update_is_the_measured_difference():
    g, t = seed_like_graph(optimizer="adam", lr=0.01)
    with g.as_default():
        recorder = SessionRecorder(t["train"])
        assert set(recorder.stats.update_rule) == {"difference"}
        sess = tf1.Session(graph=g)
        sess.run(tf1.global_variables_initializer())
        w0 = sess.run(t["variables"])
        recorder.run(sess, t["train"], feed_dict={t["X"]: X_DATA, t["T"]: T_DATA})
        w1 = sess.run(t["variables"])
    expect = [np.linalg.norm(a - b) for a, b in zip(w1, w0)]
    np.testing.assert_allclose(by_step(recorder.records, 0, "update_norm"), expect, rtol=1e-4)
    np.testing.assert_allclose(by_step(recorder.records, 0, "weight_norm"),
                               [np.linalg.norm(w) for w in w1], rtol=1e-5)


def test_mixed_optimizers_each_variable_gets_its_own_update():
    """Two plain gradient descents at different rates and a momentum one on the same loss: the update
    column mixes two learning-rate factors and a measured difference (graph.py's mixed-factor branch)."""
    g, t = seed_like_graph()
    with g.as_default():
        w2, b2, w3, b3 = t["variables"]
        loss = t["loss"]
        train = tf.group(tf1.train.GradientDescentOptimizer(0.1).minimize(loss, var_list=[w2, b2]),
                         tf1.train.GradientDescentOptimizer(0.03).minimize(loss, var_list=[w3]),
                         tf1.train.MomentumOptimizer(0.05, 0.9).minimize(loss, var_list=[b3]))
        recorder = SessionRecorder(train, every_step="all")
        assert sorted(recorder.stats.update_rule) == ["difference", "lr*grad", "lr*grad", "lr*grad"]
        sess = tf1.Session(graph=g)
        sess.run(tf1.global_variables_initializer())
        expect = []
        for _ in range(2):
            before = sess.run(t["variables"])
            recorder.run(sess, train, feed_dict={t["X"]: X_DATA, t["T"]: T_DATA})
            after = sess.run(t["variables"])
            expect.append([np.linalg.norm(a - b) for a, b in zip(after, before)])  # read independently
    records = recorder.records
    for step, updates in enumerate(expect):
        rows = records[(records.step == step) & (records.metric == "update_norm")]
        order = {("weight2", "kernel"): 0, ("weight2", "bias"): 1, ("weight3", "kernel"): 2, ("weight3", "bias"): 3}
        got = np.zeros(4)
        for layer, variable, value in zip(rows.layer, rows.variable, rows.value):
            got[order[(layer, variable)]] = value
        np.testing.assert_allclose(got, updates, rtol=1e-4)


def test_hook_with_monitored_training_session_every_other_step():
    g, t = seed_like_graph(global_step=True)

    class KeepInitial(tf1.train.SessionRunHook):
        def after_create_session(self, session, coord):
            self.w0 = session.run(t["variables"])

    with g.as_default():
        hook = GradientNormHook(t["train"], run="mts", every_n_steps=2, loss=t["loss"])
        keep = KeepInitial()
        with tf1.train.MonitoredTrainingSession(hooks=[hook, keep], save_checkpoint_secs=None,
                                                save_summaries_steps=None, log_step_count_steps=None) as sess:
            for _ in range(5):
                sess.run(t["train"], feed_dict={t["X"]: X_DATA, t["T"]: T_DATA})
    r = hook.records
    assert sorted(r[r.metric == "grad_norm"].step.unique()) == [0, 2, 4]
    expected = replay(keep.w0, 5)
    for step in (0, 2, 4):
        np.testing.assert_allclose(by_step(r, step, "grad_norm"), expected[step][0], rtol=1e-5)
    np.testing.assert_allclose(by_step(r, 0, "weight_norm"), expected[0][1], rtol=1e-5)


def test_hook_finds_the_train_op_or_says_it_needs_one():
    g, t = seed_like_graph()
    with g.as_default():
        hook = GradientNormHook()
        hook.begin()  # minimize() put its op in the TRAIN_OP collection
        assert len(hook.log.stats.variables) == 4
    with tf.Graph().as_default(), pytest.raises(ValueError, match="train_op"):
        GradientNormHook().begin()


def test_keras_and_tf1_runs_side_by_side_in_one_invocation(tmp_path, tiny_npz):
    out = tmp_path / "both"
    args = ["--hidden", "16,8", "--epochs", "2", "--batch-size", "50", "-q", "--data", str(tiny_npz),
            "--act", "relu", "--init", "he"]
    r1 = CliRunner().invoke(main, ["analyze", "--out", str(out / "keras"), *args], catch_exceptions=False)
    r2 = CliRunner().invoke(main, ["analyze", "--framework", "tf1", "--out", str(out / "tf1"), *args],
                            catch_exceptions=False)
    assert r1.exit_code == 0 and r2.exit_code == 0, r1.output + r2.output
    assert tf.executing_eagerly()  # TF1 graph code did not switch eager execution off
    meta = json.loads((out / "tf1" / "runs" / "relu-he" / "run.json").read_text())
    assert meta["config"]["framework"] == "tf1" and meta["status"] == "complete"
    rec = load_run(out / "tf1" / "runs" / "relu-he").records
    kernels = rec[(rec.metric == "grad_norm") & (rec.variable == "kernel")]
    assert kernels.drop_duplicates("layer").layer.tolist() == ["dense_0", "dense_1", "output"]
    assert kernels.groupby("step").size().tolist() == [3] * 8  # 200 images / 50, 2 epochs
    assert {"dead_frac", "loss", "accuracy"} <= set(rec.metric)


def test_tf1_full_batch_and_bad_init(tmp_path, tiny_npz):
    out = tmp_path / "fb"
    r = CliRunner().invoke(main, ["analyze", "--framework", "tf1", "--full-batch", "--epochs", "3",
                                  "--hidden", "8", "--data", str(tiny_npz), "--out", str(out), "-q"],
                           catch_exceptions=False)
    assert r.exit_code == 0, r.output
    meta = json.loads((out / "runs" / "sigmoid-normal" / "run.json").read_text())
    assert meta["timings"]["steps"] == 3 and meta["config"]["full_batch"] is True
    r = CliRunner().invoke(main, ["analyze", "--framework", "tf1", "--init", "orthogonal", "--out", str(tmp_path / "x")])
    assert r.exit_code == 1 and "not available with --framework tf1" in r.output


def test_the_documented_seed_example_runs(tmp_path, tiny_npz):
    script = os.path.join(os.path.dirname(__file__), "..", "docs", "examples", "seed_tf1_mlp.py")
    proc = subprocess.run([sys.executable, script, "--data", str(tiny_npz), "--steps", "5", "--out", str(tmp_path / "ex")],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "test accuracy" in proc.stdout
    meta = json.loads((tmp_path / "ex" / "runs" / "seed-tf1" / "run.json").read_text())
    assert meta["status"] == "complete"  # finished by the exit hook: the example never calls close()
    rec = load_run(tmp_path / "ex" / "runs" / "seed-tf1").records
    layers = rec[rec.metric == "grad_norm"].drop_duplicates(["layer", "variable"])
    assert layers[["layer", "depth"]].drop_duplicates().values.tolist() == [
        ["weight2", 0], ["weight3", 1], ["weight4", 2], ["weight5", 3]]
    assert sorted(rec.step.unique()) == [0, 1, 2, 3, 4]


@pytest.mark.parametrize("steps_per_epoch", [None, 4])
def test_weights_read_every_flush_give_each_step_an_update_ratio_within_a_hair(steps_per_epoch):
    g, t = seed_like_graph()
    with g.as_default():
        recorder = SessionRecorder(t["train"], run="seed", steps_per_epoch=steps_per_epoch)
        recorder.log.flush_every = 10
        sess = tf1.Session(graph=g)
        sess.run(tf1.global_variables_initializer())
        w0 = sess.run(t["variables"])
        for _ in range(30):
            recorder.run(sess, t["train"], feed_dict={t["X"]: X_DATA, t["T"]: T_DATA})
        recorder.close()
    r = recorder.records
    assert sorted(r[r.metric == "weight_norm"].step.unique()) == [0, 9, 19, 29]  # first step, then each flush
    for step, (_, weights, updates) in enumerate(replay(w0, 30)):
        if step in (0, 9, 19, 29):
            np.testing.assert_allclose(by_step(r, step, "weight_norm"), weights, rtol=1e-5)
        np.testing.assert_allclose(by_step(r, step, "update_ratio"), np.array(updates) / weights, rtol=5e-3)
    # epochs end inside a flush: the norms are interpolated across their ends, each record in its epoch
    assert (r.epoch == (r.step // steps_per_epoch if steps_per_epoch else 0)).all()


_DIES = """
import sys
import numpy as np, tensorflow as tf
from gradscope import SessionRecorder
tf1 = tf.compat.v1
tf1.disable_eager_execution()
X = tf1.placeholder(tf.float32, [None, 4]); T = tf1.placeholder(tf.float32, [None, 2])
w = tf1.get_variable("w", [4, 2])
loss = tf.reduce_mean(tf.nn.softmax_cross_entropy_with_logits(logits=tf.matmul(X, w), labels=T))
train = tf1.train.GradientDescentOptimizer(0.1).minimize(loss)
recorder = SessionRecorder(train, run="dies", run_dir=sys.argv[1], loss=loss, steps_per_epoch=2)
x = np.ones((8, 4), "float32"); t = np.eye(2, dtype="float32")[[0, 1] * 4]
with tf1.Session() as sess:
    sess.run(tf1.global_variables_initializer())
    for step in range(5):
        recorder.run(sess, train, feed_dict={X: x, T: t})
    raise KeyboardInterrupt if sys.argv[2] == "interrupted" else ValueError("the user's loop broke")
"""


@pytest.mark.parametrize("case, status", [("interrupted", "interrupted"), ("failed", "failed")])
def test_a_sess_run_loop_that_dies_keeps_its_steps_and_says_how_it_ended(tmp_path, case, status):
    run_dir = tmp_path / "dies"
    proc = subprocess.run([sys.executable, "-c", _DIES, str(run_dir), case], capture_output=True, text=True,
                          timeout=300, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert proc.returncode != 0
    run = load_run(run_dir)
    assert run.status == status and sorted(run.records.query("metric == 'grad_norm'").step.unique()) == [0, 1, 2, 3, 4]
    if case == "failed":
        assert run.meta["error"] == "ValueError: the user's loop broke"
    assert run.meta["diagnosis"] and run.meta["diagnosis"][0]["kind"] == "incomplete_run"
    assert len(list((run_dir / "summaries").glob("part-*.parquet"))) >= 1  # its windows, summarised as epochs changed
