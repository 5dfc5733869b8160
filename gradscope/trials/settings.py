"""Every number that decides how trials spend their budget and when an arm helps, in one settings object.

The defaults were chosen on the labelled suite's ``mnist_mlp`` family only
(``benchmarks/trials_suite.py``; ``docs/diagnosis.md`` says how) and are reported on the
families they were not chosen on.

Example:
    >>> s = TrialSettings()
    >>> s.budget_steps, s.rungs
    (500, 2)
    >>> TrialSettings(budget_steps=2000).budget_steps
    2000
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class TrialSettings:
    """How trials are run and judged.

    Attributes:
        budget_steps: optimizer steps for all arms together (the baseline and its second seed
            included). Each arm's most is derived from it (see :mod:`gradscope.trials.halving`).
        max_steps: no arm trains longer than this many steps, whatever the budget.
        min_rung_steps: the first rung is at least this many steps (fewer rungs otherwise).
        rungs: checks before the last: an arm is scored after 1/2**rungs, ..., 1/2 of its most
            steps, and stopped unless it is in the better half of the arms at that
            check (synchronous successive halving).
        held_out: the fraction of the rows kept aside to score every arm on ...
        max_held_out: ... at most this many rows ...
        min_held_out: ... and at least this many (fewer rows: no trials).
        max_rows: at most this many training rows are used (a sample spread over the data).
        max_batches: at most this many batches are taken from a ``tf.data.Dataset``.
        noise_factor: an arm helps when it beats the baseline by more than this many times the
            noise floor: the larger of the gap between the baseline's two seeds and the
            standard error of the arm's paired difference on the held-out rows; or when it beats
            the baseline by more than the floor once and ends above the better of the baseline's
            two seeds by this many times that standard error (a fix for a model that is a lottery
            between seeds; see :func:`gradscope.trials.result.judge_arm`) ...
        min_improvement: ... and by at least this much of the yardstick (accuracy, R^2).
        confirm_arms: when the baseline's two seeds land far apart, the seed gap can hide a fix that
            helps on every start. Up to this many arms that trained to the end, beat the baseline by
            more than the held-out noise and by ``min_improvement``, but not by the seed gap (and
            ahead of every arm that helped) train again from the second seed's start. Such an arm
            helps when it beats the baseline on each seed, at the same seed, beyond that seed's
            held-out noise (0, the default: never; each costs one arm's steps more than the budget).
            Measured on the trials suite, 2 mended 2 labelled runs and cost 3 healthy ones (an arm
            "helped on both seeds" where the label says nothing was wrong): opt in, not yet the default.
        clipnorm: the ``clipnorm`` the clipping arm uses.
        adam_learning_rate: the learning rate the Adam arm uses (Keras' default).
        init_tolerance: an initialisation is bad when, across the hidden stack, it scales the
            signal's variance by more than this factor (or its inverse) against Xavier (for
            saturating activations) or He (for ReLU-like ones) ...
        init_layer_tolerance: ... or one layer's weight standard deviation is this many times
            off (either way).
        skip_min_layers: skip connections are tried on plain stacks of at least this many
            hidden layers whose consecutive outputs have the same shape.
        record_arms: every arm records a run of its own (``<out>/runs/<arm>/``, by a
            GradientMonitor each, each with its own traced step). By default only the model as
            given is recorded (its findings are the ones trials confirm); the other arms train
            plain Keras steps, and those that differ from it only in weights, learning rate or
            data share one traced step.
        bootstrap: resamples for the standard error of an R^2 difference.
        seed: the seed of weights, data order and the held-out split (the second seed is seed + 1).
    """

    budget_steps: int = 500
    max_steps: int = 2000
    min_rung_steps: int = 10
    rungs: int = 2
    held_out: float = 0.2
    max_held_out: int = 2000
    min_held_out: int = 20
    max_rows: int = 20_000
    max_batches: int = 200
    noise_factor: float = 2.0
    min_improvement: float = 0.02
    confirm_arms: int = 0
    clipnorm: float = 1.0
    adam_learning_rate: float = 1e-3
    init_tolerance: float = 10.0
    init_layer_tolerance: float = 3.0
    skip_min_layers: int = 6
    record_arms: bool = False
    bootstrap: int = 200
    seed: int = 0


DEFAULT_TRIAL_SETTINGS = TrialSettings()
