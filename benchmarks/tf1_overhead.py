"""Wall-time overhead of recording a TF1 ``sess.run`` training loop (the seed's MLP).

Each repeat builds a fresh ``tf.Graph`` with the seed MLP (784-512-256-128-10, ReLU, He init,
N(0,1) biases, GradientDescentOptimizer(0.1)) for every way and times the same ``sess.run``
loop over mini-batches of 100, alternating the order of the ways; all in this one process.

    python benchmarks/tf1_overhead.py --data ../shared/data/mnist.npz --steps 600 --repeats 5

Ways:
  plain            sess.run([train, loss])
  plain-again      the same as plain: the noise floor
  gradscope        SessionRecorder.run(sess, [train, loss]): grad and update norms every step,
                   weight norms on the first step and every 100 (the default)
  gradscope-all    SessionRecorder(every_step="all"): weight norms every step too
  gradscope/10     SessionRecorder(every_n_steps=10)
  second-gradients norms of tf.gradients(loss, variables) fetched with the train op: the
                   obvious way, which builds and runs the backward pass a second time
"""

from __future__ import annotations

import argparse
import os
import sys
import time

from timing import ratio_table  # benchmarks/timing.py, beside this script

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default="sample")
    parser.add_argument("--steps", type=int, default=600)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--ways", default="plain,gradscope,gradscope-all,gradscope/10,second-gradients,plain-again")
    args = parser.parse_args(argv)

    import numpy as np
    import tensorflow as tf

    from gradscope.data import N_CLASSES
    from gradscope.models.mlp import SEED_HIDDEN

    from gradscope import SessionRecorder, data
    from gradscope.models import build_tf1_mlp

    tf1 = tf.compat.v1
    ds = data.load(args.data)
    x, t = ds.x_train, np.eye(N_CLASSES, dtype=np.float32)[ds.y_train]
    n = len(x)
    batches = [(x[i:i + 100], t[i:i + 100]) for i in range(0, n - 99, 100)]

    def run_way(way):
        g = build_tf1_mlp(SEED_HIDDEN, "relu", "he", 0.1, "sgd", seed=0)
        with g.graph.as_default(), tf1.Session(graph=g.graph) as sess:
            fetches = [g.train, g.loss]
            runner = sess.run
            if way.startswith("gradscope"):
                every = int(way.split("/")[1]) if "/" in way else 1
                recorder = SessionRecorder(g.train, every_n_steps=every,
                                           every_step="all" if way == "gradscope-all" else ("grad_norm",))

                def runner(f, feed_dict):
                    return recorder.run(sess, f, feed_dict=feed_dict)
            elif way == "second-gradients":
                variables = tf1.trainable_variables()
                norms = tf.stack([tf.norm(gr) for gr in tf.gradients(g.loss, variables)])
                fetches = [g.train, g.loss, norms]
            sess.run(g.init)
            for xb, tb in batches[:5]:  # warm up outside the timing
                runner(fetches, feed_dict={g.x: xb, g.t: tb})
            t0, c0 = time.perf_counter(), time.process_time()
            for step in range(args.steps):
                xb, tb = batches[step % len(batches)]
                runner(fetches, feed_dict={g.x: xb, g.t: tb})
            return time.perf_counter() - t0, time.process_time() - c0

    ways = args.ways.split(",")
    times = {w: [] for w in ways}
    cpu = {w: [] for w in ways}
    for r in range(args.repeats):
        for way in (ways if r % 2 == 0 else ways[::-1]):
            wall, used = run_way(way)
            times[way].append(wall)
            cpu[way].append(used)
    print(f"seed TF1 MLP 784-512-256-128-10 relu/he, GD 0.1, batch 100, {args.steps} sess.run steps, "
          f"{args.repeats} repeats, TF {tf.__version__}, {os.cpu_count()} CPUs")
    print(ratio_table(times, cpu=cpu))
    return 0


if __name__ == "__main__":
    sys.exit(main())
