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
VANISH_REL_RATIO = 0.05      # input layer learns < 1/20 as fast as the output layer ...
VANISH_DECAY = 0.45          # ... with a per-layer decay of learning speed below this factor
EXPLODE_GROWTH = 100.0       # grad_norm grows > 100x within the first epoch
EXPLODE_UPDATE_RATIO = 1.0   # or one step changes a layer by more than its own norm
EXPLODE_LOSS = 10 * math.log(10)  # or the loss exceeds 10x chance-level cross-entropy
SATURATED = 0.5              # > 50% of a sigmoid/tanh layer's outputs within 0.01 of an asymptote
DEAD = 0.5                   # > 50% of a ReLU layer's units silent on the whole probe batch
STALLED_DROP = 0.1           # the loss fell by < 10% from the first to the last epoch


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
    rel_first: pd.Series         # grad_norm / weight_norm per layer over the first epoch (median)
    rel_last: pd.Series          # ... over the last epoch
    grad_first: pd.Series        # grad_norm at the first step
    growth: pd.Series            # max grad_norm in the first epoch / grad_norm at the first step
    update_ratio_first: pd.Series  # median update_ratio in the first epoch
    saturated: pd.Series         # last recorded saturated_frac per layer
    saturated_first: pd.Series
    dead: pd.Series              # last recorded dead_frac per layer
    loss: pd.Series              # epoch -> loss
    accuracy: pd.Series
    non_finite_step: int | None
    non_finite_layers: list
    act_std: pd.Series           # first recorded act_std per layer


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
    first_epoch_steps = steps.loc[steps["epoch"] == steps["epoch"].min(), "step"] if len(steps) else []
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

    acts = records[records["metric"].isin(["saturated_frac", "dead_frac", "act_std"])]

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
        act_std=act_metric("act_std", last=False),
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
    growth = s.growth.replace([np.inf], np.nan).dropna()
    grew = growth[growth > EXPLODE_GROWTH]
    big_steps = s.update_ratio_first[s.update_ratio_first > EXPLODE_UPDATE_RATIO]
    loss = s.loss.to_numpy(dtype=float)
    diverged = bool(len(loss) and (np.any(~np.isfinite(loss)) or np.nanmax(np.where(np.isfinite(loss), loss, np.nan), initial=0) > EXPLODE_LOSS))
    if not (len(grew) or len(big_steps) or diverged):
        return None
    layers = sorted(set(grew.index) | set(big_steps.index), key=s.layers.index) or s.layers
    evidence = {"healthy": f"grad_norm changes < {EXPLODE_GROWTH:g}x over an epoch; update_ratio << 1; "
                          "loss falls below ln(10) = 2.30"}
    if len(grew):
        evidence["grad_norm_growth_first_epoch"] = grew.round(3).to_dict()
    if len(big_steps):
        evidence["update_ratio_first_epoch"] = big_steps.round(3).to_dict()
    if diverged:
        evidence["max_epoch_loss"] = float(np.nanmax(np.where(np.isfinite(loss), loss, np.inf)))
    return Finding(
        kind="exploding_gradient",
        severity="high",
        layers=layers,
        steps=_steps(s),
        summary="gradients explode: " + "; ".join(
            p for p in (
                f"grad_norm grew up to {_fmt(float(grew.max()))}x within the first epoch" if len(grew) else "",
                f"single steps change {', '.join(big_steps.index)} by more than their own norm" if len(big_steps) else "",
                "the loss diverged" if diverged else "",
            ) if p),
        evidence=evidence,
        why=_why_exploding(config),
        recommendation="Lower the learning rate or clip gradients (clipnorm=1.0); use He init for ReLU "
                       "(Xavier for tanh/sigmoid); BatchNormalization keeps activations in range.",
    )


