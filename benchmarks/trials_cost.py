"""What trials cost, against the run they are meant to be cheaper than: paired, in one process.

The issue's target: ``try_fixes`` on the seed MLP (784-512-256-128-10, sigmoid, N(0, 1), SGD
0.1, batch 100) with the 5,000-image MNIST sample takes at most the time of the default run
itself, which is what ``gradscope analyze`` does for its one run: build the model, ``fit`` 10
epochs with a GradientMonitor (probe included) writing a run directory, evaluate on the test
part. Each repeat runs, in alternating order, the default run, the trials (every arm, their
run directories and trials.json), and the default run again (``default-again``: the noise
floor). Wall and CPU time of each are kept; the table gives the best and median and their
ratios to the default run.

    python benchmarks/trials_cost.py                   # 3 repeats, default budget
    python benchmarks/trials_cost.py --repeats 5 --budget 800
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


def default_run(dataset, folder):
    """What ``gradscope analyze --act sigmoid --init normal --no-reference --no-baseline`` trains."""
    from gradscope.experiments.config import TrainConfig
    from gradscope.experiments.train import train_run

    train_run("sigmoid", "normal", TrainConfig(), dataset, folder, verbose=0)


def trials(dataset, folder, budget):
    from gradscope import try_fixes
    from gradscope.experiments.config import TrainConfig
    from gradscope.experiments.train import build_keras_model

    model = build_keras_model("sigmoid", "normal", TrainConfig(), dataset)
    return try_fixes(model, dataset.x_train, dataset.y_train, batch_size=100, budget_steps=budget, out=folder,
                     verbose=False)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--budget", type=int, default=None, help="trial budget in steps (default: TrialSettings')")
    parser.add_argument("--data", default="sample")
    args = parser.parse_args(argv)
    warnings.filterwarnings("ignore")
    from gradscope import data

    dataset = data.load(args.data)
    work = tempfile.mkdtemp(prefix="trials-cost-")
    ways = {"default run": lambda f: default_run(dataset, f), "trials": lambda f: trials(dataset, f, args.budget),
            "default-again": lambda f: default_run(dataset, f)}
    trials(dataset, os.path.join(work, "warm-trials"), args.budget)  # first calls of the process: imports, kernels
    default_run(dataset, os.path.join(work, "warm-run"))
    wall = {w: [] for w in ways}
    cpu = {w: [] for w in ways}
    last = None
    for r in range(args.repeats):
        order = list(ways) if r % 2 == 0 else list(reversed(ways))
        for way in order:
            folder = os.path.join(work, f"{way.replace(' ', '-')}-{r}")
            t, c = time.perf_counter(), time.process_time()
            out = ways[way](folder)
            wall[way].append(time.perf_counter() - t)
            cpu[way].append(time.process_time() - c)
            if way == "trials":
                last = out
        print(f"repeat {r + 1}: " + ", ".join(f"{w} {wall[w][-1]:.2f} s" for w in ways), flush=True)
    print("\nwall time\n" + ratio_table(wall, base="default run", cpu=cpu))
    print(f"\nlast trials: {last.summary['used_steps']} steps of a {last.summary['budget_steps']}-step budget, "
          f"up to {last.summary['max_steps']} per arm; {last.verdict()}")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    sys.exit(main())
