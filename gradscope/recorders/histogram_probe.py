"""Histograms of kernels, their gradients and layer outputs, on the probe batch (before the first step
and at each epoch end): what :mod:`gradscope.histograms` bins.

* ``weight_hist``: every kernel's entries (``kernel``, ``recurrent_kernel``, ``depthwise_kernel``, ...),
  read on the host (any backend).
* ``grad_hist``: the gradient of the compiled loss with respect to every kernel, on the probe batch
  and its targets, at the current weights (one forward/backward pass, traced once: Keras 3 on
  TensorFlow, and only when the probe's targets are known: ``probe=(x, y)``, or ``fit`` given arrays).
* ``act_hist``: the outputs of every layer with a non-linear activation on the probe batch (the
  outputs the activation statistics are measured on).

Example:
    >>> import keras, numpy as np
    >>> model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2, activation="tanh", name="d")])
    >>> model.compile(optimizer="sgd", loss="mse")
    >>> from gradscope.recorders.layer_names import layer_table
    >>> probe = HistogramProbe(model, layer_table(model), gradients=True)
    >>> items = probe.items(np.ones((4, 3), "float32"), np.zeros((4, 2), "float32"), [])
    >>> [(layer, variable, metric, values.size) for layer, _, variable, metric, values in items]
    [('d', 'kernel', 'weight_hist', 6), ('d', 'kernel', 'grad_hist', 6)]
"""

from __future__ import annotations

from gradscope.recorders import keras_compat as compat
from gradscope.recorders.traced_once import TracedOnce


def is_kernel(variable: str) -> bool:
    """Whether a variable's short name (or path) names a kernel: its last part ends in ``kernel``."""
    return variable.rsplit("/", 1)[-1].endswith("kernel")


class HistogramProbe:
    """The histogram items of one model (see the module docstring).

    Args:
        model: a built Keras model.
        table: its layer table (:func:`gradscope.recorders.layer_names.layer_table`).
        gradients: measure ``grad_hist`` (Keras 3 on TensorFlow).
    """

    def __init__(self, model, table, gradients: bool):
        self.model = model
        self.kernels = [(v, *table[id(v)]) for v in model.trainable_variables
                        if id(v) in table and is_kernel(table[id(v)][2])]
        self._gradients = TracedOnce(self._kernel_gradients) if gradients and self.kernels else None

    def _kernel_gradients(self, x, y):
        """The kernels' gradients on ``(x, y)`` and their values, in one call (one read of many small
        variables instead of one each)."""
        import tensorflow as tf

        variables = [v for v, *_ in self.kernels]
        with tf.GradientTape() as tape:
            y_pred = self.model(x, training=False)
            loss = self.model.compute_loss(x=x, y=y, y_pred=y_pred)
        grads = [None if g is None else tf.convert_to_tensor(g) for g in tape.gradient(loss, variables)]  # dense
        return grads, [tf.convert_to_tensor(v) for v in variables]

    def items(self, x, y, outputs) -> list[tuple]:
        """``(layer, depth, variable, metric, values)`` of every histogram: the kernels' weights, their
        gradients on ``(x, y)`` (when both are given and gradients are measured) and the layer
        ``outputs`` (``(layer, depth, activation, output)``, from the activation probe)."""
        import numpy as np

        if self._gradients is not None and x is not None and y is not None:
            grads, values = self._gradients(x, y)
            items = [(layer, depth, name, "weight_hist", np.asarray(value))
                     for (_, layer, depth, name), value in zip(self.kernels, values)]
            items += [(layer, depth, name, "grad_hist", np.asarray(g))
                      for (_, layer, depth, name), g in zip(self.kernels, grads) if g is not None]
        else:
            items = [(layer, depth, name, "weight_hist", compat.to_numpy(v)) for v, layer, depth, name in self.kernels]
        items += [(name, depth, "", "act_hist", output) for name, depth, _, output in outputs]
        return items
