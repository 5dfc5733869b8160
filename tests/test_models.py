import numpy as np
import pytest

from gradscope.errors import GradscopeError
from gradscope.experiments.config import parse_hidden
from gradscope.models import build_mlp


def test_seed_mlp_shape():
    m = build_mlp([512, 256, 128], act="sigmoid", init="normal")
    assert [w.shape for w in m.trainable_variables[::2]] == [(784, 512), (512, 256), (256, 128), (128, 10)]
    assert m.layers[0].activation.__name__ == "sigmoid"


@pytest.mark.parametrize(
    "init, expected_std",
    [("normal", lambda n: 1.0), ("he", lambda n: np.sqrt(2 / n)), ("xavier", lambda n: np.sqrt(2 / (n + 512)))],
)
def test_initialisers_have_the_promised_scale(init, expected_std):
    w = build_mlp([512], act="relu", init=init, seed=1).trainable_variables[0].numpy()
    assert w.std() == pytest.approx(expected_std(784), rel=0.03)


def test_same_seed_same_weights():
    a = build_mlp([8], init="he", seed=3).trainable_variables[0].numpy()
    b = build_mlp([8], init="he", seed=3).trainable_variables[0].numpy()
    np.testing.assert_array_equal(a, b)


def test_bad_names_get_suggestions():
    with pytest.raises(GradscopeError, match="did you mean 'sigmoid'"):
        build_mlp([4], act="sigmod")
    with pytest.raises(GradscopeError, match="unknown initializer 'hee'"):
        build_mlp([4], init="hee")
    with pytest.raises(GradscopeError, match="positive integers"):
        parse_hidden("512,-1")
    with pytest.raises(GradscopeError, match="positive integers"):
        parse_hidden("a,b")
