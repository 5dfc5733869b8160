"""Which fixes apply to a model, and what each one changes: one :class:`ArmPlan` per arm.

An arm is drawn from the model itself: ReLU + He only where hidden layers saturate-prone
(sigmoid, tanh), another initialisation only where the weights' scale is off for the
activation, an LSTM only for a plain RNN, standardised inputs only for inputs far from unit
scale, and so on (:data:`gradscope.vocabulary.FIXES` names them all). A plan is data: the
layers it changes and how, the optimizer, the loss and the data transforms;
:mod:`gradscope.trials.rebuild` carries it out.

Example:
    >>> import keras
    >>> model = keras.Sequential([keras.Input((20,)),
    ...     keras.layers.Dense(16, activation="sigmoid", name="d0",
    ...                        kernel_initializer=keras.initializers.RandomNormal(stddev=1.0)),
    ...     keras.layers.Dense(16, activation="sigmoid", name="d1",
    ...                        kernel_initializer=keras.initializers.RandomNormal(stddev=1.0)),
    ...     keras.layers.Dense(3, activation="softmax", name="head")])
    >>> model.compile(optimizer=keras.optimizers.SGD(0.1), loss="sparse_categorical_crossentropy")
    >>> from gradscope.trials.model_parts import read_model
    >>> plans, skipped = plan_arms(read_model(model), model, inputs=None, target=None, task="classification")
    >>> [p.name for p in plans]
    ['relu_he', 'init', 'batchnorm', 'adam', 'lr_up', 'lr_down', 'clipnorm']
    >>> plans[0].what
    'ReLU + He init on d0, d1'
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from gradscope.diagnosis.causes import (inputs_off_scale, logits_recovered, output_mismatch, rate_can_go_negative,
                                       squared_error_on_labels, target_mismatch, target_off_scale)
from gradscope.diagnosis.facts import RunFacts, facts_of
from gradscope.diagnosis.settings import DEFAULT_SETTINGS
from gradscope.recorders import keras_compat as compat
from gradscope.trials.settings import DEFAULT_TRIAL_SETTINGS, TrialSettings
from gradscope.vocabulary import BASELINE_ARM, FIXES, NOISE_ARM, RELU_LIKE, SATURATING, Fix


@dataclass
class ArmPlan:
    """What one arm changes, as data.

    Attributes:
        name: the arm's id (its run directory).
        fix: the :class:`gradscope.vocabulary.Fix` it tries (None for the baseline and its second seed).
        what: one line for tables and findings (``ReLU + He init on dense_0, dense_1``).
        changed: the layers it changes or adds (``[]`` for optimizer and data arms).
        activations: layer name -> new activation of that layer (or of its activation layer).
        initializers: layer name -> ``"he_normal"`` or ``"glorot_uniform"``: redrawn kernels.
        batchnorm: kernel layers after which BatchNormalization goes, before their activation.
        skips: kernel layers whose output gets their input added (identity skip).
        head: ``{"units": K, "activation": ...}`` for a new output layer.
        cells: recurrent layer name -> the class that replaces it (``"LSTM"``).
        optimizer: ``{"learning_rate_scale": 0.1}``, ``{"clipnorm": 1.0}`` or ``{"adam": 0.001}``.
        loss: ``{"class": ..., "from_logits": ...}`` for a new loss (None: the model's own).
        standardise_inputs, standardise_target: train on standardised inputs / target.
        seed: the seed of its new weights and its data order.
        redraw_all: draw every weight again (the baseline's second seed).
    """

    name: str
    fix: Fix | None
    what: str
    changed: list = field(default_factory=list)
    activations: dict = field(default_factory=dict)
    initializers: dict = field(default_factory=dict)
    batchnorm: list = field(default_factory=list)
    skips: list = field(default_factory=list)
    head: dict | None = None
    cells: dict = field(default_factory=dict)
    optimizer: dict = field(default_factory=dict)
    loss: dict | None = None
    standardise_inputs: bool = False
    standardise_target: bool = False
    seed: int = 0
    redraw_all: bool = False

    @property
    def title(self) -> str:
        return self.fix.title if self.fix is not None else ("baseline" if self.name == BASELINE_ARM
                                                          else "baseline, second seed")

    @property
    def changes_loss(self) -> bool:
        """Whether its training loss is in other terms than the baseline's (another loss, output or target scale)."""
        return self.loss is not None or self.head is not None or self.standardise_target

    @property
    def same_graph(self) -> bool:
        """Whether it trains the baseline's very graph (other starting weights, learning rate or data only):
        such arms share one model and one traced step."""
        return (not (self.activations or self.batchnorm or self.skips or self.head or self.cells)
                and self.loss is None and set(self.optimizer) <= {"learning_rate_scale"})

    @property
    def structural(self) -> bool:
        """Whether it changes the model's layers (a subclassed model needs its ``model_fn`` for that)."""
        return bool(self.activations or self.initializers or self.batchnorm or self.skips or self.head or self.cells)


class StartWeights(dict):
    """Layer name -> its weights (NumPy copies): where every arm starts unless it changes them.

    Attributes:
        flat: every weight of the model in ``model.get_weights()`` order (how a subclassed
            model's rebuilt copy receives them).
    """

    flat: list


def weights_by_layer(parts) -> StartWeights:
    """The model's weights now (see :class:`StartWeights`)."""
    from gradscope.recorders.layer_names import walk_layers

    layers = parts.graph.layers if parts.graph is not None else [layer for _, layer in walk_layers(parts.model)]
    out = StartWeights({layer.name: [np.array(w) for w in layer.get_weights()] for layer in layers if layer.weights})
    out.flat = [np.array(w) for w in parts.model.get_weights()]
    return out


#: Optimizers the Adam arm replaces: plain SGD (momentum or not), and Adagrad and Adadelta, whose steps
#: shrink as they go (Adagrad) or start tiny at Keras's default rate (Adadelta at 0.001 since Keras 2.3).
SLOW_OPTIMIZERS = ("SGD", "Adagrad", "Adadelta")
#: ... and an Adam-family optimizer whose ``epsilon`` is at least this (10,000x Keras' 1e-7): where the
#: gradients' root mean square is below it, ``lr * m / (sqrt(v) + epsilon)`` is plain momentum SGD at
#: ``lr / epsilon`` (``epsilon=1.0``, the value TensorFlow's docs quote for Inception, copied to small models).
LARGE_EPSILON = 1e-3
ADAM_EPSILON = 1e-7  # Keras' default
_ADAM_FAMILY = ("Adam", "AdamW", "Nadam", "Adamax")


def _large_epsilon(model) -> float | None:
    """The epsilon of an Adam-family optimizer (or a subclass of one) when it is at least
    :data:`LARGE_EPSILON`, else None."""
    inner = compat.innermost_optimizer(model.optimizer)
    if not {cls.__name__ for cls in type(inner).__mro__} & set(_ADAM_FAMILY):
        return None
    try:
        epsilon = float(inner.get_config().get("epsilon"))
    except (TypeError, ValueError):
        return None
    return epsilon if epsilon >= LARGE_EPSILON else None


def baseline_plans(seed: int) -> list[ArmPlan]:
    """The model as given, and the same model from another seed (the noise floor)."""
    return [ArmPlan(BASELINE_ARM, None, "the model as given", seed=seed),
            ArmPlan(NOISE_ARM, None, f"the model as given, weights and data order from seed {seed + 1}",
                    seed=seed + 1, redraw_all=True)]


def _names(layers) -> str:
    """Layer names for a table: all of them when few, else the first and last and how many."""
    layers = list(layers)
    return ", ".join(layers) if len(layers) <= 3 else f"{layers[0]}..{layers[-1]} ({len(layers)} layers)"


def _fan(kernel_shape) -> tuple[float, float]:
    shape = tuple(int(d) for d in kernel_shape)
    if len(shape) < 2:
        return float(shape[0] if shape else 1), float(shape[0] if shape else 1)
    field_size = float(np.prod(shape[:-2])) if len(shape) > 2 else 1.0
    return shape[-2] * field_size, shape[-1] * field_size


def recommended_std(activation: str | None, kernel_shape) -> float:
    """The weight standard deviation He init (ReLU-like) or Xavier init (anything else) gives."""
    fan_in, fan_out = _fan(kernel_shape)
    if activation in RELU_LIKE:
        return math.sqrt(2.0 / fan_in)
    return math.sqrt(2.0 / (fan_in + fan_out))


def init_is_off(hidden, start_weights: dict, settings: TrialSettings) -> list[str]:
    """The hidden layers whose starting weights are badly scaled for their activation (empty: none).

    Judged from the weights themselves, whatever initializer drew them: a layer is off when its
    kernel's standard deviation is ``settings.init_layer_tolerance`` times off He's (ReLU-like)
    or Xavier's (others), and the stack is off when the product of the layers' variance ratios
    is ``settings.init_tolerance`` times off (30 ReLU layers with Xavier init: 2**-30).
    """
    ratios, off = {}, []
    for h in hidden:
        weights = start_weights.get(h.name)
        kernel = getattr(h.layer, "kernel", None)
        if not weights or kernel is None:
            continue
        values = np.asarray(weights[0])
        if values.shape != tuple(kernel.shape):
            continue
        ratios[h.name] = float(values.std()) / recommended_std(h.activation, values.shape)
    for name, r in ratios.items():
        if not (1 / settings.init_layer_tolerance <= r <= settings.init_layer_tolerance):
            off.append(name)
    if len(ratios) >= 2 and not off:
        with np.errstate(divide="ignore"):
            gain = float(np.sum(2 * np.log10(np.maximum(list(ratios.values()), 1e-30))))
        if abs(gain) > math.log10(settings.init_tolerance):
            off = list(ratios)
    return off


def _optimizer_facts(model) -> tuple[str, float | None, bool]:
    """The optimizer's class, constant (or initial) learning rate, and whether it already clips."""
    inner = compat.innermost_optimizer(model.optimizer)
    config = inner.get_config()
    lr = config.get("learning_rate")
    if isinstance(lr, dict):  # a schedule, serialised
        lr = (lr.get("config") or {}).get("initial_learning_rate")
    try:
        lr = float(lr) if lr is not None else None
    except (TypeError, ValueError):
        lr = None
    clips = any(config.get(k) for k in ("clipnorm", "global_clipnorm", "clipvalue"))
    return type(inner).__name__, lr, clips


def _facts(model, inputs, target) -> RunFacts:
    from gradscope.recorders.run_description import describe_model, describe_optimizer, versions

    return facts_of({"config": {}, "model": describe_model(model), "optimizer": describe_optimizer(model.optimizer),
                     "data": {"inputs": inputs, "target": target}, "versions": versions()})


def _target_classes(target: dict | None) -> int | None:
    if not target:
        return None
    if target.get("one_hot"):
        return int(target["shape"][-1])
    classes = target.get("classes")
    return int(max(classes)) + 1 if classes and min(classes) >= 0 else None


def plan_arms(parts, model, inputs, target, task: str, start_weights: dict | None = None,
              settings: TrialSettings = DEFAULT_TRIAL_SETTINGS, only=None, seed: int = 0):
    """The arms that apply to a model, in the order they are tried, and why the others do not.

    Args:
        parts: :func:`gradscope.trials.model_parts.read_model` of the model.
        model: the compiled model (its optimizer and loss).
        inputs, target: :mod:`gradscope.recorders.data_description` of the training rows.
        task: ``classification`` or ``regression``.
        start_weights: layer name -> its starting weights (to judge the initialisation).
        only: arm names to consider (default: all of :data:`gradscope.vocabulary.FIXES`).

    Returns:
        ``(plans, skipped)``: the :class:`ArmPlan` of each arm that applies, and
        ``{arm name: why it does not apply}`` for the others.
    """
    facts = _facts(model, inputs, target)
    opt_class, lr, clips = _optimizer_facts(model)
    if start_weights is None:
        start_weights = weights_by_layer(parts)
    plans, skipped = [], {}
    hidden = parts.hidden
    graph = parts.graph is not None
    for name in (only or FIXES):
        fix = FIXES[name]
        plan = ArmPlan(name, fix, fix.title, seed=seed)
        reason = None
        if name == "output_fit":
            reason = _plan_output_fit(plan, parts, facts, target, task)
        elif name == "output_pairing":
            mismatch = output_mismatch(facts)
            if mismatch is None:
                reason = "the output activation and the loss fit each other"
            elif logits_recovered(facts):
                reason = (f"Keras on TensorFlow already trains the {facts.head_activation} output from its logits "
                          "(from_logits=True is still wrong: see the finding): the arm would train the same model")
            else:
                _plan_pairing(plan, parts, facts)
        elif name == "standardize_target":
            if task != "regression":
                reason = "not a regression"
            elif facts.log_target_loss:
                reason = f"the loss {facts.loss} takes the target's log: standardised, half of it would be negative"
            elif target_off_scale(facts, DEFAULT_SETTINGS) is None:
                reason = "the target is near unit scale"
            else:
                plan.standardise_target = True
                plan.what = "standardised target (scored after undoing the scaling)"
        elif name == "standardize_inputs":
            if inputs_off_scale(facts, DEFAULT_SETTINGS) is None:
                reason = "the inputs are near unit scale"
            else:
                plan.standardise_inputs = True
                plan.what = "standardised inputs (per feature, fitted on the training rows)"
        elif name == "relu_he":
            saturating = [h.name for h in hidden if h.activation in SATURATING]
            if not saturating:
                reason = "no hidden layer uses a saturating activation"
            else:
                plan.activations = {n: "relu" for n in saturating}
                plan.initializers = {n: "he_normal" for n in saturating}
                plan.changed, plan.what = saturating, f"ReLU + He init on {_names(saturating)}"
        elif name == "init":
            off = init_is_off(hidden, start_weights, settings)
            if not off:
                reason = "the hidden layers' weights are scaled as Xavier/He would scale them"
            else:
                by_act = {h.name: h.activation for h in hidden}
                plan.initializers = {n: ("he_normal" if by_act.get(n) in RELU_LIKE else "glorot_uniform") for n in off}
                kinds = sorted({("He" if v == "he_normal" else "Xavier") for v in plan.initializers.values()})
                plan.changed, plan.what = off, f"{'/'.join(kinds)} init on {_names(off)} (activations kept)"
        elif name == "lstm":
            plain = [layer.name for layer in parts.plain_recurrent if type(layer).__name__ == "SimpleRNN"]
            if not plain:
                reason = "no plain (SimpleRNN) recurrent layer"
            else:
                plan.cells = {n: "LSTM" for n in plain}
                plan.changed, plan.what = plain, f"LSTM instead of SimpleRNN for {_names(plain)}"
        elif name == "batchnorm":
            active = [h.name for h in hidden if h.activation not in (None, "linear")]
            if not graph:
                reason = "a subclassed model (cannot insert layers)"
            elif parts.normalised:
                reason = "the model already normalises"
            elif len(active) < 2:
                reason = "fewer than 2 hidden layers with an activation"
            else:
                plan.batchnorm = active
                plan.changed, plan.what = active, f"BatchNormalization before the activations of {_names(active)}"
        elif name == "skip":
            reason = _plan_skips(plan, parts, settings)
        elif name == "adam":
            epsilon = _large_epsilon(model)
            if opt_class not in SLOW_OPTIMIZERS and epsilon is None:
                reason = (f"the optimizer is {opt_class}, not {' or '.join(SLOW_OPTIMIZERS)} (nor an Adam whose "
                          f"epsilon is {LARGE_EPSILON:g} or more)")
            elif epsilon is not None:  # the user's own optimizer, one argument changed
                plan.optimizer = {"epsilon": ADAM_EPSILON}
                plan.what = f"{opt_class} with Keras' default epsilon ({ADAM_EPSILON:g}) instead of {epsilon:g}"
            else:
                plan.optimizer = {"adam": settings.adam_learning_rate}
                plan.what = f"Adam (learning rate {settings.adam_learning_rate:g}) instead of {opt_class}"
        elif name in ("lr_up", "lr_down"):
            factor = 10.0 if name == "lr_up" else 0.1
            if lr is None:
                reason = "the learning rate is not a number gradscope can scale"
            elif (name == "lr_up" and lr * factor > 10) or (name == "lr_down" and lr * factor < 1e-7):
                reason = f"the learning rate {lr:.3g} is already {'large' if name == 'lr_up' else 'tiny'}"
            else:
                plan.optimizer = {"learning_rate_scale": factor}
                plan.what = f"learning rate {lr:.3g} -> {lr * factor:.3g}"
        elif name == "clipnorm":
            if clips:
                reason = "the optimizer already clips gradients"
            else:
                plan.optimizer = {"clipnorm": settings.clipnorm}
                plan.what = f"gradients clipped to norm {settings.clipnorm:g} (clipnorm)"
        if reason is not None:
            skipped[name] = reason
        else:
            plans.append(plan)
    return plans, skipped


def _plan_output_fit(plan, parts, facts, target, task) -> str | None:
    mismatch = target_mismatch(facts)
    head = parts.head
    if mismatch is None:
        return "the output layer and loss can fit the target"
    if head is None or not parts.single_io:
        return "no single output layer to change"
    classes = _target_classes(target)
    if task == "classification" and classes and classes > 1:
        plan.head = {"units": classes, "activation": "softmax"}
        plan.loss = {"class": "CategoricalCrossentropy" if target.get("one_hot") else "SparseCategoricalCrossentropy"}
        plan.what = f"{head.name}: {classes} softmax units with a categorical cross-entropy"
    else:
        plan.head = {"units": int(getattr(head.layer, "units", 1) or 1), "activation": "linear"}
        if facts.kind_of_loss != "regression" or facts.log_target_loss:
            plan.loss = {"class": "MeanSquaredError"}
        plan.what = f"{head.name}: a linear output" + (" with a mean squared error" if plan.loss else "")
    plan.changed = [head.name]
    return None


def _plan_pairing(plan, parts, facts) -> None:
    head_act, kind = facts.head_activation, facts.kind_of_loss
    wants = "softmax" if kind == "probabilities" else "sigmoid"
    head = parts.head
    units = int(getattr(head.layer, "units", 0) or 0) if head is not None else 0
    name, output = (head.name, [head.name]) if head is not None else ("the output", [])
    if rate_can_go_negative(facts):  # Poisson: the loss stays; the output becomes a positive rate
        plan.head = {"units": units or None, "activation": "exponential"}
        plan.what = f"{name}: exponential activation for the {facts.loss} (a positive rate)"
        plan.changed = output
        return
    if squared_error_on_labels(facts):  # the output stays; the loss becomes the cross-entropy it pairs with
        one_hot = bool((facts.target or {}).get("one_hot"))
        plan.loss = {"class": "BinaryCrossentropy" if head_act == "sigmoid" else
                     "CategoricalCrossentropy" if one_hot else "SparseCategoricalCrossentropy"}
        plan.what = f"{plan.loss['class']} for the {head_act} output instead of {facts.loss}"
        plan.changed = output
        return
    if facts.from_logits and head_act in ("softmax", "sigmoid"):
        plan.loss = {"from_logits": False}
        plan.what = f"{head_act} output with from_logits=False"
    else:
        if units == 1 and kind == "probabilities":  # one unit under a categorical cross-entropy: its loss is 0
            plan.head = {"units": 1, "activation": "sigmoid"}
            plan.loss = {"class": "BinaryCrossentropy"}
            plan.what = f"{name}: sigmoid activation with a binary cross-entropy (one unit)"
        else:
            wants = "sigmoid" if units == 1 else wants
            plan.head = {"units": units or None, "activation": wants}
            if facts.from_logits:
                plan.loss = {"from_logits": False}
            plan.what = f"{name}: {wants} activation for the {facts.loss}"
        plan.changed = output


def _plan_skips(plan, parts, settings) -> str | None:
    if parts.graph is None:
        return "a subclassed model (cannot add paths)"
    if parts.merges or not parts.chain:
        return "not a plain stack of layers"
    same = [h.name for h in parts.hidden
            if tuple(h.layer.input.shape[1:]) == tuple(h.layer.output.shape[1:])]
    if len(parts.hidden) < settings.skip_min_layers or len(same) < settings.skip_min_layers - 1:
        return (f"fewer than {settings.skip_min_layers} hidden layers that keep their input's shape "
                f"({len(same)} of {len(parts.hidden)})")
    plan.skips = same
    plan.changed, plan.what = same, f"identity skip connections around {len(same)} layers ({same[0]}..{same[-1]})"
    return None
