"""Every private Keras API the recorders touch, in one place, with a version check.

The Keras recorder reaches inside Keras 3's TensorFlow trainer and optimizers: it wraps a few
methods of one optimizer *instance* (the gradient all-reduce, ``_backend_update_step``,
``apply`` and ``assign*``), walks layers through their tracked sub-layers and variables, and
asks a model for a fresh train function. Those names are not public API, so they are named
here and nowhere else, and :func:`check_optimizer` says clearly when a Keras release has moved
them instead of failing deep inside a traced step.

Before any of that, :func:`unsupported_stack` says in one line when this model cannot be recorded
here at all (another backend, legacy Keras 2, a Keras 3 older than :data:`OLDEST_KERAS`), so that a
recorder says so instead of writing numbers it did not measure.

Example:
    >>> keras_version_warning("3.15.1") is None
    True
    >>> keras_version_warning("3.99.0").startswith("gradscope was tested with Keras")
    True
    >>> print(stack_problem(keras_version="3.5.0", backend="tensorflow"))
    gradscope records Keras 3.7 or newer; this is Keras 3.5.0, whose trainer hands the optimizer
    variables gradscope cannot read: pip install 'keras>=3.7'
    >>> print(stack_problem(keras_version="3.15.1", backend="openvino", backends=MONITOR_BACKENDS))
    gradscope records Keras on the TensorFlow, JAX or PyTorch backend; this Keras runs on openvino: set
    KERAS_BACKEND=tensorflow before keras is first imported
    >>> print(stack_problem(keras_version="3.15.1", backend="jax"))
    this needs Keras on the TensorFlow backend; this Keras runs on jax: set KERAS_BACKEND=tensorflow
    before keras is first imported (GradientMonitor and audit() record JAX and PyTorch too)
"""

from __future__ import annotations

import warnings

import numpy as np

from gradscope.errors import GradscopeError

#: The Keras releases the recorders were tested with: (oldest, newest) as (major, minor).
TESTED_KERAS = ((3, 7), (3, 15))
#: The oldest Keras 3 the recorder can read: 3.3-3.6's trainer hands it variables without ``read_value``.
OLDEST_KERAS = (3, 7)

#: Optimizer methods the recorder wraps (on the instance only; restored after ``fit``).
UPDATE_STEP = "_backend_update_step"      # where Keras applies the gradients on the TF backend
ALL_REDUCE = "_all_reduce_sum_gradients"  # where Keras hands over the (reduced) gradients
_REQUIRED_OPTIMIZER = (UPDATE_STEP, "apply", "assign", "assign_add", "assign_sub", "iterations")

_warned = False


def keras_version_warning(version: str) -> str | None:
    """The warning for a Keras version outside :data:`TESTED_KERAS`, or None."""
    try:
        major, minor = (int(p) for p in version.split(".")[:2])
    except ValueError:
        return None
    (lo, hi) = TESTED_KERAS
    if lo <= (major, minor) <= hi:
        return None
    tested = ".".join(map(str, lo)) if lo == hi else f"{'.'.join(map(str, lo))} to {'.'.join(map(str, hi))}"
    return (f"gradscope was tested with Keras {tested}; this is Keras {version}. Its recorder wraps private "
            "optimizer methods; if recording fails, pin keras to a tested release.")


class UnsupportedStack(GradscopeError):
    """This Keras (its version, its backend, or a legacy model) cannot be recorded: nothing was touched."""


#: The Keras backends whose ``fit`` :class:`~gradscope.GradientMonitor` records (a step source each) and
#: ``audit`` measures; ``analyze`` and the trials need TensorFlow.
MONITOR_BACKENDS = ("tensorflow", "jax", "torch")