def _vanishing(s: Signals, config):
    rel = s.rel_first.replace([np.inf, -np.inf], np.nan).dropna()
    if len(rel) < 2 or (rel <= 0).any():
        return None
    ratio = float(rel.iloc[0] / rel.iloc[-1])
    decay = _decay_per_layer(rel)
    rel_last = s.rel_last.replace([np.inf, -np.inf], np.nan).dropna()
    ratio_last = float(rel_last.iloc[0] / rel_last.iloc[-1]) if len(rel_last) >= 2 and rel_last.iloc[-1] > 0 else math.nan
    saturated = s.saturated[s.saturated > SATURATED] if len(s.saturated) else s.saturated
    if not (ratio < VANISH_REL_RATIO and (decay < VANISH_DECAY or len(saturated))):
        return None
    slow = [layer for layer in rel.index if rel[layer] < VANISH_REL_RATIO * rel.iloc[-1]] or [rel.index[0]]
    first_grad = float(s.grad_first.iloc[0]) if len(s.grad_first) else math.nan
    why = _why_vanishing(s, config)
    return Finding(
        kind="vanishing_gradient",
        severity="high" if ratio < VANISH_REL_RATIO / 5 else "medium",
        layers=slow,
        steps=_steps(s),
        summary=(f"the input layer learns {_fmt(1 / ratio, 2)}x more slowly than the output layer "
                 f"(grad_norm/weight_norm {_fmt(float(rel.iloc[0]))} vs {_fmt(float(rel.iloc[-1]))}), "
                 f"shrinking {_fmt(1 / decay, 2)}x per layer toward the input"
                 + (f", although its gradient norm is {_fmt(first_grad)}" if first_grad > 1e-3 else "")),
        evidence={
            "grad_over_weight_first_epoch": rel.round(6).to_dict(),
            "first_to_last_ratio": ratio,
            "first_to_last_ratio_last_epoch": ratio_last,
            "per_layer_decay": decay,
            "grad_norm_first_step": s.grad_first.round(6).to_dict(),
            "healthy": f"first/last ratio >= {VANISH_REL_RATIO} and per-layer decay >= {VANISH_DECAY} "
                       "(ReLU + He init keeps learning speed comparable across layers)",
        },
        why=why,
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
        std = s.act_std.get(layer) if len(s.act_std) else None
        sat = f"{100 * float(s.saturated_first.max()):.0f}% of the outputs of {layer} sit within 0.01 of 0 or 1"
        if init == "normal":
            layers = config.get("layers") or []
            fan = layers[0] if layers else None
            sat += (f": with N(0,1) weights each unit sums {fan} inputs, so pre-activations have a "
                    f"standard deviation in the tens" if fan else ": N(0,1) weights make pre-activations large")
        parts.append(sat + " (where sigmoid' ~ 0)")
        del std
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
    if len(loss) < 2 or loss.isna().any():
        return None
    first, last = float(loss.iloc[0]), float(loss.iloc[-1])
    drop = (first - last) / first if first > 0 else 0.0
    if drop >= STALLED_DROP:
        return None
    acc = float(s.accuracy.iloc[-1]) if len(s.accuracy) else math.nan
    return Finding(
        kind="stalled",
        severity="medium",
        layers=[],
        steps=_steps(s),
        summary=f"the training loss fell only {100 * drop:.1f}% from the first to the last epoch "
                f"({_fmt(first)} -> {_fmt(last)}); training has stalled",
        evidence={"loss_first_epoch": first, "loss_last_epoch": last, "relative_drop": drop,
                  "train_accuracy_last_epoch": acc,
                  "healthy": f"the loss falls by more than {100 * STALLED_DROP:.0f}% over training"},
        why="",
        recommendation="Check the other findings first (vanishing gradients, dead or saturated units); "
                       "otherwise raise the learning rate or use Adam.",
    )


def verdict(findings) -> str:
    """A few words for tables: the kinds found, or 'healthy'."""
    return ", ".join(f.kind.replace("_", " ") for f in findings) if findings else "healthy"
