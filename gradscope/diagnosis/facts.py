"""What the rules need to know about a run besides its records, read from the model itself.

``run.json`` describes the model (every layer's activation and initializer, the loss, the
optimizer); runs of ``gradscope analyze`` also name their activation and init in their config.
:func:`facts_of` turns either into :class:`RunFacts`, so that no rule assumes what the command
line's defaults were (10 classes, say).

Example:
    >>> meta = {"config": {}, "model": {"loss": "binary_crossentropy", "layers": [
    ...     {"name": "h", "class": "Dense", "activation": "tanh", "params": 30,
    ...      "kernel_initializer": "RandomNormal(stddev=1.0)"},
    ...     {"name": "out", "class": "Dense", "activation": "sigmoid", "units": 1, "params": 11}]},
    ...     "optimizer": {"class": "SGD", "learning_rate": 0.5}}
    >>> f = facts_of(meta)
    >>> f.n_classes, f.act, f.large_random_init, f.head_activation, f.learning_rate
    (2, 'tanh', True, 'sigmoid', 0.5)
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from gradscope.vocabulary import LARGE_INIT_STD, LARGE_RANDOM_INIT, NORMAL_PREFIX

_PROBABILITY_LOSSES = ("categorical_crossentropy", "sparse_categorical_crossentropy", "categoricalcrossentropy",
                       "sparsecategoricalcrossentropy", "categorical_focal_crossentropy")
_BINARY_LOSSES = ("binary_crossentropy", "binarycrossentropy", "binary_focal_crossentropy")
_NORMALISATION = ("BatchNormalization", "LayerNormalization", "GroupNormalization")
_MERGES = ("Add", "Concatenate", "Average", "Multiply", "Subtract", "Maximum", "Minimum")
#: Regression losses for targets of 0 or more (they take a log; Keras's MSLE clips the target at 0).
LOG_TARGET_LOSSES = ("msle", "mean_squared_logarithmic_error", "meansquaredlogarithmicerror", "poisson")
_REGRESSION_LOSSES = ("mse", "mae", "mean_squared_error", "mean_absolute_error", "huber", "meansquarederror",
                      "meanabsoluteerror", "log_cosh", "logcosh", *LOG_TARGET_LOSSES)


@dataclass(frozen=True)
class RunFacts:
    """A run's model and training, as far as they are known (None: not known).

    Attributes:
        act: the hidden layers' activation when they share one.
        init: the ``--init`` name, or the hidden layers' initializer when they share one.
        large_random_init: weights drawn with a standard deviation of
            :data:`~gradscope.vocabulary.LARGE_INIT_STD` or more (N(0, 1)).
        n_classes: classes of a classification loss (2 for a binary one); None for regression.
        head_activation: the output layer's activation.
        loss: the loss's name, lower case without underscores' variants normalised.
        from_logits: whether the loss takes logits.
        layers: the layer sizes the config lists (input first), for explanations.
        layer_classes: each described layer's Keras class by name (``{"lstm": "LSTM"}``).
        head_units: the output layer's units.
        output_layers: the output layer(s) and the layers without weights after them (an output
            activation): their saturated or silent units are the output's range, not a hidden problem.
        normalises_inputs: the model scales its own inputs (a Normalization, Rescaling or
            normalisation layer before its first layer with weights).
        idle_normalization: the name of a Normalization layer before the first weights that passes the
            inputs through unchanged (never adapted), or None.
        index_inputs: the model's inputs are indices, not features (its first layer with weights is
            an Embedding, or a lookup layer comes before it): their scale says nothing.
        inputs: the training inputs' scale (:func:`gradscope.recorders.data_description.describe_inputs`).
        target: the training target's range (:func:`gradscope.recorders.data_description.describe_target`).
        backend: the Keras backend that trained the run (``tensorflow``, ``jax``, ``torch``); None when
            not known. Runs recorded before it was written down were all TensorFlow's.
    """

    act: str | None = None
    init: str | None = None
    large_random_init: bool = False
    n_classes: int | None = None
    head_activation: str | None = None
    loss: str | None = None
    from_logits: bool | None = None
    learning_rate: float | None = None
    optimizer: str | None = None
    layers: list = field(default_factory=list)
    depth: int | None = None
    layer_classes: dict = field(default_factory=dict)
    head_units: int | None = None
    output_layers: tuple = ()
    normalises_inputs: bool = False
    idle_normalization: str | None = None
    index_inputs: bool = False
    inputs: dict | None = None
    target: dict | None = None
    backend: str | None = None

    def loss_is(self, *names: str) -> bool:
        """Whether the loss is one of ``names`` (any case, with or without underscores, a prefix: ``"poisson"``)."""
        return _loss_among(self.loss, names)

    @property
    def log_target_loss(self) -> bool:
        """Whether the loss takes the log of the target (MSLE, Poisson): it cannot fit values below 0."""
        return _loss_among(self.loss, LOG_TARGET_LOSSES)

    @property
    def recurrent_classes(self) -> set:
        """The recurrent layer classes of the model (``{"LSTM"}``)."""
        return {c for c in self.layer_classes.values() if c in ("SimpleRNN", "LSTM", "GRU", "RNN")}

    @property
    def conv(self) -> bool:
        return any(str(c).startswith(("Conv", "SeparableConv", "DepthwiseConv")) for c in self.layer_classes.values())

    @property
    def classification(self) -> bool:
        return self.loss is None or self.kind_of_loss in ("probabilities", "binary")

    @property
    def kind_of_loss(self) -> str | None:
        """``probabilities`` (categorical cross-entropy), ``binary``, ``regression`` or None."""
        if self.loss is None:
            return None
        for kind, names in (("probabilities", _PROBABILITY_LOSSES), ("binary", _BINARY_LOSSES),
                            ("regression", _REGRESSION_LOSSES)):
            if _loss_among(self.loss, names):
                return kind
        return None


def _loss_among(loss: str | None, names: tuple) -> bool:
    """Whether a loss's name (any case, with or without underscores) starts with one of ``names``."""
    name = (loss or "").replace("_", "").lower()
    return bool(name) and any(name.startswith(p.replace("_", "")) for p in names)


