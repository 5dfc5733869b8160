"""What recording costs, measured two ways in one process: steady state, and whole fits.

Steady state (``--mode steady``): every way gets its own copy of the model (same weights), its
train step traced once, and then runs blocks of 100 steps in turn, A B C ... C B A, so that a
drift of the machine's speed hits every way alike. The ratio of each block to the plain block
of its round is taken, and the median over the rounds reported, for CPU time (the steady
figure on a shared machine) and for wall time. ``plain-again``, a second plain way, shows how
far apart two identical ways land: the noise floor.

Whole fits (``--mode fit``): each repeat builds a fresh model for every way and times a whole
``model.fit`` on arrays, as the seed calls it (2 epochs by default), tracing included, as a
user's ``fit`` pays it; the order of the ways alternates between repeats.

    python benchmarks/overhead.py --data ../shared/data/mnist.npz --model mlp
    python benchmarks/overhead.py --data ../shared/data/mnist.npz --model cnn
    python benchmarks/overhead.py --data ../shared/data/mnist.npz --model deep
    python benchmarks/overhead.py --mode fit --repeats 7 --epochs 2
    python benchmarks/overhead.py --mode second-fit --repeats 9 --epochs 1 --ways plain,gradscope,plain-again

Models: ``mlp``, the seed MLP (784-512-256-128-10, sigmoid, N(0,1), SGD 0.1, batch 100);
``cnn``, a small CNN on 28x28 images (3 conv layers of 32 filters, SGD 0.05, batch 64), where
the step dominates; ``deep``, a 20-layer narrow MLP (20 x 64 units, ReLU/He, SGD 0.05), where
many small variables make the per-variable cost count.

Ways (add ``--ways`` to choose):
  plain            model.fit, no callback
  plain-again      the same as plain: the noise floor
  gradscope        GradientMonitor(): grad_norm of every variable at every step (the default)
  gradscope-all    GradientMonitor(every_step="all"): grad, weight and update norms every step
  gradscope/n10    GradientMonitor(every_n_steps=10): every 10th step
  gradscope/w10    GradientMonitor(window_steps=10): the mean and max of every 10 steps
  gradscope-nohist GradientMonitor(histograms=False): the default without the epoch-end histograms
  gradscope+capture  the default fed by a tf.data pipeline, whose probe rows only the train
                   step sees: it keeps them in the graph (a cond per step)
  tape-probe       a second forward/backward pass on a probe batch after every step (how
                   W&B- and DeepDiagnosis-style tools capture gradients; fit mode only)
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import warnings

from timing import ratio_table  # noqa: E402  (benchmarks/timing.py, beside this script)

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
warnings.filterwarnings("ignore", message=".*shuffle=True.*")

WAYS = {
    "plain": None,
    "plain-again": None,
    "gradscope": {},
    "gradscope-all": {"every_step": "all"},
    "gradscope/n10": {"every_n_steps": 10},
    "gradscope/w10": {"window_steps": 10},
    "gradscope-nohist": {"histograms": False},
    "gradscope+capture": {"_capture": True},
}


def build(kind: str, seed: int = 0):
    import keras

    from gradscope.models import build_mlp

    keras.utils.set_random_seed(seed)
    if kind == "mlp":
        model = build_mlp([512, 256, 128], act="sigmoid", init="normal", seed=seed)
        model.compile(optimizer=keras.optimizers.SGD(0.1), loss="sparse_categorical_crossentropy",
                      metrics=["accuracy"])
        return model, 100
    if kind == "cnn":
        model = keras.Sequential([keras.Input((28, 28, 1)),
                                  keras.layers.Conv2D(32, 3, activation="relu", name="conv_0"),
                                  keras.layers.Conv2D(32, 3, activation="relu", name="conv_1"),
                                  keras.layers.MaxPooling2D(),
                                  keras.layers.Conv2D(32, 3, activation="relu", name="conv_2"),
                                  keras.layers.GlobalAveragePooling2D(),
                                  keras.layers.Dense(10, activation="softmax", name="head")])
        model.compile(optimizer=keras.optimizers.SGD(0.05), loss="sparse_categorical_crossentropy",
                      metrics=["accuracy"])
        return model, 64
    if kind == "deep":
        model = build_mlp([64] * 20, act="relu", init="he", seed=seed)
        model.compile(optimizer=keras.optimizers.SGD(0.05), loss="sparse_categorical_crossentropy",
                      metrics=["accuracy"])
        return model, 100
    raise SystemExit(f"unknown model {kind!r}: choose mlp, cnn or deep")


def data_for(kind: str, source: str, batch: int):
    import tensorflow as tf

    from gradscope import data

    ds = data.load(source)
    x = ds.x_train.reshape(-1, 28, 28, 1) if kind == "cnn" else ds.x_train
    batches = tf.data.Dataset.from_tensor_slices((x, ds.y_train)).batch(batch, drop_remainder=True).cache()
    for _ in batches:  # fill the cache before timing anything
        pass
    return batches, len(ds.x_train) // batch


def monitor_for(way, probe=None):
    """The way's monitor (None for plain). Fed arrays, ``fit`` lets the monitor read its probe rows on
    the host; ``probe`` stands in for them where no ``fit`` runs (steady mode)."""
    from gradscope import GradientMonitor

    if WAYS[way] is None:
        return None
    options = dict(WAYS[way])
    capture = options.pop("_capture", False)
    return GradientMonitor(probe=None if capture else probe, **options)


def steady(args):
    """Paired blocks of steps, each way traced once."""
    import tensorflow as tf

    ways = args.ways.split(",")
    setups = {}
    for way in ways:
        model, batch = build(args.model)
        batches, steps = data_for(args.model, args.data, batch)
        iterator = iter(batches.repeat())
        monitor = monitor_for(way, probe=next(iter(batches))[0].numpy())
        model.make_train_function()
        if monitor is not None:
            monitor.set_model(model)
            monitor.set_params({"epochs": 1, "steps": steps, "verbose": 0})
            monitor.on_train_begin()
            monitor.on_epoch_begin(0)
        step = model.train_function
        for _ in range(args.warmup):
            step(iterator)
        setups[way] = (model, monitor, step, iterator)
    cpu = {way: [] for way in ways}
    wall = {way: [] for way in ways}
    for r in range(args.rounds):
        for way in ways if r % 2 == 0 else ways[::-1]:
            model, monitor, step, iterator = setups[way]
            t0, c0 = time.perf_counter(), time.process_time()
            for _ in range(args.block):
                logs = step(iterator)
            tf.nest.map_structure(lambda t: t.numpy() if hasattr(t, "numpy") else t, logs)  # wait for the last step
            wall[way].append(time.perf_counter() - t0)
            cpu[way].append(time.process_time() - c0)
            if monitor is not None and r % 5 == 4:
                monitor.flush()  # read the ring now and then, as epoch ends do
    for way, (model, monitor, _, _) in setups.items():
        if monitor is not None:
            monitor.on_train_end()
    base = "plain"
    lines = ["| way | CPU ms/step (median) | wall ms/step (median) | CPU ratio (median of rounds) | wall ratio (median of rounds) |",
             "| --- | ---: | ---: | ---: | ---: |"]
    for way in ways:
        c = [a / b for a, b in zip(cpu[way], cpu[base])]
        w = [a / b for a, b in zip(wall[way], wall[base])]
        lines.append(f"| {way} | {1e3 * statistics.median(cpu[way]) / args.block:.3f} | "
                     f"{1e3 * statistics.median(wall[way]) / args.block:.3f} | {statistics.median(c):.3f} | "
                     f"{statistics.median(w):.3f} |")
    return "\n".join(lines)


def tape_probe_callback(probe_x, probe_y):
    """Per-step gradient norms from a second forward/backward pass on a probe batch."""
    import keras
    import tensorflow as tf

    class TapeProbe(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            loss_fn = keras.losses.SparseCategoricalCrossentropy()
            model = self.model

            @tf.function
            def grads():
                with tf.GradientTape() as tape:
                    loss = loss_fn(probe_y, model(probe_x, training=True))
                return [tf.norm(g) for g in tape.gradient(loss, model.trainable_variables)]

            self._fn = grads
            self.norms = []

        def on_train_batch_end(self, batch, logs=None):
            self.norms.append([float(n) for n in self._fn()])

    return TapeProbe()


def whole_fits(args):
    """Fresh models, whole fits, alternating order."""
    import tensorflow as tf

    from gradscope import data

    ways = args.ways.split(",")
    _, batch = build(args.model)
    batches, _ = data_for(args.model, args.data, batch)
    probe = next(iter(batches))
    ds = data.load(args.data)  # arrays, as the seed feeds fit
    x = ds.x_train.reshape(-1, 28, 28, 1) if args.model == "cnn" else ds.x_train
    times = {way: [] for way in ways}
    cpu = {way: [] for way in ways}
    model, _ = build(args.model)
    model.fit(batches.take(5), verbose=0)  # warm TF's kernels and caches once
    for r in range(args.repeats):
        for way in ways if r % 2 == 0 else ways[::-1]:
            model, _ = build(args.model)
            if way == "tape-probe":
                callbacks = [tape_probe_callback(tf.constant(probe[0]), tf.constant(probe[1]))]
            else:
                monitor = monitor_for(way)
                callbacks = [] if monitor is None else [monitor]
            t0, c0 = time.perf_counter(), time.process_time()
            if way == "gradscope+capture":
                model.fit(batches, epochs=args.epochs, verbose=0, callbacks=callbacks)
            else:
                model.fit(x, ds.y_train, batch_size=batch, epochs=args.epochs, shuffle=False, verbose=0,
                          callbacks=callbacks)
            times[way].append(time.perf_counter() - t0)
            cpu[way].append(time.process_time() - c0)
    return ratio_table(times, cpu=cpu, unit="wall s/fit")


def second_fits(args):
    """The cost of a ``fit`` after the first: each way's model (and monitor) is fitted once, untimed,
    then a second ``fit`` of ``--epochs`` is timed, in turn, ``--repeats`` times (no re-trace, no
    repeated set-up should remain: the monitor's second fit should cost what a plain second fit does)."""
    from gradscope import data

    ways = args.ways.split(",")
    _, batch = build(args.model)
    ds = data.load(args.data)
    x = ds.x_train.reshape(-1, 28, 28, 1) if args.model == "cnn" else ds.x_train
    fitted = {}
    for way in ways:
        model, _ = build(args.model)
        monitor = monitor_for(way)
        callbacks = [] if monitor is None else [monitor]
        model.fit(x, ds.y_train, batch_size=batch, epochs=1, shuffle=False, verbose=0, callbacks=callbacks)
        fitted[way] = (model, callbacks)
    times = {way: [] for way in ways}
    cpu = {way: [] for way in ways}
    for r in range(args.repeats):
        for way in ways if r % 2 == 0 else ways[::-1]:
            model, callbacks = fitted[way]
            t0, c0 = time.perf_counter(), time.process_time()
            model.fit(x, ds.y_train, batch_size=batch, epochs=args.epochs, shuffle=False, verbose=0,
                      callbacks=callbacks)
            times[way].append(time.perf_counter() - t0)
            cpu[way].append(time.process_time() - c0)
    table = ratio_table(times, cpu=cpu, unit="wall s/fit")
    import numpy as np

    plain = np.median(times[ways[0]])
    extra = "\n".join(f"{way}: median second fit {np.median(times[way]) - plain:+.3f} s against {ways[0]}"
                       for way in ways[1:])
    return f"{table}\n\n{extra}"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default="sample", help="gradscope data source (default: sample)")
    parser.add_argument("--model", default="mlp", choices=["mlp", "cnn", "deep"])
    parser.add_argument("--mode", default="steady", choices=["steady", "fit", "second-fit"])
    parser.add_argument("--ways", default="plain,gradscope,gradscope-all,gradscope/n10,gradscope/w10,plain-again")
    parser.add_argument("--rounds", type=int, default=20, help="steady: rounds of blocks")
    parser.add_argument("--block", type=int, default=100, help="steady: steps per block")
    parser.add_argument("--warmup", type=int, default=50, help="steady: steps per way before timing")
    parser.add_argument("--repeats", type=int, default=7, help="fit: repeats")
    parser.add_argument("--epochs", type=int, default=2, help="fit: epochs per timed fit")
    args = parser.parse_args(argv)

    import tensorflow as tf

    if args.mode == "steady":
        table = steady(args)
        how = f"steady state: {args.rounds} rounds of {args.block}-step blocks per way, after {args.warmup} steps"
    elif args.mode == "second-fit":
        table = second_fits(args)
        how = f"second fits: {args.repeats} repeats of a {args.epochs}-epoch fit after a first one, same models"
    else:
        table = whole_fits(args)
        how = f"whole fits: {args.repeats} repeats of {args.epochs}-epoch fits, fresh models"
    print(f"{args.model} on {args.data}; {how}; TF {tf.__version__}, {os.cpu_count()} CPUs")
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
