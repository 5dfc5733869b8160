"""Ground truth for the labelled suite: by intervention and by direct measurement, never by a detector.

Every label is computed from things no detector sees (held-out data, linear probes, copies of
the run trained differently) and with thresholds of its own; none uses gradscope's records or
signals. Per kind:

* ``non_finite``: an epoch's training loss was NaN/inf, or the final weights are not finite.
* ``output_pairing``: the output activation and the loss do not fit (built so: a ReLU or
  linear output fed to a loss that expects probabilities, or probabilities fed to one that
  expects logits). Every such model has the bug, whether or not this run suffered from it; the
  same run with a softmax output and its loss measures how much it cost (``pairing_fixed_*``),
  and ``pairing_mattered`` says whether it did (a training loss under 0.8x, an accuracy 0.05
  higher, or finite where this one was not).
* ``exploding_gradient``: a kernel's norm grew more than 100x (kernels that started at zero have
  no scale to grow from and are left out), or the training loss rose
  above twice the untrained model's while finite, or the run went non-finite and either its
  forward pass already overflowed at initialisation or the same run with gradients clipped
  (``clipnorm=1``) stays finite; not when a wrong output pairing alone made it non-finite.
* ``vanishing_gradient``: the first layer did not learn while the output layer did, because
  it hardly moved: a logistic-regression probe on the first layer's outputs classifies test
  data less than 1 point better after training than at initialisation, where there was room to
  (the probe at initialisation was below 0.97), *and* the first kernel moved (relative to its
  initial norm, start to end of the run) less than a fifth as much as the output kernel, which
  moved by at least 0.1% of its own (a run in which nothing moves is stalled, not vanishing; a
  first layer that moved as much as the head but learned nothing had a learning rate too low,
  not a vanishing gradient); the run stayed finite, did not explode, the first layer's units
  are not dead and no layer is entirely dead (a dead layer does not shrink the gradient, it
  cuts it: that is ``dead_units``).
* ``dead_units``: at the end, some ReLU layer has >= 50% of its units (channels) at 0 for
  every one of up to 1,000 test inputs.
* ``saturation``: at the end, some sigmoid/tanh layer has > 50% of its (input, unit)
  derivatives below 5% of the activation's largest derivative, on up to 1,000 test inputs.
* ``stalled``: the final training loss is above 0.9x the untrained model's, or the final
  training accuracy is below chance + 0.1 x (1 - chance) (chance: the largest class's share).
* ``oscillating_loss``: the learning rate is too high without divergence: the per-epoch
  training loss rose (by > 2%) in at least a quarter of the epochs without ever exceeding
  twice the untrained loss, and the same run with a tenth of the learning rate ends with a
  training loss below 0.9x this one's.
* ``slow_convergence``: the learning rate is too low: the run was still improving at the end
  (the loss of its last fifth of epochs fell by > 5%), and the same run with ten times the
  learning rate ends finite with a training loss below half of this one's.

The interventions (reruns) train a copy of the run without any monitor, and only where the
symptom is there, so the suite stays affordable. :func:`measure` takes every measurement (and
runs the interventions); :func:`derive` turns measurements into labels, so a label's
definition can change without training again (``diagnosis_suite.py --relabel``).
"""

from __future__ import annotations

import math

import numpy as np

from suite import families as F

PROBE_ROWS = 2000
HELD_OUT = 1000
VANISH_LAG = 0.2  # the first kernel moved less than this fraction of the head's (relative) movement


def _finite_weights(model) -> bool:
    return all(np.all(np.isfinite(w)) for w in model.get_weights())


def _fit(cfg, seed=0, **changes):
    """Train a copy of a config (with ``changes``), without any monitor: (model, epoch losses)."""
    cfg = {**cfg, **{k: v for k, v in changes.items() if k != "clipnorm"}}
    model = F.build(cfg, seed=seed, clipnorm=changes.get("clipnorm"))
    x_tr, y_tr, _, _ = F.dataset(cfg["data"])
    history = model.fit(x_tr, y_tr, batch_size=cfg["batch"], epochs=cfg["epochs"], verbose=0)
    return model, [float(v) for v in history.history["loss"]]


