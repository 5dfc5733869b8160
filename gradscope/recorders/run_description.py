"""What a monitored run is, read from the model itself: layers, optimizer, loss, inputs, versions.

The monitor writes this into ``run.json`` (sections ``model``, ``optimizer``, ``training`` and
``versions``) so that an own-model run describes itself without the user writing anything.

Example:
    >>> import keras
    >>> model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, activation="relu", name="hidden"),
    ...                           keras.layers.Dense(2, activation="softmax", name="head")], name="tiny")
    >>> model.compile(optimizer=keras.optimizers.Adam(0.003), loss="sparse_categorical_crossentropy")
    >>> d = describe_model(model)
    >>> d["class"], d["params"], [(l["name"], l["activation"], l["units"]) for l in d["layers"]]
    ('Sequential', 23, [('hidden', 'relu', 3), ('head', 'softmax', 2)])
    >>> describe_optimizer(model.optimizer)["learning_rate"]
    0.003
"""

from __future__ import annotations

import math
import platform

import numpy as np

from gradscope.recorders import keras_compat as compat
from gradscope.recorders.activation_probe import activation_name
from gradscope.recorders.layer_names import walk_layers

_OPTIMIZER_SKIP = {"name", "learning_rate", "is_legacy_optimizer", "loss_scale_factor",
                   "gradient_accumulation_steps", "use_ema", "ema_momentum", "ema_overwrite_frequency"}


