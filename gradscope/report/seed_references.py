"""Reference accuracies of the seed course notes ("0916 Deep Learning") and of re-runs of their protocols.

The report puts a run's test accuracy next to the seed's when the run uses a seed setting.
"""

from __future__ import annotations

from gradscope.models.initializers import keras_init_name
from gradscope.models.mlp import SEED_HIDDEN

# (framework, act, init, optimizer, lr, full_batch, epochs, data kind) -> (accuracy, source)
_LINEAR = [  # no hidden layer (``--hidden none``), any activation
    (dict(framework="sklearn"), 0.9171, "seed: scikit-learn LogisticRegression(solver='saga')"),
    (dict(framework="tf1", init="normal", optimizer="sgd", lr=0.1, full_batch=True, epochs=3000),
     0.8545, "seed: TF1 softmax regression, N(0,1) init, GD 0.1, 3000 full-batch steps"),
    (dict(framework="keras", init="glorot_uniform", optimizer="adam", lr=0.1, epochs=100, val_split=0.2),
     0.8789, "seed: Keras softmax, Adam 0.1, 100 epochs, batch 100"),
]
_TABLE = [
    (dict(framework="tf1", act="relu", init="he", optimizer="sgd", lr=0.1, full_batch=True, epochs=3000),
     0.9698, "seed: TF1 MLP ReLU/He, GD 0.1, 3000 full-batch steps (re-run: 0.9688)"),
    (dict(framework="tf1", act="sigmoid", init="normal", optimizer="sgd", lr=0.1, full_batch=True, epochs=3000),
     0.8193, "re-run of the seed's TF1 protocol with sigmoid/N(0,1)"),
    (dict(framework="tf1", act="sigmoid", init="he", optimizer="sgd", lr=0.1, full_batch=True, epochs=3000),
     0.8960, "re-run of the seed's TF1 protocol with sigmoid/He"),
    (dict(framework="tf1", act="relu", init="normal", optimizer="sgd", lr=0.1, full_batch=True, epochs=3000),
     0.0987, "re-run of the seed's TF1 protocol with ReLU/N(0,1)"),
    (dict(framework="keras", act="relu", init="glorot_uniform", optimizer="adam", lr=1e-4, epochs=100, val_split=0.2),
     0.9721, "seed: Keras MLP ReLU, Adam 1e-4, 100 epochs (re-run: 0.9725)"),
]

# gradscope's own defaults (SGD 0.1, batch 100, 10 epochs) on the 5,000-image sample
_SAMPLE = {("relu", "he"): 0.93, ("sigmoid", "normal"): 0.58, ("sigmoid", "he"): 0.21, ("relu", "normal"): 0.10}
_SAMPLE_SOURCE = "reference run: Keras, SGD 0.1, batch 100, 10 epochs on the 5,000-image sample"


def reference_for(config: dict):
    """``(accuracy, source)`` of the seed setting a run config matches, or None.

    Example:
        >>> reference_for({"hidden": [512, 256, 128], "framework": "tf1", "act": "relu", "init": "he",
        ...                "optimizer": "sgd", "lr": 0.1, "full_batch": True, "epochs": 3000})[0]
        0.9698
        >>> reference_for({"hidden": [], "framework": "sklearn"})[0]
        0.9171
    """
    hidden = list(config.get("hidden") or [])
    if hidden not in (list(SEED_HIDDEN), []):
        return None
    normalized = {**config, "init": keras_init_name(config.get("init")) if config.get("init") == "xavier"
                  else config.get("init")}
    for keys, acc, source in (_TABLE if hidden else _LINEAR):
        if all(normalized.get(k) == v for k, v in keys.items()):
            return acc, source
    if not hidden:
        return None
    data = (config.get("data") or {}).get("source")
    key = (config.get("act"), config.get("init"))
    if (data == "sample" and key in _SAMPLE and config.get("framework", "keras") == "keras"
            and config.get("optimizer") == "sgd" and config.get("lr") == 0.1
            and config.get("batch_size") == 100 and config.get("epochs") == 10):
        return _SAMPLE[key], _SAMPLE_SOURCE
    return None
