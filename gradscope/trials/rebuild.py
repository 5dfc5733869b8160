"""Carry out an :class:`~gradscope.trials.arms.ArmPlan`: a new, compiled copy of the model with one fix.

Sequential and Functional models are rebuilt with ``keras.models.clone_model``: a clone
function changes a layer's activation, initializer or size (or swaps a cell), and a call
function inserts layers (BatchNormalization before an activation, an identity skip around a
layer). Every layer the plan does not change gets the starting weights of the model as
given, so an arm differs from the baseline only by its fix. A subclassed model cannot be
cloned: it is rebuilt by the user's ``model_fn`` (see :func:`gradscope.try_fixes`).

Example:
    >>> import keras, numpy as np
    >>> from gradscope.trials.arms import ArmPlan
    >>> from gradscope.trials.model_parts import read_model
    >>> model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, activation="tanh", name="h"),
    ...                           keras.layers.Dense(2, activation="softmax", name="out")])
    >>> model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    >>> parts = read_model(model)
    >>> plan = ArmPlan("relu_he", None, "", activations={"h": "relu"}, initializers={"h": "he_normal"})
    >>> arm = build_arm(parts, plan, weights_by_layer(parts), task="classification")
    >>> arm.get_layer("h").activation.__name__, np.allclose(arm.get_layer("out").kernel, model.get_layer("out").kernel)
    ('relu', True)
"""

from __future__ import annotations

import copy
import inspect
from dataclasses import dataclass

from gradscope.errors import GradscopeError
from gradscope.recorders import keras_compat as compat
from gradscope.trials.arms import ArmPlan, weights_by_layer  # noqa: F401  (weights_by_layer: the docstring's example)

__all__ = ["ArmUnbuildable", "FixSpec", "build_arm", "weights_by_layer"]


class ArmUnbuildable(GradscopeError):
    """An arm that cannot be built for this model; its message is the one line the result shows."""


@dataclass(frozen=True)
class FixSpec:
    """What a subclassed model's ``model_fn(fix)`` is asked to build, as data.

    Attributes:
        name: the arm (a name of :data:`gradscope.vocabulary.FIXES`).
        activation: the hidden layers' new activation (``"relu"``), or None to keep it.
        kernel_initializer: the hidden layers' new initializer (``"he_normal"``), or None.
        batchnorm: BatchNormalization before the hidden activations.
        skips: identity skip connections around hidden layers of equal width.
        output_units, output_activation: a new output layer, or None to keep it.
        recurrent: ``"LSTM"`` instead of SimpleRNN, or None.
    """

    name: str
    activation: str | None = None
    kernel_initializer: str | None = None
    batchnorm: bool = False
    skips: bool = False
    output_units: int | None = None
    output_activation: str | None = None
    recurrent: str | None = None

    @classmethod
    def of(cls, plan: ArmPlan) -> FixSpec:
        head = plan.head or {}
        return cls(plan.name, activation=next(iter(plan.activations.values()), None),
                   kernel_initializer=next(iter(plan.initializers.values()), None), batchnorm=bool(plan.batchnorm),
                   skips=bool(plan.skips), output_units=head.get("units"), output_activation=head.get("activation"),
                   recurrent=next(iter(plan.cells.values()), None))


def _reseeded(config, seed: int):
    """A layer config whose every integer ``seed`` is moved by ``seed`` (other weights, other dropout)."""
    if isinstance(config, dict):
        return {k: (v + 7919 * seed if k == "seed" and isinstance(v, int) and not isinstance(v, bool)
                    else _reseeded(v, seed)) for k, v in config.items()}
    if isinstance(config, list):
        return [_reseeded(v, seed) for v in config]
    return config


def _initializer(name: str, seed: int):
    import keras

    cls = {"he_normal": keras.initializers.HeNormal, "glorot_uniform": keras.initializers.GlorotUniform}[name]
    return keras.initializers.serialize(cls(seed=seed))


