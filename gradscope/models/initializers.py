"""Activations and weight initialisers by the names users type, for Keras and for TF1 graphs.

The names, what they mean and how each framework builds them are in :data:`INITS`: ``normal`` is N(0, 1),
``normal_<s>`` is N(0, s**2), ``standard`` is U[-1/sqrt(fan_in), 1/sqrt(fan_in)], ``xavier`` is
Glorot uniform, ``he`` is He truncated normal; Keras also builds any other Keras initializer name.

Example:
    >>> make_initializer("normal_0.01", seed=0).get_config()["stddev"]
    0.01
    >>> make_initializer("hee")
    Traceback (most recent call last):
    ...
    gradscope.errors.GradscopeError: unknown initializer 'hee'; did you mean 'he'?
"""

from __future__ import annotations

import difflib

from dataclasses import dataclass

from gradscope.errors import GradscopeError
from gradscope.vocabulary import NORMAL_PREFIX

#: Keras activation names offered in error messages (keras.activations has a few more).
KNOWN_ACTIVATIONS = [
    "sigmoid", "tanh", "relu", "relu6", "leaky_relu", "elu", "selu", "gelu", "silu", "swish",
    "softplus", "softsign", "hard_sigmoid", "hard_silu", "mish", "exponential", "linear",
    "log_sigmoid", "celu", "glu", "sparse_plus", "squareplus", "hard_tanh", "soft_shrink",
]

#: Every activation name Keras (3.15) knows: names checked before TensorFlow is imported (a test
#: compares it with ``keras.activations``).
KERAS_ACTIVATIONS = frozenset({
    "celu", "elu", "exponential", "gelu", "glu", "hard_shrink", "hard_sigmoid", "hard_silu", "hard_swish",
    "hard_tanh", "leaky_relu", "linear", "log_sigmoid", "log_softmax", "mish", "relu", "relu6", "selu",
    "sigmoid", "silu", "soft_shrink", "softmax", "softplus", "softsign", "sparse_plus", "sparse_sigmoid",
    "sparsemax", "squareplus", "swish", "tanh", "tanh_shrink", "threshold",
})
#: Activations that make a distribution, not a hidden layer.
OUTPUT_ONLY_ACTIVATIONS = frozenset({"softmax", "log_softmax", "sparsemax"})


@dataclass(frozen=True)
class Init:
    """An ``--init`` name and how each framework builds it.

    Attributes:
        description: what the name means, in words.
        keras: the Keras initializer Keras builds it as (None: from ``stddev`` or ``scaling``).
        stddev: N(0, stddev**2) weights.
        scaling: variance scaling ``(scale, mode, distribution)``, as TF1 graphs build it.
    """

    description: str
    keras: str | None = None
    stddev: float | None = None
    scaling: tuple[float, str, str] | None = None


#: gradscope's own initialiser names (both frameworks build them); Keras builds any other Keras name too.
INITS = {
    "normal": Init("N(0, 1) weights, the seed's tf.random.normal (the 'random' init)", stddev=1.0),
    "standard": Init("U[-1/sqrt(fan_in), 1/sqrt(fan_in)], Glorot & Bengio's 'standard' init",
                     scaling=(1.0 / 3.0, "fan_in", "uniform")),
    "xavier": Init("Glorot uniform (TF1's xavier_initializer)", keras="glorot_uniform",
                   scaling=(1.0, "fan_avg", "uniform")),
    "he": Init("truncated normal with Var(w) = 2/fan_in (TF1's variance_scaling_initializer())",
               keras="he_normal", scaling=(2.0, "fan_in", "truncated_normal")),
    "glorot_uniform": Init("Glorot uniform", keras="glorot_uniform", scaling=(1.0, "fan_avg", "uniform")),
    "glorot_normal": Init("Glorot truncated normal", keras="glorot_normal", scaling=(1.0, "fan_avg", "truncated_normal")),
    "he_normal": Init("He truncated normal", keras="he_normal", scaling=(2.0, "fan_in", "truncated_normal")),
    "he_uniform": Init("He uniform", keras="he_uniform", scaling=(2.0, "fan_in", "uniform")),
    "lecun_normal": Init("LeCun truncated normal", keras="lecun_normal", scaling=(1.0, "fan_in", "truncated_normal")),
    "lecun_uniform": Init("LeCun uniform", keras="lecun_uniform", scaling=(1.0, "fan_in", "uniform")),
    "zeros": Init("all weights 0 (symmetric: every unit of a layer stays the same)", keras="zeros"),
}
#: Initialiser names offered in error messages.
KNOWN_INITS = list(INITS) + ["orthogonal", "random_normal", "random_uniform", "truncated_normal", "ones",
                             "variance_scaling"]
#: Every initializer name Keras (3.15) knows by a snake_case string (a test compares it with
#: ``keras.initializers``).
KERAS_INITIALIZERS = frozenset({
    "glorot_normal", "glorot_uniform", "he_normal", "he_uniform", "identity", "lecun_normal",
    "lecun_uniform", "normal", "one", "ones", "orthogonal", "random_normal", "random_uniform", "stft",
    "truncated_normal", "uniform", "variance_scaling", "zero", "zeros",
})


