"""The step source of legacy Keras 2 (``tf_keras``): its optimizers' steps, in the ring of Keras 3 on TensorFlow."""