def stack_problem(keras_version: str, backend: str, legacy_model: bool = False,
                  backends: tuple = ("tensorflow",), legacy: bool = False) -> str | None:
    """Why gradscope cannot record on this Keras, in one line with what to do, or None.

    Args:
        backends: the Keras backends the caller records (:data:`MONITOR_BACKENDS` for ``fit``).
        legacy: whether the caller records legacy Keras 2 (``tf_keras``) models too (the monitor and
            ``audit`` do; the trials and the experiments build Keras 3 models).
    """
    if legacy_model:
        if legacy:
            return None
        return ("this model is legacy Keras 2 (tf_keras, or tf.keras with TF_USE_LEGACY_KERAS=1), which GradientMonitor "
                "and audit() record but this does not: build it with `import keras` (Keras 3) and leave "
                "TF_USE_LEGACY_KERAS unset")
    if backend not in backends:
        if backends == ("tensorflow",):
            return (f"this needs Keras on the TensorFlow backend; this Keras runs on {backend}: set "
                    "KERAS_BACKEND=tensorflow before keras is first imported (GradientMonitor and audit() record JAX and "
                    "PyTorch too)")
        names = ", ".join({"tensorflow": "TensorFlow", "jax": "JAX", "torch": "PyTorch"}.get(b, b) for b in backends)
        names = " or ".join(names.rsplit(", ", 1))
        return (f"gradscope records Keras on the {names} backend; this Keras runs on {backend}: "
                "set KERAS_BACKEND=tensorflow before keras is first imported")
    try:
        major, minor = (int(p) for p in keras_version.split(".")[:2])
    except ValueError:
        return None
    if (major, minor) < OLDEST_KERAS:
        oldest = ".".join(map(str, OLDEST_KERAS))
        return (f"gradscope records Keras {oldest} or newer; this is Keras {keras_version}, whose trainer hands "
                f"the optimizer variables gradscope cannot read: pip install 'keras>={oldest}'")
    return None


def unsupported_stack(model=None, backends: tuple = ("tensorflow",), legacy: bool = False) -> str | None:
    """:func:`stack_problem` for the Keras imported here and ``model`` (legacy Keras 2 models are told
    apart by their class, and run on TensorFlow whatever Keras 3's backend is)."""
    import keras

    if is_legacy(model):
        return stack_problem(keras.__version__, "tensorflow", legacy_model=True, backends=backends, legacy=legacy)
    return stack_problem(keras.__version__, keras.backend.backend(), backends=backends)


def is_legacy(obj) -> bool:
    """Whether ``obj`` (a model, layer, optimizer or callback list) is legacy Keras 2's (``tf_keras``, which is
    also what ``tf.keras`` is under ``TF_USE_LEGACY_KERAS=1``)."""
    return obj is not None and any(c.__module__.split(".")[0] == "tf_keras" for c in type(obj).__mro__)


def keras_of(obj):
    """The Keras that made ``obj``: the ``tf_keras`` module for legacy Keras 2 objects, else ``keras`` (Keras 3)."""
    if is_legacy(obj):
        import tf_keras

        return tf_keras
    import keras

    return keras


def is_model(layer) -> bool:
    """Whether a layer is a model (of its own Keras)."""
    return isinstance(layer, keras_of(layer).Model)


def check_optimizer(optimizer) -> None:
    """Check that ``optimizer`` has what the recorder wraps; warn once for an untested Keras.

    Raises:
        GradscopeError: naming what is missing and the Keras version.
    """
    import keras

    global _warned
    message = keras_version_warning(keras.__version__)
    if message and not _warned:
        _warned = True
        warnings.warn(message, stacklevel=3)
    missing = [name for name in _REQUIRED_OPTIMIZER if not hasattr(optimizer, name)]
    if missing:
        raise GradscopeError(
            f"{type(optimizer).__name__} (Keras {keras.__version__}) has no {', '.join(missing)}: gradscope records "
            "Keras 3 optimizers on the TensorFlow backend; use a Keras 3 optimizer or a tested Keras release"
        )


#: Legacy Keras 2 optimizers: where the (unscaled, clipped, aggregated) gradients are handed over, by
#: optimizer generation (``tf_keras.optimizers.*`` since TF 2.11, then ``tf_keras.optimizers.legacy.*``).
LEGACY_HANDOVER = ("_internal_apply_gradients", "_distributed_apply")


