"""``try_fixes``: train short paired runs of a model and of each fix that applies to it, and say what worked.

The model as given is recorded by a :class:`~gradscope.GradientMonitor` as a run directory
under one trials folder (``<out>/runs/baseline/``): its findings are the ones the trials
confirm, and its ``run.json`` carries the trials' table (section ``trials``);
``<out>/trials.json`` holds the same table. The other arms train plain Keras steps, and those
that differ from the model as given only in their weights, learning rate or data share one
traced step (:class:`_Graph`); with ``TrialSettings(record_arms=True)`` every arm is recorded
as a run directory of its own (``<out>/runs/<arm>/``), so ``gradscope report <out>`` shows
them side by side.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from gradscope.errors import GradscopeError
from gradscope.recorders import keras_compat as compat
from gradscope.trials import halving
from gradscope.trials.arms import ArmPlan, baseline_plans, plan_arms, weights_by_layer
from gradscope.trials.model_parts import read_model
from gradscope.trials.rebuild import ArmUnbuildable, build_arm
from gradscope.trials.result import TrialResult, finite_or_zero, rejudge
from gradscope.trials.settings import DEFAULT_TRIAL_SETTINGS, TrialSettings
from gradscope.trials.trial_data import TrialData, take_rows, trial_data
from gradscope.trials.yardstick import METRIC_OF, accuracy, correct_rows, paired_se, predict, r_squared
from gradscope.vocabulary import BASELINE_ARM, NOISE_ARM, PROBE_SIZE, fmt


@dataclass
class Check:
    """An arm's state at one rung: its score, what the paired standard error needs, its training loss."""

    steps: int
    score: float
    rows: np.ndarray  # per held-out row: right or wrong (classification), the prediction (regression)
    loss: float | None = None


@dataclass
class Outcome:
    """What one arm did."""

    plan: ArmPlan
    before: Check | None = None
    checks: list = field(default_factory=list)
    stopped: str | None = None
    note: str | None = None
    speed: dict = field(default_factory=dict)
    run_dir: str | None = None
    loss_after: float | None = None
    second: Outcome | None = None  # the same fix from the second seed's start, when the seed gap held it back


def task_of(loss_kind: str | None, target: dict | None) -> str:
    """``classification`` or ``regression``: the loss says, unless the target cannot be classes.

    Example:
        >>> task_of("binary", {"whole": True}), task_of("binary", {"whole": False}), task_of(None, {"classes": [0, 1]})
        ('classification', 'regression', 'classification')
    """
    target = target or {}
    if loss_kind == "regression":
        return "regression"
    if loss_kind in ("probabilities", "binary"):
        return "classification" if target.get("whole", True) or target.get("one_hot") else "regression"
    return "classification" if target.get("classes") or target.get("one_hot") else "regression"


def trial_task(facts, target: dict | None) -> str:
    """The task the trials score a model as (:func:`task_of`), knowing the whole model: a sigmoid/softmax
    output on class labels is a classifier even under a squared error (scored by accuracy), and a
    percentage error is a regression loss even on whole numbers (counts with zeros).

    Example:
        >>> from gradscope.diagnosis.facts import RunFacts
        >>> counts = {"whole": True, "classes": [0, 1, 2, 3], "min": 0, "max": 3}
        >>> trial_task(RunFacts(loss="mape", head_units=1, target=counts), counts)
        'regression'
        >>> trial_task(RunFacts(loss="sparse_categorical_crossentropy", head_units=4, target=counts), counts)
        'classification'
    """
    from gradscope.diagnosis.causes import percentage_error, squared_error_on_labels

    if squared_error_on_labels(facts):
        return "classification"
    if percentage_error(facts):
        return "regression"
    return task_of(facts.kind_of_loss, target)


