"""The labelled suite's model families: their data, their models, and the configs of each.

Six families, each with its own data and architecture, and each config a dict that says
everything needed to build and train it again:

* ``mnist_mlp``: MLPs on the 5,000-image MNIST sample (784 inputs, 10 classes), 5-40 epochs.
  The only family the diagnosis thresholds are tuned on.
* ``digits_mlp``: MLPs on scikit-learn's 8x8 digits (64 inputs, 10 classes), widths down to 5.
* ``toy2d_mlp``: MLPs on 2-D data (circles, moons: 2 classes; blobs: 4 classes), 50-300 epochs.
* ``digits_cnn``: plain deep CNNs on the digits as 8x8 images, with and without BatchNormalization.
* ``digits_resnet``: residual MLPs on the digits (blocks of two Dense layers with a skip).
* ``digits_rnn``: recurrent nets (SimpleRNN, GRU, LSTM) reading the digits as 8 rows of 8 pixels.

Across them: batch sizes 1-512, SGD, momentum, Adam, RMSprop and Adagrad, 2-10 classes, zero
or constant initialisation in single layers, wrong output activation/loss pairings, 5-300 epochs.
"""

from __future__ import annotations

import functools
import random

import numpy as np

FAMILIES = ("mnist_mlp", "digits_mlp", "toy2d_mlp", "digits_cnn", "digits_resnet", "digits_rnn")
TUNING_FAMILY = "mnist_mlp"


# --- data ---------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=None)
def dataset(name: str):
    """``(x_train, y_train, x_test, y_test)`` of a data set, float32 inputs, int labels."""
    from sklearn.model_selection import train_test_split
    from sklearn.preprocessing import StandardScaler

    if name == "mnist":
        from gradscope import data

        ds = data.load("sample")
        return ds.x_train, ds.y_train, ds.x_test, ds.y_test
    if name in ("digits", "digits_images", "digits_rows"):
        from sklearn.datasets import load_digits

        x, y = load_digits(return_X_y=True)
        x = (x / 16.0).astype("float32")
        x_tr, x_te, y_tr, y_te = train_test_split(x, y, test_size=0.3, random_state=0, stratify=y)
        if name == "digits_images":
            x_tr, x_te = x_tr.reshape(-1, 8, 8, 1), x_te.reshape(-1, 8, 8, 1)
        elif name == "digits_rows":
            x_tr, x_te = x_tr.reshape(-1, 8, 8), x_te.reshape(-1, 8, 8)
        return x_tr, y_tr, x_te, y_te
    from sklearn.datasets import make_blobs, make_circles, make_moons

    if name == "circles":
        x, y = make_circles(n_samples=600, noise=0.08, factor=0.5, random_state=0)
    elif name == "moons":
        x, y = make_moons(n_samples=600, noise=0.2, random_state=0)
    elif name == "blobs":
        x, y = make_blobs(n_samples=600, centers=4, cluster_std=1.6, random_state=0)
    else:
        raise ValueError(f"unknown data set {name!r}")
    x_tr, x_te, y_tr, y_te = train_test_split(x, y, test_size=0.3, random_state=0, stratify=y)
    scaler = StandardScaler().fit(x_tr)
    return (scaler.transform(x_tr).astype("float32"), y_tr.astype("int64"),
            scaler.transform(x_te).astype("float32"), y_te.astype("int64"))


def classes(cfg) -> int:
    return len(np.unique(dataset(cfg["data"])[1]))


# --- models -------------------------------------------------------------------------------------


def initializer(name: str, seed: int):
    import keras

    if name == "zeros":
        return keras.initializers.Zeros()
    if name.startswith("const_"):
        return keras.initializers.Constant(float(name[len("const_"):]))
    from gradscope.models import make_initializer

    return make_initializer(name, seed)


