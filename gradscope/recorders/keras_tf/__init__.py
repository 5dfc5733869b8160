"""The step source of Keras 3 on TensorFlow: norms computed inside the traced train step, kept in a device ring."""
