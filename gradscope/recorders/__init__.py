"""Recorders: from a framework's training loop to records.

* :mod:`~gradscope.recorders.monitor`: ``GradientMonitor``, the Keras callback;
  :mod:`~gradscope.recorders.step_recorder` and :mod:`~gradscope.recorders.step_rows` record
  inside the traced train step; :mod:`~gradscope.recorders.activation_probe` and
  :mod:`~gradscope.recorders.activation_stats` measure activations on a probe batch, and
  :mod:`~gradscope.recorders.time_gradients` the gradient per time step of recurrent layers;
  :mod:`~gradscope.recorders.layer_names` names layers and variables;
  :mod:`~gradscope.recorders.keras_compat` holds every private Keras API touched.
* :mod:`~gradscope.recorders.tf1`: ``SessionRecorder`` and ``GradientNormHook`` for
  ``tf.compat.v1`` graphs.
* :mod:`~gradscope.recorders.audit`: ``audit()``, step-0 records from one forward/backward pass.
* Shared: :mod:`~gradscope.recorders.reductions` (how a tensor becomes a number),
  :mod:`~gradscope.recorders.schedule` (when to record),
  :mod:`~gradscope.recorders.record_log` (where records go), and
  :mod:`~gradscope.recorders.exit_guard` (nothing lost at interpreter exit).

Importing this package imports nothing heavy; its modules import TensorFlow.
"""
