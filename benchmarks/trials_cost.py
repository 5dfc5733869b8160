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
    python benchmarks/trials_cost.py --breakdown       # where one call's CPU time goes, then the default run's

``--breakdown`` times one more call of the trials by part, in CPU seconds: the traces of train steps
(TensorFlow's graph building for Keras' ``multi_step_on_iterator``), the arms' model builds (each
with its first held-out scoring), the held-out scorings, and the training steps taken.
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


def _a_step_function(args, kwargs) -> bool:
    """Whether TensorFlow is building the graph of Keras' step function (train, test or predict: the trials
    call only ``fit``, and score eagerly)."""
    return "step_on_iterator" in str(kwargs.get("name", args[0] if args else ""))


def breakdown(dataset, folder, budget) -> dict:
    """CPU seconds of one call of the trials by part (see the module docstring), and the steps taken."""
    from tensorflow.python.framework import func_graph

    from gradscope.trials import runner

    spent = {"traces of train steps": 0.0, "model builds": 0.0, "held-out scorings": 0.0}
    counts = dict.fromkeys(spent, 0)
    saved = [(func_graph, "func_graph_from_py_func"), (runner._Arm, "build"), (runner._Scorer, "check")]
    originals = [getattr(owner, name) for owner, name in saved]
    depth = [0]

    def timed(part, f, only=None):
        def wrapper(*args, **kwargs):
            depth[0] += 1
            start = time.process_time()
            try:
                return f(*args, **kwargs)
            finally:
                depth[0] -= 1
                if (part != "traces of train steps" or depth[0] == 0) and (only is None or only(args, kwargs)):
                    spent[part] += time.process_time() - start
                    counts[part] += 1
        return wrapper

    func_graph.func_graph_from_py_func = timed("traces of train steps", originals[0],
                                               only=_a_step_function)
    runner._Arm.build = timed("model builds", originals[1])
    runner._Scorer.check = timed("held-out scorings", originals[2])
    try:
        start = time.process_time()
        result = trials(dataset, folder, budget)
        total = time.process_time() - start
    finally:
        for (owner, name), original in zip(saved, originals):
            setattr(owner, name, original)
    return {"total": total, "parts": spent, "counts": counts, "steps": result.summary["used_steps"]}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--budget", type=int, default=None, help="trial budget in steps (default: TrialSettings')")
    parser.add_argument("--data", default="sample")
    parser.add_argument("--breakdown", action="store_true", help="also time one call of the trials by part")
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
    if args.breakdown:
        parts = breakdown(dataset, os.path.join(work, "breakdown"), args.budget)
        start = time.process_time()
        default_run(dataset, os.path.join(work, "breakdown-run"))
        run_cpu = time.process_time() - start
        print(f"\none call of the trials, CPU: {parts['total']:.2f} s (the default run: {run_cpu:.2f} s); "
              f"{parts['steps']} training steps")
        for part, seconds in parts["parts"].items():
            print(f"  {part}: {seconds:.2f} s ({parts['counts'][part]})")
        print("  (a model build includes its first held-out scoring, which is also counted among the scorings)")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    sys.exit(main())
