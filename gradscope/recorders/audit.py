"""audit(): predict gradient problems from one forward/backward pass, before training."""

from __future__ import annotations

import numpy as np

from gradscope import records as rec
from gradscope.diagnosis import Findings, diagnose
from gradscope.vocabulary import MEASURED_METRICS, METRICS


def audit(model, x, y, sample_weight=None, config=None, run="audit") -> Findings:
    """Diagnose a compiled Keras model at its current weights, in one forward/backward pass.

    Computes what the first training step would record (per-layer gradient and weight norms,
    the update the model's own optimizer makes in its first step (a fresh copy of it, with the
    same hyperparameters, applied to copies of the weights: Adam's first step is about
    ``lr * sign(g)``, whatever the gradient's size), and activation
    statistics on ``x``, and for recurrent layers the gradient per time step) and runs the
    diagnosis rules that apply at step 0: vanishing and exploding gradients, saturated and dead
    units, non-finite values, and gradients vanishing through time in plain (ungated) recurrent
    layers (a gated LSTM/GRU often starts with little gradient far back and learns to open its
    gates: it is judged on the trend during training). Stalled training needs epochs and is not
    predicted.

    Args:
        model: a compiled Keras model (its loss is used).
        x, y: a batch of training data (a few hundred rows are plenty).
        config: optional run config (``act``, ``init``, ``lr``, ``layers``) for the *why*.

    Works on Keras 3 on TensorFlow (the gradients from a ``tf.GradientTape``), on JAX (from
    ``jax.value_and_grad`` of the trainer's own loss function) and on PyTorch (``backward()``, as its
    trainer does), and on legacy Keras 2 (``tf_keras``).
    Gradients through time are measured on Keras 3 on TensorFlow only.

    Raises:
        gradscope.errors.GradscopeError: in one line, for a model gradscope cannot measure here (the
            PyTorch backend, a Keras older than 3.7).

    Returns:
        The findings (:class:`gradscope.diagnosis.Finding`), most severe first; ``print()``
        shows them as text, ``.to_dict()`` gives their full evidence.

    Example:
        >>> import keras, numpy as np
        >>> from gradscope import audit
        >>> from gradscope.models import build_mlp
        >>> x = np.random.default_rng(0).uniform(0, 1, (256, 200)).astype("float32")
        >>> y = np.arange(256) % 10
        >>> for act, init in (("sigmoid", "normal"), ("relu", "he")):
        ...     model = build_mlp([64, 64, 64], act=act, init=init, input_dim=200)
        ...     model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
        ...     print(act, init, [f.kind for f in audit(model, x, y)])
        sigmoid normal ['vanishing_gradient', 'saturation']
        relu he []
    """
    from gradscope.recorders.activation_probe import ActivationProbe, cut_rows, watched_layers
    from gradscope.recorders.activation_stats import activation_records
    from gradscope.recorders.layer_names import layer_table
    from gradscope.recorders.reductions import host_value
    from gradscope.recorders.time_gradients import recurrent_layers, time_gradients, time_records

    from gradscope.recorders import keras_compat as compat

    problem = compat.unsupported_stack(model, backends=compat.MONITOR_BACKENDS, legacy=True)
    if problem is not None:
        raise compat.UnsupportedStack(f"audit() cannot measure this model: {problem}")
    if getattr(model, "optimizer", None) is None:
        raise ValueError("audit() needs a compiled model: call model.compile(optimizer=..., loss=...) first")
    x, y = cut_rows(x), cut_rows(y)
    backend = "tensorflow" if compat.is_legacy(model) else _backend()
    on_tensorflow = backend == "tensorflow"
    gradients = {"tensorflow": _tape_gradients, "jax": _jax_gradients, "torch": _torch_gradients}[backend]
    loss, grads = gradients(model, x, y, sample_weight)
    variables = list(model.trainable_variables)
    table = layer_table(model)
    meta = [table[id(v)] for v in variables]
    weights = [compat.to_numpy(v.value if hasattr(v, "path") else v) for v in variables]
    tensors = {"grad": grads, "weight": weights, "update": first_step(model.optimizer, variables, grads)}
    measured = {}
    for name in MEASURED_METRICS:  # every measured metric, reduced as the recorders reduce it
        measured[name] = np.array([[host_value(name, t) for t in tensors[METRICS[name].source]]])
    measured["weight_norm_initial"] = measured["weight_norm"]
    frames = [rec.from_step_arrays(run, np.array([0]), 0, meta, measured),
              rec.from_logs(run, 0, 0, {"loss": float(loss)})]
    layers = watched_layers(model, table)
    if layers:
        frames.append(activation_records(run, 0, 0, ActivationProbe(model, layers)(x)))
    recurrent = recurrent_layers(model, table) if on_tensorflow and not compat.is_legacy(model) else []
    if recurrent:  # how far back in time the gradient reaches (judged at init for plain cells only)
        frames.append(time_records(run, 0, 0, time_gradients(model, x, y, sample_weight, recurrent)))
    from gradscope.diagnosis import facts_of
    from gradscope.recorders.run_description import describe_model, describe_optimizer, versions

    facts = facts_of({"config": dict(config or {}), "model": describe_model(model),
                      "optimizer": describe_optimizer(model.optimizer), "versions": versions(model)})
    return diagnose(rec.concat(frames), facts=facts, complete=False)