def _head(cfg, n_classes):
    """The output layer's activation and the loss, as the config pairs them."""
    import keras

    pairing = cfg.get("pairing", "softmax")
    if pairing == "softmax":
        return "softmax", keras.losses.SparseCategoricalCrossentropy()
    if pairing == "logits":
        return "linear", keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    if pairing == "relu_ce":  # a ReLU output fed to a probability loss: log(0)
        return "relu", keras.losses.SparseCategoricalCrossentropy()
    if pairing == "linear_ce":  # logits fed to a loss that expects probabilities
        return "linear", keras.losses.SparseCategoricalCrossentropy()
    if pairing == "softmax_logits":  # probabilities fed to a loss that expects logits
        return "softmax", keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    raise ValueError(f"unknown pairing {pairing!r}")


def fixed_pairing(cfg) -> dict:
    """The same config with the conventional output/loss pairing (the intervention for pairing labels)."""
    return {**cfg, "pairing": "softmax"}


def pairing_is_wrong(cfg) -> bool:
    return cfg.get("pairing", "softmax") in ("relu_ce", "linear_ce", "softmax_logits")


def optimizer(cfg, clipnorm=None):
    import keras

    lr, name = cfg["lr"], cfg["opt"]
    extra = {"clipnorm": clipnorm} if clipnorm else {}
    return {
        "sgd": lambda: keras.optimizers.SGD(lr, **extra),
        "momentum": lambda: keras.optimizers.SGD(lr, momentum=0.9, **extra),
        "adam": lambda: keras.optimizers.Adam(lr, **extra),
        "rmsprop": lambda: keras.optimizers.RMSprop(lr, **extra),
        "adagrad": lambda: keras.optimizers.Adagrad(lr, **extra),
    }[name]()


def _layer_init(cfg, i, seed):
    """The kernel initializer of hidden layer ``i``: the config's, or a special one for that layer."""
    if cfg.get("special_layer") == i:
        return initializer(cfg["special_init"], seed + i)
    return initializer(cfg["init"], seed + i)


def build(cfg, seed: int = 0, clipnorm=None):
    """The compiled Keras model of a config (same seed, same weights)."""
    import keras

    keras.utils.set_random_seed(seed)
    n_classes = classes(cfg)
    head_act, loss = _head(cfg, n_classes)
    family = cfg["family"]
    bias = keras.initializers.Constant(cfg["bias"]) if cfg.get("bias") is not None else "zeros"
    x_shape = dataset(cfg["data"])[0].shape[1:]
    inputs = keras.Input(x_shape, name="inputs")
    h = inputs
    if family in ("mnist_mlp", "digits_mlp", "toy2d_mlp"):
        for i in range(cfg["depth"]):
            h = keras.layers.Dense(cfg["width"], activation=cfg["act"], kernel_initializer=_layer_init(cfg, i, seed),
                                   bias_initializer=bias, name=f"dense_{i}")(h)
    elif family == "digits_cnn":
        for i in range(cfg["depth"]):
            h = keras.layers.Conv2D(cfg["width"], 3, padding="same", kernel_initializer=_layer_init(cfg, i, seed),
                                    bias_initializer=bias, activation=None if cfg.get("bn") else cfg["act"],
                                    name=f"conv_{i}")(h)
            if cfg.get("bn"):
                h = keras.layers.BatchNormalization(name=f"bn_{i}")(h)
                h = keras.layers.Activation(cfg["act"], name=f"act_{i}")(h)
        h = keras.layers.GlobalAveragePooling2D(name="pool")(h)
    elif family == "digits_resnet":
        h = keras.layers.Dense(cfg["width"], activation=cfg["act"], kernel_initializer=_layer_init(cfg, 0, seed),
                               name="stem")(h)
        for b in range(cfg["depth"]):
            r = keras.layers.Dense(cfg["width"], activation=cfg["act"], name=f"block{b}_a",
                                   kernel_initializer=initializer(cfg["init"], seed + 10 + 2 * b))(h)
            r = keras.layers.Dense(cfg["width"], activation=None, name=f"block{b}_b",
                                   kernel_initializer=initializer(cfg["init"], seed + 11 + 2 * b))(r)
            h = keras.layers.Activation(cfg["act"], name=f"block{b}_out")(keras.layers.Add(name=f"block{b}_add")([h, r]))
    elif family == "digits_rnn":
        cell = {"simple": keras.layers.SimpleRNN, "gru": keras.layers.GRU, "lstm": keras.layers.LSTM}[cfg["cell"]]
        kwargs = {"activation": cfg["act"]} if cfg["cell"] == "simple" else {}
        for i in range(cfg["depth"]):
            last = i == cfg["depth"] - 1
            h = cell(cfg["width"], return_sequences=not last, kernel_initializer=_layer_init(cfg, i, seed),
                     recurrent_initializer=initializer(cfg.get("recurrent_init", "orthogonal"), seed + 50 + i),
                     name=f"rnn_{i}", **kwargs)(h)
    else:
        raise ValueError(f"unknown family {family!r}")
    head_init = initializer(cfg.get("head_init", cfg["init"] if family != "digits_rnn" else "xavier"), seed + 99)
    outputs = keras.layers.Dense(n_classes, activation=head_act, kernel_initializer=head_init, name="head")(h)
    model = keras.Model(inputs, outputs, name=cfg["family"])
    model.compile(optimizer=optimizer(cfg, clipnorm), loss=loss, metrics=["accuracy"])
    return model


