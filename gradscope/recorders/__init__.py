"""Recorders: from a framework's training loop to records.

* :mod:`~gradscope.recorders.session`: ``RecordingSession``, one run being recorded, whoever trains
  it (the writer and record log, records from named per-step arrays, the epoch end, the run's end);
  it knows no framework, nor do :mod:`~gradscope.recorders.step_rows` (how a step's row is laid out
  and read back), :mod:`~gradscope.recorders.reductions` (how a tensor becomes a number) and
  :mod:`~gradscope.recorders.schedule` (when to record).
* Step sources, one per training loop, each handing the session named per-step arrays:
  :mod:`~gradscope.recorders.keras_tf` (Keras 3 on TensorFlow, in the traced step),
  :mod:`~gradscope.recorders.keras_jax` (Keras 3 on JAX, out of the compiled step),
  :mod:`~gradscope.recorders.tf_keras` (legacy Keras 2) and :mod:`~gradscope.recorders.tf1`
  (``SessionRecorder`` and ``GradientNormHook`` for ``tf.compat.v1`` graphs);
  :mod:`~gradscope.recorders.tf_ops` holds the TensorFlow ops they share.
* :mod:`~gradscope.recorders.monitor`: ``GradientMonitor``, the Keras callback over a session and a
  step source; :mod:`~gradscope.recorders.activation_probe` and
  :mod:`~gradscope.recorders.activation_stats` measure activations on a probe batch, and
  :mod:`~gradscope.recorders.time_gradients` the gradient per time step of recurrent layers;
  :mod:`~gradscope.recorders.layer_names` names layers and variables;
  :mod:`~gradscope.recorders.keras_compat` holds every private Keras API touched.
* :mod:`~gradscope.recorders.audit`: ``audit()``, step-0 records from one forward/backward pass.

Importing this package imports nothing heavy; its step sources import their framework.
"""