class _Scorer:
    """Scores an arm's model on the held-out rows, in the target's own units, and its loss there."""

    def __init__(self, data: TrialData, probabilities: bool):
        self.data, self.probabilities = data, probabilities

    def check(self, model, steps: int) -> Check:
        x = self.data.held_inputs()
        out = predict(model, x)
        if self.data.task == "classification":
            rows = correct_rows(self.data.y_held, out, self.probabilities)
            score = accuracy(rows)
        else:
            rows = self.data.in_target_units(out)
            score = r_squared(self.data.y_held, rows)
        return Check(steps, score, rows, self.loss(model, x, out))

    def loss(self, model, x, out) -> float:
        """The arm's own loss on the held-out rows (in its own terms: comparable between arms that
        share the loss and the target's scale)."""
        y = self.data.y_scaling.apply(self.data.y_held) if self.data.y_scaling is not None else self.data.y_held
        try:
            return float(model.compute_loss(x=x, y=y, y_pred=out.astype(np.float32)))
        except Exception:  # a loss that needs what fit passes (sample weights): not measured
            return math.nan


def _probabilities(model) -> bool:
    loss = model.loss
    return not bool(getattr(loss, "from_logits", False) or (getattr(loss, "get_config", None)
                                                            and loss.get_config().get("from_logits")))


def _speed(run_dir) -> dict:
    """Per kernel layer: the median update_ratio of the arm's last recorded epoch (its learning speed)."""
    from gradscope.records import layer_metric
    from gradscope.storage.records_parquet import read

    records = read(Path(run_dir) / "records", metrics=["update_ratio"])
    table = layer_metric(records[records["epoch"] == records["epoch"].max()], "update_ratio")
    if not len(table):
        return {}
    return {str(k): float(v) for k, v in table.median().items()}


def _largest_gradient(run_dir) -> float:
    """The largest gradient norm of any variable at any step of a recorded run."""
    from gradscope.storage.records_parquet import read

    values = read(Path(run_dir) / "records", columns=["value"], metrics=["grad_norm"])["value"].to_numpy(float)
    return float(np.nanmax(values)) if len(values) and not np.all(np.isnan(values)) else math.nan


class _Graph:
    """One compiled model whose traced train step several arms train in turn.

    Arms that differ only in their starting weights, learning rate or data (the baseline's
    second seed, another initialisation, the learning rate /10 and x10, standardised inputs or
    target: :attr:`ArmPlan.same_graph`) need no graph of their own. Each keeps its state
    (weights, every other model variable, the optimizer's variables with its learning rate) as
    NumPy copies while another trains, so they can take turns rung by rung. With a ``monitor``
    (the baseline's), an arm's run is recorded by :meth:`GradientMonitor.next_run` and must end
    before the next arm starts; without one, the arms interleave freely.
    """

    def __init__(self, model, monitor=None):
        self.model, self.monitor = model, monitor
        optimizer = compat.innermost_optimizer(model.optimizer)
        if not optimizer.built:
            optimizer.build(model.trainable_variables)
        self.optimizer = optimizer
        own = {id(v) for v in optimizer.variables}  # a wrapper's (a loss scale's) state too
        self.optimizer_variables = [*optimizer.variables,
                                    *(v for v in model.optimizer.variables if id(v) not in own)]
        self.pristine = self._state()  # before any step: what each arm starts from, but for its weights and rate
        self.active = None  # the arm whose state the model holds
        self.states = {}

    @staticmethod
    def shares(plan: ArmPlan, optimizer) -> bool:
        """Whether ``plan`` can train on a graph like this one (a constant learning rate is a variable)."""
        return plan.same_graph and not compat.has_schedule(compat.innermost_optimizer(optimizer))

    def _state(self) -> tuple:
        return ([np.array(v.numpy()) for v in self.model.variables],
                [np.array(v.numpy()) for v in self.optimizer_variables])

    def _load(self, state) -> None:
        for variables, values in zip((self.model.variables, self.optimizer_variables), state):
            for variable, value in zip(variables, values):
                variable.assign(value)

    def adopt(self, key, built) -> None:
        """Take an arm whose own copy ``built`` was built with its fix: its weights and learning rate."""
        self.release()
        self._load(self.pristine)
        self.model.set_weights(built.get_weights())
        rate = compat.innermost_optimizer(built.optimizer).learning_rate
        self.optimizer.learning_rate = float(np.asarray(rate.numpy() if hasattr(rate, "numpy") else rate))
        self.active = key
        self.states[key] = self._state()

    def activate(self, key) -> None:
        """Give the model the state of arm ``key`` (as it left it)."""
        if self.active != key:
            self.release()
            self._load(self.states[key])
            self.active = key

    def release(self) -> None:
        """Keep the active arm's state aside."""
        if self.active is not None:
            self.states[self.active] = self._state()
            self.active = None


