"""The seed course's MLP in Keras, built with any activation and weight initialiser."""

from __future__ import annotations

from gradscope.models.initializers import check_activation, make_initializer
from gradscope.data import N_CLASSES, N_PIXELS

#: the seed MLP's hidden layer sizes, input side first
SEED_HIDDEN = (512, 256, 128)


def build_mlp(
    hidden=SEED_HIDDEN,
    act: str = "relu",
    init: str = "he",
    seed: int | None = 0,
    input_dim: int = N_PIXELS,
    n_classes: int = N_CLASSES,
):
    """Build the seed MLP: Dense hidden layers with ``act`` and a softmax output layer.

    Every Dense kernel (output layer included, as in the seed) uses ``init``; biases start at 0.

    Args:
        hidden: hidden layer sizes, input side first.
        act: Keras activation name for the hidden layers.
        init: initializer name (see :mod:`gradscope.models.initializers`).
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
