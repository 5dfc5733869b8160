"""The words gradscope's stages share, defined once: metrics, initialisers, activations, formats.

Every stage (data, models, recorders, records, storage, diagnosis, report) takes its names and
definitions from here, so that a name means the same thing in code, records, docs and report.
Nothing here imports TensorFlow.

Example:
    >>> METRICS["update_ratio"].derived_from
    ('update_norm', 'weight_norm')
    >>> SATURATING["tanh"]
    (-1.0, 1.0)
    >>> fmt(0.000282), fmt(12345.0), fmt(float("nan")), fmt(None)
    ('0.000282', '1.23e+04', 'nan', '-')
"""

from __future__ import annotations

import math
from dataclasses import dataclass

# --- metrics -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Metric:
    """One metric of the record schema.

    Attributes:
        name: the value of the ``metric`` column.
        level: ``variable`` (one value per trainable variable), ``layer`` (per layer with an
            activation), ``time`` (per recurrent layer and time step: the record's ``time``), ``bin``
            (one count per bin of a histogram: the record's ``bin``; per kernel, or per layer) or
            ``epoch`` (per run, from the Keras logs; ``layer`` is ``""``).
        when: when it is recorded.
        definition: one sentence, as docs and report captions say it.
        source: for measured per-variable metrics, the tensor of the optimizer step it reduces
            (``grad``: the gradient applied; ``weight``: the variable after the step;
            ``update``: what the step changed).
        reduction: how the recorders reduce that tensor to one number (a name in
            :data:`gradscope.recorders.reductions.REDUCTIONS`; ``l2``: the L2 norm).
        derived_from: for derived metrics, ``(numerator, denominator)``.
        window_max: with ``window_steps > 1`` a measured metric becomes the window's mean, and
            the metric named here holds the window's largest value (None: the window's last value).
        stored: whether records hold it (derived metrics that are not stored are computed on
            read by :func:`gradscope.records.layer_metric`).
    """

    name: str
    level: str
    when: str
    definition: str
    source: str | None = None
    reduction: str = "l2"
    derived_from: tuple[str, str] | None = None
    window_max: str | None = None
    stored: bool = True


_METRICS = [
    Metric("grad_norm", "variable", "every optimizer step",
           "L2 norm of the gradient the optimizer applied in the step (after loss-scale unscaling, "
           "clipping and the cross-replica sum)", source="grad", window_max="grad_norm_max"),
    Metric("grad_norm_max", "variable", "with window_steps > 1: once per window",
           "the largest grad_norm of the window (grad_norm is then the window's mean)"),
    Metric("weight_norm", "variable", "every optimizer step", "L2 norm of the variable after the step",
           source="weight"),
    Metric("update_norm", "variable", "every optimizer step",
           "L2 norm of the change the step made to the variable", source="update"),
    Metric("weight_norm_initial", "variable", "once per fit, at its first step",
           "L2 norm of the variable before the fit's first step (0 for a layer initialised at zero)"),
    Metric("update_ratio", "variable", "every optimizer step",
           "update_norm / weight_norm: the fraction by which one step changes the variable",
           derived_from=("update_norm", "weight_norm")),
    Metric("grad_over_weight", "variable", "computed on read",
           "grad_norm / weight_norm: how fast a layer learns relative to its own weights",
           derived_from=("grad_norm", "weight_norm"), stored=False),
    Metric("act_mean", "layer", "each epoch end", "mean of the layer's output on the probe batch"),
    Metric("act_std", "layer", "each epoch end", "standard deviation of the layer's output on the probe batch"),
    Metric("saturated_frac", "layer", "each epoch end",
           "saturating activations: fraction of (sample, unit) outputs within SATURATION_MARGIN of an asymptote"),
    Metric("dead_frac", "layer", "each epoch end",
           "ReLU-like activations: fraction of units whose output is 0 for every probe sample"),
    Metric("time_grad_norm", "time", "each epoch end, for recurrent layers (with the probe's targets)",
           "L2 norm over the probe batch and units of dL/d(variable)_t at time step t (the record's time): "
           "variable h is the hidden state (total derivative through the recurrence), c the cell state "
           "(the gradient reaching it from later steps), input the layer's input"),
    Metric("grad_hist", "bin", "before the first step and at each epoch end (with the probe's targets)",
           "how many entries of a kernel's gradient on the probe batch have a magnitude in the record's bin "
           "(gradscope.histograms)"),
    Metric("weight_hist", "bin", "before the first step and at each epoch end",
           "how many entries of a kernel have a magnitude in the record's bin (gradscope.histograms)"),
    Metric("act_hist", "bin", "before the first step and at each epoch end",
           "how many (sample, unit) outputs of a layer on the probe batch fall in the record's bin "
           "(gradscope.histograms)"),
    Metric("loss", "epoch", "each epoch end", "the training loss Keras logged"),
    Metric("accuracy", "epoch", "each epoch end", "the training accuracy Keras logged"),
    Metric("val_loss", "epoch", "each epoch end", "the validation loss Keras logged"),
    Metric("val_accuracy", "epoch", "each epoch end", "the validation accuracy Keras logged"),
]