class _Arm:
    """One arm while it trains, rung by rung: its data, model, monitor and what it did so far."""

    def __init__(self, runner, plan: ArmPlan, start=None):
        self.runner, self.plan = runner, plan
        self.start = start if start is not None else runner.start  # the weights it keeps where its fix does not change them
        self.outcome = Outcome(plan, run_dir=str(runner.out / "runs" / plan.name))
        data = runner.data
        if plan.standardise_inputs:
            data = data.standardised_inputs()
        if plan.standardise_target:
            data = data.standardised_target()
        self.data = data
        self.order = data.order(runner.schedule.max_steps, plan.seed)
        self.steps = 0
        self.model = self.monitor = self.scorer = self.graph = None

    def build(self, graph: _Graph | None = None) -> bool:
        """Make the arm's model (on ``graph``'s when given, else on the plain graph of the arms like it, if it
        shares one) and its monitor, if it records (False, with a note, when it cannot be built)."""
        from gradscope.recorders.monitor import GradientMonitor

        runner, plan = self.runner, self.plan
        probe = self.data.train_inputs(runner.probe_rows) if plan.name == BASELINE_ARM else False
        config = {"trial": {"arm": plan.name, "fix": plan.what, "changed": plan.changed, "seed": plan.seed}}
        try:
            model = build_arm(runner.parts, plan, self.start, self.data.task, model_fn=runner.model_fn,
                              sample_x=self.data.train_inputs(np.arange(1)))
        except ArmUnbuildable as exc:
            self.outcome.note = str(exc)
            return False
        if plan.name == NOISE_ARM:  # the second seed's start: an arm tried again from it keeps these weights
            runner.second_start = weights_by_layer(read_model(model))
        self.scorer = _Scorer(self.data, _probabilities(model))
        self.outcome.before = self.scorer.check(model, 0)
        records = plan.name == BASELINE_ARM or runner.settings.record_arms
        one = np.arange(1)
        ready = lambda m: compat.build_for_training(m, self.data.train_inputs(one), self.data.train_targets(one))  # noqa: E731
        graph = graph or runner.plain_graph(plan, model, ready)
        if graph is None:  # a model that trains itself
            ready(model)
            if records:
                self.monitor = GradientMonitor(run=plan.name, run_dir=self.outcome.run_dir, probe=probe, config=config,
                                               findings_copy=plan.name == BASELINE_ARM)  # the arm whose findings are read
        else:  # train on the graph's model and traced step, from this arm's weights and rate
            graph.adopt(self, model)
            self.graph, model = graph, graph.model
            if records and graph.monitor is not None:
                graph.monitor.next_run(plan.name, run_dir=self.outcome.run_dir, config=config, probe=probe)
                graph.monitor.findings_copy = False
                self.monitor = graph.monitor
        self.model = model
        if self.monitor is None:
            self.outcome.run_dir = None
        return True

    def train_to(self, steps: int, check_every_rung: bool = False) -> None:
        """Train on the arm's next batches up to ``steps`` steps in all, then score it (at every rung on the way
        with ``check_every_rung``)."""
        import keras
        import tensorflow as tf

        schedule, data, outcome = self.runner.schedule, self.data, self.outcome
        width = schedule.rung_steps
        rows = self.order[self.steps * data.batch_size: steps * data.batch_size]
        x_rows, y_rows = tf.constant(data.train_inputs()), tf.constant(data.train_targets())
        dataset = tf.data.Dataset.from_tensor_slices(rows).batch(data.batch_size).map(
            lambda r: (tf.gather(x_rows, r), tf.gather(y_rows, r)))
        checks = {schedule.steps_at(k) for k in range(len(schedule.checks))}
        first_epoch = self.steps // width
        scorer, done = self.scorer, self.steps

        class Rungs(keras.callbacks.Callback):
            def on_epoch_end(self, epoch, logs=None):
                at = (epoch + 1) * width
                if at in checks and (check_every_rung or at == steps):
                    outcome.checks.append(scorer.check(self.model, at))

        if self.graph is not None:
            self.graph.activate(self)
        keras.utils.set_random_seed(self.plan.seed + done)
        self.model.fit(dataset, initial_epoch=first_epoch, epochs=steps // width, steps_per_epoch=width, verbose=0,
                       shuffle=False, callbacks=[*([self.monitor] if self.monitor is not None else []), Rungs()])
        self.runner.steps_used += steps - self.steps
        self.steps = steps

    def finish(self) -> Outcome:
        if self.outcome.checks and self.monitor is not None:
            self.outcome.speed = _speed(self.outcome.run_dir)
        last = self.outcome.checks[-1] if self.outcome.checks else None
        self.runner.echo(f"{self.plan.what}: {last.steps if last else 0} steps, {METRIC_OF[self.data.task]} "
                         f"{fmt(self.outcome.before.score if self.outcome.before else None)} -> "
                         f"{fmt(last.score if last else None)}" + (f" ({self.outcome.stopped})" if self.outcome.stopped
                                                                   else "") if last else
                         f"{self.plan.title}: cannot be built: {self.outcome.note}")
        return self.outcome