def _final_loss(model, cfg):
    x_tr, y_tr, _, _ = F.dataset(cfg["data"])
    if not _finite_weights(model):
        return math.inf, 0.0
    loss, acc = model.evaluate(x_tr, y_tr, verbose=0)
    return (float(loss) if math.isfinite(loss) else math.inf), float(acc)


def first_layer_features(model, x):
    """Outputs of the first layer with a kernel, flattened per input."""
    import keras

    layer = F.first_layer(model)
    sub = keras.Model(model.inputs, layer.output)
    out = np.asarray(sub(x, training=False))
    return out.reshape(len(out), -1)


def probe_accuracy(features_train, y_train, features_test, y_test) -> float:
    """Test accuracy of a logistic-regression probe on standardised features."""
    from sklearn.linear_model import LogisticRegression

    if not (np.all(np.isfinite(features_train)) and np.all(np.isfinite(features_test))):
        return 0.0
    mu, sd = features_train.mean(0), features_train.std(0) + 1e-8
    clf = LogisticRegression(max_iter=300)
    clf.fit((features_train - mu) / sd, y_train)
    return float(clf.score((features_test - mu) / sd, y_test))


def activation_outputs(model, x):
    """``(activation, output)`` of every Dense/Conv/Activation layer with relu, sigmoid or tanh."""
    import keras

    layers = []
    for layer in model.layers:
        act = getattr(layer, "activation", None)
        name = getattr(act, "__name__", None)
        if name in ("relu", "sigmoid", "tanh") and layer.name != "head":
            layers.append((name, layer))
    if not layers:
        return []
    sub = keras.Model(model.inputs, [layer.output for _, layer in layers])
    outs = sub(x, training=False)
    outs = outs if isinstance(outs, (list, tuple)) else [outs]
    return [(name, np.asarray(o)) for (name, _), o in zip(layers, outs)]


def unit_measures(model, x):
    """Dead-unit fractions of ReLU layers and saturated-derivative fractions of sigmoid/tanh layers."""
    dead, saturated = [], []
    for name, out in activation_outputs(model, x):
        if name == "relu":
            units = out.reshape(-1, out.shape[-1])
            dead.append(float(np.mean(np.all(units == 0, axis=0))))
        elif name == "sigmoid":
            saturated.append(float(np.mean(out * (1 - out) / 0.25 < 0.05)))
        else:
            saturated.append(float(np.mean(1 - out ** 2 < 0.05)))
    return dead, saturated


def forward_overflows(model, x) -> bool:
    """Whether the untrained model's forward pass already gives non-finite or huge outputs."""
    out = np.asarray(model(x[:256], training=False))
    return bool(not np.all(np.isfinite(out)))


def measure_before(model, cfg):
    """What is measured on the untrained model (before the monitored fit)."""
    x_tr, y_tr, x_te, y_te = F.dataset(cfg["data"])
    loss = model.evaluate(x_tr, y_tr, verbose=0)[0]
    return {
        "init_loss": float(loss) if math.isfinite(loss) else math.inf,
        "init_weights": [w.copy() for w in model.get_weights()],
        "features_train": first_layer_features(model, x_tr[:PROBE_ROWS]),
        "features_test": first_layer_features(model, x_te[:HELD_OUT]),
        "overflow_at_init": forward_overflows(model, x_tr),
    }


