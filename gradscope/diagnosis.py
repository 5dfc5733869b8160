"""Diagnosis: from a run's records (and config) to findings with evidence and a remedy.

Pure functions of a records DataFrame; no TensorFlow, no I/O. Each finding names its kind,
the layers and steps it concerns, a severity, the numbers that triggered it next to what a
healthy run shows, why it happens when the config says enough, and what to change.

The signals are relative, because absolute gradient norms mislead: with N(0, 1) weights the
input layer's gradient norm is large (it sums over 401,408 weights) while the layer learns
~70x more slowly, relative to its weights, than the output layer.

* learning speed of a layer: ``grad_norm / weight_norm`` of its kernel (the relative change a
  plain SGD step makes per unit learning rate); its first-to-last layer ratio and its decay
  per layer across depth (a geometric decay is the vanishing-gradient signature);
* growth of ``grad_norm`` over the first steps, ``update_ratio`` (how much one step changes the
  weights) and the loss: explosion;
* ``saturated_frac`` and ``dead_frac`` on the probe batch: saturated and dead units;
* the loss curve: stalled training; and non-finite values anywhere.

Thresholds are module constants, tuned on the labelled suite (``benchmarks/diagnosis_suite.py``,
see ``docs/diagnosis.md``).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd

KINDS = ("vanishing_gradient", "exploding_gradient", "dead_units", "saturation", "stalled", "non_finite")

# --- thresholds (tuned on the suite's tuning half; see docs/diagnosis.md) ------------------
VANISH_RATIO = 0.1           # the input layer's update_ratio is < 1/10 of the output layer's ...
VANISH_SATURATED_INPUT = 0.7  # ... or > 70% of the first hidden layer's outputs are saturated
EXPLODE_UPDATE_RATIO = 1.0   # one step changes a layer by more than its own norm
EXPLODE_LOSS_RISE = 1.5      # or the loss ends 1.5x above where the first epoch left it
SATURATED = 0.5              # > 50% of a sigmoid/tanh layer's outputs within 0.01 of an asymptote
DEAD = 0.6                   # > 60% of a ReLU layer's units silent on the whole probe batch
STALLED_DROP = 0.1           # the loss fell by < 10% from the first to the last epoch ...
STALLED_ACCURACY = 2.0       # ... or the training accuracy ends below 2x chance
EARLY_FRACTION = 0.1         # "early in training": the first epoch, or the first 10% of the steps


@dataclass
class Finding:
    """One diagnosed problem.

    Attributes:
        kind: one of :data:`KINDS`.
        severity: ``high``, ``medium`` or ``low``.
        layers: the layers concerned, input side first.
        steps: ``[first, last]`` optimizer steps over which it was seen.
        summary: one sentence.
        evidence: the numbers that triggered it (and ``healthy``: what a healthy run shows).
        why: the cause, when the config tells it.
        recommendation: what to change.
    """

    kind: str
    severity: str
    layers: list
    steps: list
    summary: str
    evidence: dict = field(default_factory=dict)
    why: str = ""
    recommendation: str = ""

    def to_dict(self) -> dict:
        return _jsonable(asdict(self))


def _jsonable(x):
    if isinstance(x, dict):
        return {k: _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, (np.floating, float)):
        x = float(x)
        return x if math.isfinite(x) else str(x)
    if isinstance(x, np.integer):
        return int(x)
    return x


# --- signals ---------------------------------------------------------------------------


@dataclass
class Signals:
    """The numbers the rules look at, computed once from the records."""

    layers: list                 # kernel layers, input side first
    first_step: int | None
    last_step: int | None
    rel_first: pd.Series         # grad_norm / weight_norm per layer early in training (median)
    rel_last: pd.Series          # ... over the last epoch
    grad_first: pd.Series        # grad_norm at the first step
    growth: pd.Series            # max grad_norm early in training / grad_norm at the first step
    update_ratio_first: pd.Series  # median update_ratio early in training
    saturated: pd.Series         # last recorded saturated_frac per layer
    saturated_first: pd.Series
    dead: pd.Series              # last recorded dead_frac per layer
    loss: pd.Series              # epoch -> loss
    accuracy: pd.Series
    non_finite_step: int | None
    non_finite_layers: list


def _median_by_layer(df, steps):
    sel = df[df["step"].isin(steps)]
    return sel.groupby("layer", sort=False)["value"].median()


def signals(records: pd.DataFrame) -> Signals:
    """Compute the diagnosis signals of one run."""
    kern = records[records["variable"] == "kernel"]
    order = kern.drop_duplicates("layer").sort_values("depth")["layer"].tolist()

    def per_layer(metric):
        return kern[kern["metric"] == metric]

    grad, weight, upd = per_layer("grad_norm"), per_layer("weight_norm"), per_layer("update_ratio")
    steps = grad[["step", "epoch"]].drop_duplicates()
    first_step = int(steps["step"].min()) if len(steps) else None
    last_step = int(steps["step"].max()) if len(steps) else None
    # The early window: the first epoch, or the first 10% of the steps when an epoch is short
    # (full-batch training makes every step an epoch).
    if len(steps):
        end_first_epoch = steps.loc[steps["epoch"] == steps["epoch"].min(), "step"].max()
        horizon = max(end_first_epoch, first_step + EARLY_FRACTION * (last_step - first_step))
        first_epoch_steps = steps.loc[steps["step"] <= horizon, "step"]
    else:
        first_epoch_steps = []
    last_epoch_steps = steps.loc[steps["epoch"] == steps["epoch"].max(), "step"] if len(steps) else []

    merged = grad.merge(weight, on=["step", "layer"], suffixes=("_g", "_w"))
    with np.errstate(divide="ignore", invalid="ignore"):
        merged["value"] = merged["value_g"] / merged["value_w"]
    rel = merged[["step", "layer", "value"]]

    def ordered(s):
        return s.reindex([layer for layer in order if layer in s.index])

    g_first = ordered(grad[grad["step"] == first_step].set_index("layer")["value"]) if first_step is not None else pd.Series(dtype=float)
    g_max = ordered(grad[grad["step"].isin(first_epoch_steps)].groupby("layer")["value"].max())
    with np.errstate(divide="ignore", invalid="ignore"):
        growth = g_max / g_first

    acts = records[records["metric"].isin(["saturated_frac", "dead_frac"])]

    def act_metric(metric, last=True):
        sel = acts[acts["metric"] == metric]
        if not len(sel):
            return pd.Series(dtype=float)
        pick = sel["step"].max() if last else sel["step"].min()
        s = sel[sel["step"] == pick].groupby("layer", sort=False)["value"].mean()
        return s

    epoch_logs = records[records["layer"] == ""]
    loss = epoch_logs[epoch_logs["metric"] == "loss"].groupby("epoch")["value"].last()
    accuracy = epoch_logs[epoch_logs["metric"] == "accuracy"].groupby("epoch")["value"].last()

    finite_check = records[records["metric"].isin(["grad_norm", "weight_norm", "loss"])]
    bad = finite_check[~np.isfinite(finite_check["value"].to_numpy(dtype=float))]
    non_finite_step = int(bad["step"].min()) if len(bad) else None
    non_finite_layers = [layer for layer in order if layer in set(bad["layer"])]

    return Signals(
        layers=order,
        first_step=first_step,
        last_step=last_step,
        rel_first=ordered(_median_by_layer(rel, first_epoch_steps)),
        rel_last=ordered(_median_by_layer(rel, last_epoch_steps)),
        grad_first=g_first,
        growth=growth,
        update_ratio_first=ordered(_median_by_layer(upd, first_epoch_steps)),
        saturated=act_metric("saturated_frac"),
        saturated_first=act_metric("saturated_frac", last=False),
        dead=act_metric("dead_frac"),
        loss=loss,
        accuracy=accuracy,
        non_finite_step=non_finite_step,
        non_finite_layers=non_finite_layers,
    )


def _decay_per_layer(rel: pd.Series) -> float:
    """Geometric-mean factor by which learning speed shrinks per layer toward the input."""
    values = rel.to_numpy(dtype=float)
    if len(values) < 2 or not np.all(np.isfinite(values)) or np.any(values <= 0):
        return math.nan
    slope = np.polyfit(np.arange(len(values)), np.log(values), 1)[0]  # log-speed per layer
    return float(np.exp(-slope))


def _fmt(x, digits=3):
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return str(x)
    return f"{x:.{digits}g}"


# --- rules ----------------------------------------------------------------------------


def diagnose(records: pd.DataFrame, config: dict | None = None) -> list[Finding]:
    """All findings for one run, most severe first.

    Args:
        records: the run's records (schema of :mod:`gradscope.records`).
        config: the run's config (``act``, ``init``, ``lr``, ``layers``, ...), for the *why*.

    Example:
        >>> from gradscope.storage import load_run                              # doctest: +SKIP
        >>> run = load_run("reports/analyze-.../runs/sigmoid-normal")           # doctest: +SKIP
        >>> [f.kind for f in diagnose(run.records, run.config)]                 # doctest: +SKIP
        ['vanishing_gradient', 'saturation']
    """
    config = config or {}
    s = signals(records)
    findings = []
    for rule in (_non_finite, _exploding, _vanishing, _saturation, _dead, _stalled):
        finding = rule(s, config)
        if finding is not None:
            findings.append(finding)
    kinds = {f.kind for f in findings}
    if kinds & {"exploding_gradient", "non_finite"}:
        # an exploding output side also makes the input side look slow: say the cause only
        findings = [f for f in findings if f.kind != "vanishing_gradient"]
    rank = {"high": 0, "medium": 1, "low": 2}
    findings.sort(key=lambda f: rank[f.severity])
    return findings


def _steps(s: Signals):
    return [s.first_step, s.last_step]


def _non_finite(s: Signals, config):
    if s.non_finite_step is None:
        return None
    return Finding(
        kind="non_finite",
        severity="high",
        layers=s.non_finite_layers,
        steps=[s.non_finite_step, s.last_step],
        summary=f"gradients, weights or the loss became NaN/inf at step {s.non_finite_step}; "
                "training can no longer recover",
        evidence={"first_non_finite_step": s.non_finite_step,
                  "grad_norm_at_first_step": s.grad_first.round(6).to_dict(),
                  "healthy": "all values finite"},
        why=_why_exploding(config),
        recommendation="Lower the learning rate, clip gradients (clipnorm=1.0), and use He (ReLU) or "
                       "Xavier (tanh/sigmoid) initialisation instead of large random weights.",
    )


def _why_exploding(config):
    act, init, lr = config.get("act"), config.get("init"), config.get("lr")
    if init == "normal" and act in ("relu", "relu6", "elu", "selu", "leaky_relu", "gelu", "silu"):
        layers = config.get("layers") or []
        fan = f" with fan-in {layers[0]}" if layers else ""
        return (f"N(0,1) weights{fan} multiply the signal by about sqrt(fan_in/2) per ReLU layer "
                "(He init uses Var(w) = 2/fan_in to keep it level), so activations and gradients "
                "grow geometrically with depth.")
    if lr is not None and float(lr) >= 1.0:
        return f"the learning rate {lr} is large enough for single steps to overshoot."
    return ""


def _exploding(s: Signals, config):
    big_steps = s.update_ratio_first[s.update_ratio_first > EXPLODE_UPDATE_RATIO]
    loss = s.loss.to_numpy(dtype=float)
    non_finite_loss = bool(len(loss) and np.any(~np.isfinite(loss)))
    rising = bool(len(loss) >= 2 and np.all(np.isfinite(loss)) and loss[-1] > EXPLODE_LOSS_RISE * loss[0])
    if not (len(big_steps) or non_finite_loss or rising or s.non_finite_step is not None):
        return None
    growth = s.growth.replace([np.inf], np.nan).dropna()
    layers = [layer for layer in s.layers if layer in big_steps.index] or s.non_finite_layers or s.layers
    evidence = {"update_ratio_first_epoch": s.update_ratio_first.round(4).to_dict(),
                "grad_norm_growth_first_epoch": growth.round(3).to_dict(),
                "epoch_losses": [float(v) for v in loss],
                "healthy": f"update_ratio well below {EXPLODE_UPDATE_RATIO:g} (a step changes a layer by a small "
                           "fraction of its norm) and a finite, falling loss"}
    reasons = []
    if len(big_steps):
        reasons.append(f"single steps change {', '.join(big_steps.index)} by up to "
                       f"{_fmt(float(big_steps.max()))}x their own norm")
    if non_finite_loss or s.non_finite_step is not None:
        reasons.append("values became NaN/inf" + (f" at step {s.non_finite_step}" if s.non_finite_step is not None else ""))
    if rising:
        reasons.append(f"the loss rose from {_fmt(loss[0])} to {_fmt(loss[-1])}")
    return Finding(
        kind="exploding_gradient",
        severity="high",
        layers=layers,
        steps=_steps(s),
        summary="gradients explode: " + "; ".join(reasons),
        evidence=evidence,
        why=_why_exploding(config),
        recommendation="Lower the learning rate or clip gradients (clipnorm=1.0); use He init for ReLU "
                       "(Xavier for tanh/sigmoid); BatchNormalization keeps activations in range.",
    )


def _vanishing(s: Signals, config):
    speed = s.update_ratio_first.replace([np.inf, -np.inf], np.nan).dropna()
    if len(speed) < 2 or speed.iloc[-1] <= 0 or s.non_finite_step is not None:
        return None
    ratio = float(speed.iloc[0] / speed.iloc[-1])
    sat_input = float(s.saturated_first.iloc[0]) if len(s.saturated_first) else 0.0
    if not (ratio < VANISH_RATIO or sat_input > VANISH_SATURATED_INPUT):
        return None
    rel = s.rel_first.replace([np.inf, -np.inf], np.nan).dropna()
    decay = _decay_per_layer(speed)
    slow = [layer for layer in speed.index if speed[layer] < VANISH_RATIO * speed.iloc[-1]] or [speed.index[0]]
    first_grad = float(s.grad_first.iloc[0]) if len(s.grad_first) else math.nan
    if ratio < VANISH_RATIO:
        summary = (f"the input layer learns {_fmt(1 / ratio, 2)}x more slowly than the output layer "
                   f"(update_ratio {_fmt(float(speed.iloc[0]))} vs {_fmt(float(speed.iloc[-1]))} per step)"
                   + (f", shrinking {_fmt(1 / decay, 2)}x per layer toward the input" if math.isfinite(decay) and decay < 1 else "")
                   + (f", although its gradient norm is {_fmt(first_grad)}" if first_grad > 1e-3 else ""))
    else:
        summary = (f"{100 * sat_input:.0f}% of the first hidden layer's outputs are saturated, so almost no "
                   "gradient passes through it to its weights")
    return Finding(
        kind="vanishing_gradient",
        severity="high" if ratio < VANISH_RATIO / 10 or sat_input > 0.9 else "medium",
        layers=slow,
        steps=_steps(s),
        summary=summary,
        evidence={
            "update_ratio_first_epoch": speed.round(6).to_dict(),
            "grad_over_weight_first_epoch": rel.round(6).to_dict(),
            "first_to_last_ratio": ratio,
            "per_layer_decay": decay,
            "first_hidden_layer_saturated_frac": sat_input,
            "grad_norm_first_step": s.grad_first.round(6).to_dict(),
            "healthy": f"input/output update_ratio >= {VANISH_RATIO:g} (ReLU + He init keeps layers learning "
                       "at comparable rates)",
        },
        why=_why_vanishing(s, config),
        recommendation=_vanishing_remedy(config),
    )


def _why_vanishing(s: Signals, config):
    act, init = config.get("act"), config.get("init")
    parts = []
    if act in ("sigmoid", "hard_sigmoid"):
        parts.append("sigmoid' <= 0.25, so every layer multiplies the backpropagated gradient by at most 1/4")
    elif act == "tanh":
        parts.append("tanh' < 1 away from 0, and ~0 where units saturate")
    if len(s.saturated_first) and float(s.saturated_first.max()) > SATURATED:
        layer = s.saturated_first.idxmax()
        sat = f"{100 * float(s.saturated_first.max()):.0f}% of the outputs of {layer} sit within 0.01 of 0 or 1"
        if init == "normal":
            layers = config.get("layers") or []
            fan = layers[0] if layers else None
            sat += (f": with N(0,1) weights each unit sums {fan} inputs, so pre-activations have a "
                    f"standard deviation in the tens" if fan else ": N(0,1) weights make pre-activations large")
        parts.append(sat + " (where sigmoid' ~ 0)")
    return "; ".join(parts)


def _vanishing_remedy(config):
    act = config.get("act")
    if act in ("sigmoid", "tanh", "hard_sigmoid", "softsign"):
        return ("Use ReLU with He initialisation (Var(w) = 2/fan_in) for the hidden layers; if the "
                f"{act} must stay, use Xavier init and add BatchNormalization. For very deep nets, add "
                "residual connections.")
    return ("Use He initialisation for ReLU-like layers, add BatchNormalization, and for very deep "
            "nets residual connections.")


def _saturation(s: Signals, config):
    if not len(s.saturated):
        return None
    worst = s.saturated_first.combine(s.saturated, max, fill_value=0) if len(s.saturated_first) else s.saturated
    hit = worst[worst > SATURATED]
    if not len(hit):
        return None
    layer = hit.idxmax()
    return Finding(
        kind="saturation",
        severity="high" if float(hit.max()) > 0.9 else "medium",
        layers=[layer for layer in s.saturated.index if layer in hit.index],
        steps=_steps(s),
        summary=f"{100 * float(hit.max()):.0f}% of the outputs of {layer} are within 0.01 of an asymptote, "
                "where the activation's derivative is ~0",
        evidence={"saturated_frac_first": s.saturated_first.round(4).to_dict(),
                  "saturated_frac_last": s.saturated.round(4).to_dict(),
                  "healthy": f"saturated_frac < {SATURATED} (Xavier init keeps most units in the linear range)"},
        why=("N(0,1) weights make pre-activations far larger than the activation's linear range"
             if config.get("init") == "normal" else ""),
        recommendation="Use Xavier (Glorot) initialisation or switch to ReLU with He init; "
                       "BatchNormalization before the activation keeps inputs near 0.",
    )


def _dead(s: Signals, config):
    if not len(s.dead):
        return None
    hit = s.dead[s.dead > DEAD]
    if not len(hit):
        return None
    layer = hit.idxmax()
    return Finding(
        kind="dead_units",
        severity="high" if float(hit.max()) > 0.9 else "medium",
        layers=list(hit.index),
        steps=_steps(s),
        summary=f"{100 * float(hit.max()):.0f}% of the units of {layer} output 0 for every probe sample "
                "and get no gradient",
        evidence={"dead_frac_last": s.dead.round(4).to_dict(),
                  "healthy": f"dead_frac < {DEAD}"},
        why=("a large learning rate or large negative biases push ReLU units below 0 for all inputs"
             if (config.get("lr") or 0) >= 0.5 else ""),
        recommendation="Use He init, a lower learning rate, or LeakyReLU/ELU, which keep a gradient "
                       "for negative inputs.",
    )


def _stalled(s: Signals, config):
    loss = s.loss.replace([np.inf, -np.inf], np.nan)
    acc = float(s.accuracy.iloc[-1]) if len(s.accuracy) else math.nan
    layers = config.get("layers") or []
    classes = layers[-1] if layers else 10
    chance = 1.0 / classes if classes > 1 else math.nan
    near_chance = math.isfinite(acc) and math.isfinite(chance) and acc < STALLED_ACCURACY * chance
    drop = math.nan
    if len(loss) >= 2 and not loss.isna().any():
        first, last = float(loss.iloc[0]), float(loss.iloc[-1])
        drop = (first - last) / first if first > 0 else 0.0
    flat = math.isfinite(drop) and drop < STALLED_DROP
    if not (flat or near_chance):
        return None
    reasons = []
    if flat:
        reasons.append(f"the training loss fell only {100 * drop:.1f}% from the first to the last epoch")
    if near_chance:
        reasons.append(f"training accuracy ends at {acc:.3f}, near chance ({chance:.2f})")
    return Finding(
        kind="stalled",
        severity="high" if near_chance else "medium",
        layers=[],
        steps=_steps(s),
        summary="training has stalled: " + "; ".join(reasons),
        evidence={"epoch_losses": [float(v) for v in s.loss], "relative_drop": drop,
                  "train_accuracy_last_epoch": acc, "chance_accuracy": chance,
                  "healthy": f"the loss falls by more than {100 * STALLED_DROP:.0f}% and accuracy leaves chance"},
        why="",
        recommendation="Check the other findings first (vanishing or exploding gradients, dead or saturated "
                       "units); otherwise raise the learning rate or use Adam.",
    )


def verdict(findings) -> str:
    """A few words for tables: the kinds found, or 'healthy'."""
    return ", ".join(f.kind.replace("_", " ") for f in findings) if findings else "healthy"
