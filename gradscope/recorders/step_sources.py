"""Which step source records a Keras model's ``fit``, by its Keras and backend.

* Keras 3 on TensorFlow: :class:`gradscope.recorders.keras_tf.steps.StepRecorder` (norms computed
  in the traced step, into a device ring);
* Keras 3 on JAX: :class:`gradscope.recorders.keras_jax.steps.JaxStepRecorder` (norms returned out
  of the compiled step);
* Keras 3 on PyTorch: :class:`gradscope.recorders.keras_torch.steps.TorchStepRecorder` (each eager
  step measured as the optimizer applies it);
* legacy Keras 2 (``tf_keras``): :class:`gradscope.recorders.tf_keras.steps.TfKerasStepRecorder`.

Each has the same host interface: ``attach(optimizer)``, ``detach()``, ``next_step(optimizer)``,
``read(first, next) -> (steps, {metric: (rows, variables)}, lost)``, ``read_partial_window()``,
``current_weight_values(metric)``, ``outer_step(train_function)``, ``gradient_source(optimizer)``,
``counts_empty_calls`` and ``error``. Each imports its framework only when chosen.
"""

from __future__ import annotations

from gradscope.recorders import keras_compat as compat


def backend_of(model) -> str:
    """The backend ``model`` trains on: Keras 3's, or ``tensorflow`` for a legacy Keras 2 model."""
    import keras

    return "tensorflow" if compat.is_legacy(model) else keras.backend.backend()


def on_jax(model) -> bool:
    """Whether ``model`` trains on Keras 3's JAX backend."""
    return backend_of(model) == "jax"


def unrecordable(model) -> str | None:
    """Why no step source can record this model's ``fit``, in one line with what to do, or None."""
    problem = compat.unsupported_stack(model, backends=compat.MONITOR_BACKENDS, legacy=True)
    if problem is None and on_jax(model):
        from gradscope.recorders.keras_jax.steps import unrecordable as jax_unrecordable

        problem = jax_unrecordable(model)
    if problem is None and backend_of(model) == "torch":
        from gradscope.recorders.keras_torch.steps import unrecordable as torch_unrecordable

        problem = torch_unrecordable(model)
    return problem


def _is_distributed(model) -> bool:
    import tensorflow as tf

    strategy = getattr(model, "distribute_strategy", None) or tf.distribute.get_strategy()
    return strategy.num_replicas_in_sync > 1 or type(strategy).__name__ != "_DefaultDistributionStrategy"


def needs_copy(optimizer, variables, model) -> bool:
    """True when the update must be measured against a copy (see ``keras_tf.steps.CopiedUpdates``)."""
    return bool(
        not type(optimizer).__module__.startswith("keras.")
        or getattr(optimizer, "weight_decay", None)
        or getattr(optimizer, "use_ema", False)
        or getattr(optimizer, "gradient_accumulation_steps", None)
        or any(getattr(v, "constraint", None) is not None for v in variables)
        or _is_distributed(model)
    )


def step_source(model, optimizer, variables, capacity: int, plan):
    """A new step source for this model's Keras and backend, recording ``variables`` of ``optimizer``'s steps."""
    if compat.is_legacy(model):
        from gradscope.recorders.tf_keras.steps import TfKerasStepRecorder

        return TfKerasStepRecorder(variables, capacity, plan=plan)
    if on_jax(model):
        from gradscope.recorders.keras_jax.steps import JaxStepRecorder

        return JaxStepRecorder(model, variables, capacity, plan=plan)
    if backend_of(model) == "torch":
        from gradscope.recorders.keras_torch.steps import TorchStepRecorder

        return TorchStepRecorder(model, variables, capacity, plan=plan)
    from gradscope.recorders.keras_tf.steps import StepRecorder

    return StepRecorder(variables, capacity, plan=plan, exact_copy=needs_copy(optimizer, variables, model))


def reusable(kept, model, optimizer, variables, capacity: int):
    """``(source, step)`` of the last fit (``kept``: its model, optimizer, source and traced step), if this
    fit can run them as they are: the same model, optimizer and variables, a ring large enough and the
    same place to read the gradients; else None."""
    if kept is None:
        return None
    k_model, k_optimizer, source, step = kept
    same = (k_model is model and k_optimizer is optimizer and source.capacity >= capacity
            and [id(v) for v in source.variables] == [id(v) for v in variables]
            and type(source.gradient_source(optimizer)) is type(source.gradients))
    return (source, step) if same else None
