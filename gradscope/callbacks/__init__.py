"""Keras callbacks (one per module). Importing this package imports Keras."""

from gradscope.callbacks.gradient_monitor import GradientMonitor

__all__ = ["GradientMonitor"]