def legacy_handover(optimizer) -> str:
    """The method of a legacy Keras 2 optimizer that receives the gradients it applies (after unscaling,
    clipping and aggregation), as ``grads_and_vars``.

    Raises:
        GradscopeError: for an optimizer that has none of them, or no ``apply_gradients`` and ``iterations``.
    """
    for name in LEGACY_HANDOVER:
        if hasattr(optimizer, name) and hasattr(optimizer, "apply_gradients") and hasattr(optimizer, "iterations"):
            return name
    raise GradscopeError(
        f"{type(optimizer).__name__} is a legacy Keras 2 optimizer gradscope cannot read (it has no "
        f"{' or '.join(LEGACY_HANDOVER)}): use a tf_keras.optimizers optimizer")


# --- optimizers ------------------------------------------------------------------------------


def innermost_optimizer(optimizer):
    """The optimizer that really updates the variables (inside a LossScaleOptimizer and friends)."""
    while hasattr(optimizer, "inner_optimizer"):
        optimizer = optimizer.inner_optimizer
    return optimizer


def has_all_reduce(optimizer) -> bool:
    """Whether Keras hands the gradients over through :data:`ALL_REDUCE`."""
    return hasattr(optimizer, ALL_REDUCE)


def optimizer_variables(optimizer) -> list:
    """The variables an optimizer updates when ``apply`` is called without them."""
    return list(optimizer._trainable_variables)


def learning_rate_schedule(optimizer):
    """The optimizer's ``LearningRateSchedule``, or None when its learning rate is a constant."""
    value = getattr(optimizer, "_learning_rate", None)
    return value if isinstance(value, keras_of(optimizer).optimizers.schedules.LearningRateSchedule) else None


def has_schedule(optimizer) -> bool:
    """Whether the learning rate is a ``LearningRateSchedule`` (not a constant)."""
    return learning_rate_schedule(optimizer) is not None


def wrap(obj, name: str, fn) -> None:
    """Replace ``obj.<name>`` on this instance only (undone by :func:`unwrap`).

    Also how the probes see inside a forward pass: a layer's ``call`` (Keras' ``Layer.__call__``
    calls the instance's) and a recurrent cell's ``call`` (Keras 3's ``RNN`` steps its cell
    through it, once per time step)."""
    setattr(obj, name, fn)


def unwrap(obj, name: str) -> None:
    """Give ``obj`` its class's ``<name>`` back."""
    try:
        delattr(obj, name)
    except AttributeError:  # pragma: no cover - never wrapped
        pass


# --- layers and variables ----------------------------------------------------------------------


def to_numpy(x) -> np.ndarray:
    """A Keras 3 variable, a backend tensor (TensorFlow, JAX, a PyTorch tensor that may require grad) or an
    array, as a NumPy array."""
    if hasattr(x, "path") and hasattr(x, "value") and not callable(x.value):  # a Keras 3 variable: its tensor
        x = x.value
    if hasattr(x, "detach") and hasattr(x, "cpu"):  # torch
        return x.detach().cpu().numpy()
    return np.asarray(x)


def tf_variable(variable):
    """The backend ``tf.Variable`` behind a Keras variable (or the argument itself)."""
    import keras

    return variable.value if isinstance(variable, keras.Variable) else variable


def sub_layers(layer) -> list:
    """The layers a layer or model tracks directly (Keras 3's ``_layers``; Keras 2's direct ``_flatten_layers``)."""
    if is_legacy(layer):
        return list(layer._flatten_layers(include_self=False, recursive=False))
    return list(getattr(layer, "_layers", []) or [])


def own_trainable_variables(layer) -> list:
    """The trainable variables a layer created itself, not those of its sub-layers."""
    own = layer._trainable_weights if is_legacy(layer) else getattr(layer, "_trainable_variables", [])
    return [v for v in own or [] if v.trainable]


def variable_name(variable) -> str:
    """A variable's short name (``kernel``): Keras 2 names it by its scope and output (``dense/kernel:0``)."""
    name = variable.name
    if not hasattr(variable, "path"):  # a tf.Variable of Keras 2
        name = name.rsplit("/", 1)[-1].split(":", 1)[0]
    return name


def variable_path(variable) -> str:
    """A variable's path (``dense/kernel``), in either Keras."""
    return getattr(variable, "path", None) or variable.name.split(":", 1)[0]


