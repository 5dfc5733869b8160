"""What a linear model reaches on the same data and split: the baseline beside every net.

A net below it is hurt by its depth rather than helped (a sigmoid MLP with N(0, 1) weights below
a logistic regression is the vanishing-gradient story in one number). ``analyze`` and ``sweep``
fit it by default where it costs seconds (:data:`gradscope.experiments.plans.LINEAR_BASELINE_MAX_IMAGES`);
``gradscope paper seed`` fits it as the seed's first row.
"""

from __future__ import annotations

import time


def linear_baseline(dataset, solver: str = "saga", seed: int = 0) -> dict:
    """Test accuracy of a logistic regression on ``dataset``'s split, and what it took.

    Example:
        >>> import numpy as np
        >>> from gradscope.data import Dataset
        >>> rng = np.random.default_rng(0)
        >>> x = rng.uniform(0, 1, (200, 4)).astype("float32"); y = (x[:, 0] > 0.5).astype(int)
        >>> d = Dataset(x[:150], y[:150], x[150:], y[150:], {"source": "toy"})
        >>> out = linear_baseline(d)
        >>> out["model"], out["test_accuracy"] > 0.9
        ("LogisticRegression(solver='saga')", True)
    """
    import warnings

    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression

    started = time.perf_counter()
    model = LogisticRegression(solver=solver, random_state=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # the seed ran saga's default 100 iterations too
        model.fit(dataset.x_train, dataset.y_train)
    accuracy = float(model.score(dataset.x_test, dataset.y_test))
    return {"model": f"LogisticRegression(solver={solver!r})", "test_accuracy": accuracy,
            "seconds": round(time.perf_counter() - started, 2), "iterations": int(max(model.n_iter_))}
