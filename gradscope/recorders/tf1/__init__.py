"""Recording for ``tf.compat.v1`` graph code: MonitoredTrainingSession hooks and sess.run loops.

Importing this package imports TensorFlow. Nothing here needs
``tf.compat.v1.disable_eager_execution()``: build the graph under ``tf.Graph().as_default()``
and run it with ``tf.compat.v1.Session(graph=...)``.
"""

from gradscope.recorders.tf1.graph import StepStats, build_step_stats
from gradscope.recorders.tf1.hook import GradientNormHook
from gradscope.recorders.tf1.session_recorder import SessionRecorder

__all__ = ["GradientNormHook", "SessionRecorder", "StepStats", "build_step_stats"]