def _layer_stddev(layer: dict) -> float | None:
    """The standard deviation a layer's kernel was drawn with, from its initializer's config (runs recorded
    before the config was written: from its text)."""
    config = layer.get("kernel_initializer_config")
    if config is None:
        return _stddev(layer.get("kernel_initializer"))
    if config.get("class") in ("RandomNormal", "TruncatedNormal"):
        return float(config.get("stddev", 0.05))
    return None


def _stddev(init_text: str | None) -> float | None:
    if not init_text:
        return None
    if init_text == LARGE_RANDOM_INIT:
        return 1.0
    if init_text.startswith(NORMAL_PREFIX):
        try:
            return float(init_text[len(NORMAL_PREFIX):])
        except ValueError:
            return None
    match = re.match(r"(RandomNormal|TruncatedNormal)\((?:.*?)stddev=([0-9.eE+-]+)", init_text)
    if match:
        return float(match.group(2))
    if init_text.startswith(("RandomNormal", "TruncatedNormal")):
        return 0.05  # Keras' default
    return None


def _shared(values):
    values = [v for v in values if v]
    return values[0] if values and len(set(values)) == 1 else None


def facts_of(meta: dict | None = None, config: dict | None = None) -> RunFacts:
    """The facts of a run from its ``run.json`` content (or from a config alone)."""
    meta = meta or {}
    config = dict(config if config is not None else meta.get("config") or {})
    model = meta.get("model") or {}
    layers = [layer for layer in model.get("layers", []) if layer.get("params")]
    hidden, head = (layers[:-1], layers[-1]) if layers else ([], None)
    if len(model.get("outputs") or []) > 1:  # several heads: none of them is a hidden layer
        hidden = [layer for layer in layers if layer["name"] not in model["outputs"]]
    described = model.get("layers", [])
    heads = ([layer for layer in layers if layer["name"] in model["outputs"]] if len(model.get("outputs") or []) > 1
             else [head] if head else [])
    act = config.get("act") or _shared([_applied_activation(described, layer) for layer in hidden
                                        if layer.get("class") not in _NORMALISATION])
    init = config.get("init") or _shared([layer.get("kernel_initializer") for layer in hidden])
    stds = [_stddev(config.get("init"))] if config.get("init") else [_layer_stddev(layer) for layer in hidden]
    loss = model.get("loss")
    if isinstance(loss, (list, dict)):  # several outputs: the rules judge one head only
        loss = None
    from_logits = model.get("loss_from_logits")  # as data; runs recorded before it say it in the loss's text
    if isinstance(loss, str) and "(from_logits=True)" in loss:
        loss, from_logits = loss.replace("(from_logits=True)", ""), True
    elif isinstance(loss, str) and from_logits is None:
        from_logits = False
    head_activation = _applied_activation(described, head)
    if loss is None and config.get("framework") in ("keras", "tf1") and config.get("layers"):
        # gradscope's own MLPs: Keras ends in softmax + sparse cross-entropy, the TF1 graph in
        # logits + softmax_cross_entropy_with_logits
        tf1 = config.get("framework") == "tf1"
        loss, from_logits, head_activation = "sparse_categorical_crossentropy", tf1, "linear" if tf1 else "softmax"
    facts = RunFacts(act=act, init=init, large_random_init=any(s is not None and s >= LARGE_INIT_STD for s in stds),
                     head_activation=head_activation,
                     loss=_normal_loss_name(loss), from_logits=from_logits,
                     optimizer=((meta.get("optimizer") or {}).get("class") or config.get("optimizer") or "").lower() or None,
                     learning_rate=_learning_rate(meta, config), layers=list(config.get("layers") or []),
                     depth=len(layers) or (len(config["layers"]) - 1 if config.get("layers") else None),
                     layer_classes={layer["name"]: layer.get("class") for layer in model.get("layers", [])
                                    if layer.get("name")},
                     head_units=(head or {}).get("units"),
                     normalises_inputs=_meets_inputs(described, _INPUT_SCALING),
                     idle_normalization=_idle_normalization(described),
                     index_inputs=_meets_inputs(described, _INDEX_LAYERS),
                     output_layers=_output_layers(described, heads),
                     inputs=(meta.get("data") or {}).get("inputs"), target=(meta.get("data") or {}).get("target"),
                     backend=_backend(meta))
    return RunFacts(**{**facts.__dict__, "n_classes": _classes(facts, head, config)})


