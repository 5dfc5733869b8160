"""HTML and text reports of saved runs: compute one view per run, structure, draw. No TensorFlow.

Imported lazily: ``gradscope diagnose`` reads :mod:`gradscope.report.text` without loading the
drawing stack (matplotlib).
"""

import importlib

_EXPORTS = {"render_report": "render", "report_figures": "render", "write_report": "render", "RunView": "view", "views_of": "view"}

__all__ = list(_EXPORTS)


def __getattr__(name):
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"gradscope.report.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module 'gradscope.report' has no attribute {name!r}")