def keras_init_name(init: str) -> str:
    """The Keras name of an ``--init`` name (``xavier`` -> ``glorot_uniform``), else the name itself."""
    spec = INITS.get(init)
    return spec.keras if spec is not None and spec.keras else init


def _suggest(name: str, known: list[str]) -> str:
    close = difflib.get_close_matches(name, known, n=1)
    return f"; did you mean {close[0]!r}?" if close else f"; choose one of {', '.join(known)}"


def _unknown_activation(name: str) -> GradscopeError:
    return GradscopeError(f"unknown activation {name!r}" + _suggest(name, KNOWN_ACTIVATIONS))


def _not_for_hidden_layers(name: str) -> GradscopeError:
    return GradscopeError(f"activation {name!r} is not usable for hidden layers" + _suggest(name, KNOWN_ACTIVATIONS))


def _unknown_initializer(name: str) -> GradscopeError:
    return GradscopeError(f"unknown initializer {name!r}" + _suggest(name, KNOWN_INITS))


def _tf1_builds(name: str) -> bool:
    """Whether a TF1 graph can build the ``--init`` name (gradscope's own names and ``normal_<s>``)."""
    return name in INITS or normal_std(name) is not None


def _not_in_tf1(name: str) -> GradscopeError:
    return GradscopeError(f"initializer {name!r} is not available with --framework tf1; choose one of "
                          f"{', '.join(INITS)} or normal_<s>")


def check_activation(name: str):
    """Return the Keras activation for ``name``.

    Raises:
        GradscopeError: for a name Keras does not know, with a suggestion.
    """
    import keras

    try:
        fn = keras.activations.get(name)
    except (ValueError, TypeError):
        raise _unknown_activation(name) from None
    if fn is None or name in OUTPUT_ONLY_ACTIVATIONS:
        raise _not_for_hidden_layers(name)
    return fn


def check_names(acts, inits, framework: str = "keras") -> None:
    """Check ``--act`` and ``--init`` names without importing TensorFlow.

    Raises:
        GradscopeError: for a name Keras does not know (with a suggestion), an activation that
            only makes an output distribution, or an initializer TF1 graphs cannot build.

    Example:
        >>> check_names(["sigmoid", "relu"], ["normal", "he", "normal_0.01", "orthogonal"])
        >>> check_names(["sigmod"], ["he"])
        Traceback (most recent call last):
        ...
        gradscope.errors.GradscopeError: unknown activation 'sigmod'; did you mean 'sigmoid'?
    """
    for name in acts:
        if name not in KERAS_ACTIVATIONS:
            raise _unknown_activation(name)
        if name in OUTPUT_ONLY_ACTIVATIONS:
            raise _not_for_hidden_layers(name)
    for name in inits:
        if _tf1_builds(name):
            continue
        if framework == "tf1":
            raise _not_in_tf1(name)
        if name not in KERAS_INITIALIZERS:
            raise _unknown_initializer(name)


def normal_std(name: str) -> float | None:
    """The standard deviation in a ``normal_<std>`` name (``normal_0.01`` -> 0.01), else None."""
    if not name.startswith(NORMAL_PREFIX):
        return None
    try:
        std = float(name[len(NORMAL_PREFIX):])
    except ValueError:
        raise GradscopeError(f"unknown initializer {name!r}; write N(0, s) as normal_<s>, e.g. normal_0.01") from None
    if not (std > 0 and std < float("inf")):
        raise GradscopeError(f"initializer {name!r}: the standard deviation must be positive")
    return std


def _spec(name: str):
    """The :class:`gradscope.vocabulary.Init` of a name (``normal_<s>`` and other Keras names included)."""
    spec = INITS.get(name)
    if spec is not None:
        return spec
    std = normal_std(name)
    return Init(f"N(0, {std}**2)", stddev=std) if std is not None else Init(f"Keras' {name}", keras=name)


def make_initializer(name: str, seed: int | None = None):
    """Return a Keras initializer for an ``--init`` name.

    Raises:
        GradscopeError: for an unknown name, with a suggestion.
    """
    import keras

    spec = _spec(name)
    if spec.keras is None and spec.stddev is not None:
        return keras.initializers.RandomNormal(mean=0.0, stddev=spec.stddev, seed=seed)
    if spec.keras is None:
        scale, mode, distribution = spec.scaling
        return keras.initializers.VarianceScaling(scale=scale, mode=mode, distribution=distribution, seed=seed)
    try:
        init = keras.initializers.get(spec.keras)
    except (ValueError, TypeError):
        init = None
    if init is None:
        raise _unknown_initializer(name)
    config = init.get_config()
    if "seed" in config:
        config["seed"] = seed
        init = init.__class__.from_config(config)
    return init


def make_tf1_initializer(name: str, seed: int | None):
    """Return a ``tf.compat.v1`` initializer for an ``--init`` name (the names of ``INITS`` and ``normal_<s>``).

    Raises:
        GradscopeError: for a name TF1 graphs cannot build.
    """
    import tensorflow as tf

    tf1 = tf.compat.v1
    if not _tf1_builds(name):
        raise _not_in_tf1(name)
    spec = _spec(name)
    if spec.stddev is not None:
        return tf1.random_normal_initializer(0.0, spec.stddev, seed=seed)
    if spec.scaling is not None:
        return tf1.variance_scaling_initializer(*spec.scaling, seed=seed)
    return tf1.zeros_initializer()
