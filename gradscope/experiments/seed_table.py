"""The seed course notes' table, row by row, each with its own protocol (``gradscope paper seed``).

Five systems on one dataset and split (the seed used Kaggle's 42,000-image ``train.csv``, a
stratified 70/30 split with ``random_state=0`` and a ``MinMaxScaler`` fitted on the training
part; :func:`gradscope.data.load` splits a CSV that way):

========================  =====================================================================  ======
row                       protocol                                                               seed
========================  =====================================================================  ======
``sklearn``               ``LogisticRegression(solver="saga")``, scikit-learn's defaults         0.9171
``tf1-softmax``           no hidden layer, N(0, 1) weights and biases, GD 0.1, 3000 full-batch   0.8545
                          steps (``tf.compat.v1`` graph)
``keras-softmax``         no hidden layer, Glorot init, Adam 0.1, 100 epochs, batch 100,         0.8789
                          validation split 0.2
``tf1-mlp``               512-256-128 ReLU, He init, N(0, 1) biases, GD 0.1, 3000 full-batch     0.9698
                          steps
``keras-mlp``             512-256-128 ReLU, Glorot init, Adam 1e-4, 100 epochs, batch 100,       0.9721
                          validation split 0.2
========================  =====================================================================  ======

Every row is a run directory with its ``run.json`` (``metrics.test_accuracy``); the gradient-
based rows have their records (the softmax rows' single layer too), the scikit-learn row none.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from gradscope.errors import GradscopeError
from gradscope.termination import Terminated
from gradscope.experiments.config import TrainConfig
from gradscope.experiments.linear_baseline import linear_baseline
from gradscope.models.mlp import SEED_HIDDEN

WITHIN = 0.01  #: a row reproduces the seed when its accuracy is within 1 point of it


@dataclass(frozen=True)
class Row:
    """One row of the seed's table: its name, what it is, the seed's accuracy and how it trains."""

    name: str
    words: str
    seed: float
    act: str = "relu"
    init: str = "he"
    train: TrainConfig | None = None  # None: scikit-learn


ROWS = (
    Row("sklearn", "scikit-learn LogisticRegression(solver='saga')", 0.9171),
    Row("tf1-softmax", "TF1 softmax regression, N(0,1) init, GD 0.1, 3000 full-batch steps", 0.8545,
        act="linear", init="normal",
        train=TrainConfig(hidden=[], framework="tf1", optimizer="sgd", lr=0.1, full_batch=True, epochs=3000)),
    Row("keras-softmax", "Keras softmax regression, Adam 0.1, 100 epochs, batch 100, val split 0.2", 0.8789,
        act="linear", init="xavier",
        train=TrainConfig(hidden=[], optimizer="adam", lr=0.1, epochs=100, batch_size=100, val_split=0.2)),
    Row("tf1-mlp", "TF1 MLP 512-256-128 ReLU, He init, GD 0.1, 3000 full-batch steps", 0.9698,
        train=TrainConfig(hidden=list(SEED_HIDDEN), framework="tf1", optimizer="sgd", lr=0.1, full_batch=True,
                          epochs=3000)),
    Row("keras-mlp", "Keras MLP 512-256-128 ReLU, Adam 1e-4, 100 epochs, batch 100, val split 0.2", 0.9721,
        init="xavier",
        train=TrainConfig(hidden=list(SEED_HIDDEN), optimizer="adam", lr=1e-4, epochs=100, batch_size=100,
                          val_split=0.2)),
)
ROW_NAMES = tuple(row.name for row in ROWS)


def parse_rows(text: str | None) -> list[Row]:
    """The rows named in ``text`` (comma-separated; None or "all": every row), in the table's order.

    Raises:
        GradscopeError: naming an unknown row and the known ones.

    Example:
        >>> [r.name for r in parse_rows("keras-mlp,sklearn")]
        ['sklearn', 'keras-mlp']
    """
    if text is None or text.strip().lower() == "all":
        return list(ROWS)
    names = [n.strip() for n in text.split(",") if n.strip()]
    unknown = [n for n in names if n not in ROW_NAMES]
    if unknown or not names:
        raise GradscopeError(f"--rows {text!r}: unknown row(s) {', '.join(unknown) or '(none given)'}; "
                             f"choose from {', '.join(ROW_NAMES)}")
    return [row for row in ROWS if row.name in names]


def _sklearn_run(row: Row, dataset, run_dir: Path, command, seed: int):
    from gradscope.storage import RunWriter, load_run

    config = {"framework": "sklearn", "act": "linear", "init": "none (not trained by gradients)", "hidden": [],
              "model": row.words,
              "data": dataset.info, "command": command, "seed": seed}
    writer = RunWriter(run_dir, config)
    try:
        baseline = linear_baseline(dataset, seed=seed)
    except (KeyboardInterrupt, Terminated):
        writer.finish("interrupted")
        raise
    except BaseException:
        writer.finish("failed")
        raise
    writer.update(metrics={"test_accuracy": baseline["test_accuracy"]},
                  timings={"train_seconds": baseline["seconds"], "steps": baseline["iterations"]})
    writer.finish("complete")
    return load_run(run_dir)


def run_seed_table(rows, data="sample", out=None, echo=print, command=None, seed: int = 0, epochs=None,
                   progress=None):
    """Train each row on one dataset; write the runs and ``paper.json`` (the table as claims).

    Args:
        epochs: instead of each row's own epochs (or full-batch steps), for a quick check; the
            table then is not the seed's protocol, and ``paper.json`` says so.
        progress: True for a line on stderr at each epoch end with the time left (in a terminal), or
            a :class:`~gradscope.experiments.progress.PlanProgress`.

    Returns:
        ``(out, runs, payload)`` as :func:`gradscope.experiments.papers.run_paper` does.
    """
    from dataclasses import replace

    from gradscope import data as data_mod
    from gradscope.experiments.config import default_out_dir
    from gradscope.experiments.papers import PAPER_JSON
    from gradscope.experiments.plans import check_names
    from gradscope.experiments.train import train_run

    dataset = data if isinstance(data, data_mod.Dataset) else data_mod.load(data)
    out = Path(out) if out else default_out_dir(prefix="paper-seed")
    check_names([(r.name, r.act, r.init, r.train.hidden) for r in rows if r.train], TrainConfig(framework="tf1"))
    from gradscope.experiments.progress import plan_progress

    progress = plan_progress(progress, len(rows), [(epochs or row.train.epochs) if row.train else 0 for row in rows])
    runs, table = [], []
    for row in rows:
        echo(f"== {row.name}: {row.words}, {dataset.info['n_train']} training images")
        run_dir = out / "runs" / row.name
        if progress is not None:
            progress.start_run(row.name)
        if row.train is None:
            run = _sklearn_run(row, dataset, run_dir, command, seed)
            if progress is not None:
                progress.epoch_end({})
        else:
            train = replace(row.train, seed=seed, **({"epochs": epochs} if epochs else {}))
            run = train_run(row.act, row.init, train, dataset, run_dir, verbose=0, command=command,
                            epoch_end=progress.epoch_end if progress is not None else None).run
        runs.append(run)
        acc = float(run.metrics.get("test_accuracy", float("nan")))
        table.append({"row": row.name, "protocol": row.words, "seed": row.seed, "measured": acc,
                      "reproduced": abs(acc - row.seed) <= WITHIN,
                      "seconds": (run.meta.get("timings") or {}).get("train_seconds")})
        echo(f"   test accuracy {acc:.4f} (seed {row.seed:.4f})")
    n = dataset.info.get("n_train", 0) + dataset.info.get("n_test", 0)
    findings = [{"claim": f"{t['protocol']}: seed {t['seed']:.4f}",
                 "reproduced": t["reproduced"],
                 "evidence": f"measured {t['measured']:.4f} ({t['measured'] - t['seed']:+.4f}) on {n:,} images "
                             f"({dataset.info.get('source')}); {t['seconds']} s"} for t in table]
    payload = {"paper": "seed", "table": table, "findings": findings,
               **({"note": f"every gradient row trained {epochs} epochs (steps), not its own protocol's"}
                  if epochs else {})}
    (out / PAPER_JSON).write_text(json.dumps(payload, indent=2), encoding="utf-8")
    return out, runs, payload
