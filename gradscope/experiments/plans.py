"""Plans of runs: the grid of ``analyze`` and the depth sweep of ``sweep``, trained one after another."""

from __future__ import annotations

import itertools
from dataclasses import replace
from pathlib import Path

from gradscope.errors import GradscopeError
from gradscope.experiments.config import TrainConfig, default_out_dir, run_name
from gradscope.storage import RUNS_DIR, load_run
from gradscope.data import N_CLASSES
from gradscope.vocabulary import REFERENCE_ACT, REFERENCE_INIT, ROLE_REFERENCE

#: Training images up to which ``analyze`` and ``sweep`` fit the linear baseline by default: a logistic
#: regression (saga) takes seconds on the 3,500 training images of the bundled sample and ~50 s on 29,400.
LINEAR_BASELINE_MAX_IMAGES = 10_000


def analyze(acts, inits, train: TrainConfig, data="sample", out=None, verbose="auto",
            command=None, echo=print, reference=True, baseline=None, progress=None):
    """Train every (act, init) pair on one data source and save the runs under ``out``.

    Everything is checked before the first run trains, so a typo fails in a second.

    Args:
        data: a data source name or path, or a loaded :class:`gradscope.data.Dataset`.
        baseline: also fit a logistic regression on the same data and split, stored in each
            run's config as ``linear_baseline`` (None: when the training part has at most
            :data:`LINEAR_BASELINE_MAX_IMAGES` images, where it takes seconds).
        progress: where the plan stands at each epoch end (:class:`~gradscope.experiments.progress.PlanProgress`
            is made from the plan: ``True`` prints it in a terminal, with Keras' own progress off).
        reference: with a single (act, init) other than the textbook fix, also train the fix
            (:data:`~gradscope.vocabulary.REFERENCE_ACT` with :data:`~gradscope.vocabulary.REFERENCE_INIT`,
            everything else equal) as the reference run, so the report has a contrast.

    Returns:
        ``(out_dir, runs)``.
    """
    pairs = list(itertools.product(_unique(acts), _unique(inits)))
    if not train.hidden:  # softmax regression: no hidden layer, so no activation to vary or fix
        pairs = list(dict.fromkeys((pairs[0][0], init) for _, init in pairs))
        plan = [(f"softmax-{init}", act, init, []) for act, init in pairs]
        return _run_plan(plan, train, data, out or default_out_dir(), verbose, command, echo, baseline=baseline,
                         progress=progress)
    plan = [(run_name(act, init), act, init, list(train.hidden)) for act, init in pairs]
    references = set()
    if reference and len(pairs) == 1 and pairs[0] != (REFERENCE_ACT, REFERENCE_INIT):
        plan.append((run_name(REFERENCE_ACT, REFERENCE_INIT), REFERENCE_ACT, REFERENCE_INIT, list(train.hidden)))
        references.add(plan[-1][0])
    return _run_plan(plan, train, data, out or default_out_dir(), verbose, command, echo, references=references,
                     baseline=baseline, progress=progress)


def sweep(depths, width, acts, inits, train: TrainConfig, data="sample", out=None, verbose="auto",
          command=None, echo=print, resume=True, baseline=None, progress=None):
    """Train every (depth, act, init) with ``depth`` hidden layers of ``width`` units.

    Runs are named ``<act>-<init>-d<depth>``; with ``resume``, runs already complete in ``out``
    are loaded instead of retrained, so an interrupted sweep continues where it stopped.

    Returns:
        ``(out_dir, runs)``.
    """
    depths = _unique(int(d) for d in depths)
    if not depths or any(d < 1 for d in depths) or width < 1:
        raise GradscopeError("--depth needs positive integers like 2,4,6 and --width a positive integer")
    plan = [(f"{run_name(act, init)}-d{depth}", act, init, [width] * depth)
            for depth, act, init in itertools.product(depths, _unique(acts), _unique(inits))]
    return _run_plan(plan, train, data, out or default_out_dir(prefix="sweep"), verbose, command, echo,
                     resume=resume, baseline=baseline, progress=progress)


def _unique(values):
    return list(dict.fromkeys(values))


def check_names(plan, train):
    """Build every activation and initialiser of a plan once, so that a typo fails before training."""
    from gradscope.models import check_activation, make_initializer, make_tf1_initializer

    for _, act, init, _ in plan:
        check_activation(act)
        make_initializer(init)
        if train.framework == "tf1":
            make_tf1_initializer(init, None)


def _run_plan(plan, train, data, out, verbose, command, echo, resume=False, references=(), baseline=None,
              progress=None):
    from gradscope import data as data_mod
    from gradscope.experiments.train import train_run

    train.check()
    check_names(plan, train)
    if train.framework != "tf1":  # before minutes of data and baselines, not at the first run
        from gradscope.recorders.keras_compat import UnsupportedStack, unsupported_stack

        if (problem := unsupported_stack()) is not None:
            raise UnsupportedStack(problem)
    dataset = data if isinstance(data, data_mod.Dataset) else data_mod.load(data)
    out = Path(out)
    kept = {}  # runs already complete in out (resume): loaded once, not retrained
    for name, *_ in plan if resume else []:
        if (out / RUNS_DIR / name / "run.json").is_file() and (saved := load_run(out / RUNS_DIR / name)).complete:
            kept[name] = saved
    linear = None
    if baseline is None:  # on by default where it costs seconds (see LINEAR_BASELINE_MAX_IMAGES)
        baseline = dataset.info.get("n_train", len(dataset.x_train)) <= LINEAR_BASELINE_MAX_IMAGES
    if baseline and any(name not in kept for name, *_ in plan):
        from gradscope.experiments.linear_baseline import linear_baseline

        linear = linear_baseline(dataset, seed=train.seed)
        echo(f"== linear baseline: {linear['model']} on the same data and split: test accuracy "
             f"{linear['test_accuracy']:.4f} ({linear['seconds']} s)")
    from gradscope.experiments.progress import plan_progress

    progress = plan_progress(progress, len(plan) - len(kept), train.epochs)
    if progress is not None and progress.enabled:
        verbose = 0  # the plan's line says what Keras' own would, and the time left
    runs = []
    for name, act, init, hidden in plan:
        run_dir = out / RUNS_DIR / name
        if name in kept:
            echo(f"== {name}: already complete, kept")
            runs.append(kept[name])
            continue
        cfg = replace(train, hidden=hidden)
        sizes = [dataset.x_train.shape[1], *hidden, N_CLASSES]
        role = ROLE_REFERENCE if name in references else None
        echo(f"== {name}{f' ({role})' if role else ''}: {'-'.join(map(str, sizes))}, "
             f"{dataset.info['n_train']} training images, {train.epochs} {'steps' if train.full_batch else 'epochs'}")
        runs.append(train_run(act, init, cfg, dataset, run_dir, verbose=verbose, command=command, role=role,
                              linear_baseline=linear,
                              callbacks=progress.callbacks_for(name) if progress is not None else ()).run)
    return out, runs

