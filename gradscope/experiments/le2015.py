"""Le, Jaitly & Hinton (2015), "A Simple Way to Initialize Recurrent Networks of Rectified Linear
Units": on the adding problem, a ReLU RNN whose recurrent weights start as the identity (IRNN)
learns long dependencies like an LSTM, where a tanh RNN fails.

Three models per sequence length, everything else equal: ``tanh`` (Keras ``SimpleRNN`` with its
default orthogonal recurrent init), ``irnn`` (``SimpleRNN`` with ReLU, identity recurrent
weights and N(0, 0.001^2) input weights, zero biases) and ``lstm`` (Keras ``LSTM``), each
followed by ``Dense(1)``, trained with MSE. Each run is recorded by :class:`GradientMonitor`
with the probe batch's targets, so its records hold ``||dL/dh_t||`` per time step at every epoch
end (:mod:`gradscope.recorders.time_gradients`), and ``paper.json`` holds the claims, each marked
reproduced or not with the measured numbers.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from gradscope.experiments.adding_problem import BASELINE_MSE, adding_problem
from gradscope.experiments.config import LE2015_LENGTHS

MODELS = ("tanh", "irnn", "lstm")
#: Defaults sized for about 10 minutes on 2 CPU cores (see the README for what they reproduce).
DEFAULTS = {"lengths": LE2015_LENGTHS, "units": 32, "n_train": 4000, "n_test": 1000, "epochs": 40, "batch_size": 32,
            "lr": 1e-3, "clipnorm": 1.0}
LEARNED_BELOW = 0.05  #: "well below" the baseline's 0.167: under 30% of it means the sum was (mostly) learned


def build_model(kind: str, length: int, units: int, lr: float, clipnorm: float, seed: int):
    """One of :data:`MODELS` for sequences of ``length`` steps, compiled with Adam and MSE."""
    import keras

    keras.utils.set_random_seed(seed)
    if kind == "tanh":
        rnn = keras.layers.SimpleRNN(units, activation="tanh", name="rnn")
    elif kind == "irnn":
        rnn = keras.layers.SimpleRNN(units, activation="relu", name="rnn",
                                     recurrent_initializer=keras.initializers.Identity(),
                                     kernel_initializer=keras.initializers.RandomNormal(stddev=0.001))
    elif kind == "lstm":
        rnn = keras.layers.LSTM(units, name="rnn")
    else:
        raise ValueError(f"unknown model {kind!r}; choose one of {', '.join(MODELS)}")
    model = keras.Sequential([keras.Input((length, 2)), rnn, keras.layers.Dense(1, name="sum")],
                             name=f"adding_{kind}")
    model.compile(optimizer=keras.optimizers.Adam(lr, clipnorm=clipnorm), loss="mse")
    return model


def run_le2015(out, lengths=None, units=None, n_train=None, n_test=None, epochs=None, batch_size=None,
               lr=None, clipnorm=None, seed=0, echo=print, command=None, progress=None):
    """Train :data:`MODELS` at each length; write their runs and ``paper.json`` under ``out``.

    Args:
        progress: True for a line on stderr at each epoch end with the time left (in a terminal), or
            a :class:`~gradscope.experiments.progress.PlanProgress`.

    Returns:
        ``(out, runs, payload)`` as :func:`gradscope.experiments.papers.run_paper` does.
    """
    from gradscope.experiments.papers import PAPER_JSON
    from gradscope.recorders.activation_probe import rows_of
    from gradscope.recorders.monitor import GradientMonitor
    from gradscope.storage import load_run

    p = {k: v for k, v in dict(lengths=lengths, units=units, n_train=n_train, n_test=n_test, epochs=epochs,
                                batch_size=batch_size, lr=lr, clipnorm=clipnorm).items() if v is not None}
    p = {**DEFAULTS, **p}
    from gradscope.experiments.progress import plan_progress

    out = Path(out)
    progress = plan_progress(progress, len(p["lengths"]) * len(MODELS), p["epochs"])
    runs, results = [], {}
    for length in p["lengths"]:
        x, y = adding_problem(p["n_train"], length, seed=seed)
        x_test, y_test = adding_problem(p["n_test"], length, seed=seed + 1)
        for kind in MODELS:
            name = f"{kind}-T{length}"
            echo(f"== {name}: {kind} RNN of {p['units']} units, adding problem of {length} steps, "
                 f"{p['n_train']} sequences, {p['epochs']} epochs")
            model = build_model(kind, length, p["units"], p["lr"], p["clipnorm"], seed)
            monitor = GradientMonitor(run=name, run_dir=out / "runs" / name, probe=(rows_of(x), rows_of(y)),
                                      config={"act": kind, "init": _init_words(kind), "sequence_length": length,
                                              "task": "adding problem", "command": command,
                                              "epochs": p["epochs"], "batch_size": p["batch_size"]})
            model.fit(x, y, epochs=p["epochs"], batch_size=p["batch_size"], verbose=0,
                      callbacks=[monitor, *(progress.callbacks_for(name) if progress is not None else ())],
                      validation_data=(x_test, y_test))
            mse = float(model.evaluate(x_test, y_test, verbose=0))
            monitor.add_to_run(metrics={"test_mse": mse},
                               tags={"data": f"adding problem, {length} steps: {p['n_train']:,} training / "
                                             f"{p['n_test']:,} test sequences"})
            run = load_run(out / "runs" / name)
            runs.append(run)
            results[name] = {"kind": kind, "length": length, "test_mse": mse, **_reach_summary(run, length)}
            echo(f"   test MSE {mse:.4f} (always 1: {BASELINE_MSE:.3f}); gradient reach "
                 f"{results[name]['reach_first']} -> {results[name]['reach_last']} of {length} steps")
    payload = {"paper": "le2015", "settings": {k: (list(v) if isinstance(v, tuple) else v) for k, v in p.items()},
               "results": results, "findings": le_findings(results, p["lengths"])}
    (out / PAPER_JSON).write_text(json.dumps(payload, indent=2), encoding="utf-8")
    return out, runs, payload


def _init_words(kind: str) -> str:
    return {"tanh": "glorot_uniform / orthogonal", "irnn": "normal_0.001 / identity",
            "lstm": "glorot_uniform / orthogonal"}[kind]


def _reach_summary(run, length: int) -> dict:
    """Reach (steps back until ``||dL/dh_t||`` < 1% of the last step's) at the first and last epoch end,
    and the first-to-last ratio."""
    from gradscope.diagnosis.time_reach import reach_table

    table = reach_table(run.records)
    if table.empty:
        return {"reach_first": None, "reach_last": None, "reach_median": math.nan, "reach_per_epoch": [],
                "ratio_first": math.nan, "ratio_last": math.nan}
    first, last = table.iloc[0], table.iloc[-1]
    return {"reach_first": int(first["reach"]), "reach_last": int(last["reach"]),
            "reach_median": float(table["reach"].median()), "reach_per_epoch": [int(r) for r in table["reach"]],
            "ratio_first": float(first["first_over_last"]), "ratio_last": float(last["first_over_last"])}


def le_findings(results: dict, lengths) -> list[dict]:
    """The paper's claims, each marked reproduced or not, with the measured numbers."""
    short, long = min(lengths), max(lengths)

    def mse(kind, length):
        return results.get(f"{kind}-T{length}", {}).get("test_mse", math.nan)

    def words(length):
        return ", ".join(f"{k} {mse(k, length):.4f}" for k in MODELS)

    out = [
        {"claim": f"At the short length ({short} steps) every model learns the sum "
                  f"(test MSE < {LEARNED_BELOW:g}, under 30% of always predicting 1's {BASELINE_MSE:.3f})",
         "reproduced": all(mse(k, short) < LEARNED_BELOW for k in MODELS), "evidence": words(short)},
        {"claim": f"At {long} steps IRNN and LSTM learn the sum while the tanh RNN does not",
         "reproduced": mse("irnn", long) < LEARNED_BELOW and mse("lstm", long) < LEARNED_BELOW
         and mse("tanh", long) >= LEARNED_BELOW, "evidence": words(long)},
    ]
    tanh, irnn, lstm = (results.get(f"{k}-T{long}", {}) for k in ("tanh", "irnn", "lstm"))
    if tanh and lstm and irnn:
        out.append({
            "claim": f"The gradient explains it: during training the tanh RNN's gradient reaches fewer of the "
                     f"{long} steps than IRNN's and LSTM's (median over the epochs)",
            "reproduced": tanh["reach_median"] < min(irnn["reach_median"], lstm["reach_median"]),
            "evidence": "steps back until ||dL/dh_t|| < 1% of the last step's, median over the epochs (first -> "
                        "last epoch; ||dL/dh_1|| / ||dL/dh_T|| first -> last): " + ", ".join(
                f"{k} {r['reach_median']:g} ({r['reach_first']} -> {r['reach_last']}; "
                f"{r['ratio_first']:.2g} -> {r['ratio_last']:.2g})"
                for k, r in (("tanh", tanh), ("irnn", irnn), ("lstm", lstm)))})
    return out