def _history_layer(tensor):
    """The layer that made a symbolic tensor, or None (Keras 3 calls it the operation)."""
    history = getattr(tensor, "_keras_history", None)
    if history is None:
        return None
    return getattr(history, "operation", None) or getattr(history, "layer", None)


def producers(layer) -> list:
    """The layers whose outputs a layer of a Sequential or Functional model reads (its first call's
    inputs, through Keras' ``_keras_history``); ``[]`` for an input layer or one never called."""
    import tensorflow as tf

    try:
        inputs = layer.input
    except (AttributeError, ValueError):
        return []
    out = []
    for tensor in tf.nest.flatten(inputs):
        made_by = _history_layer(tensor)
        if made_by is not None and made_by is not layer:
            out.append(made_by)
    return out


def is_functional(model) -> bool:
    """Whether a model is a Functional graph of layers (not a Sequential one, not a subclass with its own ``call``)."""
    if is_legacy(model):
        from tf_keras.src.engine.functional import Functional
    else:
        from keras.src.models.functional import Functional

    return isinstance(model, Functional) and type(model).call is Functional.call


def output_producers(model) -> list:
    """The layers that produce a model's outputs."""
    return [layer for layer in (_history_layer(t) for t in model.outputs) if layer is not None]


def build_for_training(model, x, y) -> None:
    """Build now what the first step of ``fit`` would build inside its traced step: the layers, the
    compiled loss and metrics, and the optimizer's variables, from the shapes of a batch ``(x, y)``
    (arrays of a row or more; Keras' ``_symbolic_build``, shapes only). A traced function that
    creates variables is traced twice by TensorFlow; built beforehand, the train step is traced once.
    """
    model._symbolic_build(data_batch=(x, y))


# --- train functions ---------------------------------------------------------------------------


def retrace_train_step(model) -> None:
    """Make Keras trace a new train step now (so wrapped optimizer methods are in it)."""
    model.make_train_function(force=True)


def train_step_of(model):
    """The train function ``fit`` will call (Keras' ``model.train_function``)."""
    return model.train_function


def install_train_step(model, step) -> None:
    """Make ``fit`` call ``step`` (a train function traced before) instead of tracing its own."""
    model.train_function = step


def forget_train_step(model) -> None:
    """Drop the traced train step, so that the next ``fit`` traces a clean one."""
    model.train_function = None


def _guarded_function(step, on_error, on_end_of_data=None, data_can_end=True):
    """``step`` calling ``on_error(exc)`` when it raises (then re-raising); with ``data_can_end``
    (a train or test function), the end of the data is no error and calls ``on_end_of_data()``."""
    import tensorflow as tf

    end_of_data = (StopIteration, tf.errors.OutOfRangeError) if data_can_end else ()

    def function(*args, **kwargs):
        try:
            return step(*args, **kwargs)
        except end_of_data:
            if on_end_of_data is not None:
                on_end_of_data()
            raise
        except BaseException as exc:
            on_error(exc)
            raise

    function.gradscope_inner = step
    return function


def guard_train_step(model, on_error, on_end_of_data=None) -> None:
    """Call ``on_error(exc)`` when a step of the traced train function raises (then re-raise).

    ``fit`` calls ``model.train_function`` for every step (or group of steps); Keras has no
    hook for a ``fit`` that dies, so this is where a monitor learns that its run ended badly.
    Running out of data is not dying: with data of unknown length (a filtered ``tf.data``
    pipeline, a generator without ``steps_per_epoch``) every epoch ends with the step that finds
    no batch raising ``OutOfRangeError`` or ``StopIteration``, which ``fit`` catches; Keras still
    counts that call as an optimizer iteration (the weights do not change), and
    ``on_end_of_data()`` is called so that the monitor does not record it as a step.
    """
    model.train_function = _guarded_function(model.train_function, on_error, on_end_of_data)


