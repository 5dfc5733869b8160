"""GradientMonitor: per-layer gradient, weight and update norms of every optimizer step."""

from __future__ import annotations

import atexit
import warnings
import weakref

import keras
import numpy as np
import pandas as pd
import tensorflow as tf

from gradscope import records as rec
from gradscope.activations import PROBE_SIZE, ActivationProbe, activation_records, watched_layers
from gradscope.keras_layers import layer_table
from gradscope.recording import StepRecorder
from gradscope.sink import RecordSink
from gradscope.storage import RunWriter

DEFAULT_BUFFER_STEPS = 1024


def _innermost_optimizer(optimizer):
    while hasattr(optimizer, "inner_optimizer"):  # LossScaleOptimizer and friends
        optimizer = optimizer.inner_optimizer
    return optimizer


def _is_distributed(model) -> bool:
    strategy = getattr(model, "distribute_strategy", None) or tf.distribute.get_strategy()
    return strategy.num_replicas_in_sync > 1 or type(strategy).__name__ != "_DefaultDistributionStrategy"


def _needs_copy(optimizer, variables, model) -> bool:
    """True when the update must be measured against a copy (see StepRecorder)."""
    return bool(
        not type(optimizer).__module__.startswith("keras.")
        or getattr(optimizer, "weight_decay", None)
        or getattr(optimizer, "use_ema", False)
        or getattr(optimizer, "gradient_accumulation_steps", None)
        or any(getattr(v, "constraint", None) is not None for v in variables)
        or _is_distributed(model)
    )