class _Cloner:
    """The clone and call functions of one plan (layers keep their names, so weights are copied by name)."""

    def __init__(self, parts, plan: ArmPlan):
        self.parts, self.plan = parts, plan
        self.own_act, self.act_layers = {}, {}  # layer name -> new activation of the layer / of its activation layer
        for h in [*parts.hidden, *([parts.head] if parts.head else [])]:
            new = plan.activations.get(h.name)
            if h is parts.head and plan.head and plan.head.get("activation"):
                new = plan.head["activation"]
            if new is None:
                continue
            if h.act_layer is not None:
                self.act_layers[h.act_layer.name] = new
            else:
                self.own_act[h.name] = new
        kernels = {h.name: h for h in parts.hidden}
        self.stripped = {}  # kernel layer -> the activation moved after BatchNormalization
        for name in plan.batchnorm:
            h = kernels[name]
            if h.act_layer is None and h.activation not in (None, "linear"):
                self.stripped[name] = self.own_act.pop(name, h.activation)
        self.skip_at = {}   # layer after which the skip's Add goes -> the kernel layer it goes around
        for name in plan.skips:
            h = kernels[name]
            self.skip_at[h.act_layer.name if h.act_layer is not None else name] = name
        self.inputs_of = {}
        self.renamed = set(plan.initializers) | set(plan.cells)  # layers whose weights are drawn anew
        if plan.head and plan.head.get("units") not in (None, getattr(parts.head.layer, "units", None)):
            self.renamed.add(parts.head.name)

    def clone(self, layer):
        import keras

        config = layer.get_config()
        name = layer.name
        if self.plan.redraw_all:
            config = _reseeded(config, self.plan.seed)
        if name in self.act_layers:
            return keras.layers.Activation(self.act_layers[name], name=name)
        if name in self.plan.cells:
            keep = {k: config[k] for k in ("units", "return_sequences", "return_state", "go_backwards", "stateful",
                                           "dropout", "recurrent_dropout") if k in config}
            return getattr(keras.layers, self.plan.cells[name])(name=name, **keep)
        if name in self.own_act:
            config["activation"] = self.own_act[name]
        if name in self.stripped:
            config["activation"] = "linear"
        if name in self.plan.initializers:
            index = list(self.plan.initializers).index(name)
            config["kernel_initializer"] = _initializer(self.plan.initializers[name], self.plan.seed * 1000 + index)
        if self.plan.head and name == self.parts.head.name and self.plan.head.get("units"):
            config["units"] = int(self.plan.head["units"])
        return layer.__class__.from_config(config)

    def call(self, layer, *args, **kwargs):
        import keras

        name = layer.name
        out = layer(*args, **kwargs)
        if name in self.plan.batchnorm:
            out = keras.layers.BatchNormalization(name=f"{name}_bn")(out)
            if name in self.stripped:
                out = keras.layers.Activation(self.stripped[name], name=f"{name}_act")(out)
        if name in self.plan.skips:
            self.inputs_of[name] = args[0]
        if name in self.skip_at:
            out = keras.layers.Add(name=f"{self.skip_at[name]}_skip")([out, self.inputs_of[self.skip_at[name]]])
        return out

    @property
    def inserts(self) -> bool:
        return bool(self.plan.batchnorm or self.plan.skips)


def _copy_weights(new_model, start_weights: dict, keep_out: set) -> None:
    """Give every layer not in ``keep_out`` its starting weights (by name, where the shapes agree)."""
    for layer in new_model.layers:
        weights = start_weights.get(layer.name)
        if layer.name in keep_out or not weights or not layer.weights:
            continue
        if [tuple(w.shape) for w in layer.get_weights()] == [tuple(w.shape) for w in weights]:
            layer.set_weights(weights)