def _backend(meta: dict) -> str | None:
    versions = meta.get("versions") or (meta.get("config") or {}).get("versions") or {}
    if versions.get("keras_backend"):
        return versions["keras_backend"]
    return "tensorflow" if versions.get("tensorflow") else None


_INPUT_SCALING = ("Normalization", "Rescaling", "BatchNormalization", "LayerNormalization", "GroupNormalization")


def _output_layers(layers: list, heads: list) -> tuple:
    names = [layer.get("name") for layer in layers]
    out = []
    for head in heads:
        out.append(head["name"])
        start = names.index(head["name"]) + 1 if head.get("name") in names else len(layers)
        for layer in layers[start:]:
            if layer.get("params"):
                break
            out.append(layer["name"])
    return tuple(out)


#: Layers that take indices (token or category ids) rather than features.
_INDEX_LAYERS = ("Embedding", "IntegerLookup", "StringLookup", "TextVectorization", "Hashing", "CategoryEncoding")


def _up_to_weights(layers: list):
    """The layers up to and including the model's first layer with weights (an idle Normalization's mean and
    variance are not weights: it passes the inputs through)."""
    for layer in layers:
        yield layer
        if layer.get("params") and not layer.get("identity"):
            return


def _meets_inputs(layers: list, classes: tuple) -> bool:
    """Whether a layer of one of ``classes`` comes before (or is) the model's first layer with weights (a
    Normalization never adapted does not count)."""
    return any(layer.get("class") in classes and not layer.get("identity") for layer in _up_to_weights(layers))


def _idle_normalization(layers: list) -> str | None:
    """The name of a Normalization layer before the first layer with weights that was never adapted."""
    return next((layer.get("name") for layer in _up_to_weights(layers)
                 if layer.get("class") == "Normalization" and layer.get("identity")), None)


def _applied_activation(layers: list, layer: dict | None) -> str | None:
    """The activation applied to a layer's output: its own, or that of an activation layer after it
    (``Dense(10)`` then ``Activation("softmax")`` is a softmax output)."""
    if layer is None:
        return None
    own = layer.get("activation")
    if own not in (None, "linear"):
        return own
    names = [other.get("name") for other in layers]
    after = layers[names.index(layer["name"]) + 1:] if layer.get("name") in names else []
    for other in after:  # layers without weights after it (or a normalisation): dropout, reshape, an activation
        if (other.get("params") and other.get("class") not in _NORMALISATION) or other.get("class") in _MERGES:
            break
        if other.get("activation") not in (None, "linear"):
            return other["activation"]
    return own


def _normal_loss_name(loss):
    if not isinstance(loss, str):
        return None
    name = re.sub(r"(?<!^)(?=[A-Z])", "_", loss).lower() if any(c.isupper() for c in loss) else loss.lower()
    return name


def _learning_rate(meta, config):
    lr = (meta.get("optimizer") or {}).get("learning_rate")
    if isinstance(lr, dict):
        lr = lr.get("initial_learning_rate")
    if lr is None:
        lr = config.get("lr")
    try:
        return float(lr) if lr is not None else None
    except (TypeError, ValueError):
        return None


def _classes(facts: RunFacts, head: dict | None, config: dict) -> int | None:
    """Classes of a classifier: 2 for a binary loss; else what the target holds (its labels, or its
    one-hot width); else the output's units (one unit: 2); else the config's last layer."""
    kind = facts.kind_of_loss
    if kind == "binary":
        return 2
    if kind == "regression":
        return None
    target = facts.target or {}
    if target.get("one_hot") and target.get("shape"):
        return int(target["shape"][-1])
    if target.get("classes") and kind == "probabilities":
        return max(len(target["classes"]), 2)
    units = (head or {}).get("units")
    if units:
        return max(int(units), 2)
    layers = config.get("layers")
    return int(layers[-1]) if layers else None