class GradientMonitor(keras.callbacks.Callback):
    """Records per-layer gradient, weight and update norms of every optimizer step.

    The norms are computed inside the compiled train step from the gradients the optimizer
    applies (after loss-scale unscaling, clipping and cross-replica reduction), kept on the
    device and brought to the host once per epoch, so Keras keeps dispatching steps
    asynchronously. No second forward/backward pass is made.

    For each trainable variable and step it records ``grad_norm``, ``weight_norm`` (after the
    step), ``update_norm`` (norm of the change the step made) and ``update_ratio``
    (``update_norm / weight_norm``). At each epoch end it records the Keras logs (``loss``,
    ``accuracy``, ``val_*``) and, on a probe batch, ``act_mean``, ``act_std``,
    ``saturated_frac`` and ``dead_frac`` of every layer with a non-linear activation
    (definitions in :mod:`gradscope.activations`).

    Args:
        run: run id written in the ``run`` column.
        run_dir: a run directory whose ``records.csv`` is appended at each epoch end.
        config: configuration stored in ``run.json`` when ``run_dir`` is given.
        writer: an existing :class:`gradscope.storage.RunWriter` (instead of ``run_dir``).
        every_n_steps: aggregate this many steps per record in the graph: ``grad_norm`` is
            their mean, ``grad_norm_max`` their max, ``weight_norm`` and ``update_norm`` those
            of the window's last step. 1 (default) records every step.
        probe: inputs (or an ``(x, y)`` tuple, or a ``tf.data.Dataset``) for the activation
            statistics; by default the first training batch (at most 256 rows) is kept.
            ``False`` turns activation statistics off.
        tensorboard_dir: also write each variable's ``grad_norm`` as TensorBoard scalars there.
        buffer_steps: rows kept on the device between epoch ends (default: the epoch's steps,
            or 1024 when Keras does not know them; the buffer grows, with a warning, if an
            epoch has more).
        diagnose: run :func:`gradscope.diagnosis.diagnose` at each epoch end and warn, once per
            kind, as soon as a finding appears (its summary and the recommended fix); the
            findings so far are in ``monitor.findings``.
        stop_on: finding kinds that stop training (``model.stop_training = True``), e.g.
            ``("non_finite", "exploding_gradient")``; implies ``diagnose=True``.

    Example:
        >>> from gradscope import GradientMonitor
        >>> monitor = GradientMonitor(run="relu-he", run_dir="reports/relu-he")
        >>> model.fit(x, y, epochs=2, callbacks=[monitor])            # doctest: +SKIP
        >>> monitor.records.query("metric == 'grad_norm'").head()     # doctest: +SKIP
    """

    def __init__(
        self,
        run="run",
        run_dir=None,
        config=None,
        writer=None,
        every_n_steps=1,
        probe=None,
        tensorboard_dir=None,
        buffer_steps=None,
        diagnose=False,
        stop_on=(),
    ):
        super().__init__()
        if int(every_n_steps) < 1:
            raise ValueError(f"every_n_steps must be a positive integer; got {every_n_steps!r}")
        self.run = run
        self.run_dir = run_dir
        self.config = dict(config or {})
        self.writer = writer
        self.every_n_steps = int(every_n_steps)
        self.probe = probe
        if tensorboard_dir is not None:
            try:
                import tensorboard  # noqa: F401
            except ImportError:
                raise ImportError(
                    "GradientMonitor(tensorboard_dir=...) needs the tensorboard package: "
                    "pip install 'gradscope[tensorboard]'"
                ) from None
        self.tensorboard_dir = tensorboard_dir
        self.buffer_steps = buffer_steps
        from gradscope.diagnosis import KINDS

        unknown = sorted(set(stop_on) - set(KINDS))
        if unknown:
            raise ValueError(f"stop_on has unknown kind(s) {unknown}; choose from {list(KINDS)}")
        self.stop_on = tuple(stop_on)
        self.diagnose = bool(diagnose or self.stop_on)
        self.findings: list = []
        self._sink = RecordSink(writer)
        self._recorder: StepRecorder | None = None
        self._epoch = 0
        self._meta: list[tuple[str, int, str]] = []
        self._probe_x = None
        self._probe_capture = None
        self._activation_probe = None
        self._tb_writer = None
        self._atexit = None

    # --- public -------------------------------------------------------------------------

    @property
    def records(self) -> pd.DataFrame:
        """All records so far, with the schema columns of :mod:`gradscope.records`."""
        return self._sink.records

    def flush(self) -> pd.DataFrame:
        """Bring the steps recorded since the last epoch end to the host (and to ``run_dir``)."""
        if self._recorder is None:
            return rec.empty()
        rows, values, lost = self._recorder.read()
        if lost:
            warnings.warn(
                f"GradientMonitor kept {rows} of the {rows + lost} records of epoch {self._epoch}; "
                f"pass buffer_steps>={rows + lost} to keep them all (the buffer has grown for the "
                "next epochs).",
                stacklevel=2,
            )
            self._retrace()
        # Each optimizer step is recorded once, in order, and advances `iterations` by one, so
        # the step of each row follows from the first step of the period.
        if self.every_n_steps == 1:
            self._next_step += lost
            steps = self._next_step + np.arange(rows)
            self._next_step += rows
        else:
            self._next_step += lost * self.every_n_steps
            ends = np.cumsum(self._recorder.window_lengths[:rows]) if rows else np.zeros(0, np.int64)
            steps = self._next_step + ends - 1
            self._next_step += int(ends[-1]) if rows else 0
        if not rows:
            return rec.empty()
        columns = self._recorder.columns
        frame = rec.from_step_arrays(
            self.run, steps, self._epoch, self._meta,
            values[:, :, columns.index("grad_norm")],
            values[:, :, columns.index("weight_norm")],
            values[:, :, columns.index("update_norm")],
            grad_norm_max=values[:, :, columns.index("grad_norm_max")] if "grad_norm_max" in columns else None,
        )
        self._add(frame)
        self._to_tensorboard(steps, values[:, :, 0])
        return frame

    def close(self):
        """Flush everything still on the device and restore the optimizer and model.

        Called by ``on_train_end``; call it yourself after a ``fit`` that raised (``gradscope
        analyze`` does), or rely on the interpreter-exit hook, so nothing recorded is lost.
        """
        if self._recorder is None:
            return
        self.flush()
        self._flush_partial_window()
        self._recorder.detach()
        self._recorder = None
        if self._probe_capture is not None:
            self._probe_capture = None
            try:
                del self.model.train_step
            except AttributeError:
                pass
        if self.model is not None:
            self.model.train_function = None  # the next fit traces a clean step
        if self._tb_writer is not None:
            self._tb_writer.flush()
        if self._atexit is not None:
            atexit.unregister(self._atexit)
            self._atexit = None

    # --- Keras lifecycle ----------------------------------------------------------------

    def on_train_begin(self, logs=None):
        if self.writer is None and self.run_dir is not None:
            self.writer = RunWriter(self.run_dir, self.config)
        self._sink.writer = self.writer
        model = self.model
        variables = list(model.trainable_variables)
        table = layer_table(model)
        self._meta = [table[id(v)] for v in variables]
        optimizer = _innermost_optimizer(model.optimizer)
        steps = (self.params or {}).get("steps")
        capacity = self.buffer_steps or (
            -(-steps // self.every_n_steps) + 1 if steps else DEFAULT_BUFFER_STEPS
        )
        self._recorder = StepRecorder(
            variables, capacity, every_n_steps=self.every_n_steps,
            exact_copy=_needs_copy(optimizer, variables, model),
        )
        self._recorder.attach(optimizer)
        self._next_step = int(optimizer.iterations.numpy())
        self._setup_probe(model, table)
        if self.tensorboard_dir is not None and self._tb_writer is None:
            self._tb_writer = tf.summary.create_file_writer(str(self.tensorboard_dir))
        self._atexit = _exit_hook(self)
        atexit.register(self._atexit)
        self._retrace()

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def on_epoch_end(self, epoch, logs=None):
        frame = self.flush()
        if len(frame):
            last_step = int(frame["step"].max())
        else:
            last_step = max(int(_innermost_optimizer(self.model.optimizer).iterations.numpy()) - 1, 0)
        self._add(rec.from_logs(self.run, last_step, epoch, logs or {}))
        self._add(self._activation_records(last_step, epoch))
        if self.diagnose:
            self._check(epoch)

    def on_train_end(self, logs=None):
        self.close()

    # --- internals ----------------------------------------------------------------------

    def _check(self, epoch):
        from gradscope.diagnosis import diagnose

        seen = {f.kind for f in self.findings}
        for finding in diagnose(self.records, self.config):
            if finding.kind in seen:
                continue
            self.findings.append(finding)
            warnings.warn(
                f"gradscope, epoch {epoch + 1}: {finding.kind}: {finding.summary}. "
                f"Fix: {finding.recommendation}",
                stacklevel=2,
            )
            if finding.kind in self.stop_on:
                self.model.stop_training = True

    def _add(self, frame):
        self._sink.add(frame)

    def _retrace(self):
        if self.model is not None:
            self.model.make_train_function(force=True)

    def _flush_partial_window(self):
        partial = self._recorder.read_partial_window() if self._recorder else None
        if partial is None:
            return
        length, mean, peak = partial
        last = self._next_step + length - 1
        self._next_step += length
        weights = self._recorder.current_weight_norms()
        nan = np.full_like(mean, np.nan)
        frame = rec.from_step_arrays(
            self.run, np.array([last]), self._epoch, self._meta,
            mean[None], weights[None], nan[None], grad_norm_max=peak[None],
        )
        # The update of an unfinished window was not measured: keep only what was.
        frame = frame[~frame["metric"].isin(["update_norm", "update_ratio"])]
        self._add(frame)

    def _to_tensorboard(self, steps, grad_norms):
        if self._tb_writer is None:
            return
        with self._tb_writer.as_default():
            for j, (layer, _, variable) in enumerate(self._meta):
                name = f"gradscope/grad_norm/{layer}/{variable}"
                for step, value in zip(steps, grad_norms[:, j]):
                    tf.summary.scalar(name, float(value), step=int(step))

    # probe batch and activation statistics

    def _setup_probe(self, model, table):
        if self.probe is False:
            return
        layers = watched_layers(model, table)
        if not layers:
            return
        self._activation_probe = ActivationProbe(model, layers)
        if self._probe_x is not None:
            return
        if self.probe is not None:
            self._probe_x = _probe_inputs(self.probe)
            return
        if getattr(model, "jit_compile", False) is True:
            warnings.warn(
                "GradientMonitor cannot keep a probe batch from an XLA-compiled train step; "
                "pass probe=x_sample to get activation statistics.",
                stacklevel=2,
            )
            return
        self._probe_capture = _ProbeCapture(model)

    def _activation_records(self, step, epoch):
        if self._activation_probe is None:
            return rec.empty()
        if self._probe_x is None and self._probe_capture is not None:
            self._probe_x = self._probe_capture.value()
        if self._probe_x is None:
            return rec.empty()
        return activation_records(self.run, step, epoch, self._activation_probe(self._probe_x))


def _exit_hook(monitor):
    """A callable for ``atexit`` that closes the monitor if it still exists (best effort)."""
    ref = weakref.ref(monitor)

    def close_at_exit():
        alive = ref()
        if alive is not None:
            try:
                alive.close()
            except Exception:  # pragma: no cover - the interpreter is exiting
                pass

    return close_at_exit


def _probe_inputs(probe):
    if isinstance(probe, tf.data.Dataset):
        probe = next(iter(probe))
    if isinstance(probe, tuple):
        probe = probe[0]
    return tf.nest.map_structure(lambda a: a[:PROBE_SIZE], probe)


class _ProbeCapture:
    """Keeps the inputs of the first training batch in device variables.

    Wraps ``model.train_step`` (on the instance) with a step that, while nothing is kept yet,
    assigns the batch's inputs to variables of dynamic shape.
    """

    def __init__(self, model):
        self._vars = None
        self._structure = None
        self._flag = tf.Variable(False, trainable=False, name="gradscope_probe_kept")
        original = model.train_step

        def train_step(data):
            x, _, _ = keras.utils.unpack_x_y_sample_weight(data)
            self._keep(x)
            return original(data)

        model.train_step = train_step

    def _keep(self, x):
        from gradscope.recording import _is_primary_replica

        if not _is_primary_replica():
            return
        flat = tf.nest.flatten(x)
        if self._vars is None:
            with tf.init_scope():
                self._vars = [
                    tf.Variable(tf.zeros([0] * len(t.shape), t.dtype), shape=tf.TensorShape(None),
                                trainable=False, validate_shape=False, name="gradscope_probe")
                    for t in flat
                ]
            self._structure = x

        def keep():
            for var, t in zip(self._vars, flat):
                var.assign(t[:PROBE_SIZE], read_value=False)
            self._flag.assign(True)
            return tf.constant(True)

        tf.cond(self._flag, lambda: tf.constant(False), keep)

    def value(self):
        if self._vars is None or not bool(self._flag.numpy()):
            return None
        flat = [tf.convert_to_tensor(v) for v in self._vars]
        return tf.nest.pack_sequence_as(self._structure, flat)