def _from_model_fn(model_fn, plan: ArmPlan, parts, start_weights: dict, sample_x):
    if model_fn is None:
        raise GradscopeError(
            f"try_fixes cannot rebuild the subclassed model {parts.model.name!r} ({type(parts.model).__name__}): "
            "Keras can clone only Sequential and Functional models. Pass model_fn=, a function that builds it again "
            "(model_fn() for the model as it is; model_fn(fix) with a gradscope.trials.FixSpec for the arms that "
            "change layers)")
    takes_fix = bool(inspect.signature(model_fn).parameters)
    if plan.structural:
        if not takes_fix:
            raise ArmUnbuildable(f"{plan.title}: model_fn() takes no fix argument, so layers cannot be changed")
        model = model_fn(FixSpec.of(plan))
        if model is None:
            raise ArmUnbuildable(f"{plan.title}: model_fn returned None for this fix")
    else:
        model = model_fn(None) if takes_fix else model_fn()
    if not compat.built(model):
        model(sample_x[:1])
    if not plan.structural and not plan.redraw_all:
        original = start_weights.flat
        if [tuple(w.shape) for w in model.get_weights()] != [tuple(w.shape) for w in original]:
            raise GradscopeError(f"model_fn built a model whose weights differ in shape from {parts.model.name!r}'s; "
                                 "it must build the same architecture")
        model.set_weights(original)
    return model


def make_optimizer(model, changes: dict):
    """A fresh optimizer like the model's, with an arm's changes (a scaled learning rate, clipping, an epsilon,
    Adam)."""
    import keras

    inner = compat.innermost_optimizer(model.optimizer)
    config = inner.get_config()
    if "adam" in changes:
        clips = {k: config[k] for k in ("clipnorm", "global_clipnorm", "clipvalue") if config.get(k)}
        return keras.optimizers.Adam(learning_rate=changes["adam"], **clips)
    config = copy.deepcopy(config)
    scale = changes.get("learning_rate_scale")
    if scale is not None:
        lr = config["learning_rate"]
        if isinstance(lr, dict):
            lr["config"]["initial_learning_rate"] = float(lr["config"]["initial_learning_rate"]) * scale
        else:
            config["learning_rate"] = float(lr) * scale
    if "clipnorm" in changes:
        config["clipnorm"] = changes["clipnorm"]
    if "epsilon" in changes:
        config["epsilon"] = changes["epsilon"]
    try:
        return type(inner).from_config(config)
    except Exception as exc:
        raise ArmUnbuildable(f"the optimizer {type(inner).__name__} cannot be made again from its config ({exc})") from None


def make_loss(model, change: dict | None):
    """The model's loss, or the arm's new one (another class, or ``from_logits`` changed)."""
    import keras

    loss = model.loss
    if change is None:
        return loss
    if "class" in change:
        cls = getattr(keras.losses, change["class"])
        return cls(from_logits=change["from_logits"]) if "from_logits" in change else cls()
    if isinstance(loss, str):
        loss = keras.losses.get(loss)
    if not hasattr(loss, "get_config"):
        raise ArmUnbuildable(f"the loss {loss!r} has no from_logits to change")
    config = loss.get_config()
    config["from_logits"] = change["from_logits"]
    return type(loss).from_config(config)


def build_arm(parts, plan: ArmPlan, start_weights: dict, task: str, model_fn=None, sample_x=None):
    """The arm's model, compiled, starting from ``start_weights`` wherever the plan does not change them.

    Raises:
        ArmUnbuildable: when this arm cannot be built for this model (the message says why, in one line).
        GradscopeError: when no arm can be built (a subclassed model without ``model_fn``).
    """
    import keras

    keras.utils.set_random_seed(plan.seed)
    if parts.graph is not None:
        cloner = _Cloner(parts, plan)
        try:
            model = keras.models.clone_model(parts.graph, clone_function=cloner.clone,
                                             call_function=cloner.call if cloner.inserts else None)
        except Exception as exc:
            raise ArmUnbuildable(f"{plan.title}: the model could not be rebuilt ({type(exc).__name__}: "
                                 f"{str(exc).splitlines()[0] if str(exc) else ''})") from None
        if not plan.redraw_all:
            _copy_weights(model, start_weights, cloner.renamed)
    else:
        model = _from_model_fn(model_fn, plan, parts, start_weights, sample_x)
    metrics = ["accuracy"] if task == "classification" else None
    model.compile(optimizer=make_optimizer(parts.model, plan.optimizer), loss=make_loss(parts.model, plan.loss),
                  metrics=metrics)
    return model
