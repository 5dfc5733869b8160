"""Trials: try the fixes that apply to a model in short paired runs, measure what each does, say what worked.

A threshold rule says what a run *looks* like; a trial says what a fix *does*. Every label of
gradscope's labelled suite comes from such an intervention (the same run trained again with a
fix), and :func:`try_fixes` does the same for its user's model:

* :mod:`~gradscope.trials.trial_data`: the rows every arm trains on (same order) and is scored on;
* :mod:`~gradscope.trials.model_parts`: the model read as trials need it (hidden layers, head, cells);
* :mod:`~gradscope.trials.arms`: which fixes apply, and what each changes (a plan, as data);
* :mod:`~gradscope.trials.rebuild`: the plan carried out (``keras.models.clone_model``, or ``model_fn``);
* :mod:`~gradscope.trials.halving`: how the budget is spent (synchronous successive halving);
* :mod:`~gradscope.trials.yardstick`: the one score all arms share (accuracy, or R^2 in the target's units);
* :mod:`~gradscope.trials.runner`: :func:`try_fixes` itself;
* :mod:`~gradscope.trials.result`: :class:`TrialResult` (a table, the best arm, the findings);
* :mod:`~gradscope.trials.settings`: every number, in :class:`TrialSettings`;
* :mod:`~gradscope.trials.fit_trials`: :class:`TryFixes`, the callback that runs them at the end of a monitored fit.

How findings carry the result is :mod:`gradscope.diagnosis.trial_evidence`. TensorFlow is
imported only when trials run.
"""

import importlib

_EXPORTS = {"try_fixes": "runner", "TryFixes": "fit_trials", "TrialResult": "result", "TrialSettings": "settings", "FixSpec": "rebuild"}

__all__ = list(_EXPORTS)


def __getattr__(name):
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"gradscope.trials.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module 'gradscope.trials' has no attribute {name!r}")
