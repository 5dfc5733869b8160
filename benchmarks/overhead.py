"""Wall-time overhead of recording gradients while training the seed MLP on MNIST.

Each repeat builds a fresh seed MLP (784-512-256-128-10, sigmoid, N(0,1), SGD lr 0.1) for every
way of recording and times ``model.fit`` on the same cached batches of 100 images, alternating
the order of the ways between repeats; everything runs in this one process. Fresh models mean
every way pays its one trace of the train step inside the timing, as a user's ``fit`` does, and
that memory-layout luck (a few percent on this machine) varies across repeats instead of
sticking to one way. The machine (2 shared cores) now and then slows a whole fit by ~30%, so
ratios use the fastest repeat of each way (medians are shown too).

    python benchmarks/overhead.py --data ../shared/data/mnist.npz --repeats 7 --epochs 2

Ways compared:
  plain             model.fit with no callback
  plain-again       the same as plain: how far apart two identical ways land (the noise floor)
  gradscope         GradientMonitor(): every step, all four metrics, activation stats per epoch
  gradscope/10      GradientMonitor(window_steps=10)
  tape-probe        a callback computing tf.GradientTape gradients on a probe batch after
                    every step (how W&B-style and DeepDiagnosis-style tools capture gradients)
  tensorboard-hist  keras.callbacks.TensorBoard(histogram_freq=1) (weights only; no gradients)
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import warnings

from timing import ratio_table  # noqa: E402  (benchmarks/timing.py, beside this script)

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
warnings.filterwarnings("ignore", message=".*shuffle=True.*")


def tape_probe_callback(probe_x, probe_y):
    """Per-step gradient norms from a second forward/backward pass on a probe batch."""
    import keras
    import tensorflow as tf

    class TapeProbe(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.norms = []
            self._fn = None

        def on_train_begin(self, logs=None):
            loss_fn = keras.losses.SparseCategoricalCrossentropy()
            model = self.model

            @tf.function
            def grads():
                with tf.GradientTape() as tape:
                    loss = loss_fn(probe_y, model(probe_x, training=True))
                return [tf.norm(g) for g in tape.gradient(loss, model.trainable_variables)]

            self._fn = grads

        def on_train_batch_end(self, batch, logs=None):
            self.norms.append([float(n) for n in self._fn()])

    return TapeProbe()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default="sample", help="gradscope data source (default: sample)")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--epochs", type=int, default=2, help="epochs per timed fit")
    parser.add_argument("--ways", default="plain,gradscope,gradscope/10,tape-probe,tensorboard-hist,plain-again")
    args = parser.parse_args(argv)

    import keras
    import tensorflow as tf

    from gradscope import GradientMonitor, data
    from gradscope.models import build_mlp

    ds = data.load(args.data)
    x, y = ds.x_train, ds.y_train
    batches = tf.data.Dataset.from_tensor_slices((x, y)).batch(100).cache()
    for _ in batches:  # fill the cache before timing anything
        pass
    probe_x, probe_y = tf.constant(x[:100]), tf.constant(y[:100])
    tb_dir = tempfile.mkdtemp(prefix="gradscope-bench-tb-")

    def callbacks_for(way):
        if way in ("plain", "plain-again"):
            return []
        if way == "gradscope":
            return [GradientMonitor()]
        if way.startswith("gradscope/"):
            return [GradientMonitor(window_steps=int(way.split("/")[1]))]
        if way == "tape-probe":
            return [tape_probe_callback(probe_x, probe_y)]
        if way == "tensorboard-hist":
            return [keras.callbacks.TensorBoard(log_dir=tb_dir, histogram_freq=1)]
        raise SystemExit(f"unknown way {way!r}")

    def fresh_model():
        keras.utils.set_random_seed(0)
        m = build_mlp([512, 256, 128], act="sigmoid", init="normal", seed=0)
        m.compile(optimizer=keras.optimizers.SGD(0.1), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
        return m

    ways = args.ways.split(",")
    fresh_model().fit(batches.take(5), verbose=0)  # warm TF's kernels and caches once
    times = {way: [] for way in ways}
    cpu = {way: [] for way in ways}
    for r in range(args.repeats):
        order = ways if r % 2 == 0 else ways[::-1]
        for way in order:
            model, cbs = fresh_model(), callbacks_for(way)
            t0, c0 = time.perf_counter(), time.process_time()
            model.fit(batches, epochs=args.epochs, verbose=0, callbacks=cbs)
            times[way].append(time.perf_counter() - t0)
            cpu[way].append(time.process_time() - c0)
    steps = -(-len(x) // 100)
    print(f"seed MLP 784-512-256-128-10, sigmoid/N(0,1), SGD 0.1, batch 100, {len(x)} images, "
          f"{args.epochs} epoch(s) = {steps * args.epochs} steps per fit, {args.repeats} repeats, "
          f"TF {tf.__version__}, {os.cpu_count()} CPUs")
    print(ratio_table(times, cpu=cpu, unit="wall s/fit"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