def measure(cfg, model, losses, before) -> dict:
    """Every measurement the labels are derived from, interventions included."""
    x_tr, y_tr, x_te, y_te = F.dataset(cfg["data"])
    y_tr_probe, y_te_probe = y_tr[:PROBE_ROWS], y_te[:HELD_OUT]
    init_loss = before["init_loss"]
    finite_weights = _finite_weights(model)
    non_finite = (not finite_weights) or any(not math.isfinite(v) for v in losses)
    final_loss, final_acc = _final_loss(model, cfg)
    dead, saturated, probe_gain, probe_init = [], [], 0.0, math.nan
    if finite_weights:
        dead, saturated = unit_measures(model, x_te[:HELD_OUT])
        probe_init = probe_accuracy(before["features_train"], y_tr_probe, before["features_test"], y_te_probe)
        probe_end = probe_accuracy(first_layer_features(model, x_tr[:PROBE_ROWS]), y_tr_probe,
                                   first_layer_features(model, x_te[:HELD_OUT]), y_te_probe)
        probe_gain = probe_end - probe_init
    kernels = [(w, w0) for w, w0 in zip(model.get_weights(), before["init_weights"]) if w.ndim >= 2]
    norms_init = [float(np.linalg.norm(w0)) for _, w0 in kernels]
    norms_end = [float(np.linalg.norm(w)) if finite_weights else math.inf for w, _ in kernels]
    moved = [float(np.linalg.norm(w - w0)) if finite_weights else math.inf for w, w0 in kernels]
    m = {"init_loss": init_loss, "epoch_losses": losses, "final_train_loss": final_loss,
         "final_train_accuracy": final_acc, "chance": float(np.bincount(y_tr).max() / len(y_tr)),
         "dead_frac": dead, "saturated_deriv_frac": saturated, "first_layer_probe_init": probe_init,
         "first_layer_probe_gain": probe_gain, "kernel_norm_init": norms_init, "kernel_norm_end": norms_end,
         "kernel_moved": moved, "overflow_at_init": before["overflow_at_init"], "final_weights_finite": finite_weights,
         "non_finite": non_finite, "pairing_is_wrong": F.pairing_is_wrong(cfg)}
    # interventions, only where the symptom is there
    if m["pairing_is_wrong"]:
        fixed, fixed_losses = _fit(F.fixed_pairing(cfg))
        m["pairing_fixed_loss"], m["pairing_fixed_accuracy"] = _final_loss(fixed, cfg)
        m["pairing_fixed_finite"] = (math.isfinite(m["pairing_fixed_loss"])
                                     and all(math.isfinite(v) for v in fixed_losses))
    if non_finite and not before["overflow_at_init"]:
        clipped, clipped_losses = _fit(cfg, clipnorm=1.0)
        m["clipped_run_finite"] = _finite_weights(clipped) and all(math.isfinite(v) for v in clipped_losses)
    if _oscillation_symptom(m):
        slower, _ = _fit(cfg, lr=cfg["lr"] / 10)
        m["lr_tenth_final_loss"] = _final_loss(slower, cfg)[0]
    if _still_improving(m):
        faster, _ = _fit(cfg, lr=cfg["lr"] * 10)
        m["lr_ten_times_final_loss"] = _final_loss(faster, cfg)[0]
    return m


def _rises(losses) -> int:
    return sum(1 for a, b in zip(losses, losses[1:]) if math.isfinite(a) and math.isfinite(b) and b > 1.02 * a)


def _diverged(m) -> bool:
    finite = [v for v in m["epoch_losses"] if math.isfinite(v)]
    return bool(finite and max(finite) > 2 * m["init_loss"] and not m["non_finite"])


def _oscillation_symptom(m) -> bool:
    losses = m["epoch_losses"]
    return (not m["non_finite"] and not _diverged(m) and len(losses) >= 4
            and _rises(losses) >= 0.25 * (len(losses) - 1))


