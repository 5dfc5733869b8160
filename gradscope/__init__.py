"""gradscope: see vanishing and exploding gradients, layer by layer, in TensorFlow/Keras.

The flow, one stage per package or module: :mod:`~gradscope.data` -> :mod:`~gradscope.models`
-> :mod:`~gradscope.recorders` -> :mod:`~gradscope.records` -> :mod:`~gradscope.storage` ->
:mod:`~gradscope.diagnosis` -> :mod:`~gradscope.report`; :mod:`~gradscope.experiments` plans
and trains runs, :mod:`~gradscope.cli` is the command line, and
:mod:`~gradscope.vocabulary` holds the words they share.

``import gradscope`` is cheap: TensorFlow is imported only when a recorder or training needs
it (``gradscope.GradientMonitor`` imports Keras on first use).
"""

__version__ = "0.1.0"

__all__ = ["GradientMonitor", "SessionRecorder", "GradientNormHook", "GradscopeError", "audit", "diagnose",
           "try_fixes", "TryFixes", "load_run", "find_runs", "show", "__version__"]

from gradscope.errors import GradscopeError

_LAZY = {
    "GradientMonitor": "gradscope.recorders.monitor",
    "SessionRecorder": "gradscope.recorders.tf1",
    "GradientNormHook": "gradscope.recorders.tf1",
    "audit": "gradscope.recorders.audit",
    "try_fixes": "gradscope.trials.runner",
    "TryFixes": "gradscope.trials.fit_trials",
    "diagnose": "gradscope.diagnosis",
    "load_run": "gradscope.storage",
    "find_runs": "gradscope.storage",
    "show": "gradscope.report.notebook",
}


def __getattr__(name):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'gradscope' has no attribute {name!r}")
