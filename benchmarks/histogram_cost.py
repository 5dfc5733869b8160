"""What the histograms add to an epoch end: the probes with and without them, paired, in one process.

For each model the monitor's epoch-end probes (:class:`gradscope.recorders.epoch_probes.EpochProbes`,
on a probe batch of 256 rows with its targets) run ``--repeats`` times each way, in turn (A B B A
...), after one warm-up call each (the traces); the CPU and wall time of one epoch end is the median.
``probes`` is the activation statistics alone (what an epoch end cost before histograms);
``probes+histograms`` adds the gradient, weight and activation histograms; ``probes-again`` is the
first way again: the noise floor.

    python benchmarks/histogram_cost.py --data ../shared/data/mnist.npz

Models: the seed MLP (784-512-256-128-10, sigmoid, N(0,1)) and a 50-layer net (50 x 64 units, ReLU,
He) on the same inputs.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def build(kind: str):
    import keras

    from gradscope.models import build_mlp

    hidden = [512, 256, 128] if kind == "seed-mlp" else [64] * 50
    act, init = ("sigmoid", "normal") if kind == "seed-mlp" else ("relu", "he")
    model = build_mlp(hidden, act=act, init=init, seed=0)
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss="sparse_categorical_crossentropy")
    return model


def main(argv=None):
    import numpy as np

    from gradscope.recorders.epoch_probes import EpochProbes
    from gradscope.recorders.layer_names import layer_table

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=None, help="an MNIST .npz (x_train, y_train); default: random pixels")
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args(argv)
    if args.data:
        d = np.load(args.data)
        x, y = d["x_train"][:256].reshape(256, -1).astype("float32") / 255, d["y_train"][:256]
    else:
        rng = np.random.default_rng(0)
        x, y = rng.uniform(0, 1, (256, 784)).astype("float32"), rng.integers(0, 10, 256)
    print("| model | way | CPU ms / epoch end (median) | wall ms (median) | ratio to probes (CPU) | histogram records |")
    print("| --- | --- | ---: | ---: | ---: | ---: |")
    for kind in ("seed-mlp", "50-layer"):
        model = build(kind)
        table = layer_table(model)
        ways = {}
        for name, histograms in (("probes", False), ("probes+histograms", True), ("probes-again", False)):
            probes = EpochProbes(probe=(x, y), histograms=histograms)
            probes.setup(model, table, None, through_time=True, can_capture=False)
            probes.records("r", 0, 0)  # the traces
            ways[name] = probes
        times = {name: ([], []) for name in ways}
        counts = {}
        for r in range(args.repeats):
            for name in (list(ways) if r % 2 == 0 else list(ways)[::-1]):
                cpu, wall = time.process_time(), time.perf_counter()
                frame = ways[name].records("r", r, r)
                times[name][0].append(time.process_time() - cpu)
                times[name][1].append(time.perf_counter() - wall)
                counts[name] = int(frame["metric"].str.endswith("_hist").sum())
        base = statistics.median(times["probes"][0])
        for name, (cpu, wall) in times.items():
            print(f"| {kind} | {name} | {1000 * statistics.median(cpu):.1f} | {1000 * statistics.median(wall):.1f} | "
                  f"{statistics.median(cpu) / base:.2f} | {counts[name]} |")


if __name__ == "__main__":
    main()