def first_layer(model):
    """The layer nearest the input that owns a kernel (its outputs are probed)."""
    for layer in model.layers:
        if getattr(layer, "kernel", None) is not None or hasattr(getattr(layer, "cell", None), "kernel"):
            return layer
    raise ValueError("no layer with a kernel")


# --- configs ------------------------------------------------------------------------------------


def _pick(rng, options):
    return options[rng.randrange(len(options))]


def _named(cfgs, family):
    out = []
    for i, cfg in enumerate(cfgs):
        cfg = {"family": family, **cfg}
        cfg["name"] = f"{family}-{i:03d}"
        out.append(cfg)
    return out


def _mlp_grid(rng, n, data, depths, widths, epochs, batches, lrs_by_opt):
    cfgs = []
    for _ in range(n):
        opt = _pick(rng, list(lrs_by_opt))
        cfgs.append(dict(data=data, depth=_pick(rng, depths), width=_pick(rng, widths),
                         act=_pick(rng, ["sigmoid", "tanh", "relu"]),
                         init=_pick(rng, ["normal", "normal_0.01", "xavier", "he", "standard"]),
                         opt=opt, lr=_pick(rng, lrs_by_opt[opt]), batch=_pick(rng, batches),
                         epochs=_pick(rng, epochs)))
    return cfgs


LRS = {"sgd": [0.01, 0.1, 0.5], "momentum": [0.01, 0.05], "adam": [1e-3, 1e-2], "rmsprop": [1e-3, 1e-2],
       "adagrad": [0.01, 0.1]}


def _problems(data, depth, width, epochs, batch):
    """Hand-made cases so that every kind has positives in a family (the rest is sampled)."""
    base = dict(data=data, depth=depth, width=width, batch=batch, epochs=epochs)
    return [
        {**base, "act": "sigmoid", "init": "normal", "opt": "sgd", "lr": 0.1},            # vanishing, saturation
        {**base, "act": "relu", "init": "normal", "opt": "sgd", "lr": 0.1},               # exploding, non-finite
        {**base, "act": "relu", "init": "he", "opt": "sgd", "lr": 0.1},                   # healthy
        {**base, "act": "relu", "init": "he", "opt": "sgd", "lr": 1e-5},                  # slow convergence / stalled
        {**base, "act": "relu", "init": "he", "opt": "sgd", "lr": 0.1, "bias": -3.0},     # dead units
        {**base, "act": "relu", "init": "he", "opt": "sgd", "lr": 0.1, "pairing": "relu_ce"},         # wrong pairing
        {**base, "act": "tanh", "init": "xavier", "opt": "adam", "lr": 1e-3, "pairing": "softmax_logits"},
        {**base, "act": "relu", "init": "he", "opt": "sgd", "lr": 0.1, "head_init": "zeros"},          # healthy
        {**base, "act": "relu", "init": "he", "opt": "sgd", "lr": 0.1, "special_layer": 1, "special_init": "zeros"},
        {**base, "act": "tanh", "init": "xavier", "opt": "sgd", "lr": 0.1, "special_layer": 0, "special_init": "const_0.05"},
        {**base, "act": "relu", "init": "he", "opt": "adam", "lr": 0.05},                 # oscillating
        {**base, "act": "tanh", "init": "xavier", "opt": "momentum", "lr": 0.5},          # oscillating or exploding
    ]