#: Every metric of the schema by name (other numeric Keras log entries are kept too, as epoch metrics).
METRICS: dict[str, Metric] = {m.name: m for m in _METRICS}

#: Per-variable metrics recorded for every optimizer step (``update_ratio`` is derived when stored).
STEP_METRICS = ["grad_norm", "weight_norm", "update_norm", "update_ratio"]
#: Per-variable metrics the recorders measure from a step's tensors (every metric with a ``source``).
MEASURED_METRICS = [m.name for m in _METRICS if m.source]
#: With aggregation over windows of steps: the largest value of each window (``grad_norm_max``).
WINDOW_METRICS = [m.window_max for m in _METRICS if m.window_max]
#: Per-layer activation metrics on a probe batch, at each epoch end.
ACTIVATION_METRICS = ["act_mean", "act_std", "saturated_frac", "dead_frac"]

#: Histograms (one record per non-empty bin): gradients and weights of kernels, activations of layers.
HISTOGRAM_METRICS = ["grad_hist", "weight_hist", "act_hist"]

TIME_METRIC = "time_grad_norm"  #: per time step of a recurrent layer (see :mod:`gradscope.recorders.time_gradients`)
#: The *reach* of a recurrent layer: steps back from the last before ``||dL/dh_t||`` falls below
#: this fraction of the last step's (see :mod:`gradscope.diagnosis.time_reach`).
REACH_FRACTION = 0.01
#: Per-epoch metrics taken from the Keras logs (``layer`` and ``variable`` are empty).
EPOCH_METRICS = ["loss", "accuracy", "val_loss", "val_accuracy"]


# --- activations ---------------------------------------------------------------------------

#: Rows of the probe batch on which activation statistics are measured.
PROBE_SIZE = 256
#: An output within this distance of an asymptote counts as saturated (sigmoid: |z| > 4.6).
SATURATION_MARGIN = 0.01

#: Saturating activations and their (lower, upper) asymptotes.
SATURATING = {
    "sigmoid": (0.0, 1.0),
    "hard_sigmoid": (0.0, 1.0),
    "tanh": (-1.0, 1.0),
    "softsign": (-1.0, 1.0),
    "hard_tanh": (-1.0, 1.0),
}
#: Activations whose units can die (output exactly 0 for every input).
DEAD_ABLE = {"relu", "relu6"}
#: ReLU-like activations, which keep the gradient scale only with He-style initialisation.
RELU_LIKE = {"relu", "relu6", "elu", "selu", "leaky_relu", "gelu", "silu"}
#: Activations (or none) whose outputs say nothing about saturated or dead units.
NOT_WATCHED = {"linear", "softmax", "log_softmax", None}

# --- initialisers (the --init names; how each framework builds them: gradscope.models.initializers) ---

NORMAL_PREFIX = "normal_"  #: ``normal_<s>`` is N(0, s**2)
LARGE_RANDOM_INIT = "normal"  #: the init whose large weights saturate sigmoids and explode ReLUs
LARGE_INIT_STD = 0.5  #: N(0, s**2) weights with s at least this count as a large random init
REFERENCE_ACT, REFERENCE_INIT = "relu", "he"  #: the textbook fix, trained beside a single run as its reference
ROLE_REFERENCE = "reference"  #: ``config.role`` of that run


# --- fixes that trials try (gradscope.trials) ---------------------------------------------------


@dataclass(frozen=True)
class Fix:
    """A candidate fix that :func:`gradscope.try_fixes` trains as one arm, in words.

    Attributes:
        name: the arm's id (its run directory's name).
        title: how tables and findings name it.
        category: ``gradient_flow`` (activation, init, normalisation, skips, gated cells),
            ``step_size`` (learning rate, clipping, optimizer), ``output`` (the output layer and
            the loss) or ``data`` (input or target scale).
        confirms: the finding kinds whose remedy it is: when it helps, a finding of such a kind
            is confirmed.
        establishes: the finding kind a trial that helps becomes where no rule found anything.
        change: how much of the user's model and training it changes, smallest first: 0 the data or
            the output (it removes a cause), 1 one setting (a number of the optimizer, or an
            initializer the arms found off scale: each is one argument in the user's code), 3 the
            optimizer, 4 a layer's activation or cell, 5 layers added. Of two arms that help
            equally (within the noise), the smaller change ranks first; of equal changes, the
            larger gain.
        redraws: its arm draws the changed layers' weights anew, so it cannot start where the
            baseline starts: the baseline seeds' whole gap is its noise floor.
    """

    name: str
    title: str
    category: str
    confirms: frozenset
    establishes: str
    change: int
    redraws: bool = False


