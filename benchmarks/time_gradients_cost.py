"""What the gradients through time cost: whole fits of a recurrent model, with and without them.

An LSTM and a tanh SimpleRNN (32 units) on the adding problem (T steps, 4,000 sequences, batch
32), each way in turn in one process, the order alternating between repeats:

  plain            model.fit, no callback
  gradscope/no-probe   GradientMonitor(probe=False): step norms only, no epoch-end probe
  gradscope        GradientMonitor(): step norms, plus at each epoch end the activation
                   statistics and ||dL/dh_t|| per time step on 256 probe rows (one extra
                   forward/backward pass per recurrent layer)

Printed: best and median wall and CPU seconds per fit and their ratios to plain (the spread
between repeats of plain is the noise floor).

    python benchmarks/time_gradients_cost.py --length 100 --epochs 3 --repeats 3
"""

from __future__ import annotations

import argparse
import os
import time

from timing import ratio_table  # noqa: E402  (benchmarks/timing.py, beside this script)

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

WAYS = {"plain": None, "gradscope/no-probe": {"probe": False}, "gradscope": {}}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--length", type=int, default=100)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--models", default="lstm,tanh")
    args = parser.parse_args(argv)

    from gradscope import GradientMonitor
    from gradscope.experiments.adding_problem import adding_problem
    from gradscope.experiments.le2015 import build_model

    x, y = adding_problem(4000, args.length, seed=0)
    for kind in args.models.split(","):
        walls = {w: [] for w in WAYS}
        cpus = {w: [] for w in WAYS}
        for repeat in range(args.repeats):
            order = list(WAYS) if repeat % 2 == 0 else list(reversed(WAYS))
            for way in order:
                model = build_model(kind, args.length, 32, 1e-3, 1.0, seed=0)
                callbacks = [] if WAYS[way] is None else [GradientMonitor(**WAYS[way])]
                t0, c0 = time.perf_counter(), time.process_time()
                model.fit(x, y, epochs=args.epochs, batch_size=32, verbose=0, callbacks=callbacks)
                walls[way].append(time.perf_counter() - t0)
                cpus[way].append(time.process_time() - c0)
        print(f"\n{kind}, adding problem of {args.length} steps, {args.epochs} epochs of 125 steps, "
              f"{args.repeats} repeats (wall s per fit; CPU-time ratio of the best fits)")
        print(ratio_table(walls, cpu=cpus))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
