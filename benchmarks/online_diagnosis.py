"""What diagnosing during training costs: many short epochs, with and without ``diagnose=True``.

A small MLP trains for many short epochs (10 steps each) three ways, alternating, in this one
process: plain ``fit``, with a GradientMonitor, and with ``GradientMonitor(diagnose=True)``,
which judges the records at every epoch end. Each epoch adds one window to the diagnosis, so
its cost per epoch should not grow with the run's length: the table shows the seconds of the
first and the last hundred epochs of each way.

    python benchmarks/online_diagnosis.py --epochs 300 --repeats 3
"""

from __future__ import annotations

import argparse
import os
import sys
import time

from timing import ratio_table  # noqa: E402  (benchmarks/timing.py, beside this script)

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=300)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)

    import warnings

    import keras
    import numpy as np

    from gradscope import GradientMonitor

    warnings.filterwarnings("ignore")
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 20)).astype("float32")
    y = (x[:, 0] + x[:, 1] > 0).astype("int64")

    class EpochClock(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.ends = []

        def on_epoch_end(self, epoch, logs=None):
            self.ends.append(time.perf_counter())

    def fit(way):
        keras.utils.set_random_seed(0)
        model = keras.Sequential([keras.Input((20,)), keras.layers.Dense(32, activation="relu"),
                                  keras.layers.Dense(32, activation="relu"), keras.layers.Dense(2, activation="softmax")])
        model.compile(optimizer=keras.optimizers.SGD(0.05), loss="sparse_categorical_crossentropy",
                      metrics=["accuracy"])
        clock = EpochClock()
        callbacks = {"plain": [], "monitor": [GradientMonitor()], "monitor+diagnose": [GradientMonitor(diagnose=True)]}[way]
        t0, c0 = time.perf_counter(), time.process_time()
        model.fit(x, y, batch_size=20, epochs=args.epochs, verbose=0, callbacks=[*callbacks, clock])
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        ends = np.array([t0, *clock.ends])
        return wall, cpu, ends[100] - ends[0], ends[-1] - ends[-101]

    ways = ["plain", "monitor", "monitor+diagnose"]
    fit("plain")  # warm TensorFlow up
    walls, cpus, first, last = ({w: [] for w in ways} for _ in range(4))
    for r in range(args.repeats):
        for way in ways if r % 2 == 0 else ways[::-1]:
            wall, cpu, a, b = fit(way)
            walls[way].append(wall)
            cpus[way].append(cpu)
            first[way].append(a)
            last[way].append(b)
    print(f"{args.epochs} epochs of 10 steps (MLP 20-32-32-2, batch 20), {args.repeats} repeats")
    print(ratio_table(walls, cpu=cpus, unit="wall s/fit"))
    print()
    print("| way | first 100 epochs (s, median) | last 100 epochs (s, median) | last / first |")
    print("| --- | ---: | ---: | ---: |")
    for way in ways:
        a, b = float(np.median(first[way])), float(np.median(last[way]))
        print(f"| {way} | {a:.2f} | {b:.2f} | {b / a:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