class _Runner:
    """Trains the baseline and its second seed to the end, then the candidates by successive halving."""

    def __init__(self, parts, start, data, settings, out, model_fn, echo, schedule, probe_rows):
        self.parts, self.start, self.data, self.settings = parts, start, data, settings
        self.out, self.model_fn, self.echo, self.schedule = out, model_fn, echo, schedule
        self.probe_rows = probe_rows
        self.steps_used = 0
        self.second_start = None  # the baseline's second seed's starting weights
        self._plain = None  # the graph the unrecorded arms like the baseline share

    def baselines(self, plans) -> list[Outcome]:
        """The model as given (recorded: its findings are the ones trials confirm) and its second seed, both to
        the end. The second seed trains on the baseline's graph when it records too, else on the plain graph
        the candidates that share it train on."""
        base, noise = _Arm(self, plans[0]), _Arm(self, plans[1])
        if not base.build():
            raise GradscopeError(f"the model as given could not be trained again: {base.outcome.note}")
        graph = (_Graph(base.model, base.monitor)  # before it trains: the state the second seed starts from
                 if self.settings.record_arms and _Graph.shares(noise.plan, base.model.optimizer) else None)
        base.train_to(self.schedule.max_steps, check_every_rung=True)
        if noise.build(graph):
            noise.train_to(self.schedule.max_steps, check_every_rung=True)
        return [base.finish(), noise.finish()]

    def plain_graph(self, plan: ArmPlan, model, ready) -> _Graph | None:
        """The unrecorded graph that ``plan`` shares with the other arms like it (the first one's ``model``, made
        ``ready`` to train), or None when it needs its own (it changes the graph, or every arm records a run of
        its own)."""
        if self.settings.record_arms or plan.name == BASELINE_ARM or not _Graph.shares(plan, model.optimizer):
            return None
        if self._plain is None:
            ready(model)
            self._plain = _Graph(model)
        return self._plain

    def candidates(self, plans, base: Outcome, noise: Outcome) -> list[Outcome]:
        arms = [_Arm(self, plan) for plan in plans]
        alive = [arm for arm in arms if arm.build()]
        for k in range(len(self.schedule.checks)):
            steps = self.schedule.steps_at(k)
            for arm in alive:
                arm.train_to(steps)
            if k == len(self.schedule.checks) - 1:
                break
            scores = [arm.outcome.checks[-1].score for arm in alive]
            b, n = _at(base, steps), _at(noise, steps)
            margins, floor = None, math.inf
            if b is not None:  # a smaller change ahead of the baseline, tied at the cut, goes on
                gap = _seed_gap(base, b, noise, n)
                margins = [self.settings.noise_factor * max(gap, finite_or_zero(_paired_se(
                    arm.outcome.checks[-1], b, self.data, self.settings))) for arm in alive]
                floor = b.score
            kept = set(halving.survivors(scores, self.schedule.arms_at[k + 1], margins,
                                         [arm.plan.fix.change for arm in alive], floor))
            for i, arm in enumerate(alive):
                if i not in kept:
                    arm.outcome.stopped = f"stopped at {arm.steps} steps: behind the better half"
            alive = [arm for i, arm in enumerate(alive) if i in kept]
        return [arm.finish() for arm in arms]

    def confirm(self, outcomes: list[Outcome], base: Outcome, noise: Outcome) -> None:
        """Train the arms that only the seed gap held back (:func:`gradscope.trials.result.held_back`) again,
        from the second seed's start with its data order, to the end: each one's :attr:`Outcome.second`."""
        from gradscope.trials.result import held_back

        if not self.settings.confirm_arms or self.second_start is None:
            return
        rows = [_judge(o, base, noise, self.data, self.settings) for o in outcomes]
        names = held_back(rows, self.schedule.max_steps, self.settings.noise_factor, self.settings.min_improvement,
                          self.settings.confirm_arms)
        for outcome in outcomes:
            if outcome.plan.name in names:
                plan = replace(outcome.plan, name=f"{outcome.plan.name}_seed{noise.plan.seed}", seed=noise.plan.seed)
                arm = _Arm(self, plan, start=self.second_start)
                self.echo(f"{outcome.plan.what}: held back only by the seed gap; trying it from the second seed's start")
                if arm.build():
                    arm.train_to(self.schedule.max_steps)
                outcome.second = arm.finish()


