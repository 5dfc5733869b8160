"""The report's hard cases as saved runs, built from records without training (fast, exact).

Each case is a list of :class:`gradscope.storage.Run`: an explosion beside healthy runs, all-zero
gradients, NaN from step 0, an interrupted run, a 24-run depth sweep, a CNN beside a two-branch
MLP. The layout test draws every figure of every case; the browser test opens each case's report.
"""

from __future__ import annotations

import numpy as np

from gradscope import records as rec
from gradscope.histograms import histogram_records
from gradscope.storage import Run

EPOCHS = 5
STEPS_PER_EPOCH = 20


def synthetic_run(name, layers, grad, *, weight=None, loss=None, accuracy=None, val=False, status="complete",
                  config=None, act="relu", epochs=EPOCHS, steps_per_epoch=STEPS_PER_EPOCH, test_accuracy=0.9,
                  planned_epochs=None):
    """A run whose per-layer kernel norms are ``grad(step, layer_index) -> value``.

    Args:
        layers: layer names, input side first.
        weight: ``weight(step, i)`` (default: slowly growing norms near 1).
        loss / accuracy: ``f(epoch)`` (defaults: a falling loss and a rising accuracy).
        act: the hidden layers' activation (which activation metric the probe records).
    """
    weight = weight or (lambda s, i: 1.0 + 0.001 * s)
    loss = loss or (lambda e: 2.3 * 0.6 ** e)
    accuracy = accuracy or (lambda e: 0.3 + 0.6 * (1 - 0.5 ** e))
    variables = [(layer, depth, "kernel") for depth, layer in enumerate(layers)]
    frames = []
    with np.errstate(all="ignore"):
        for epoch in range(epochs):
            steps = np.arange(epoch * steps_per_epoch, (epoch + 1) * steps_per_epoch)
            g = np.array([[grad(int(s), i) for i in range(len(layers))] for s in steps], dtype=float)
            w = np.array([[weight(int(s), i) for i in range(len(layers))] for s in steps], dtype=float)
            frames.append(rec.from_step_arrays(name, steps, epoch, variables,
                                               {"grad_norm": g, "weight_norm": w, "update_norm": 0.01 * g}))
            last = int(steps[-1])
            logs = {"loss": loss(epoch), "accuracy": accuracy(epoch)}
            if val:
                logs.update(val_loss=loss(epoch) * 1.1, val_accuracy=accuracy(epoch) - 0.02)
            frames.append(rec.from_logs(name, last, epoch, logs))
            metric = "dead_frac" if act == "relu" else "saturated_frac"
            frames.append(rec.from_rows([(name, last, epoch, layer, depth, "", metric, min(1.0, 0.1 * (depth + epoch)))
                                         for depth, layer in enumerate(layers[:-1])]))
    frames.append(_histograms(name, layers, grad, act, epochs, steps_per_epoch))
    hidden = [64] * (len(layers) - 1)
    meta = {"run": name, "status": status,
            "config": {"act": act, "init": "he", "hidden": hidden, "epochs": planned_epochs or epochs,
                       "optimizer": "sgd", "lr": 0.1, "batch_size": 32, **(config or {})},
            "metrics": {"test_accuracy": test_accuracy} if status == "complete" else {},
            "progress": {"epochs_done": epochs, "epochs": planned_epochs or epochs}}
    return Run(path=None, meta=meta, records=rec.concat(frames))


def _histograms(name, layers, grad, act, epochs, steps_per_epoch):
    """Histogram records before training and at each epoch end: gradients log-normal around the layer's
    norm over 64 entries, activations spread over the activation's range."""
    rng = np.random.default_rng(len(name))
    frames = []
    for epoch in range(-1, epochs):
        step = (epoch + 1) * steps_per_epoch - 1
        items = []
        for depth, layer in enumerate(layers):
            with np.errstate(all="ignore"):
                g = float(grad(max(step, 0), depth))
            scale = g / 8 if np.isfinite(g) and g > 0 else (0.0 if g == 0 else np.nan)
            items.append((layer, depth, "kernel", "grad_hist", scale * np.exp(rng.normal(0, 1, 64))))
            if depth < len(layers) - 1:
                values = rng.normal(0, 1 + epoch, 256)
                items.append((layer, depth, "", "act_hist", np.tanh(values) if act != "relu" else np.maximum(values, 0)))
        frames.append(histogram_records(name, step, epoch, items))
    return rec.concat(frames)


def _mlp(n_hidden):
    return [f"dense_{i}" for i in range(n_hidden)] + ["output"]


def _healthy(step, i):
    return 0.05 * (1 + 0.5 * i) * (1 + 0.1 * np.sin(step / 3))


def _vanishing(step, i, n=4):
    return 0.05 * 4.0 ** (i - n) * (1 + 0.1 * np.cos(step / 5))


