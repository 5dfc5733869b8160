"""gradscope: see vanishing and exploding gradients, layer by layer, in TensorFlow/Keras.

``import gradscope`` is cheap: TensorFlow is imported only when a recorder or training
needs it (``gradscope.GradientMonitor`` imports Keras on first use).
"""

__version__ = "0.1.0"

__all__ = ["GradientMonitor", "GradscopeError", "audit", "diagnose", "__version__"]

from gradscope.errors import GradscopeError


def __getattr__(name):
    if name == "GradientMonitor":
        from gradscope.callbacks.gradient_monitor import GradientMonitor

        return GradientMonitor
    if name == "audit":
        from gradscope.preflight import audit

        return audit
    if name == "diagnose":
        from gradscope.diagnosis import diagnose

        return diagnose
    raise AttributeError(f"module 'gradscope' has no attribute {name!r}")
