"""Recording of per-variable norms for every optimizer step of legacy Keras 2 (``tf_keras``).

Course code written before Keras 3, and ``tf.keras`` under ``TF_USE_LEGACY_KERAS=1``, train with
``tf_keras``: its own layers, callbacks and optimizers, on TensorFlow. Its train step is a
``tf.function`` like Keras 3's, so the device ring and row layouts of
:mod:`gradscope.recorders.keras_tf` serve it unchanged; what differs is where an optimizer
step can be seen:

* the step itself is ``apply_gradients(grads_and_vars)`` (Keras 3: ``apply``), wrapped on the
  optimizer instance: the weights are read before it, and the row is written after it returns
  (after weight decay, the update and the variables' constraints);
* the gradients are taken where the optimizer hands them over to its per-variable updates,
  after loss-scale unscaling (a ``LossScaleOptimizer`` calls the inner one's ``apply_gradients``),
  clipping and cross-replica aggregation: ``_internal_apply_gradients`` for the optimizers of
  ``tf_keras.optimizers`` (TF 2.11 and later), ``_distributed_apply`` for those of
  ``tf_keras.optimizers.legacy`` (:data:`~gradscope.recorders.keras_compat.LEGACY_HANDOVER`);
* the update is measured against the weights read before the step (Keras 2's optimizers assign
  to the variables directly, so there are no optimizer ``assign*`` calls to capture).
"""

from __future__ import annotations

from gradscope.recorders import keras_compat as compat
from gradscope.recorders.keras_tf.steps import AllReducedGradients, StepRecorder


class HandedOverGradients(AllReducedGradients):
    """The gradients a Keras 2 optimizer hands to its per-variable updates (unscaled, clipped, aggregated)."""

    def install(self, recorder, optimizer) -> None:
        name = compat.legacy_handover(optimizer)
        original = getattr(optimizer, name)

        def take(grads_and_vars):
            ctx = recorder.context()
            if ctx is not None:
                with recorder.guard():
                    for g, v in grads_and_vars:
                        i = recorder.position(v)
                        if i is not None and g is not None:
                            ctx.grads[i] = g

        if name == "_internal_apply_gradients":
            def handover(grads_and_vars, *args, **kwargs):
                grads_and_vars = list(grads_and_vars)
                take(grads_and_vars)
                return original(grads_and_vars, *args, **kwargs)
        else:  # _distributed_apply(distribution, grads_and_vars, ...)
            def handover(distribution, grads_and_vars, *args, **kwargs):
                grads_and_vars = list(grads_and_vars)
                take(grads_and_vars)
                return original(distribution, grads_and_vars, *args, **kwargs)

        recorder.wrap(name, handover)


class TfKerasStepRecorder(StepRecorder):
    """Records per-variable norms of the steps of one legacy Keras 2 optimizer into a device ring
    (the host interface of :class:`~gradscope.recorders.keras_tf.steps.StepRecorder`).

    Args:
        variables: the trainable variables to record, in record order.
        capacity: rows kept on the device between two :meth:`read` calls.
        plan: what is measured in the step, and when (:class:`gradscope.recorders.schedule.Plan`).
    """

    def __init__(self, variables, capacity: int, plan=None):
        super().__init__(variables, capacity, plan=plan, exact_copy=True)

    #: Keras 2 finds the end of data of unknown length before the optimizer step: no iteration is counted.
    counts_empty_calls = False

    def gradient_source(self, optimizer):
        """Always the hand-over of :class:`HandedOverGradients` (checked when it is installed)."""
        return HandedOverGradients()

    def attach(self, optimizer) -> None:
        """Wrap ``optimizer``'s ``apply_gradients`` and its gradient hand-over (on this instance only)."""
        if self._optimizer is not None:
            raise RuntimeError("TfKerasStepRecorder is already attached")
        compat.legacy_handover(optimizer)  # one clear line for an optimizer it cannot read, before touching it
        self._prepare(optimizer)
        self.wrap("apply_gradients", self._make_apply_gradients(optimizer.apply_gradients))
        self.gradients.install(self, optimizer)

    def _make_apply_gradients(self, original):
        def apply_gradients(grads_and_vars, *args, **kwargs):
            pairs = list(grads_and_vars)
            if not pairs or self.error is not None:
                return original(pairs, *args, **kwargs)
            grads = [g for g, _ in pairs]
            return self.recorded(lambda: original(pairs, *args, **kwargs), grads, [v for _, v in pairs])

        return apply_gradients