def configs(family: str) -> list[dict]:
    """Every config of a family, in a fixed order (seeded by the family's name)."""
    rng = random.Random(f"gradscope-suite-{family}")
    if family == "mnist_mlp":
        cfgs = _problems("mnist", 4, 128, 8, 100)
        cfgs += _mlp_grid(rng, 44, "mnist", [2, 3, 4, 6, 8, 10], [32, 64, 128, 256], [5, 8, 12], [32, 64, 100, 256],
                          LRS)
        # learning rates too high without diverging, and too low: the tuning family needs both
        for act, init, opt, lr, batch in (("relu", "he", "sgd", 0.5, 32), ("relu", "he", "adam", 0.02, 32),
                                          ("tanh", "xavier", "sgd", 1.0, 64), ("relu", "he", "rmsprop", 0.01, 64),
                                          ("relu", "he", "sgd", 0.002, 100), ("tanh", "xavier", "adam", 1e-4, 100)):
            cfgs.append(dict(data="mnist", depth=3, width=128, act=act, init=init, opt=opt, lr=lr, batch=batch,
                             epochs=12))
        # long runs (40 epochs): what a converged run looks like, and problems that last
        for act, init, opt, lr, depth, width in (
                ("relu", "he", "sgd", 0.1, 3, 64), ("relu", "he", "adam", 1e-3, 4, 128),
                ("tanh", "xavier", "sgd", 0.05, 3, 64), ("sigmoid", "normal", "sgd", 0.1, 4, 128),
                ("sigmoid", "xavier", "sgd", 0.1, 6, 64), ("relu", "he", "sgd", 1e-3, 3, 64),
                ("tanh", "xavier", "adam", 1e-4, 3, 64), ("relu", "he", "sgd", 0.5, 3, 64),
                ("relu", "xavier", "momentum", 0.05, 4, 64), ("sigmoid", "he", "adagrad", 0.1, 3, 64),
                ("tanh", "normal", "sgd", 0.01, 4, 64), ("relu", "normal_0.01", "sgd", 0.1, 6, 64)):
            cfgs.append(dict(data="mnist", depth=depth, width=width, act=act, init=init, opt=opt, lr=lr, batch=100,
                             epochs=40))
    elif family == "digits_mlp":
        cfgs = _problems("digits", 4, 64, 40, 32)
        cfgs += _mlp_grid(rng, 28, "digits", [2, 3, 5, 8], [5, 8, 16, 64, 128], [10, 30, 60, 100], [1, 16, 32, 128, 512],
                          LRS)
        for cfg in cfgs:
            if cfg["batch"] == 1:
                cfg["epochs"] = min(cfg["epochs"], 5)
    elif family == "toy2d_mlp":
        cfgs = []
        for data in ("circles", "moons", "blobs"):
            cfgs += _problems(data, 3, 16, 150, 32)[:8]
            cfgs += _mlp_grid(rng, 7, data, [2, 3, 4, 6], [5, 6, 8, 16, 32], [50, 100, 200, 300], [1, 8, 32, 128], LRS)
        for cfg in cfgs:
            if cfg["batch"] == 1:
                cfg["epochs"] = min(cfg["epochs"], 15)
    elif family == "digits_cnn":
        cfgs = [{**c, "data": "digits_images", "bn": False} for c in _problems("digits_images", 5, 16, 20, 64)]
        for _ in range(22):
            opt = _pick(rng, list(LRS))
            cfgs.append(dict(data="digits_images", depth=_pick(rng, [3, 5, 8]), width=_pick(rng, [8, 16]),
                             act=_pick(rng, ["sigmoid", "tanh", "relu"]),
                             init=_pick(rng, ["normal", "normal_0.01", "xavier", "he"]),
                             bn=_pick(rng, [False, True]), opt=opt, lr=_pick(rng, LRS[opt]),
                             batch=_pick(rng, [16, 64, 256]), epochs=_pick(rng, [10, 20, 30])))
    elif family == "digits_resnet":
        cfgs = [{**c, "data": "digits"} for c in _problems("digits", 4, 32, 30, 32)]
        for _ in range(20):
            opt = _pick(rng, list(LRS))
            cfgs.append(dict(data="digits", depth=_pick(rng, [2, 4, 8]), width=_pick(rng, [16, 32, 64]),
                             act=_pick(rng, ["sigmoid", "tanh", "relu"]),
                             init=_pick(rng, ["normal", "normal_0.01", "xavier", "he"]),
                             opt=opt, lr=_pick(rng, LRS[opt]), batch=_pick(rng, [8, 32, 128]),
                             epochs=_pick(rng, [10, 30, 60])))
    elif family == "digits_rnn":
        cfgs = []
        for cell, act, init in (("simple", "tanh", "xavier"), ("simple", "relu", "he"), ("simple", "tanh", "normal"),
                                ("lstm", "tanh", "xavier"), ("gru", "tanh", "xavier"), ("simple", "sigmoid", "normal")):
            cfgs.append(dict(data="digits_rows", cell=cell, act=act, init=init, depth=1, width=32, opt="adam",
                             lr=1e-2, batch=32, epochs=20))
        cfgs += [
            dict(data="digits_rows", cell="simple", act="tanh", init="xavier", depth=2, width=32, opt="sgd", lr=1e-5,
                 batch=32, epochs=20),
            dict(data="digits_rows", cell="simple", act="relu", init="normal", depth=2, width=32, opt="sgd", lr=0.1,
                 batch=32, epochs=10),
            dict(data="digits_rows", cell="lstm", act="tanh", init="xavier", depth=1, width=32, opt="adam", lr=1e-2,
                 batch=32, epochs=20, pairing="relu_ce"),
            dict(data="digits_rows", cell="gru", act="tanh", init="xavier", depth=1, width=32, opt="rmsprop", lr=0.05,
                 batch=32, epochs=20),
        ]
        for _ in range(14):
            opt = _pick(rng, list(LRS))
            cfgs.append(dict(data="digits_rows", cell=_pick(rng, ["simple", "gru", "lstm"]),
                             act=_pick(rng, ["tanh", "relu", "sigmoid"]), init=_pick(rng, ["normal", "xavier", "he"]),
                             recurrent_init=_pick(rng, ["orthogonal", "normal_0.01", "identity"]),
                             depth=_pick(rng, [1, 2]), width=_pick(rng, [8, 32]), opt=opt, lr=_pick(rng, LRS[opt]),
                             batch=_pick(rng, [8, 32, 128]), epochs=_pick(rng, [10, 20])))
        for cfg in cfgs:
            if cfg["cell"] != "simple":
                cfg["act"] = "tanh"  # gated cells keep their own activations
    else:
        raise ValueError(f"unknown family {family!r}")
    return _named(cfgs, family)


def all_configs(families=FAMILIES) -> list[dict]:
    return [cfg for family in families for cfg in configs(family)]
