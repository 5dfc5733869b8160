"""Train the seed MLP with a GradientMonitor and save the run: the engine behind ``analyze``."""

from __future__ import annotations

import datetime as _dt
import itertools
import math
import platform
import sys
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from gradscope import __version__
from gradscope.diagnosis import diagnose
from gradscope.errors import GradscopeError
from gradscope.storage import RUNS_DIR, RunWriter, load_run

OPTIMIZERS = ("sgd", "adam")
FRAMEWORKS = ("keras", "tf1")


@dataclass
class TrainConfig:
    """Settings shared by every run of one ``analyze`` invocation (defaults: the CLI's)."""

    hidden: list = field(default_factory=lambda: [512, 256, 128])
    optimizer: str = "sgd"
    lr: float = 0.1
    batch_size: int = 100
    epochs: int = 10
    seed: int = 0
    val_split: float = 0.0
    framework: str = "keras"
    full_batch: bool = False

    def check(self) -> None:
        """Raise :class:`GradscopeError` for settings that cannot train."""
        if self.optimizer not in OPTIMIZERS:
            raise GradscopeError(f"unknown optimizer {self.optimizer!r}; choose one of {OPTIMIZERS}")
        if not (self.lr > 0 and math.isfinite(self.lr)):
            raise GradscopeError(f"--lr must be a positive number; got {self.lr}")
        if self.batch_size < 1:
            raise GradscopeError(f"--batch-size must be at least 1; got {self.batch_size}")
        if self.epochs < 1:
            raise GradscopeError(f"--epochs must be at least 1; got {self.epochs}")
        if not 0 <= self.val_split < 1:
            raise GradscopeError(f"--val-split must be in [0, 1); got {self.val_split}")
        if self.framework not in FRAMEWORKS:
            raise GradscopeError(f"unknown framework {self.framework!r}; choose one of {FRAMEWORKS}")


def run_name(act: str, init: str) -> str:
    return f"{act}-{init}"


def default_out_dir(base="reports", prefix="analyze") -> Path:
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    out = Path(base) / f"{prefix}-{stamp}"
    n = 1
    while out.exists():
        n += 1
        out = Path(base) / f"{prefix}-{stamp}-{n}"
    return out


def versions() -> dict:
    import keras
    import numpy
    import tensorflow as tf

    return {
        "gradscope": __version__,
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "numpy": numpy.__version__,
        "python": platform.python_version(),
    }


def _finite_or_none(x):
    x = float(x)
    return x if math.isfinite(x) else None


def make_optimizer(name: str, lr: float):
    import keras

    if name == "sgd":
        return keras.optimizers.SGD(learning_rate=lr)
    if name == "adam":
        return keras.optimizers.Adam(learning_rate=lr)
    raise GradscopeError(f"unknown optimizer {name!r}; choose one of {OPTIMIZERS}")


def train_run(act, init, train: TrainConfig, dataset, run_dir, verbose="auto", command=None,
              callbacks=()):
    """Train one run while recording, and write its run directory.

    Args:
        callbacks: extra Keras callbacks to pass to ``fit`` besides the monitor (Keras only).

    Returns:
        The saved :class:`gradscope.storage.Run`.

    Raises:
        KeyboardInterrupt: re-raised after the run directory is marked ``interrupted``;
            other exceptions likewise after it is marked ``failed``.
    """
    name = run_name(act, init)
    config = {
        "framework": train.framework,
        "act": act,
        "init": init,
        **asdict(train),
        "layers": [dataset.x_train.shape[1], *train.hidden, 10],
        "data": dataset.info,
        "versions": versions(),
        "command": command,
    }
    writer = RunWriter(run_dir, config)
    status, error, metrics, steps = "failed", None, {}, None
    started = time.perf_counter()
    try:
        trainer = _train_tf1 if train.framework == "tf1" else _train_keras
        test_acc, test_loss, steps = trainer(act, init, train, dataset, writer, name, verbose, callbacks)
        metrics = {"test_accuracy": _finite_or_none(test_acc), "test_loss": _finite_or_none(test_loss)}
        status = "complete"
    except KeyboardInterrupt:
        status = "interrupted"
        raise
    except Exception as exc:
        error = f"{type(exc).__name__}: {exc}"
        raise
    finally:
        timings = {"train_seconds": round(time.perf_counter() - started, 3)}
        if steps is not None:
            timings["steps"] = steps
        run = load_run(run_dir)  # what reached the disk, so a partial run is diagnosed too
        findings = [f.to_dict() for f in diagnose(run.records, run.config)]
        writer.finish(status, error=error, metrics=metrics, timings=timings, diagnosis=findings)
    return load_run(run_dir)


