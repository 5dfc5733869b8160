"""The step source of Keras 3 on JAX: norms returned out of the jit-compiled train step."""