def _at(outcome: Outcome, steps: int) -> Check | None:
    return next((c for c in outcome.checks if c.steps == steps), None)


def _seed_gap(base: Outcome, b: Check, noise: Outcome, n: Check | None) -> float:
    """How far the second seed's baseline lands from the first's: the smaller of two readings of it.

    The second seed starts from other weights, so its gap can be read at the end (after vs after) or
    in what training did (after - before vs after - before). Each reading overstates the noise in one
    case: where the baseline hardly learns, two starts that score differently keep their gap to the
    end; where both seeds learn to the same place from starts that score differently, their progress
    differs by as much. The smaller reading is the floor's seed part.

    Example:
        >>> s = lambda before, after: Outcome(None, before=Check(0, before, None), checks=[Check(9, after, None)])
        >>> a, b = s(0.26, 0.72), s(0.47, 0.66)  # same place, other starts: the ends are 0.06 apart
        >>> round(_seed_gap(a, a.checks[-1], b, b.checks[-1]), 2)
        0.06
        >>> a, b = s(0.10, 0.10), s(0.30, 0.30)  # neither learns: the progress gap is 0
        >>> _seed_gap(a, a.checks[-1], b, b.checks[-1])
        0.0
    """
    if n is None or base.before is None or noise.before is None:
        return 0.0
    ends = abs(b.score - n.score)
    progress = abs((b.score - base.before.score) - (n.score - noise.before.score))
    readings = [g for g in (ends, progress) if math.isfinite(g)]
    return min(readings) if readings else 0.0


