import gzip
import struct

import numpy as np
import pandas as pd
import pytest

from conftest import make_digits
from gradscope import data
from gradscope.errors import GradscopeError


def test_sample_is_real_mnist_split_like_the_seed():
    ds = data.load("sample")
    assert ds.x_train.shape == (3500, 784) and ds.x_test.shape == (1500, 784)
    assert np.bincount(ds.y_test).tolist() == [150] * 10  # stratified
    assert ds.x_train.min() == 0.0 and ds.x_train.max() == 1.0
    assert "stratified 70/30" in ds.info["split"]


def test_npz_keeps_its_own_split(tiny_npz):
    ds = data.load(str(tiny_npz))
    assert ds.x_train.shape == (200, 784) and ds.x_test.shape == (100, 784)
    assert ds.info["split"] == "the source's own train/test split"


def test_csv_is_split_70_30(tiny_csv):
    ds = data.load(str(tiny_csv))
    assert (ds.info["n_train"], ds.info["n_test"]) == (70, 30)


def _write_idx(path, arr, gz):
    header = struct.pack(">HBB", 0, 8, arr.ndim) + struct.pack(">" + "I" * arr.ndim, *arr.shape)
    opener = gzip.open if gz else open
    with opener(path, "wb") as f:
        f.write(header + arr.astype(np.uint8).tobytes())


def test_idx_folder(tmp_path):
    x, y = make_digits(60)
    _write_idx(tmp_path / "train-images-idx3-ubyte.gz", x[:40], True)
    _write_idx(tmp_path / "train-labels-idx1-ubyte.gz", y[:40], True)
    _write_idx(tmp_path / "t10k-images-idx3-ubyte", x[40:], False)
    _write_idx(tmp_path / "t10k-labels-idx1-ubyte", y[40:], False)
    ds = data.load(str(tmp_path))
    assert ds.x_train.shape == (40, 784) and ds.x_test.shape == (20, 784)
    np.testing.assert_array_equal(ds.y_test, y[40:])


def test_idx_folder_with_one_pair_is_split(tmp_path):
    x, y = make_digits(50)
    _write_idx(tmp_path / "t10k-images-idx3-ubyte.gz", x, True)
    _write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", y, True)
    _write_idx(tmp_path / "train-labels-idx1-ubyte.gz", y, True)
    ds = data.load(str(tmp_path))
    assert ds.info["n_train"] + ds.info["n_test"] == 50
    assert ds.info["ignored_unpaired"] == ["train"]


def _csv(tmp_path, df):
    p = tmp_path / "bad.csv"
    df.to_csv(p, index=False)
    return str(p)


def _good_df(n=20):
    x, y = make_digits(n)
    df = pd.DataFrame(x.reshape(n, -1).astype(float), columns=[f"pixel{i}" for i in range(784)])
    df.insert(0, "label", y)
    return df


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda df: df.drop(columns="label"), "no 'label' column"),
        (lambda df: df.drop(columns="pixel5"), "783 pixel columns"),
        (lambda df: df.assign(label=df.label + 5), "outside the digits 0-9"),
        (lambda df: df.assign(pixel3=np.where(df.index == 2, np.nan, df.pixel3)), "NaN"),
        (lambda df: df.assign(label=np.where(df.index == 2, np.nan, df.label)), "missing \\(NaN\\) label"),
        (lambda df: df.assign(pixel0="x"), "non-numeric"),
    ],
)
def test_bad_csv_gets_a_clear_error(tmp_path, mutate, message):
    with pytest.raises(GradscopeError, match=message):
        data.load(_csv(tmp_path, mutate(_good_df())))


def test_bad_sources(tmp_path):
    with pytest.raises(GradscopeError, match="not found"):
        data.load(str(tmp_path / "nope.npz"))
    (tmp_path / "x.txt").write_text("hello")
    with pytest.raises(GradscopeError, match="expected a .npz"):
        data.load(str(tmp_path / "x.txt"))
    np.savez(tmp_path / "wrong.npz", a=np.zeros(3))
    with pytest.raises(GradscopeError, match="not in Keras mnist.npz format"):
        data.load(str(tmp_path / "wrong.npz"))
    np.savez(tmp_path / "shape.npz", x_train=np.zeros((5, 10)), y_train=np.zeros(5),
             x_test=np.zeros((5, 10)), y_test=np.zeros(5))
    with pytest.raises(GradscopeError, match="expected \\(n, 28, 28\\)"):
        data.load(str(tmp_path / "shape.npz"))
    np.savez(tmp_path / "no_test.npz", x_train=np.zeros((40, 28, 28)), y_train=np.zeros(40),
             x_test=np.zeros((0, 28, 28)), y_test=np.zeros(0))
    with pytest.raises(GradscopeError, match=r"no_test.npz \(test part\) has no images"):
        data.load(str(tmp_path / "no_test.npz"))
    (tmp_path / "corrupt.npz").write_bytes(b"PK\x03\x04garbage")
    with pytest.raises(GradscopeError, match="cannot read"):
        data.load(str(tmp_path / "corrupt.npz"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(GradscopeError, match="no pair of IDX files"):
        data.load(str(tmp_path / "empty"))


def test_mnist_offline_without_cache_says_what_to_do(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    import keras.datasets.mnist as km

    def offline(*a, **k):
        raise OSError("Temporary failure in name resolution")

    monkeypatch.setattr(km, "load_data", offline)
    with pytest.raises(GradscopeError, match="--data /path/to/mnist.npz"):
        data.load("mnist")


def test_mnist_uses_the_keras_cache(tmp_path, monkeypatch, tiny_npz):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    (tmp_path / "datasets").mkdir()
    (tmp_path / "datasets" / "mnist.npz").write_bytes(tiny_npz.read_bytes())
    ds = data.load("mnist")
    assert ds.info["source"] == "mnist" and ds.info["n_train"] == 200