def guard_validation_step(model, on_error) -> None:
    """Call ``on_error(exc)`` when a step of the validation ``fit`` runs raises (then re-raise).

    Keras makes its test function when validation first runs (``make_test_function``); that is
    wrapped on the model instance so that the function it makes is guarded. Undone by
    :func:`unguard_validation_step`.
    """
    make = model.make_test_function

    def make_test_function(force=False):
        make(force=force)
        step = model.test_function
        if step is not None and not hasattr(step, "gradscope_inner"):
            model.test_function = _guarded_function(step, on_error)
        return model.test_function

    wrap(model, "make_test_function", make_test_function)


def unguard_validation_step(model) -> None:
    """Give the model its own ``make_test_function`` and test function back."""
    unwrap(model, "make_test_function")
    step = getattr(model, "test_function", None)
    if hasattr(step, "gradscope_inner"):
        model.test_function = step.gradscope_inner


def built(model) -> bool:
    """Whether every layer of ``model`` has its weights (Keras builds them at the first step otherwise)."""
    return bool(model.built) and all(layer.built for layer in model._flatten_layers())


def build_for_fit(model, fit: dict | None) -> bool:
    """Build a model that ``fit`` would build at its first step, now, from the spec of the data
    ``fit`` was given (``fit``: :func:`fit_arguments`), as Keras itself does under a distribution
    strategy (``_symbolic_build``: shapes only, no batch is consumed, the same weights are drawn).
    Returns whether it is built.
    """
    if built(model):
        return True
    if fit is None or is_legacy(model):  # (Keras 2 builds a model at its first call: give it an Input)
        return False
    iterator = fit["epoch_iterator"]
    dataset = getattr(iterator, "_distributed_dataset", None)
    if dataset is None and iterator is not None:
        dataset = iterator.data_adapter.get_tf_dataset()
    if dataset is None:
        return False
    model._symbolic_build(data_batch=dataset.element_spec)
    return built(model)


#: The hooks of ``fit``'s ``CallbackList`` through which another callback's error can end a ``fit``.
FIT_HOOKS = ("on_epoch_begin", "on_epoch_end", "on_train_batch_begin", "on_train_batch_end", "on_test_begin",
             "on_test_end", "on_test_batch_begin", "on_test_batch_end")


def guard_fit_callbacks(fit: dict | None, on_error) -> bool:
    """Call ``on_error(exc)`` when another callback of the running ``fit`` raises (then re-raise).

    Wraps the hooks of the ``CallbackList`` that ``fit`` holds in its frame (``fit``:
    :func:`fit_arguments`; on that instance only, dropped when ``fit`` returns). Returns whether
    it found one.
    """
    callbacks = (fit or {}).get("callbacks")
    if callbacks is None or not isinstance(callbacks, keras_of(callbacks).callbacks.CallbackList):
        return False
    for name in FIT_HOOKS:
        wrap(callbacks, name, _guarded_function(getattr(callbacks, name), on_error, data_can_end=False))
    return True


def fit_arguments(model) -> dict | None:
    """The ``x``, ``y``, ``batch_size``, ``initial_epoch``, ``validation`` (in words, or None) and
    ``class_weight`` the running ``model.fit`` was called with, and its ``epoch_iterator`` and
    ``callbacks`` (the ``CallbackList``), or None.

    Keras gives callbacks no access to the training data; ``Trainer.fit`` holds it in its
    frame while it calls ``on_train_begin``. Only a frame of ``fit`` on this very model counts.
    """
    import sys

    frame = sys._getframe(1)
    while frame is not None and not (frame.f_code.co_name == "fit" and frame.f_locals.get("self") is model
                                     and "x" in frame.f_locals):
        frame = frame.f_back
    if frame is None:
        return None
    local = frame.f_locals
    split = local.get("validation_split") or 0
    validation = (f"validation_split={split:g}: the last {100 * split:g}% of the training data" if split else
                  "validation_data given to fit" if local.get("validation_data") is not None else None)
    return {"x": local["x"], "y": local.get("y"), "batch_size": local.get("batch_size"),
            "initial_epoch": local.get("initial_epoch"), "validation": validation,
            "class_weight": local.get("class_weight"), "epoch_iterator": local.get("epoch_iterator"),
            "callbacks": local.get("callbacks")}