def _judge(arm: Outcome, base: Outcome, noise: Outcome, data: TrialData, settings: TrialSettings) -> dict:
    """The arm's row of the summary: its last score beside the baseline's at the same step, and whether it helped."""
    plan = arm.plan
    row = {"arm": plan.name, "title": plan.title, "what": plan.what, "category": plan.fix.category if plan.fix else None,
           "changed": list(plan.changed), "steps": None, "note": arm.note, "stopped": arm.stopped,
           "loss_comparable": not plan.changes_loss, "speed": arm.speed, "run_dir": arm.run_dir}
    if not arm.checks:
        return row
    last = arm.checks[-1]
    b, n = _at(base, last.steps), _at(noise, last.steps)
    row.update(steps=last.steps, before=arm.before.score, after=last.score,
               loss_before=arm.before.loss, loss_after=last.loss)
    if b is None:
        return row
    se = _paired_se(last, b, data, settings)
    seed_gap = _seed_gap(base, b, noise, n)
    floor = max(seed_gap, se if math.isfinite(se) else 0.0)
    improvement = _difference(last.score, b.score)
    row.update(baseline_after=b.score, baseline_before=base.before.score, improvement=improvement, seed_gap=seed_gap,
               se=se, floor=floor, baseline2_after=n.score if n is not None else None,
               baseline_loss_before=base.before.loss, baseline_loss_after=b.loss)
    if n is not None and math.isfinite(n.score) and (not math.isfinite(b.score) or n.score > b.score):
        row["se_best_seed"] = _paired_se(last, n, data, settings)  # the noise of a comparison with the better seed
    elif n is not None:
        row["se_best_seed"] = se
    second = arm.second
    if second is not None and second.checks and second.before is not None:
        s_last = second.checks[-1]
        n_last = _at(noise, s_last.steps)
        if n_last is not None:
            row["second_seed"] = {"steps": s_last.steps, "before": second.before.score, "after": s_last.score,
                                  "baseline_before": noise.before.score, "baseline_after": n_last.score,
                                  "improvement": _difference(s_last.score, n_last.score),
                                  "se": _paired_se(s_last, n_last, data, settings)}
    return row


def _difference(score: float, baseline: float) -> float:
    if math.isfinite(score) and math.isfinite(baseline):
        return score - baseline
    return math.inf if math.isfinite(score) else -math.inf


def _paired_se(arm: Check, base: Check, data: TrialData, settings: TrialSettings) -> float:
    """The standard error of the arm's score minus the baseline's on the same held-out rows."""
    if data.task == "classification":
        return paired_se("classification", arm.rows, base.rows)
    return paired_se("regression", arm.rows, base.rows, y=np.asarray(data.y_held, dtype=float),
                     bootstrap=settings.bootstrap, seed=settings.seed)


def _summary(outcomes, skipped, data: TrialData, schedule, settings, model, seconds, steps_used) -> dict:
    base, noise = outcomes[0], outcomes[1]
    rows = [_judge(o, base, noise, data, settings) for o in outcomes]
    last = schedule.max_steps
    gap = rows[1].get("seed_gap")
    return rejudge({
        "model": model.name, "task": data.task, "metric": METRIC_OF[data.task], "max_steps": last,
        "rungs": [schedule.steps_at(k) for k in range(len(schedule.checks))], "batch_size": data.batch_size,
        "rows": {"train": int(len(data.x_train)), "held_out": int(len(data.x_held))}, "source": data.source,
        "budget_steps": settings.budget_steps, "used_steps": int(steps_used), "seconds": round(seconds, 1),
        "seed": settings.seed, "noise_floor": rows[1].get("floor"), "seed_gap": gap,
        "arms": rows, "skipped": dict(skipped),
    }, settings.noise_factor, settings.min_improvement)