_GRADIENT_KINDS = frozenset({"vanishing_gradient", "exploding_gradient", "saturation", "dead_units", "stalled",
                             "gradient_flow", "non_finite"})
_FIXES = [
    Fix("output_fit", "output layer and loss fitted to the target", "output",
        frozenset({"output_target_mismatch", "output_pairing", "stalled", "non_finite"}), "output_target_mismatch", 0),
    Fix("output_pairing", "output activation/loss pairing fixed", "output",
        frozenset({"output_pairing", "stalled", "non_finite"}), "output_pairing", 0),
    Fix("standardize_target", "standardised target", "data",
        frozenset({"unscaled_target", "exploding_gradient", "non_finite", "stalled", "slow_convergence"}),
        "unscaled_target", 0),
    Fix("standardize_inputs", "standardised inputs", "data",
        frozenset({"unscaled_inputs", "saturation", "exploding_gradient", "non_finite", "dead_units", "stalled",
                   "slow_convergence"}), "unscaled_inputs", 0),
    Fix("relu_he", "ReLU + He init", "gradient_flow", _GRADIENT_KINDS - {"dead_units"}, "gradient_flow", 4,
        redraws=True),
    Fix("init", "Xavier/He init", "gradient_flow", _GRADIENT_KINDS, "gradient_flow", 1, redraws=True),
    Fix("lstm", "LSTM instead of SimpleRNN", "gradient_flow",
        frozenset({"vanishing_through_time", "exploding_through_time", "vanishing_gradient", "stalled",
                   "gradient_flow"}), "gradient_flow", 4, redraws=True),
    Fix("batchnorm", "BatchNormalization before the activations", "gradient_flow", _GRADIENT_KINDS, "gradient_flow", 5),
    Fix("skip", "skip connections", "gradient_flow", _GRADIENT_KINDS - {"dead_units"}, "gradient_flow", 5),
    Fix("adam", "Adam instead of SGD, Adagrad, Adadelta or a large-epsilon Adam", "step_size",
        frozenset({"slow_convergence", "stalled", "vanishing_gradient", "step_size"}), "step_size", 3),
    Fix("lr_up", "learning rate x10", "step_size", frozenset({"slow_convergence", "stalled", "step_size"}),
        "step_size", 1),
    Fix("lr_down", "learning rate /10", "step_size",
        frozenset({"oscillating_loss", "exploding_gradient", "non_finite", "dead_units", "stalled",
                   "exploding_through_time", "step_size"}), "step_size", 1),
    Fix("clipnorm", "gradients clipped (clipnorm=1)", "step_size",
        frozenset({"exploding_gradient", "non_finite", "exploding_through_time", "stalled", "step_size"}),
        "step_size", 1),
]
#: Every fix trials can try, by arm name, in the order they are tried.
FIXES: dict[str, Fix] = {f.name: f for f in _FIXES}
BASELINE_ARM = "baseline"  #: the model as given
NOISE_ARM = "baseline_seed2"  #: the same model from another seed (other weights, other data order): the noise floor
TRIALS_FILE = "trials.json"  #: a trials folder's summary, beside its runs/


# --- formatting ----------------------------------------------------------------------------


def fmt(x, digits: int = 3) -> str:
    """A number with ``digits`` significant digits for tables and sentences (``nan``, ``inf``, ``-`` spelled out)."""
    if x is None:
        return "-"
    x = float(x)
    if math.isnan(x):
        return "nan"
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    return f"{x:.{digits}g}"


def times(x) -> str:
    """A factor as people write it: ``102x``, ``1.5x``, ``14,000x``, ``3.4e+06x`` (``∞x`` when unbounded).

    Example:
        >>> [times(v) for v in (1.04, 11.3, 102.4, 14012, 3.4e6, float("inf"), float("nan"))]
        ['1.0x', '11x', '102x', '14,000x', '3.4e+06x', '∞x', 'nan']
    """
    if x is None or math.isnan(float(x)):
        return fmt(x)
    x = float(x)
    if math.isinf(x):
        return "∞x" if x > 0 else "-∞x"
    if abs(x) < 1:
        return f"{x:.2g}x"
    if abs(x) < 10:
        return f"{x:.1f}x"
    if abs(x) < 1e6:  # whole numbers, three significant digits
        digits = len(str(int(abs(x))))
        return f"{round(x, min(0, 3 - digits)):,.0f}x"
    return f"{x:.2g}x"