def _backend() -> str:
    import keras

    return keras.backend.backend()


def _tape_gradients(model, x, y, sample_weight):
    """The loss and the gradient of every trainable variable as arrays (0 where it gets none), by a GradientTape."""
    import tensorflow as tf

    if y is not None:  # (Keras 2's loss reads the targets' static shape)
        y = tf.nest.map_structure(tf.convert_to_tensor, y)
    with tf.GradientTape() as tape:
        y_pred = model(x, training=True)
        loss = model.compute_loss(x=x, y=y, y_pred=y_pred, sample_weight=sample_weight)
    variables = list(model.trainable_variables)
    grads = tape.gradient(loss, variables)
    return float(loss), [np.zeros(v.shape, np.float32) if g is None else np.asarray(tf.convert_to_tensor(g))
                         for g, v in zip(grads, variables)]


def _torch_gradients(model, x, y, sample_weight):
    """The same on PyTorch: ``backward()`` of the loss, as Keras' PyTorch trainer does, leaving no gradient behind."""
    import torch

    from gradscope.recorders.keras_compat import to_numpy

    variables = list(model.trainable_variables)
    saved = [v.value.grad for v in variables]
    for v in variables:
        v.value.grad = None
    try:
        y_pred = model(x, training=True)
        loss = model.compute_loss(x=x, y=y, y_pred=y_pred, sample_weight=sample_weight)
        loss.backward()
        grads = [np.zeros(tuple(v.shape), np.float32) if v.value.grad is None else to_numpy(v.value.grad)
                 for v in variables]
    finally:
        with torch.no_grad():
            for v, g in zip(variables, saved):
                v.value.grad = g
    return float(to_numpy(loss)), grads


def _jax_gradients(model, x, y, sample_weight):
    """The same on JAX: ``jax.value_and_grad`` of the loss function Keras' JAX trainer differentiates
    (``compute_loss_and_updates``), at the model's current weights."""
    import jax

    state = [[v.value for v in vs] for vs in (model.trainable_variables, model.non_trainable_variables,
                                             model.metrics_variables)]
    grad_fn = jax.value_and_grad(model.compute_loss_and_updates, has_aux=True)
    (scaled, (loss, *_)), grads = grad_fn(*state, x, y, sample_weight, training=True,
                                          optimizer_variables=[v.value for v in model.optimizer.variables])
    scale = float(scaled) / float(loss) if float(loss) not in (0.0,) and np.isfinite(float(loss)) else 1.0
    return float(loss), [np.asarray(g) / scale for g in grads]  # (a loss-scale optimizer's scale taken out)


def first_step(optimizer, variables, grads) -> list:
    """What the optimizer's first step changes in each variable, measured on copies (the model is
    left alone): a fresh optimizer of the same class and hyperparameters applies ``grads`` to
    copies of ``variables``. Falls back to ``-lr * g`` (plain SGD) for an optimizer that cannot
    be copied."""
    from gradscope.recorders import keras_compat as compat

    def value(v):
        return compat.to_numpy(v.value if hasattr(v, "path") else v)  # a Keras 3 variable, or a tf.Variable

    inner = compat.innermost_optimizer(optimizer)
    dense = [np.asarray(g, np.float32) for g in grads]
    try:
        fresh = type(inner).from_config(inner.get_config())
        if compat.is_legacy(inner):
            import tensorflow as tf

            copies = [tf.Variable(value(v), trainable=True) for v in variables]
        else:
            import keras

            copies = [keras.Variable(value(v), dtype=v.dtype, trainable=True) for v in variables]
        fresh.apply_gradients(zip(dense, copies))
        return [value(c) - value(v) for c, v in zip(copies, variables)]
    except Exception:
        try:
            lr = float(value(inner.learning_rate))
        except Exception:
            lr = float("nan")
        return [-lr * g for g in dense]
