"""The published detectors gradscope is compared with, re-implemented from their rules and thresholds.

* AUTOTRAINER (Zhang et al., ICSE 2021): gradient rules on the first/last layer's gradient
  norms (vanishing: ratio < 1e-3 and first < 1e-4; exploding: ratio > 70), dying ReLU (>= 70%
  of gradient entries exactly 0), NaN, unstable training (peaks and troughs of the accuracy
  curve at least 0.03 apart in at least 20% of the epochs, judged after 30% of them) and slow
  convergence (no epoch raises the accuracy by 0.01 or more).
* DeepDiagnosis (Wardat et al., ICSE 2022): vanishing gradient (mean |dW| < 1e-7), numerical
  errors, dead nodes (>= 70% of a ReLU layer's outputs <= 0), saturated activations (> 50% of a
  sigmoid/tanh layer's inputs beyond +-5), out-of-range outputs (a ReLU or linear output layer
  with a cross-entropy loss), loss not decreasing (the last 5 epoch losses equal) and accuracy
  not increasing (the last 20 equal).

Kinds a detector has no rule for are None (not scored).
"""

from __future__ import annotations

import math

import numpy as np

from suite import families as F
from suite import labels as L


def measure(model, cfg) -> dict:
    """What the baselines need from a model: gradients on a batch, layer outputs on a batch."""
    import tensorflow as tf

    x_tr, y_tr, _, _ = F.dataset(cfg["data"])
    x, y = x_tr[:256], y_tr[:256]
    kernels = [v for v in model.trainable_variables if len(v.shape) >= 2 and "recurrent" not in v.path]
    with tf.GradientTape() as tape:
        loss = model.compute_loss(x=x, y=y, y_pred=model(x, training=True))
    grads = tape.gradient(loss, kernels)
    mean_abs = [float(np.mean(np.abs(g.numpy()))) if g is not None else 0.0 for g in grads]
    zero_frac = [float(np.mean(g.numpy() == 0)) if g is not None else 1.0 for g in grads]
    norms = [float(np.linalg.norm(g.numpy())) if g is not None else 0.0 for g in grads]
    outputs = L.activation_outputs(model, x) if L._finite_weights(model) else []
    le0 = [float(np.mean(o <= 0)) for name, o in outputs if name == "relu"]
    beyond5 = []
    for name, o in outputs:
        if name == "sigmoid":
            z = np.log(np.clip(o, 1e-12, 1) / np.clip(1 - o, 1e-12, 1))
            beyond5.append(float(np.mean(np.abs(z) >= 5)))
        elif name == "tanh":
            beyond5.append(float(np.mean(np.abs(np.arctanh(np.clip(o, -1 + 1e-12, 1 - 1e-12))) >= 5)))
    return {"mean_abs_grad": mean_abs, "zero_grad_frac": zero_frac, "grad_norm": norms,
            "outputs_le0_frac": le0, "inputs_beyond5_frac": beyond5}


def _nan(values) -> bool:
    return any(not math.isfinite(v) for v in values)


def autotrainer(result) -> dict:
    b = result["baseline"]
    losses = result["measured"]["epoch_losses"]
    acc = result["epoch_accuracy"]
    nan = _nan(losses) or _nan(b["end"]["grad_norm"]) or not result["measured"]["final_weights_finite"]
    ratios = []
    for when in ("start", "end"):
        norms = b[when]["grad_norm"]
        if len(norms) >= 2 and norms[-1] > 0 and math.isfinite(norms[0]) and math.isfinite(norms[-1]):
            ratios.append((norms[0] / norms[-1], norms[0]))
    vanish = any(r < 1e-3 and first < 1e-4 for r, first in ratios)
    explode = nan or any(r > 70 for r, _ in ratios) or any(v >= 1e5 for v in losses if math.isfinite(v))
    dying = result["family_has_relu"] and np.mean(b["end"]["zero_grad_frac"]) >= 0.7
    judged = acc[max(0, int(0.3 * len(acc))):] if acc else []
    unstable = _ol_judge(acc, 0.03, 0.2) if len(acc) >= 3 else False
    slow = bool(judged) and max((b_ - a for a, b_ in zip(acc, acc[1:])), default=0) < 0.01
    return {"non_finite": nan, "exploding_gradient": explode, "vanishing_gradient": vanish, "dead_units": dying,
            "saturation": None, "stalled": None, "output_pairing": None, "oscillating_loss": unstable,
            "slow_convergence": slow}


def _ol_judge(acc, threshold, rate) -> bool:
    """Peaks and troughs of the accuracy curve at least ``threshold`` apart, in >= ``rate`` of the epochs."""
    maxima, minima = [], []
    for i in range(1, len(acc) - 1):
        if acc[i] >= acc[i - 1] and acc[i] >= acc[i + 1]:
            maxima.append(acc[i])
        if acc[i] <= acc[i - 1] and acc[i] <= acc[i + 1]:
            minima.append(acc[i])
    count = sum(1 for hi, lo in zip(maxima, minima) if hi - lo >= threshold)
    return count >= rate * len(acc)


def deepdiagnosis(result) -> dict:
    b = result["baseline"]
    losses = result["measured"]["epoch_losses"]
    acc = result["epoch_accuracy"]
    mags = np.array(b["start"]["mean_abs_grad"] + b["end"]["mean_abs_grad"], dtype=float)
    numerical = _nan(losses) or bool(np.any(~np.isfinite(mags))) or not result["measured"]["final_weights_finite"]
    cfg = result["config"]
    head = {"softmax": "softmax", "logits": "linear", "relu_ce": "relu", "linear_ce": "linear",
            "softmax_logits": "softmax"}[cfg.get("pairing", "softmax")]
    not_decreasing = len(losses) >= 5 and np.mean(losses[-5:]) == np.max(losses[-5:])
    not_increasing = len(acc) >= 20 and np.mean(acc[-20:]) == np.max(acc[-20:])
    return {"non_finite": numerical, "exploding_gradient": numerical,
            "vanishing_gradient": bool(np.any(mags[np.isfinite(mags)] < 1e-7)),
            "dead_units": any(f >= 0.7 for f in b["end"]["outputs_le0_frac"]),
            "saturation": any(f > 0.5 for f in b["end"]["inputs_beyond5_frac"]),
            "stalled": bool(not_decreasing or not_increasing),
            "output_pairing": head in ("relu", "linear"),
            "oscillating_loss": None, "slow_convergence": None}
