"""The seed course's MLP, built with any activation and weight initialiser.

Initialiser names (design.md section 5):

* ``normal``: N(0, 1) weights, the seed's ``tf.random.normal`` (the "random" init);
  ``normal_<s>`` is N(0, s**2), e.g. ``normal_0.01``;
* ``standard``: U[-1/sqrt(fan_in), 1/sqrt(fan_in)], Glorot & Bengio's "standard" init;
* ``xavier``: Glorot uniform (TF1's ``xavier_initializer``, Keras ``glorot_uniform``);
* ``he``: truncated normal with Var(w) = 2 / fan_in (TF1's ``variance_scaling_initializer()``
  defaults, Keras ``he_normal``);
* any other Keras initializer name (``glorot_normal``, ``he_uniform``, ``lecun_normal``, ...).
"""

from __future__ import annotations

import difflib

from gradscope.errors import GradscopeError

INIT_ALIASES = {"normal": None, "xavier": "glorot_uniform", "he": "he_normal"}
# Glorot & Bengio's "standard" init: U[-1/sqrt(fan_in), 1/sqrt(fan_in)] = variance scaling 1/3, uniform
STANDARD = {"scale": 1.0 / 3.0, "mode": "fan_in", "distribution": "uniform"}

# Keras activation names offered in error messages (keras.activations has a few more).
KNOWN_ACTIVATIONS = [
    "sigmoid", "tanh", "relu", "relu6", "leaky_relu", "elu", "selu", "gelu", "silu", "swish",
    "softplus", "softsign", "hard_sigmoid", "hard_silu", "mish", "exponential", "linear",
    "log_sigmoid", "celu", "glu", "sparse_plus", "squareplus", "hard_tanh", "soft_shrink",
]
KNOWN_INITS = [
    "normal", "xavier", "he", "standard", "glorot_uniform", "glorot_normal", "he_normal", "he_uniform",
    "lecun_normal", "lecun_uniform", "orthogonal", "random_normal", "random_uniform",
    "truncated_normal", "zeros", "ones", "variance_scaling",
]


def parse_hidden(text: str, option: str = "--hidden", example: str = "512,256,128") -> list[int]:
    """Parse ``"512,256,128"`` into ``[512, 256, 128]``.

    Raises:
        GradscopeError: if a value is not a positive integer (naming ``option``).
    """
    message = f"{option} must be comma-separated positive integers like {example}; got {text!r}"
    try:
        sizes = [int(s) for s in str(text).replace(" ", "").split(",") if s != ""]
    except ValueError:
        raise GradscopeError(message) from None
    if not sizes or any(s <= 0 for s in sizes):
        raise GradscopeError(message)
    return sizes


def _suggest(name: str, known: list[str]) -> str:
    close = difflib.get_close_matches(name, known, n=1)
    return f"; did you mean {close[0]!r}?" if close else f"; choose one of {', '.join(known)}"


def check_activation(name: str):
    """Return the Keras activation for ``name``.

    Raises:
        GradscopeError: for a name Keras does not know, with a suggestion.
    """
    import keras

    try:
        fn = keras.activations.get(name)
    except (ValueError, TypeError):
        raise GradscopeError(f"unknown activation {name!r}" + _suggest(name, KNOWN_ACTIVATIONS)) from None
    if fn is None or name in ("softmax", "log_softmax"):
        raise GradscopeError(
            f"activation {name!r} is not usable for hidden layers" + _suggest(name, KNOWN_ACTIVATIONS)
        )
    return fn


def normal_std(name: str) -> float | None:
    """The standard deviation in a ``normal_<std>`` name (``normal_0.01`` -> 0.01), else None."""
    if not name.startswith("normal_"):
        return None
    try:
        std = float(name[len("normal_"):])
    except ValueError:
        raise GradscopeError(f"unknown initializer {name!r}; write N(0, s) as normal_<s>, e.g. normal_0.01") from None
    if not (std > 0 and std < float("inf")):
        raise GradscopeError(f"initializer {name!r}: the standard deviation must be positive")
    return std


def make_initializer(name: str, seed: int | None = None):
    """Return a Keras initializer for a gradscope ``--init`` name.

    Raises:
        GradscopeError: for an unknown name, with a suggestion.
    """
    import keras

    if name == "normal":
        return keras.initializers.RandomNormal(mean=0.0, stddev=1.0, seed=seed)
    if name == "standard":
        return keras.initializers.VarianceScaling(**STANDARD, seed=seed)
    std = normal_std(name)
    if std is not None:
        return keras.initializers.RandomNormal(mean=0.0, stddev=std, seed=seed)
    keras_name = INIT_ALIASES.get(name, name)
    try:
        init = keras.initializers.get(keras_name)
    except (ValueError, TypeError):
        raise GradscopeError(f"unknown initializer {name!r}" + _suggest(name, KNOWN_INITS)) from None
    if init is None:
        raise GradscopeError(f"unknown initializer {name!r}" + _suggest(name, KNOWN_INITS))
    config = init.get_config()
    if "seed" in config:
        config["seed"] = seed
        init = init.__class__.from_config(config)
    return init


def build_mlp(
    hidden=(512, 256, 128),
    act: str = "relu",
    init: str = "he",
    seed: int | None = 0,
    input_dim: int = 784,
    n_classes: int = 10,
):
    """Build the seed MLP: Dense hidden layers with ``act`` and a softmax output layer.

    Every Dense kernel (output layer included, as in the seed) uses ``init``; biases start at 0.

    Args:
        hidden: hidden layer sizes, input side first.
        act: Keras activation name for the hidden layers.
        init: initializer name (see the module docstring).
        seed: seed for the initializers (``None`` for random).

    Example:
        >>> model = build_mlp([32, 16], act="sigmoid", init="normal", seed=0)
        >>> [layer.units for layer in model.layers]
        [32, 16, 10]
    """
    import keras

    check_activation(act)
    make_initializer(init)  # validate before building anything
    layers = [keras.Input(shape=(input_dim,), name="pixels")]
    for i, units in enumerate(hidden):
        layers.append(
            keras.layers.Dense(
                units,
                activation=act,
                kernel_initializer=make_initializer(init, None if seed is None else seed + i),
                name=f"dense_{i}",
            )
        )
    layers.append(
        keras.layers.Dense(
            n_classes,
            activation="softmax",
            kernel_initializer=make_initializer(init, None if seed is None else seed + len(hidden)),
            name="output",
        )
    )
    return keras.Sequential(layers, name=f"mlp_{act}_{init}")
