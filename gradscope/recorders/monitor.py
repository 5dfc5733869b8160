"""GradientMonitor: per-layer gradient, weight and update norms of every optimizer step (a Keras callback)."""

from __future__ import annotations

import functools
import warnings

import keras
import numpy as np
import pandas as pd

from gradscope.errors import GradscopeError
from gradscope.recorders import keras_compat as compat
from gradscope.recorders import step_sources
from gradscope.recorders.activation_probe import rows_of
from gradscope.recorders.data_description import data_key, describe_fit_data
from gradscope.recorders.epoch_probes import EpochProbes
from gradscope.recorders.layer_names import layer_table
from gradscope.recorders.live_view import LiveView
from gradscope.recorders.run_description import constant_learning_rate, describe_model, describe_optimizer, versions
from gradscope.recorders.schedule import DEFAULT_EVERY_STEP, Plan
from gradscope.recorders.session import RecordingSession, json_number
from gradscope.recorders.step_rows import SMALL_WEIGHTS
from gradscope.recorders.tensorboard_export import TensorBoardExport
from gradscope.errors import describe_exception
from gradscope.termination import SigtermGuard, is_interrupt

DEFAULT_BUFFER_STEPS = 1024
DEFAULT_FIT_BATCH_SIZE = 32  # what Keras' fit uses for arrays when batch_size is None


def _guarded(hook):
    """A monitor hook whose errors become one warning: the monitor stops, the training goes on."""

    @functools.wraps(hook)
    def guarded(self, *args, **kwargs):
        if self._broken is not None:
            return None
        try:
            error = self._trace_error()  # set aside while Keras traced the step: the root cause, said first
            if error is not None:
                raise error
            result = hook(self, *args, **kwargs)
            error = self._trace_error()
            if error is not None:
                raise error
            return result
        except Exception as exc:  # KeyboardInterrupt and SystemExit go on: they end the training
            self._break(exc, hook.__name__)
            return None

    return guarded


