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


def test_the_names_checked_before_tensorflow_are_the_names_keras_knows():
    """The lists that let the CLI refuse a name in 0.2 s must follow Keras: a new Keras fails here."""
    import keras

    from gradscope.models.initializers import check_names
    from gradscope.models.initializers import KERAS_ACTIVATIONS, KERAS_INITIALIZERS

    for name in KERAS_ACTIVATIONS:
        assert keras.activations.get(name) is not None, name
    for name in KERAS_INITIALIZERS:
        assert keras.initializers.get(name) is not None, name
    public_acts = {n for n in dir(keras.activations) if not n.startswith("_") and n not in ("get", "serialize", "deserialize")}
    assert public_acts <= KERAS_ACTIVATIONS
    for name in ("foo", "rellu", "Sigmoid"):  # what Keras refuses, gradscope refuses too
        with pytest.raises(ValueError):
            keras.activations.get(name)
        with pytest.raises(GradscopeError, match="unknown activation"):
            check_names([name], [])
    check_names(sorted(KERAS_ACTIVATIONS - {"softmax", "log_softmax", "sparsemax"}), sorted(KERAS_INITIALIZERS))
