import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
import pytest  # noqa: E402


def make_digits(n, seed=0):
    """MNIST-shaped fake digits (uint8 28x28) whose class is learnable: a bright bar per class."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 10
    rng.shuffle(y)
    x = rng.integers(0, 60, size=(n, 28, 28)).astype(np.uint8)
    for i, c in enumerate(y):
        x[i, 2 + 2 * c : 4 + 2 * c, 4:24] = 255
    return x, y.astype(np.uint8)


@pytest.fixture
def tiny_npz(tmp_path):
    x_tr, y_tr = make_digits(200, seed=1)
    x_te, y_te = make_digits(100, seed=2)
    path = tmp_path / "tiny.npz"
    np.savez(path, x_train=x_tr, y_train=y_tr, x_test=x_te, y_test=y_te)
    return path


@pytest.fixture
def tiny_csv(tmp_path):
    import pandas as pd

    x, y = make_digits(100, seed=3)
    df = pd.DataFrame(x.reshape(len(x), -1), columns=[f"pixel{i}" for i in range(784)])
    df.insert(0, "label", y)
    path = tmp_path / "train.csv"
    df.to_csv(path, index=False)
    return path


@pytest.fixture(scope="session")
def shared_mnist():
    here = os.path.dirname(os.path.abspath(__file__))
    path = os.path.join(here, "..", "..", "shared", "data", "mnist.npz")
    if not os.path.isfile(path):
        pytest.skip("../shared/data/mnist.npz is not available")
    return os.path.abspath(path)