def try_fixes(model, x, y=None, *, batch_size=None, budget_steps=None, max_steps=None, arms=None, model_fn=None,
              out=None, settings: TrialSettings | None = None, start_weights=None, verbose=True,
              echo=None) -> TrialResult:
    """Try the fixes that apply to a model in short paired runs, and say which helped, measured.

    Each arm (a fix drawn from the model itself: ReLU + He for sigmoid/tanh layers, a better
    initialisation, BatchNormalization, the learning rate /10 and x10, clipping, Adam for SGD, Adagrad or Adadelta,
    the output layer or loss fitted to the target, standardised inputs or target, an LSTM for
    a plain RNN, skip connections for a deep plain stack) trains from the model's own weights
    (wherever the fix does not change them), on the same batches in the same order, and is
    scored on the same held-out rows by one yardstick: accuracy for a classifier, R^2 in the
    target's units for a regression. The model as given trains twice (two seeds): the gap
    between them, and the paired standard error on the held-out rows, are the noise floor; an
    arm helps only beyond it. The budget is spent by successive halving
    (:mod:`gradscope.trials.halving`). The model itself is not trained or changed.

    Args:
        model: a compiled Keras model (Sequential, Functional, or subclassed with ``model_fn``).
        x, y: the training data as ``fit`` takes it: arrays, or a ``tf.data.Dataset`` of
            ``(x, y)`` batches (``y`` then None; at most ``settings.max_batches`` are taken).
        batch_size: as ``fit``'s (default: the dataset's, or 32).
        budget_steps: optimizer steps for all arms together (default ``settings.budget_steps``).
        max_steps: instead of a budget, the most steps one arm takes (the baseline and the best
            arms go that far; the budget follows). The monitor passes its own fit's length, so that
            a fix is judged over as long a run as the one it would fix.
        arms: names of :data:`gradscope.vocabulary.FIXES` to consider (default: all).
        model_fn: for a subclassed model, a function that builds it again: ``model_fn()``, or
            ``model_fn(fix)`` taking a :class:`gradscope.trials.FixSpec` (or None for the model
            as it is) to build the arms that change layers.
        out: the trials folder (default: a new ``reports/trials-<date>-<time>``).
        settings: :class:`gradscope.trials.TrialSettings`.
        start_weights: the weights to start from, if not the model's current ones (the monitor
            passes those from before its ``fit``).
        verbose: print a line per arm as it finishes (to ``echo``, default ``print``).

    Returns:
        A :class:`gradscope.trials.TrialResult`: ``print(result)`` is the table,
        ``result.table`` a DataFrame, ``result.best`` the winning arm or None,
        ``result.findings`` the baseline's findings, each carrying its trial.

    Raises:
        GradscopeError: for a model or data trials cannot use (one line, saying what to change).

    Example:
        >>> import keras, numpy as np, tempfile
        >>> from gradscope import try_fixes
        >>> keras.utils.set_random_seed(0); rng = np.random.default_rng(0)
        >>> x = rng.normal(size=(600, 8)).astype("float32"); y = (x[:, 0] + x[:, 1] > 0).astype(int)
        >>> model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(16, activation="relu"),
        ...                           keras.layers.Dense(2, activation="softmax")])
        >>> model.compile(optimizer=keras.optimizers.SGD(1e-4), loss="sparse_categorical_crossentropy")
        >>> result = try_fixes(model, x, y, batch_size=32, budget_steps=300, verbose=False, out=tempfile.mkdtemp())
        >>> result.best["arm"] in ("lr_up", "adam")
        True
    """
    settings = settings or DEFAULT_TRIAL_SETTINGS
    if budget_steps is not None:
        settings = replace(settings, budget_steps=int(budget_steps))
    if max_steps is not None:
        if budget_steps is not None:
            raise GradscopeError("give try_fixes a budget_steps or a max_steps, not both")
        settings = replace(settings, max_steps=int(max_steps), budget_steps=2 ** 62)
    echo = echo or print
    say = echo if verbose else (lambda *_: None)
    started = time.perf_counter()
    from gradscope.recorders.keras_compat import UnsupportedStack, unsupported_stack

    problem = unsupported_stack(model)  # arms are Keras 3 clones trained on TensorFlow
    if problem is not None:
        raise UnsupportedStack(f"try_fixes cannot try fixes on this model: {problem}")
    if getattr(model, "optimizer", None) is None or getattr(model, "loss", None) is None:
        raise GradscopeError("try_fixes needs a compiled model: call model.compile(optimizer=..., loss=...) first")
    parts = read_model(model)
    if parts.kind == "subclassed" and model_fn is None:
        from gradscope.trials.rebuild import _from_model_fn

        _from_model_fn(None, baseline_plans(settings.seed)[0], parts, {}, None)  # raises its one-line message
    if not parts.single_io:
        raise GradscopeError("try_fixes takes models with one input and one output; this one has "
                             f"{len(parts.graph.inputs)} inputs and {len(parts.graph.outputs)} outputs")
    from gradscope.diagnosis.facts import facts_of
    from gradscope.recorders.data_description import describe_target
    from gradscope.recorders.run_description import describe_model

    x_all, y_all, batch_size, _ = take_rows(x, y, batch_size, settings)
    target = describe_target(y_all)
    facts = facts_of({"config": {}, "model": describe_model(model), "data": {"target": target}})
    task = trial_task(facts, target)
    data = trial_data(x_all, y_all, batch_size, settings, task)
    start = weights_by_layer(parts) if start_weights is None else start_weights
    plans, skipped = plan_arms(parts, model, data.inputs, data.target, task, start_weights=start, settings=settings,
                               only=arms, seed=settings.seed)
    schedule = halving.schedule(len(plans), settings.budget_steps, settings.rungs, settings.min_rung_steps,
                                settings.max_steps)
    if max_steps is not None:
        settings = replace(settings, budget_steps=schedule.total_steps)
    if out is None:
        from gradscope.experiments.config import default_out_dir

        out = default_out_dir(prefix="trials")
    out = Path(out)
    say(f"trying {len(plans)} fixes on {model.name} ({', '.join(p.name for p in plans) or 'none apply'}): up to "
        f"{schedule.max_steps} steps each, {METRIC_OF[task]} on {len(data.x_held)} held-out rows")
    probe_rows = np.linspace(0, len(data.x_train) - 1, min(PROBE_SIZE, len(data.x_train))).astype(int)
    runner = _Runner(parts, start, data, settings, out, model_fn, say, schedule, probe_rows)
    outcomes = runner.baselines(baseline_plans(settings.seed))
    if any(p.name == "clipnorm" for p in plans):
        largest = _largest_gradient(outcomes[0].run_dir)
        if largest <= settings.clipnorm:  # clipping would change no step of the model as given
            skipped["clipnorm"] = (f"no gradient of the model as given went above {settings.clipnorm:g} "
                                   f"(largest {fmt(largest)}): clipping would change no step")
            plans = [p for p in plans if p.name != "clipnorm"]
    outcomes += runner.candidates(plans, *outcomes[:2])
    runner.confirm(outcomes[2:], *outcomes[:2])
    summary = _summary(outcomes, skipped, data, schedule, settings, model, time.perf_counter() - started,
                       runner.steps_used)
    summary["folder"] = str(out)
    result = TrialResult(summary, path=out)
    result.save(out)
    from gradscope.diagnosis import findings_of
    from gradscope.storage import load_run

    baseline_dir = out / "runs" / BASELINE_ARM
    attach(baseline_dir, summary)
    result.findings = findings_of(load_run(baseline_dir))
    say(result.verdict())
    return result


def attach(run_dir: Path, summary: dict) -> None:
    """Write the trials' summary into a finished run's ``run.json`` (section ``trials``)."""
    import json

    from gradscope.storage.run_dir import RUN_JSON, _write_json_atomic

    path = Path(run_dir) / RUN_JSON
    meta = json.loads(path.read_text(encoding="utf-8"))
    meta["trials"] = summary
    _write_json_atomic(path, meta)


__all__ = ["try_fixes", "task_of", "NOISE_ARM"]