def _train_keras(act, init, train, dataset, writer, name, verbose, callbacks):
    import keras
    import tensorflow as tf

    from gradscope.activations import PROBE_SIZE
    from gradscope.callbacks.gradient_monitor import GradientMonitor
    from gradscope.models import build_mlp

    keras.utils.set_random_seed(train.seed)
    tf.config.experimental.enable_op_determinism()
    model = build_mlp(train.hidden, act=act, init=init, seed=train.seed)
    model.compile(
        optimizer=make_optimizer(train.optimizer, train.lr),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    monitor = GradientMonitor(run=name, writer=writer, probe=dataset.x_train[:PROBE_SIZE])
    try:
        model.fit(
            dataset.x_train,
            dataset.y_train,
            batch_size=len(dataset.x_train) if train.full_batch else train.batch_size,
            epochs=train.epochs,
            validation_split=train.val_split,
            callbacks=[monitor, *callbacks],
            verbose=verbose,
        )
    finally:
        monitor.close()  # keeps the steps of an unfinished epoch
    test_loss, test_acc = model.evaluate(dataset.x_test, dataset.y_test, verbose=0)
    return test_acc, test_loss, int(model.optimizer.iterations.numpy())


def _train_tf1(act, init, train, dataset, writer, name, verbose, callbacks):
    from gradscope.tf1 import mlp

    if callbacks:
        raise GradscopeError("extra Keras callbacks cannot be used with --framework tf1")
    if train.val_split:
        raise GradscopeError("--val-split is not supported with --framework tf1")
    return mlp.train(act, init, train, dataset, writer, name, verbose=bool(verbose))


def analyze(acts, inits, train: TrainConfig, data_source="sample", out=None, verbose="auto",
            command=None, echo=print):
    """Train every (act, init) pair on one data source and save the runs under ``out``.

    Everything is checked before the first run trains, so a typo fails in a second.

    Returns:
        ``(out_dir, runs)``.
    """
    plan = [(run_name(act, init), act, init, list(train.hidden))
            for act, init in itertools.product(_unique(acts), _unique(inits))]
    return _run_plan(plan, train, data_source, out or default_out_dir(), verbose, command, echo)


def sweep(depths, width, acts, inits, train: TrainConfig, data_source="sample", out=None, verbose="auto",
          command=None, echo=print, resume=True):
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
    return _run_plan(plan, train, data_source, out or default_out_dir(prefix="sweep"), verbose, command, echo,
                     resume=resume)


def _unique(values):
    return list(dict.fromkeys(values))


def _check_names(plan, train):
    from gradscope.models import check_activation, make_initializer

    for _, act, init, _ in plan:
        check_activation(act)
        make_initializer(init)
        if train.framework == "tf1":
            from gradscope.tf1.mlp import initializer

            initializer(init, None)


def _run_plan(plan, train, data_source, out, verbose, command, echo, resume=False):
    from gradscope import data as data_mod

    train.check()
    _check_names(plan, train)
    dataset = data_mod.load(data_source)
    out = Path(out)
    runs = []
    for name, act, init, hidden in plan:
        run_dir = out / RUNS_DIR / name
        if resume and (run_dir / "run.json").is_file():
            saved = load_run(run_dir)
            if saved.status == "complete":
                echo(f"== {name}: already complete, kept")
                runs.append(saved)
                continue
        cfg = replace(train, hidden=hidden)
        echo(f"== {name}: {'-'.join(map(str, [784, *hidden, 10]))}, {dataset.info['n_train']} training images, "
             f"{train.epochs} {'steps' if train.full_batch else 'epochs'}")
        runs.append(train_run(act, init, cfg, dataset, run_dir, verbose=verbose, command=command))
    return out, runs


def command_line() -> str:
    """The command that started this process, for the record."""
    prog = Path(sys.argv[0]).name if sys.argv else "gradscope"
    return " ".join([prog, *sys.argv[1:]])
