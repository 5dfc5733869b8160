"""Every threshold of the diagnosis, in one settings object that callers (and the suite) can pass in.

The defaults were tuned on the labelled suite's ``mnist_mlp`` family only
(``benchmarks/diagnosis_suite.py``; ``docs/diagnosis.md`` says how) and are reported on the
five families it was not tuned on.

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
        window_min_steps: a window is one epoch, or enough consecutive epochs for this many steps.
        min_episode_windows: a problem that holds in fewer consecutive windows than this (and
            not in all of a short run's) is a passing moment, not a finding.
        vanish_ratio: vanishing when, in a window, the input layer's update_ratio is below this
            fraction of the output layer's (0 when no gradient reaches it at all).
        vanish_min_layers: the ratio criterion needs this many kernel layers (a chain of layers
            for a gradient to vanish along).
        vanish_high: the ratio below which a vanishing gradient is of high severity.
        explode_update_ratio: exploding when, in a window, steps change a layer by more than
            this multiple of its own norm (median) ...
        explode_loss_rise: ... or the loss ends this many times above the first epoch's.
        explode_grad_growth: a NaN/inf that follows gradients grown by this factor (or any
            inf gradient) is an explosion; otherwise it came from the loss.
        explode_weight_growth: ... or weights grown by this factor.
        saturated: saturation when more than this fraction of a layer's outputs sit within
            the saturation margin of an asymptote.
        dead: dead units when more than this fraction of a ReLU layer's units are silent on
            the whole probe batch.
        high_fraction: a saturated or dead fraction (or a saturated input layer) above which
            the finding is of high severity.
        stalled_drop: stalled when the loss fell by less than this fraction from the first to
            the last epoch ...
        stalled_above_chance: ... or the training accuracy ends less than this fraction of the
            way from chance to 1 (chance + 0.1 x (1 - chance): 0.19 for 10 classes, 0.55 for 2).
        default_classes: the number of classes assumed when nothing says (the seed's MNIST digits: 10).
        oscillation_rise: a loss rise between epochs by more than this fraction counts ...
        oscillation_fraction: ... oscillating when this fraction of the epochs rise ...
        oscillation_min_epochs: ... in a run of at least this many epochs ...
        oscillation_update_ratio: ... while steps change the layers by more than this (median,
            over the second half), the sign of a learning rate that is too high.
        diverged_loss: a loss this many times its first epoch's has diverged (not oscillated).
        slow_tail: the last fraction of the epochs in which a slow run is still improving ...
        slow_tail_drop: ... by more than this fraction ...
        slow_update_ratio: ... while no layer's steps change it by more than this (median).
        slow_min_epochs: slow convergence is judged on runs of at least this many epochs.
        fitted_loss: a cross-entropy below this means the training data is fitted: nothing is
            left to learn, so neither slow layers nor a slowly falling loss are a problem then.
        fitted_loss_fraction: for a loss that is not a cross-entropy, fitted below this fraction
            of the first epoch's loss.
        large_lr: a learning rate from which steps are said to overshoot.
        large_lr_dead: a learning rate from which dead units are blamed on it.
        unit_scale: inputs (or a regression target) are far from unit scale when a feature's mean
            or standard deviation is beyond this (raw pixels: up to ~255) ...
        tiny_scale: ... or their root mean square is below this.
        mention_grad_above: the vanishing summary mentions the input layer's gradient norm
            when it is above this (to say that a large norm can still learn slowly).
        time_min_length: gradients through time are judged on sequences of at least this many steps.
        time_opening_decades: a recurrent layer whose ``||dL/dh_1|| / ||dL/dh_T||`` rose by this
            many decades over the last quarter of its probes is learning to carry the gradient
            (a gated cell opening its gate): no verdict while it does.
        time_high_ratio: a first-to-last time-step ratio below this is a vanishing of high severity.
        time_explode_ratio: exploding through time when the first step gets this many times the
            last step's gradient.
    """

    window_min_steps: int = 10
    min_episode_windows: int = 3
    vanish_ratio: float = 0.1
    vanish_min_layers: int = 3
    vanish_high: float = 0.01
    explode_update_ratio: float = 0.3
    explode_loss_rise: float = 1.5
    explode_grad_growth: float = 10.0
    explode_weight_growth: float = 2.0
    saturated: float = 0.5
    dead: float = 0.6
    high_fraction: float = 0.9
    stalled_drop: float = 0.1
    stalled_above_chance: float = 0.1
    default_classes: int = 10
    oscillation_rise: float = 0.02
    oscillation_fraction: float = 0.25
    oscillation_min_epochs: int = 5
    oscillation_update_ratio: float = 1e-3
    diverged_loss: float = 2.0
    slow_tail: float = 0.2
    slow_tail_drop: float = 0.05
    slow_update_ratio: float = 2e-3
    slow_min_epochs: int = 5
    fitted_loss: float = 0.05
    fitted_loss_fraction: float = 0.01
    time_min_length: int = 8
    time_opening_decades: float = 1.0
    time_high_ratio: float = 1e-4
    time_explode_ratio: float = 100.0
    large_lr: float = 1.0
    large_lr_dead: float = 0.5
    mention_grad_above: float = 1e-3
    unit_scale: float = 10.0
    tiny_scale: float = 0.01


DEFAULT_SETTINGS = DiagnosisSettings()
