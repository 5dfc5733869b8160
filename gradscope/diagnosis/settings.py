"""Every threshold of the diagnosis, in one settings object that callers (and the suite) can pass in.

The defaults were tuned on the labelled suite's tuning half (``benchmarks/diagnosis_suite.py``;
``docs/diagnosis.md`` says how).

Example:
    >>> DiagnosisSettings().vanish_ratio
    0.1
    >>> DiagnosisSettings(vanish_ratio=0.05).vanish_ratio
    0.05
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class DiagnosisSettings:
    """Thresholds of the rules.

    Attributes:
        vanish_ratio: vanishing when the input layer's update_ratio is below this fraction of
            the output layer's ...
        vanish_saturated_input: ... or more than this fraction of the first hidden layer's
            outputs are saturated.
        vanish_high: the ratio below which a vanishing gradient is of high severity.
        explode_update_ratio: exploding when one step changes a layer by more than this
            multiple of its own norm ...
        explode_loss_rise: ... or the loss ends this many times above the first epoch's.
        saturated: saturation when more than this fraction of a layer's outputs sit within
            the saturation margin of an asymptote.
        dead: dead units when more than this fraction of a ReLU layer's units are silent on
            the whole probe batch.
        high_fraction: a saturated or dead fraction (or a saturated input layer) above which
            the finding is of high severity.
        stalled_drop: stalled when the loss fell by less than this fraction from the first to
            the last epoch ...
        stalled_accuracy: ... or the training accuracy ends below this multiple of chance.
        default_classes: the number of classes assumed when the config does not say.
        early_fraction: "early in training" is the first epoch, or the first this fraction of
            the steps when that is longer.
        large_lr: a learning rate from which steps are said to overshoot.
        large_lr_dead: a learning rate from which dead units are blamed on it.
        mention_grad_above: the vanishing summary mentions the input layer's gradient norm
            when it is above this (to say that a large norm can still learn slowly).
    """

    vanish_ratio: float = 0.1
    vanish_saturated_input: float = 0.7
    vanish_high: float = 0.01
    explode_update_ratio: float = 1.0
    explode_loss_rise: float = 1.5
    saturated: float = 0.5
    dead: float = 0.6
    high_fraction: float = 0.9
    stalled_drop: float = 0.1
    stalled_accuracy: float = 2.0
    default_classes: int = 10
    early_fraction: float = 0.1
    large_lr: float = 1.0
    large_lr_dead: float = 0.5
    mention_grad_above: float = 1e-3


DEFAULT_SETTINGS = DiagnosisSettings()
