"""Train one run while recording it, and save it: the engine behind ``analyze``, ``sweep`` and ``paper``."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path

from gradscope.errors import GradscopeError, describe_exception
from gradscope.experiments.config import OPTIMIZERS, TrainConfig, run_name
from gradscope.recorders.run_description import versions
from gradscope.recorders.session import RecordingSession
from gradscope.storage import Run, load_run
from gradscope.termination import is_interrupt
from gradscope.data import N_CLASSES


@dataclass
class TrainedRun:
    """A saved run and the model that trained it (None for TF1 graphs, whose session is closed)."""

    run: Run
    model: object = None


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


def build_keras_model(act, init, train: TrainConfig, dataset):
    """The seed MLP for ``train.hidden``, seeded and compiled as every gradscope run is."""
    import keras

    from gradscope.models import build_mlp

    keras.utils.set_random_seed(train.seed)
    model = build_mlp(train.hidden, act=act, init=init, seed=train.seed, input_dim=dataset.x_train.shape[1])
    model.compile(
        optimizer=make_optimizer(train.optimizer, train.lr),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    return model


def train_run(act, init, train: TrainConfig, dataset, run_dir, verbose="auto", command=None,
              callbacks=(), model=None, role=None, linear_baseline=None, epoch_end=None) -> TrainedRun:
    """Train one run while recording, and write its run directory.

    Args:
        callbacks: extra Keras callbacks to pass to ``fit`` besides the monitor (Keras only).
        epoch_end: called with each epoch's logs (loss, accuracy), whichever framework trains:
            where a plan of runs stands (:mod:`gradscope.experiments.progress`).
        model: a model from :func:`build_keras_model` to train (default: a new one).
        role: what the run is for in its report (``"reference"``: the textbook fix trained
            beside the run asked for); stored as ``config.role``.
        linear_baseline: what a logistic regression reaches on the same data and split
            (:func:`gradscope.experiments.linear_baseline.linear_baseline`), stored in the config.

    Returns:
        The saved run and the trained model.

    Raises:
        KeyboardInterrupt, gradscope.termination.Terminated: re-raised after the run directory
            is marked ``interrupted``; other exceptions likewise after it is marked ``failed``.
    """
    config = {
        "framework": train.framework,
        "act": act,
        "init": init,
        **asdict(train),
        "layers": [dataset.x_train.shape[1], *train.hidden, N_CLASSES],
        "data": dataset.info,
        "command": command,
        **({"role": role} if role else {}),
        **({"linear_baseline": linear_baseline} if linear_baseline else {}),
    }
    if train.framework != "tf1":
        from gradscope.recorders.keras_compat import UnsupportedStack, unsupported_stack

        problem = unsupported_stack(model)
        if problem is not None:  # said before a run directory exists that would hold no records
            raise UnsupportedStack(problem)
    session = RecordingSession(run=run_name(act, init), run_dir=run_dir, config=config,
                               name=Path(run_dir).name)  # a sweep's runs are named by their folders
    session.open()
    session.update(versions=versions())
    writer = session.writer  # the monitor or the TF1 recorder records into it; the session ends the run
    status, error, metrics, steps = "failed", None, {}, None
    try:
        if train.framework == "tf1":
            from gradscope.experiments.tf1_training import train_tf1

            if callbacks:
                raise GradscopeError("extra Keras callbacks cannot be used with --framework tf1")
            test_acc, test_loss, steps = train_tf1(act, init, train, dataset, writer, run_name(act, init),
                                                   verbose=bool(verbose), epoch_end=epoch_end)
        else:
            import keras

            model = model if model is not None else build_keras_model(act, init, train, dataset)
            ends = [keras.callbacks.LambdaCallback(on_epoch_end=lambda _, logs: epoch_end(logs))] if epoch_end else []
            test_acc, test_loss, steps = _fit_keras(model, train, dataset, writer, run_name(act, init), verbose,
                                                    [*callbacks, *ends])
        metrics = {"test_accuracy": _finite_or_none(test_acc), "test_loss": _finite_or_none(test_loss)}
        status = "complete"
    except BaseException as exc:
        if is_interrupt(exc):
            status = "interrupted"
        else:
            error = describe_exception(exc)
        raise
    finally:
        session.finish(status, error=error, metrics=metrics, timings={} if steps is None else {"steps": steps})
    return TrainedRun(load_run(run_dir), model)


def _fit_keras(model, train, dataset, writer, name, verbose, callbacks):
    import tensorflow as tf

    from gradscope.recorders.activation_probe import rows_of
    from gradscope.recorders.monitor import GradientMonitor

    tf.config.experimental.enable_op_determinism()
    monitor = GradientMonitor(run=name, writer=writer,  # with its targets: gradient histograms on the probe too
                              probe=(rows_of(dataset.x_train), rows_of(dataset.y_train)))
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