def _still_improving(m) -> bool:
    losses = m["epoch_losses"]
    tail = max(2, len(losses) // 5)
    return bool(not m["non_finite"] and len(losses) >= 5 and math.isfinite(losses[-tail])
                and losses[-1] < 0.95 * losses[-tail] and m["final_train_loss"] > 0.05)


def pairing_mattered(m: dict) -> bool:
    """Whether a wrong output pairing cost this run something (see ``output_pairing`` above)."""
    return bool(m["pairing_is_wrong"] and (
        m["pairing_fixed_loss"] < 0.8 * m["final_train_loss"]
        or m["pairing_fixed_accuracy"] >= m["final_train_accuracy"] + 0.05
        or (m["non_finite"] and m.get("pairing_fixed_finite"))))


def derive(m: dict) -> dict:
    """The labels of a run from its measurements (see the module docstring)."""
    pairing_fixed = m.get("pairing_fixed_finite")
    pairing = bool(m["pairing_is_wrong"])
    growth = [e / i for e, i in zip(m["kernel_norm_end"], m["kernel_norm_init"]) if i > 0]
    exploding = bool(not (pairing and pairing_fixed) and (
        any(g > 100 for g in growth) or _diverged(m)
        or (m["non_finite"] and (m["overflow_at_init"] or m.get("clipped_run_finite")))))
    head_init, head_end, head_moved = m["kernel_norm_init"][-1], m["kernel_norm_end"][-1], m["kernel_moved"][-1]
    head_learned = (head_moved >= 1e-3 * head_init) if head_init > 0 else head_end > 0
    first_init, first_moved = m["kernel_norm_init"][0], m["kernel_moved"][0]
    head_rel = head_moved / head_init if head_init > 0 else math.inf
    first_lagged = (first_moved / first_init if first_init > 0 else math.inf) < VANISH_LAG * head_rel
    dead = m["dead_frac"]
    final_loss, chance = m["final_train_loss"], m["chance"]
    return {
        "non_finite": m["non_finite"],
        "output_pairing": pairing,
        "exploding_gradient": exploding,
        "vanishing_gradient": bool(not m["non_finite"] and not exploding and m["first_layer_probe_gain"] < 0.01
                                   and m["first_layer_probe_init"] < 0.97 and head_learned and first_lagged
                                   and not (dead and (dead[0] >= 0.5 or max(dead) >= 0.99))),
        "dead_units": any(f >= 0.5 for f in dead),
        "saturation": any(f > 0.5 for f in m["saturated_deriv_frac"]),
        "stalled": bool(not (final_loss <= 0.9 * m["init_loss"])
                        or m["final_train_accuracy"] < chance + 0.1 * (1 - chance)),
        "oscillating_loss": bool(_oscillation_symptom(m) and m.get("lr_tenth_final_loss", math.inf) < 0.9 * final_loss),
        "slow_convergence": bool(_still_improving(m) and math.isfinite(m.get("lr_ten_times_final_loss", math.inf))
                                 and m["lr_ten_times_final_loss"] < 0.5 * final_loss),
    }


#: For the trials suite: the arms (``gradscope.vocabulary.FIXES``) each label calls for, any of which
#: may be the best arm of a run with that label ("any": whichever helps; a stall has many causes). They
#: restate the interventions above: clipping or a smaller step for an explosion, a larger step for a slow
#: run, a better-flowing gradient (activation, initialisation, normalisation, skips, gated cells, or an
#: adaptive optimizer, which rescales each layer's step) for a vanishing one.
CALLS_FOR = {
    "non_finite": {"clipnorm", "lr_down", "output_pairing", "output_fit", "init", "batchnorm"},
    "exploding_gradient": {"clipnorm", "lr_down", "init", "batchnorm"},
    "vanishing_gradient": {"relu_he", "init", "batchnorm", "skip", "lstm", "adam"},
    "saturation": {"relu_he", "init", "batchnorm", "standardize_inputs", "lstm", "adam"},
    "dead_units": {"lr_down", "init", "batchnorm", "adam"},
    "stalled": "any",
    "output_pairing": {"output_pairing", "output_fit"},
    "oscillating_loss": {"lr_down", "clipnorm"},
    "slow_convergence": {"lr_up", "adam"},
}