def explosion_beside_healthy():
    """relu/N(0,1) gradients of 1e5 growing to 1e23 and a loss of 1e30, NaN from step 4 of 100,
    beside a healthy and a vanishing run."""
    layers = _mlp(3)

    def exploding(step, i):
        return np.nan if step >= 4 else 1e5 * 1e6 ** step * (1 + i)

    return [
        synthetic_run("relu-he", layers, _healthy, config={"init": "he"}, val=True),
        synthetic_run("sigmoid-normal", layers, lambda s, i: _vanishing(s, i, 3), act="sigmoid",
                      config={"act": "sigmoid", "init": "normal"}, test_accuracy=0.55, val=True),
        synthetic_run("relu-normal", layers, exploding, config={"init": "normal"}, test_accuracy=0.1,
                      loss=lambda e: 1e30 if e == 0 else np.nan, accuracy=lambda e: 0.1, val=True),
    ]


def zeros():
    """``--init zeros``: every gradient exactly 0 (and constant weights), beside a constant run."""
    layers = _mlp(3)
    return [
        synthetic_run("relu-zeros", layers, lambda s, i: 0.0, weight=lambda s, i: 0.0, config={"init": "zeros"},
                      loss=lambda e: 2.302585, accuracy=lambda e: 0.1, test_accuracy=0.1),
        synthetic_run("relu-constant", layers, lambda s, i: 0.25, weight=lambda s, i: 2.0,
                      loss=lambda e: 1.0, accuracy=lambda e: 0.5, test_accuracy=0.5),
    ]


def nan_at_step_0():
    """A run whose every value is NaN from its first step (and its loss), beside a healthy one."""
    layers = _mlp(2)
    return [
        synthetic_run("all-nan", layers, lambda s, i: np.nan, weight=lambda s, i: np.nan,
                      loss=lambda e: np.nan, accuracy=lambda e: 0.1, test_accuracy=0.1),
        synthetic_run("healthy", layers, _healthy),
    ]


def interrupted():
    """A run stopped after 2 of 60 epochs, beside a complete one."""
    layers = _mlp(3)
    return [
        synthetic_run("stopped-early", layers, _healthy, status="interrupted", epochs=2, planned_epochs=60),
        synthetic_run("finished", layers, _healthy),
    ]


def sweep_24():
    """A 24-run depth sweep: sigmoid/relu x normal/he x 1..6 hidden layers (d1 .. d6)."""
    runs = []
    for act in ("sigmoid", "relu"):
        for init in ("normal", "he"):
            for depth in range(1, 7):
                shrink = 4.0 if act == "sigmoid" else (1.0 if init == "he" else 30.0)

                def grad(step, i, n=depth, shrink=shrink):
                    return 0.05 * shrink ** (i - n) * (1 + 0.1 * np.sin(step / 4))

                runs.append(synthetic_run(f"{act}-{init}-d{depth}", _mlp(depth), grad, act=act, epochs=3,
                                          config={"act": act, "init": init, "hidden": [32] * depth},
                                          test_accuracy=0.9 - 0.1 * depth * (act == "sigmoid")))
    return runs


def cnn_beside_mlp():
    """A CNN (2 conv, 1 dense head) beside a two-branch MLP with five differently named layers."""
    cnn = ["conv2d", "conv2d_1", "flatten_dense", "predictions"]
    mlp = ["branch_a", "branch_b", "merge_dense", "dense_after", "head"]
    return [
        synthetic_run("cnn", cnn, lambda s, i: 0.3 / (1 + i), config={"act": "relu", "hidden": None}, val=True),
        synthetic_run("two-branch-mlp", mlp, lambda s, i: 0.01 * (1 + i), act="tanh",
                      config={"act": "tanh", "init": "glorot_uniform", "hidden": None}),
    ]


def recurrent():
    """A tanh RNN whose gradient stays within ~10 of 100 steps beside an LSTM that opens its gates."""
    runs = []
    for name, opening in (("tanh-T100", False), ("lstm-T100", True)):
        run = synthetic_run(name, ["rnn", "sum"], _healthy, act="tanh", config={"act": name.split("-")[0]},
                            loss=lambda e: 0.167, accuracy=lambda e: np.nan, epochs=EPOCHS)
        rows = []
        for epoch in range(EPOCHS):
            decay = 0.6 if not opening else 0.6 + 0.4 * epoch / (EPOCHS - 1)  # per step back
            step = (epoch + 1) * STEPS_PER_EPOCH - 1
            rows += [(name, step, epoch, "rnn", 0, "h", "time_grad_norm", float(decay ** (99 - t)), t)
                     for t in range(100)]
        run.records = rec.concat([run.records, rec.from_rows(rows)])
        runs.append(run)
    return runs


CASES = {
    "recurrent": recurrent,
    "explosion": explosion_beside_healthy,
    "zeros": zeros,
    "nan-step-0": nan_at_step_0,
    "interrupted": interrupted,
    "sweep-24": sweep_24,
    "cnn-mlp": cnn_beside_mlp,
}