class GradientMonitor(keras.callbacks.Callback):
    """Records per-layer gradient, weight and update norms of every optimizer step.

    The norms are computed inside the compiled train step from the gradients the optimizer
    applies (after loss-scale unscaling, clipping and cross-replica reduction), kept on the
    device and brought to the host once per epoch, so Keras keeps dispatching steps
    asynchronously. No second forward/backward pass is made.

    For each trainable variable it records, at every step, ``grad_norm`` and ``update_norm``
    (norm of the change the step made) and ``update_ratio`` (``update_norm / weight_norm``);
    ``weight_norm`` is read exactly on the host before the first step (``weight_norm_initial``)
    and at every epoch end (``every_step="all"`` measures it at every step too). At each epoch
    end it records the Keras logs (``loss``, ``accuracy``, ``val_*``) and, on a probe batch,
    ``act_mean``, ``act_std``, ``saturated_frac`` and ``dead_frac`` of every layer with a
    non-linear activation (definitions in :mod:`gradscope.recorders.activation_stats`).

    With ``run_dir`` the run describes itself in ``run.json`` (the model and every layer, the
    optimizer and its hyperparameters, the loss, epochs, steps and batch size, input shapes, the
    last epoch's logs, versions) and ends ``complete`` when ``fit`` returns, ``interrupted`` when
    it is stopped (Ctrl-C, or SIGTERM, which the monitor turns into :class:`gradscope.termination.Terminated`
    during ``fit``) and ``failed`` when it raises; the records up to that point are kept.
    Several ``fit`` calls with one monitor continue one run. :meth:`add_to_run` adds your own
    metrics (say, after ``evaluate``) and tags.

    Args:
        run: run id written in the ``run`` column.
        run_dir: a run directory whose records are appended at each epoch end.
        config: your own configuration, stored in ``run.json`` when ``run_dir`` is given.
        writer: an existing :class:`gradscope.storage.RunWriter` (instead of ``run_dir``).
        every_step: the metrics measured in the traced step: ``("grad_norm",)`` (default; the
            update is always added, free for plain SGD) or ``"all"`` (weight norms too).
        every_n_steps: record every N-th step only; the steps between cost nothing.
        window_steps: one record per this many steps: ``grad_norm`` is their mean,
            ``grad_norm_max`` their max (no spike or NaN hidden), ``update_norm`` that of the
            window's last step. The step measures what it measures for every step (so the cost
            is that of recording every step); the windows are made on the host, and hold
            ``window_steps`` times fewer records. 1 (default) records every step.
        probe: inputs (or an ``(x, y)`` tuple, or a ``tf.data.Dataset``) for the activation
            statistics; by default the first training batch (at most 256 rows) is kept.
            ``False`` turns activation statistics off. For a model with recurrent layers, the
            probe's targets (from an ``(x, y)`` probe, or the ``y`` that ``fit`` was given as
            arrays) also give ``time_grad_norm``: ``||dL/dh_t||`` per time step of each
            recurrent layer at each epoch end (:mod:`gradscope.recorders.time_gradients`).
        tensorboard_dir: also write to TensorBoard there: each variable's ``grad_norm`` and
            ``update_ratio`` every step, each layer's activation statistics every epoch, and the
            findings as text when the run ends (:mod:`gradscope.recorders.tensorboard_export`).
        buffer_steps: rows kept on the device between epoch ends (default: the epoch's steps,
            or 1024 when Keras does not know them; the buffer grows, with a warning, if an
            epoch has more).
        diagnose: diagnose the records at each epoch end and say, once per kind, as soon as a
            finding appears, its summary and the recommended fix (one line on stderr; in a notebook,
            one output as the report shows it); the findings so far are in ``monitor.findings``.
        stop_on: finding kinds that stop training (``model.stop_training = True``), e.g.
            ``("non_finite", "exploding_gradient")``; implies ``diagnose=True``.
        findings_copy: when the run ends, write its findings into ``run.json`` (a copy for readers
            without gradscope; gradscope's readers diagnose the records themselves). Trials turn
            it off for the arms whose findings nobody reads.
        live: in a notebook, one output under the training cell, updated at each epoch end: each
            layer's learning speed and gradient norm, the speed per layer over the epochs so far,
            and the findings as they appear (:mod:`gradscope.recorders.live_view`). Nothing in a
            terminal.
        histograms: record histograms (:mod:`gradscope.histograms`) before the first step and at each
            epoch end: of every kernel (``weight_hist``), of its gradient on the probe batch
            (``grad_hist``, Keras 3 on TensorFlow, when the probe's targets are known) and of the outputs
            of every layer with a non-linear activation (``act_hist``). ``False``: none.
        sinks: objects that also get every batch of records as it is made (``append(records)``,
            and when they have them ``start(info)``, ``flush()`` at each epoch end and ``close(status,
            findings, run_dir)``): a store of one's own, or
            :class:`gradscope.integrations.mlflow_sink.MLflowSink`. See :mod:`gradscope.recorders.sinks`.

    Example:
        >>> import keras, numpy as np
        >>> from gradscope import GradientMonitor
        >>> model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, activation="softmax", name="out")])
        >>> model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
        >>> monitor = GradientMonitor(run="tiny")
        >>> _ = model.fit(np.ones((8, 4)), np.zeros(8), batch_size=4, epochs=1, callbacks=[monitor], verbose=0)
        >>> monitor.records.query("metric == 'grad_norm'")[["step", "layer", "variable"]].values.tolist()
        [[0, 'out', 'kernel'], [0, 'out', 'bias'], [1, 'out', 'kernel'], [1, 'out', 'bias']]
    """

    def __init__(
        self,
        run="run",
        run_dir=None,
        config=None,
        writer=None,
        every_step=DEFAULT_EVERY_STEP,
        every_n_steps=1,
        window_steps=1,
        probe=None,
        tensorboard_dir=None,
        buffer_steps=None,
        diagnose=False,
        stop_on=(),
        findings_copy=True,
        live=False,
        sinks=(),
        histograms=True,
    ):
        super().__init__()
        self._histograms = bool(histograms)
        self.plan = Plan.of(every_step=every_step, every_n_steps=every_n_steps, window_steps=window_steps)
        self.buffer_steps = buffer_steps
        self._stop_on = tuple(stop_on)
        self._diagnose = bool(diagnose or stop_on)
        self._findings_copy = findings_copy
        self._recorder = None  # the step source of the running fit (gradscope.recorders.step_sources)
        self._ended: str | None = None  # how the last fit's recording ended (close's status)
        self._meta: list[tuple[str, int, str]] = []
        self._fit_batch_size: int | None = None
        self._fit: dict | None = None
        self._step_fn = None  # the traced train step of this fit (unguarded)
        self._kept = None     # (model, optimizer, recorder, step) of the last fit, to run again
        self._sigterm = SigtermGuard()
        self.live = LiveView() if live else None  #: the live view in a notebook (``live=True``), or None
        self._sinks = (*sinks, *([TensorBoardExport(tensorboard_dir)] if tensorboard_dir is not None else []))
        self._in_fit = False
        self._broken: str | None = None
        self._start_run(run, run_dir, config, writer, probe)

    def _start_run(self, run, run_dir, config, writer, probe) -> None:
        """The state of one run (a monitor's first, or the next one of :meth:`next_run`)."""
        self.run = run
        self.run_dir = run_dir
        self.probe = probe
        self._probes = EpochProbes(probe, histograms=self._histograms)
        self._session = RecordingSession(run, run_dir, config, writer, diagnose=self._diagnose, stop_on=self._stop_on,
                                         findings_copy=self._findings_copy, sinks=self._sinks)
        self._session.on_exit = self.close  # the interpreter exits during a fit: bring in what the device holds
        self._epoch = 0
        self._epochs_done = 0  # finished epochs of the run (its progress)
        self._next_epoch = 0   # the run's epoch label of the next epoch (after an unfinished one, past it)
        self._planned = 0
        self._fits = 0
        self._batch_sizes: dict = {}  # fit number -> its batch size
        self._validation: str | None = None  # how the running fit validates, in words
        self._class_weight: dict | None = None
        self._phantom_steps: set = set()  # iterations Keras counted without a batch (see _data_ran_out)
        self._data: dict = {}  # the inputs' scale and the targets' range (run.json's data)
        self._data_key = None  # what the data described was (data_description.data_key)
        self._first_step: int | None = None  # the optimizer's step count when the run's first fit began

    # --- public -------------------------------------------------------------------------

    @property
    def config(self) -> dict:
        """Your configuration, as stored in ``run.json``."""
        return self._session.config

    @property
    def writer(self):
        """The run directory's :class:`gradscope.storage.RunWriter` (None before the first fit without one given)."""
        return self._session.writer

    @property
    def findings_copy(self) -> bool:
        """Whether the run's findings are copied into ``run.json`` when it ends."""
        return self._session.findings_copy

    @findings_copy.setter
    def findings_copy(self, value: bool) -> None:
        self._findings_copy = self._session.findings_copy = bool(value)

    @property
    def _log(self):
        return self._session.log

    @property
    def records(self) -> pd.DataFrame:
        """All records so far, with the schema columns of :mod:`gradscope.records`."""
        return self._log.records

    @property
    def steps_run(self) -> int:
        """Optimizer steps this run has recorded the gradients of, over all its fits."""
        return 0 if self._first_step is None else self._next_step - self._first_step

    @property
    def recording(self) -> bool:
        """Whether a fit is being recorded now (its ``on_train_end`` has not run yet)."""
        return self._recorder is not None

    @property
    def ended_complete(self) -> bool:
        """Whether the last fit ended as a complete run (not broken by a step's error, not interrupted)."""
        return self._recorder is None and self._ended == "complete" and self._broken is None

    @property
    def owned_run_dir(self):
        """The run directory this monitor wrote itself (None: no directory, or a writer it was given)."""
        return self.run_dir if self._session.owns_writer else None

    def end_findings(self) -> list:
        """The findings of the run as it ended (the copy in ``run.json`` when written, else diagnosed now)."""
        copied = self.writer is not None and self.findings_copy
        found = self.writer.meta.get("diagnosis") if copied else None
        return list(found if found is not None else self._session.final_findings("complete", None))

    @property
    def findings(self) -> list:
        """With ``diagnose=True``: the findings seen so far, one per kind, in the order they appeared."""
        from gradscope.diagnosis.finding import Findings

        return Findings(self._session.findings)

    @property
    def state(self) -> str:
        """Where the monitor is: not started, recording a fit, or how its last fit ended."""
        if self.recording:
            return "recording (a fit is under way)"
        return "not started: pass it to fit(callbacks=[...])" if self._ended is None else f"ended {self._ended}"

    def __repr__(self) -> str:
        where = f", {self.run_dir}" if self.run_dir else ""
        return f"<GradientMonitor {self.run}: {self.state}, {self.steps_run:,} steps recorded{where}>"

    def _repr_html_(self) -> str:
        """In Jupyter: its run, how far it got, the last epoch's per-layer table and its findings so far
        (with ``diagnose=True``; else what was found when the run ended, when it was written)."""
        from gradscope.display import monitor_html

        windows = self._session.windows
        found = [f.to_dict() for f in self.findings] if self._diagnose else \
            list((self.writer.meta.get("diagnosis") if self.writer is not None else None) or [])
        return monitor_html(self.run, self.state, self.steps_run, self.run_dir, windows[-1] if windows else None,
                            found, self._diagnose, windows[0] if len(windows) > 1 else None)

    def add_to_run(self, metrics: dict | None = None, tags: dict | None = None, **sections) -> None:
        """Add your own numbers and words to the run's ``run.json`` (during or after training).

        Args:
            metrics: e.g. ``{"test_accuracy": acc}`` after ``model.evaluate``.
            tags: anything that says what the run is (``{"dataset": "cifar10"}``).
            sections: other ``run.json`` sections to merge (``config={...}``).

        Raises:
            ValueError: without a run directory (``run_dir`` or ``writer``) to write to.
        """
        if self.writer is None:
            raise ValueError("add_to_run() needs a run directory: create the monitor with run_dir=...")
        update = dict(sections)
        if metrics:
            update["metrics"] = {k: json_number(v) for k, v in metrics.items()}
        if tags:
            update["tags"] = dict(tags)
        self.writer.update(**update)

    def next_run(self, run, run_dir=None, config=None, probe=None) -> None:
        """Record the next ``fit`` as a new run (another run directory) of the same model and optimizer.

        When the model and its optimizer are the same objects as in the last ``fit`` (their weights
        and state may have been set anew in between), the train step traced for it records the
        next run too, without tracing again: :func:`gradscope.try_fixes` uses this so that arms which
        differ only in their starting weights, learning rate or data share one trace. The last
        run must have ended (its ``fit`` returned).

        Raises:
            RuntimeError: during a ``fit``.
        """
        if self._in_fit:
            raise RuntimeError("next_run() is called between fits, not during one")
        self._session.finish("complete")
        self._start_run(run, run_dir, config, None, probe)

    def flush(self) -> int:
        """Bring the steps recorded since the last epoch end to the host (and to ``run_dir``);
        returns how many records that made."""
        if self._recorder is None:
            return 0
        now = self._recorder.next_step(compat.innermost_optimizer(self.model.optimizer))
        steps, values, lost = self._recorder.read(self._next_step, now)
        self._next_step = now
        if self._phantom_steps:
            trained = ~np.isin(steps, list(self._phantom_steps))
            steps, values = steps[trained], {name: v[trained] for name, v in values.items()}
            self._phantom_steps = {s for s in self._phantom_steps if s >= now}
        if lost:
            warnings.warn(
                f"GradientMonitor kept {len(steps)} of the {len(steps) + lost} records of epoch {self._epoch}; "
                f"pass buffer_steps>={len(steps) + lost} to keep them all (the buffer has grown for the "
                "next epochs).",
                stacklevel=2,
            )
            self._retrace()
        return self._add_records(steps, values, now - 1)

    def _add_records(self, steps, values, after_step: int) -> int:
        """Hand the records of the steps read to the session (weights are read now, after ``after_step``,
        unless they were read there already); returns how many."""
        if not len(steps):
            return 0
        weights = small = None
        if "weight_norm" not in values:
            # Weights are read here, exactly; each step's update ratio uses the weight norm
            # interpolated between the last exact reading and this one (they move ~1e-4 per step).
            if self._session.weights_read_at != after_step:
                weights = (after_step, self._recorder.current_weight_values())
            exact = values.pop(SMALL_WEIGHTS, None)
            if exact is not None:  # small variables were measured at every step: exact
                small = (self._recorder.rows.small, exact)
        return self._session.add_steps(steps, self._epoch, values, weights=weights, small=small)

    def close(self, status: str = "interrupted", error: str | None = None):
        """Flush everything still on the device and restore the optimizer and model.

        Called by ``on_train_end`` (``status`` complete) and when a step of ``fit`` raises; call
        it yourself after a ``fit`` that raised elsewhere (``gradscope analyze`` does), or rely
        on the interpreter-exit hook, so nothing recorded is lost. A run directory the monitor
        created itself is marked ``status`` (with ``error`` when it failed).
        """
        if self._recorder is None:
            return
        self._ended = status
        self._in_fit = False
        self._sigterm.restore()
        try:
            if self._broken is None:
                unfinished = self.flush()
                unfinished += self._flush_partial_window()
                if unfinished:  # steps of an epoch that did not finish: the next fit starts a new epoch
                    self._next_epoch = max(self._next_epoch, self._epoch + 1)
        finally:
            self._release()
            self._session.finish(status, error=error)

    def _release(self) -> None:
        """Give the optimizer and model back (each step on its own: one failing does not stop the rest)."""
        recorder, self._recorder = self._recorder, None
        if self._broken is None and recorder.error is None and self._step_fn is not None and self.model is not None:
            self._kept = (self.model, recorder._optimizer, recorder, self._step_fn)
        self._step_fn = None
        steps = [recorder.detach, self._probes.release]
        if self.model is not None:
            steps.append(lambda: compat.forget_train_step(self.model))  # the next fit traces a clean step
            steps.append(lambda: compat.unguard_validation_step(self.model))
        for step in steps:
            try:
                step()
            except Exception:
                pass

    # --- Keras lifecycle ----------------------------------------------------------------

    # Legacy Keras 2 (tf_keras) asks every callback these before its fit begins: answered, so that its
    # fit reaches on_train_begin, where the monitor says in one line that it cannot record it.
    def _implements_train_batch_hooks(self) -> bool:
        return False

    def _implements_test_batch_hooks(self) -> bool:
        return False

    def _implements_predict_batch_hooks(self) -> bool:
        return False

    @_guarded
    def on_train_begin(self, logs=None):
        problem = step_sources.unrecordable(self.model)
        if problem is not None:  # nothing is touched and no run is written: no number it did not measure
            raise compat.UnsupportedStack(problem)
        if self._recorder is not None:  # the last fit died where the monitor could not see it
            self.close("interrupted")
        self._session.open()
        model = self.model
        fit = compat.fit_arguments(model)
        if not compat.build_for_fit(model, fit) and not model.trainable_variables:
            raise GradscopeError(
                f"the model {model.name!r} has no weights yet (Keras builds it at its first step, where gradscope "
                "cannot attach); build it before fit: give it a keras.Input, or call model.build(input_shape) or "
                "model(x[:1])")
        variables = list(model.trainable_variables)
        table = layer_table(model)
        self._meta = [table[id(v)] for v in variables]
        self._session.set_variables(self._meta)
        optimizer = compat.innermost_optimizer(model.optimizer)
        steps = (self.params or {}).get("steps")
        per_row = self.plan.sample.n_steps  # (windows are made on the host from every step's row)
        capacity = self.buffer_steps or (-(-steps // per_row) + 1 if steps else DEFAULT_BUFFER_STEPS)
        kept, self._kept = self._kept, None
        reuse = step_sources.reusable(kept, model, optimizer, variables, capacity)
        if reuse is not None:  # the same model and optimizer: the step traced for the last fit records this one too
            self._recorder, step = reuse
        else:
            self._recorder, step = step_sources.step_source(model, optimizer, variables, capacity, self.plan), None
        self._recorder.attach(optimizer)  # wrapped again: a retrace during this fit must record too
        self._next_step = self._recorder.next_step(optimizer)
        # the weights this fit starts from (0: a layer initialised at zero)
        self._session.start_weights(self._next_step, self._next_epoch, self._recorder.current_weight_values())
        self._fit = fit
        if self._fit is not None and rows_of(self._fit["x"], 1) is not None:
            self._fit_batch_size = self._fit["batch_size"] or DEFAULT_FIT_BATCH_SIZE
        initial_epoch = int((self._fit or {}).get("initial_epoch") or 0)
        self._validation = (self._fit or {}).get("validation")
        weights = (self._fit or {}).get("class_weight")
        self._class_weight = {str(k): json_number(v) for k, v in weights.items()} if isinstance(weights, dict) else None
        keras3_on_tf = step_sources.backend_of(model) == "tensorflow" and not compat.is_legacy(model)
        self._probes.setup(model, table, self._fit, through_time=keras3_on_tf,
                           can_capture=(step_sources.backend_of(model) == "tensorflow"
                                        and getattr(model, "jit_compile", False) is not True))
        if self._first_step is None:  # the run's start: its histograms before the first step (step and epoch -1)
            self._session.add(self._probes.records(self.run, self._next_step - 1, self._next_epoch - 1,
                                                   statistics=False))
        key = data_key(self._fit)
        if key is None or key != self._data_key:  # a second fit on the same arrays is not described again
            self._data, self._data_key = describe_fit_data(self._fit), key
        if self._first_step is None:
            self._first_step = self._next_step
        compat.guard_fit_callbacks(self._fit, self._step_raised)  # another callback's error ends the run too
        compat.guard_validation_step(model, self._step_raised)  # and so does a validation step's
        self._fit = None  # hold no reference to the user's data
        if step is not None:
            self._install_step(step)
        else:
            self._retrace()
        self._sigterm.install()
        self._in_fit = True
        self._fits += 1
        self._planned = self._epochs_done + max(int((self.params or {}).get("epochs") or 0) - initial_epoch, 0)
        description = self._description(model, optimizer)
        if self._fits > 1 and self.writer is not None and "optimizer" in self.writer.meta:
            description.pop("optimizer")  # the run's optimizer is what it started with (its end: learning_rate_end)
        self._session.update(**description)
        self._session.describe_for_diagnosis(description)
        self._session.start_sinks({"run": self.run, "epochs": self._planned, "config": dict(self.config),
                                   **description})

    @_guarded
    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = self._next_epoch  # the run's epoch: several fits continue counting

    @_guarded
    def on_epoch_end(self, epoch, logs=None):
        self.flush()
        last_step = max(self._next_step - 1, 0)  # the epoch's last step (flush has read up to it)
        epoch = self._epoch
        acts_frame = self._probes.records(self.run, last_step, epoch)
        self._epochs_done += 1
        self._next_epoch = epoch + 1
        sections = {"training": self._training(), **self._learning_rate_end()} if self.writer is not None else {}
        progress = {"epochs_done": self._epochs_done, "epochs": self._planned or None, "last_step": last_step}
        if self._session.end_epoch(last_step, epoch, logs, records=acts_frame, progress=progress, **sections):
            self.model.stop_training = True
        if self.live is not None:
            self.live.update(self.run, self._session.windows, [f.to_dict() for f in self._session.findings])

    @_guarded
    def on_train_end(self, logs=None):
        self._session.say_end_findings()
        self.close("complete")

    # --- internals ----------------------------------------------------------------------

    def _data_ran_out(self) -> None:
        """The call of the train function that found no batch (data of unknown length) was counted
        by the optimizer's iterations but trained nothing: its step is not recorded."""
        try:
            if getattr(self.model, "steps_per_execution", 1) == 1 and self._recorder.counts_empty_calls:
                iterations = compat.innermost_optimizer(self.model.optimizer).iterations
                self._phantom_steps.add(int(iterations.numpy()) - 1)
        except Exception as exc:
            self._warn(exc, "noting the end of the data")

    def _step_raised(self, exc: BaseException) -> None:
        """A step of ``fit`` raised: keep what was recorded and say how the run ended."""
        try:
            if is_interrupt(exc):
                self.close("interrupted")
            else:
                self.close("failed", error=describe_exception(exc))
        except Exception as own:  # never hide the user's exception behind one of ours
            self._warn(own, "closing the run")

    def _trace_error(self):
        """An error of ours raised (and set aside) while Keras traced the train step, or None."""
        if self._recorder is not None and self._recorder.error is not None:
            return self._recorder.error
        return self._probes.error

    def _break(self, exc: Exception, where: str) -> None:
        """Something of gradscope's failed: say so once, give the model back, let training go on."""
        self._broken = describe_exception(exc)
        self._warn(exc, where)
        try:
            if self._session.owns_writer and not self.writer.finished:
                self.writer.update(recording_error=f"{where}: {self._broken}")
        except Exception:
            pass
        try:
            self.close("failed", error=f"gradscope stopped recording ({where}: {self._broken}); the training went on")
        except Exception:
            pass
        try:
            if self.model is not None and not isinstance(exc, compat.UnsupportedStack):
                compat.retrace_train_step(self.model)  # a train step without gradscope's ops
        except Exception:
            pass

    def _warn(self, exc: BaseException, where: str) -> None:
        if isinstance(exc, GradscopeError):  # something the user can change, said as such
            message = f"gradscope is not recording this fit: {exc}. The training goes on without it."
        else:
            message = (f"gradscope stopped recording ({where}: {describe_exception(exc)}); the training goes on "
                       "without it. What was recorded before is kept. Please report this with the model that caused it.")
        warnings.warn(message, RuntimeWarning, stacklevel=3)

    def _learning_rate_end(self) -> dict:
        """``{"optimizer": {"learning_rate_end": lr}}`` when a constant learning rate was changed during
        the run (ReduceLROnPlateau, LearningRateScheduler, by hand), else ``{}``."""
        started = (self.writer.meta.get("optimizer") or {}).get("learning_rate")
        if not isinstance(started, float):
            return {}
        now = constant_learning_rate(self.model.optimizer)
        return {"optimizer": {"learning_rate_end": now}} if now is not None and now != started else {}

    def _description(self, model, optimizer) -> dict:
        """``run.json`` sections that say what is being trained."""
        out = {"model": describe_model(model), "optimizer": describe_optimizer(model.optimizer),
               "training": self._training(), "versions": versions(model)}
        if self._data:
            out["data"] = self._data
        return out

    def _training(self) -> dict:
        params = self.params or {}
        batch = self._probes.batch_rows() if self._probes.captures else self._fit_batch_size
        out = {"epochs": self._planned or params.get("epochs"), "steps_per_epoch": params.get("steps"),
               "fits": self._fits, "every_step": list(self.plan.every_step),
               "every_n_steps": self.plan.sample.n_steps, "window_steps": self.plan.window.n_steps,
               "validation": self._validation or "none"}
        if self._class_weight:
            out["class_weight"] = self._class_weight
        if batch is not None:
            out["batch_size"] = batch
            self._batch_sizes[self._fits] = int(batch)
            if len(set(self._batch_sizes.values())) > 1:
                out["batch_sizes"] = [self._batch_sizes[k] for k in sorted(self._batch_sizes)]  # one per fit
        return out

    def _retrace(self):
        """A fresh train step with the recorder's ops in it (traced at its first call), guarded."""
        if self.model is not None:
            compat.retrace_train_step(self.model)
            self._install_step(self._recorder.outer_step(compat.train_step_of(self.model)))

    def _install_step(self, step) -> None:
        self._step_fn = step  # kept, so that the next fit of the same model can use it again
        compat.install_train_step(self.model, step)
        compat.guard_train_step(self.model, self._step_raised, self._data_ran_out)

    def _flush_partial_window(self) -> int:
        """Records of a window of steps still open (``window_steps``); returns how many."""
        partial = self._recorder.read_partial_window() if self._recorder else None
        if partial is None:
            return 0
        return self._add_records(*partial, self._next_step - 1)  # the open window ends where flush() stopped
