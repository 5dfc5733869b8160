"""The rows trials train and score on: taken from what ``fit`` would be given, split once, ordered once.

Every arm trains on the same training rows in the same order (the second seed of the baseline
on another order) and is scored on the same held-out rows, so that arms differ only by their
fix. Arrays are used as they are (at most ``TrialSettings.max_rows`` rows, a sample spread
over them); a ``tf.data.Dataset`` gives at most ``TrialSettings.max_batches`` batches.

Example:
    >>> import numpy as np
    >>> from gradscope.trials.settings import TrialSettings
    >>> x, y = np.random.default_rng(0).normal(size=(500, 3)), np.arange(500) % 2
    >>> d = trial_data(x, y, batch_size=20, settings=TrialSettings(), task="classification")
    >>> len(d.x_train), len(d.x_held), d.batch_size, d.order(5, seed=0).shape
    (400, 100, 20, (100,))
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from gradscope.errors import GradscopeError
from gradscope.recorders.data_description import describe_inputs, describe_target
from gradscope.trials.settings import TrialSettings

#: What ``fit`` uses when it is given arrays and no batch size.
DEFAULT_BATCH_SIZE = 32


@dataclass
class Scaling:
    """``(x - mean) / std``, per feature (last axis), fitted on the training rows."""

    mean: np.ndarray
    std: np.ndarray

    @classmethod
    def fit(cls, a) -> Scaling:
        a = np.asarray(a, dtype=np.float64)
        flat = a.reshape(-1, a.shape[-1]) if a.ndim > 1 else a.reshape(-1, 1)
        mean, std = flat.mean(axis=0), flat.std(axis=0)
        std = np.where(np.isfinite(std) & (std > 0), std, 1.0)
        shape = a.shape[-1:] if a.ndim > 1 else ()
        return cls(mean.reshape(shape), std.reshape(shape))

    def apply(self, a):
        return ((np.asarray(a, dtype=np.float64) - self.mean) / self.std).astype(np.float32)

    def undo(self, a):
        return np.asarray(a, dtype=np.float64) * self.std + self.mean


@dataclass
class TrialData:
    """Training and held-out rows, the batch size, and what kind of target they have.

    Attributes:
        task: ``classification`` (scored by accuracy) or ``regression`` (scored by R^2 in the
            target's own units).
        source: where the rows came from, in words.
        inputs, target: :mod:`gradscope.recorders.data_description` of the training rows.
        x_scaling, y_scaling: set on an arm's copy that standardises its inputs or target.
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_held: np.ndarray
    y_held: np.ndarray
    batch_size: int
    task: str
    source: str
    inputs: dict | None = None
    target: dict | None = None
    x_scaling: Scaling | None = None
    y_scaling: Scaling | None = None

    def order(self, steps: int, seed: int) -> np.ndarray:
        """Row indices of ``steps`` batches: whole shuffles of the training rows, one after another."""
        rng = np.random.default_rng(seed)
        n, need = len(self.x_train), steps * self.batch_size
        return np.concatenate([rng.permutation(n) for _ in range(-(-need // n))])[:need]

    def standardised_inputs(self) -> TrialData:
        return replace(self, x_scaling=Scaling.fit(self.x_train))

    def standardised_target(self) -> TrialData:
        return replace(self, y_scaling=Scaling.fit(self.y_train))

    def train_inputs(self, rows=None):
        x = self.x_train if rows is None else self.x_train[rows]
        return self.x_scaling.apply(x) if self.x_scaling is not None else x

    def train_targets(self, rows=None):
        y = self.y_train if rows is None else self.y_train[rows]
        return self.y_scaling.apply(y) if self.y_scaling is not None else y

    def held_inputs(self):
        return self.x_scaling.apply(self.x_held) if self.x_scaling is not None else self.x_held

    def in_target_units(self, prediction):
        """Predictions of a model trained on this data, in the target's original units."""
        return self.y_scaling.undo(prediction) if self.y_scaling is not None else prediction


def _spread(n: int, most: int) -> np.ndarray:
    return np.arange(n) if n <= most else np.linspace(0, n - 1, most).astype(int)


def _from_dataset(ds, settings: TrialSettings):
    xs, ys = [], []
    for i, element in enumerate(ds):
        if i >= settings.max_batches:
            break
        if not isinstance(element, (tuple, list)) or len(element) < 2:
            raise GradscopeError("try_fixes needs a tf.data.Dataset of (x, y) batches; this one yields "
                                 f"{type(element).__name__} elements without targets")
        xs.append(np.asarray(element[0]))
        ys.append(np.asarray(element[1]))
    if not xs:
        raise GradscopeError("the tf.data.Dataset given to try_fixes yields no batch")
    return (np.concatenate(xs), np.concatenate(ys), len(xs[0]),
            f"{len(xs)} batches of a tf.data.Dataset" + (f" (at most {settings.max_batches})" if len(xs) == settings.max_batches else ""))


def take_rows(x, y, batch_size, settings: TrialSettings):
    """``(x, y, batch_size, source)`` as arrays, from arrays or a ``tf.data.Dataset`` (bounded).

    Raises:
        GradscopeError: for data trials cannot use (several inputs, no targets, too few rows).
    """
    if type(x).__name__ in ("DatasetV2", "_BatchDataset", "BatchDataset") or hasattr(x, "element_spec"):
        x, y, size, source = _from_dataset(x, settings)
        batch_size = batch_size or size
    else:
        if y is None:
            raise GradscopeError("try_fixes needs targets: try_fixes(model, x, y), or a tf.data.Dataset of (x, y)")
        if isinstance(x, (dict, list, tuple)) or isinstance(y, (dict, list, tuple)):
            raise GradscopeError("try_fixes takes one input array and one target array; a model with several "
                                 "inputs or outputs cannot be tried yet")
        x, y = np.asarray(x), np.asarray(y)
        if len(x) != len(y):
            raise GradscopeError(f"x has {len(x)} rows but y has {len(y)}; give them the same rows")
        source = f"{len(x):,} rows of arrays"
    if x.dtype.kind not in "biuf" or y.dtype.kind not in "biuf":
        raise GradscopeError(f"try_fixes needs numeric arrays (got x of {x.dtype}, y of {y.dtype})")
    keep = _spread(len(x), settings.max_rows)
    if len(keep) < len(x):
        source += f", {len(keep):,} of them used"
    return x[keep], y[keep], int(batch_size or DEFAULT_BATCH_SIZE), source


def trial_data(x, y, batch_size, settings: TrialSettings, task: str) -> TrialData:
    """Split the rows once: a held-out part (a seeded sample) to score on, the rest to train on."""
    x, y, batch_size, source = take_rows(x, y, batch_size, settings)
    n = len(x)
    held = min(settings.max_held_out, int(round(settings.held_out * n)))
    if held < settings.min_held_out or n - held < 2 * settings.min_held_out:
        raise GradscopeError(f"try_fixes needs at least {int(settings.min_held_out / settings.held_out) + settings.min_held_out} "
                             f"rows to train on and score on held-out rows; it got {n}")
    perm = np.random.default_rng(settings.seed).permutation(n)
    held_rows, train_rows = np.sort(perm[:held]), np.sort(perm[held:])
    x_train = x[train_rows].astype(np.float32) if x.dtype.kind == "f" else x[train_rows]
    x_held = x[held_rows].astype(np.float32) if x.dtype.kind == "f" else x[held_rows]
    batch_size = max(1, min(batch_size, len(train_rows)))
    return TrialData(x_train, y[train_rows], x_held, y[held_rows], batch_size, task, source,
                     inputs=describe_inputs(x_train), target=describe_target(y[train_rows]))