def _plain(value):
    """A JSON-friendly copy of a config value."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, (np.floating, float)):
        value = float(value)
        return value if math.isfinite(value) else str(value)
    if isinstance(value, (np.integer, int, bool, str)) or value is None:
        return value.item() if isinstance(value, np.generic) else value
    return str(value)


def initializer_text(init) -> str | None:
    """``RandomNormal(stddev=1.0)``-style text of a Keras initializer: what differs from its defaults."""
    if init is None:
        return None
    try:
        defaults = type(init)().get_config()
    except Exception:  # needs arguments
        defaults = {}
    config = {k: v for k, v in (init.get_config() if hasattr(init, "get_config") else {}).items()
              if k != "seed" and v is not None and (k not in defaults or defaults[k] != v)}
    args = ", ".join(f"{k}={_plain(v)}" for k, v in config.items())
    return f"{type(init).__name__}({args})" if args else type(init).__name__


def initializer_config(init) -> dict | None:
    """A Keras initializer as data: its class and its whole config but the seed (``{"class": "RandomNormal",
    "mean": 0.0, "stddev": 1.0}``), for readers that reason about it (the text is for people)."""
    if init is None:
        return None
    config = init.get_config() if hasattr(init, "get_config") else {}
    return {"class": type(init).__name__, **{k: _plain(v) for k, v in config.items() if k != "seed"}}


def _count(layer) -> int | None:
    try:
        return int(layer.count_params())
    except (ValueError, AttributeError):
        return None


def describe_layer(name: str, layer) -> dict:
    """Name, class, activation, kernel initializer, size, parameter count, dropout rate and
    whether it is frozen, of one layer."""
    out = {"name": name, "class": type(layer).__name__}
    act = activation_name(layer)
    if act is None and hasattr(layer, "cell"):  # RNN wrappers keep their activation on the cell
        act = activation_name(layer.cell)
    if act is not None:
        out["activation"] = act
    init = getattr(layer, "kernel_initializer", None) or getattr(getattr(layer, "cell", None), "kernel_initializer", None)
    if init is not None:
        out["kernel_initializer"] = initializer_text(init)
        out["kernel_initializer_config"] = initializer_config(init)
    for size in ("units", "filters", "output_dim"):
        value = getattr(layer, size, None)
        if isinstance(value, (int, np.integer)):
            out[size] = int(value)
            break
    params = _count(layer)
    if params is not None:
        out["params"] = params
    rate = getattr(layer, "rate", None)  # Dropout and its kin
    if isinstance(rate, (float, int)) and not isinstance(rate, bool):
        out["rate"] = float(rate)
    if not getattr(layer, "trainable", True):
        out["trainable"] = False  # frozen: its weights are not recorded
    if _leaves_inputs_unchanged(layer):
        out["identity"] = True  # a Normalization never adapted: the model does not scale its inputs after all
    return out


def _leaves_inputs_unchanged(layer) -> bool:
    """Whether a ``Normalization`` (mean 0 and variance 1: never adapted, nor given a mean and variance) or
    ``Rescaling`` (scale 1, offset 0) layer passes its inputs through unchanged.

    Example:
        >>> import keras
        >>> _leaves_inputs_unchanged(keras.layers.Rescaling(1.0)), _leaves_inputs_unchanged(keras.layers.Rescaling(1 / 255))
        (True, False)
    """
    kind = type(layer).__name__
    try:
        if kind == "Normalization":
            mean, variance = getattr(layer, "mean", None), getattr(layer, "variance", None)
            if mean is None or variance is None or getattr(layer, "invert", False):
                return False
            return bool(np.all(np.asarray(mean) == 0) and np.all(np.asarray(variance) == 1))
        if kind == "Rescaling":
            scale, offset = np.asarray(getattr(layer, "scale", 1.0)), np.asarray(getattr(layer, "offset", 0.0))
            return bool(np.all(scale == 1) and np.all(offset == 0))
    except Exception:  # a layer we cannot read: say nothing
        return False
    return False


def describe_loss(loss):
    """The loss as text: a name, a class (with ``from_logits``), or a list/dict of them."""
    if loss is None:
        return None
    if isinstance(loss, str):
        return loss
    if isinstance(loss, dict):
        return {k: describe_loss(v) for k, v in loss.items()}
    if isinstance(loss, (list, tuple)):
        return [describe_loss(v) for v in loss]
    if hasattr(loss, "get_config"):
        return type(loss).__name__ + ("(from_logits=True)" if loss_from_logits(loss) else "")
    return getattr(loss, "__name__", type(loss).__name__)


def loss_from_logits(loss) -> bool | None:
    """Whether one loss takes logits, as data (None for several losses or a function)."""
    if isinstance(loss, str):
        return False
    if loss is None or isinstance(loss, (dict, list, tuple)) or not hasattr(loss, "get_config"):
        return None
    logits = getattr(loss, "from_logits", None)
    if logits is None:
        logits = (loss.get_config() or {}).get("from_logits")
    return bool(logits)


def describe_model(model) -> dict:
    """The model: name, class, parameter counts, input shapes, every layer and the loss."""
    layers = [describe_layer(name, layer) for name, layer in walk_layers(model)
              if type(layer).__name__ != "InputLayer"]
    inputs = []
    for t in getattr(model, "inputs", None) or []:
        inputs.append([None if d is None else int(d) for d in t.shape])
    out = {
        "name": model.name,
        "class": type(model).__name__,
        "params": _count(model),
        "trainable_params": int(sum(int(np.prod(v.shape)) for v in model.trainable_variables)),
        "inputs": inputs,
        "layers": layers,
        "loss": describe_loss(getattr(model, "loss", None)),
    }
    logits = loss_from_logits(getattr(model, "loss", None))
    if logits is not None:
        out["loss_from_logits"] = logits
    outputs = getattr(model, "output_names", None)
    if outputs and len(outputs) > 1:  # several heads (a Functional model's output layers)
        out["outputs"] = list(outputs)
    try:
        weights = (model.get_compile_config() or {}).get("loss_weights")
    except Exception:  # not compiled through compile()
        weights = None
    if weights is not None:
        out["loss_weights"] = _plain(weights)
    policy = getattr(getattr(model, "dtype_policy", None), "name", None)
    if policy and policy != "float32":
        out["dtype_policy"] = policy  # mixed precision
    return out


def constant_learning_rate(optimizer) -> float | None:
    """The learning rate now, as ``run.json`` writes it (None under a schedule)."""
    inner = compat.innermost_optimizer(optimizer)
    if compat.has_schedule(inner):
        return None
    lr = compat.to_numpy(inner.learning_rate)
    return float(str(lr.astype(np.float32))) if lr.dtype == np.float32 else float(lr)


def describe_optimizer(optimizer) -> dict:
    """The optimizer: class, learning rate (or its schedule) and other hyperparameters."""
    inner = compat.innermost_optimizer(optimizer)
    out = {"class": type(inner).__name__}
    if inner is not optimizer:
        out["wrapped_by"] = type(optimizer).__name__
    if compat.has_schedule(inner):
        schedule = compat.learning_rate_schedule(inner)
        out["learning_rate"] = {"schedule": type(schedule).__name__, **_plain(schedule.get_config())}
    else:
        out["learning_rate"] = constant_learning_rate(inner)
    try:
        config = inner.get_config()
    except Exception:  # optimizers from outside Keras
        config = {}
    for key, value in config.items():
        if key not in _OPTIMIZER_SKIP and value is not None and value is not False:
            out[key] = _plain(value)
    return out


def versions(model=None, framework: str | None = None) -> dict:
    """Versions of gradscope and what it runs on; ``framework`` says what trains the run: ``keras`` (Keras 3,
    on ``keras_backend``), ``tf_keras`` (legacy Keras 2 trains ``model``, on TensorFlow) or ``tf1`` (a
    TF1 graph in a ``sess.run`` loop, as given)."""
    import keras
    import tensorflow as tf

    from gradscope import __version__

    out = {"gradscope": __version__, "tensorflow": tf.__version__, "keras": keras.__version__,
           "keras_backend": keras.backend.backend(), "framework": "keras", "numpy": np.__version__,
           "python": platform.python_version()}
    if compat.is_legacy(model):
        out.update(keras=compat.keras_of(model).__version__, keras_backend="tensorflow", framework="tf_keras")
    if framework is not None:
        out["framework"] = framework
        if framework == "tf1":
            out["keras_backend"] = "tensorflow"
    if out["keras_backend"] in ("jax", "torch"):  # the backend's own version
        backend = __import__(out["keras_backend"])
        out[out["keras_backend"]] = backend.__version__
    return out
