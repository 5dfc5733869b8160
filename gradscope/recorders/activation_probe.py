"""The probe batch, and the outputs of every layer with a non-linear activation on it.

The Keras monitor keeps a probe batch (:data:`~gradscope.vocabulary.PROBE_SIZE` rows spread
over the training data, unless one is given: read on the host from the arrays ``fit`` was
given (:func:`rows_of`), or, for data only the train step sees, kept by :class:`ProbeCapture`
from the first batches) and, at each epoch end, runs the model on it with every watched
layer's output captured;
:mod:`gradscope.recorders.activation_stats` turns the outputs into records.
"""

from __future__ import annotations

import functools

import numpy as np

from gradscope.recorders import keras_compat as compat
from gradscope.recorders.layer_names import walk_layers
from gradscope.recorders.traced_once import TracedOnce
from gradscope.vocabulary import NOT_WATCHED, PROBE_SIZE


def activation_name(layer) -> str | None:
    """The name of the activation a layer applies to its output, or None."""
    keras = compat.keras_of(layer)
    if isinstance(layer, keras.layers.ReLU):
        return "relu" if not float(layer.negative_slope) else "leaky_relu"
    if isinstance(layer, keras.layers.Softmax):
        return "softmax"
    act = getattr(layer, "activation", None)
    if act is None or isinstance(layer, keras.Model):
        return None
    name = getattr(act, "__name__", None) or type(act).__name__
    return name


class ActivationProbe:
    """Runs a model on a probe batch and returns the outputs of its activation layers.

    Works for Sequential, Functional and subclassed models: each watched layer's ``call`` is
    wrapped (on the instance, only while probing) to keep its output.

    Args:
        model: a built Keras model.
        layers: ``(layer, name, depth, activation)`` of the layers to report, from
            :func:`watched_layers`.
    """

    def __init__(self, model, layers):
        self.model = model
        self.layers = layers  # list of (layer, name, depth, activation)
        self._outputs_traced = TracedOnce(self._outputs)  # the probe batch keeps its shape: one trace

    def __call__(self, x) -> list[tuple[str, int, str, np.ndarray]]:
        outs = self._outputs_traced(x)
        result = []
        for i, (layer, name, depth, act) in enumerate(self.layers):
            out = outs.get(f"layer_{i}")
            if out is not None:
                result.append((name, depth, act, compat.to_numpy(out)))
        return result

    def _outputs(self, x) -> dict:
        """``{"layer_<i>": output}`` of the watched layers that ran, with their calls wrapped meanwhile."""
        captured: dict = {}
        wrapped = []
        for i, (layer, *_) in enumerate(self.layers):
            original = layer.call

            @functools.wraps(original)
            def call(*args, _orig=original, _key=f"layer_{i}", **kwargs):
                out = _orig(*args, **kwargs)
                captured[_key] = out
                return out

            compat.wrap(layer, "call", call)
            wrapped.append(layer)
        try:
            self.model(x, training=False)
        finally:
            for layer in wrapped:
                compat.unwrap(layer, "call")
        return captured


def watched_layers(model, table) -> list[tuple]:
    """Layers with a non-linear activation, as ``(layer, name, depth, activation)``.

    ``depth`` is the depth of the layer itself when it owns variables, else that of the nearest
    layer before it that does (so that an ``Activation`` layer lines up with its ``Dense``).
    """
    depth_of = {}
    for layer_name, depth, _ in table.values():
        depth_of[layer_name] = depth
    out, depth = [], 0
    for name, layer in walk_layers(model):
        depth = depth_of.get(name, depth)
        act = activation_name(layer)
        if act not in NOT_WATCHED:
            out.append((layer, name, depth, act))
    return out


def _first_batch(probe):
    """A probe given as a ``tf.data.Dataset``: its first element; anything else as it is."""
    import tensorflow as tf

    return next(iter(probe)) if isinstance(probe, tf.data.Dataset) else probe


def probe_inputs(probe):
    """The inputs of a probe given as arrays, an ``(x, y)`` tuple or a ``tf.data.Dataset``, cut to PROBE_SIZE rows."""
    probe = _first_batch(probe)
    return cut_rows(probe[0] if isinstance(probe, tuple) else probe)


def probe_targets(probe):
    """The targets of a probe given as an ``(x, y)`` tuple or a ``tf.data.Dataset`` of such pairs
    (cut to PROBE_SIZE rows), or None."""
    probe = _first_batch(probe)
    if isinstance(probe, tuple) and len(probe) >= 2 and probe[1] is not None:
        return cut_rows(probe[1])
    return None


def rows_in(x) -> int:
    """The number of rows of a structure of arrays (of its first array)."""
    import tensorflow as tf

    return len(tf.nest.flatten(x)[0])


def cut_rows(x, n: int = PROBE_SIZE):
    """Every array of a structure cut to its first ``n`` rows."""
    import tensorflow as tf

    return tf.nest.map_structure(lambda a: a[:n], x)


def spread_rows(total: int, n: int = PROBE_SIZE) -> np.ndarray:
    """``n`` row indices spread evenly over ``total`` rows (all of them when there are fewer): a probe
    drawn from the whole data, not from its first rows, which ordered data makes unrepresentative.

    Example:
        >>> spread_rows(10, 4).tolist(), spread_rows(3, 4).tolist()
        ([0, 3, 6, 9], [0, 1, 2])
    """
    if total <= n:
        return np.arange(total)
    return np.linspace(0, total - 1, n).round().astype(np.int64)


def rows_of(x, n: int = PROBE_SIZE):
    """``n`` rows spread over training data held in memory (arrays, tensors, DataFrames, or
    lists/tuples/dicts of them) as numpy arrays (:func:`spread_rows`: inputs and targets of the
    same length get the same rows); None for anything else (a ``tf.data`` pipeline, a generator,
    a ``PyDataset``), whose batches only the train step sees.

    Example:
        >>> rows_of(np.arange(1000)).shape, rows_of(np.arange(1000))[:3].tolist()
        ((256,), [0, 4, 8])
        >>> rows_of({"a": np.ones((5, 2)), "b": np.zeros((5,))})["b"].shape
        (5,)
        >>> rows_of(iter([1, 2])) is None
        True
    """
    if isinstance(x, dict):
        parts = {k: rows_of(v, n) for k, v in x.items()}
        return parts if parts and all(v is not None for v in parts.values()) else None
    if isinstance(x, (list, tuple)):
        parts = [rows_of(v, n) for v in x]
        return type(x)(parts) if parts and all(v is not None for v in parts) else None
    if isinstance(x, np.ndarray):
        return x[spread_rows(len(x), n)] if x.ndim >= 1 and len(x) else None
    if hasattr(x, "iloc") and hasattr(x, "to_numpy"):  # a pandas DataFrame or Series
        return x.iloc[spread_rows(len(x), n)].to_numpy() if len(x) else None
    if type(x).__module__.startswith("tensorflow") and hasattr(x, "numpy") and hasattr(x, "shape"):
        if len(x.shape) < 1 or not x.shape[0]:
            return None
        import tensorflow as tf

        return np.asarray(tf.gather(x, spread_rows(int(x.shape[0]), n)))
    return None


class ProbeCapture:
    """Keeps the inputs of the first training batches, up to PROBE_SIZE rows, in device variables.

    Wraps ``model.train_step`` (on the instance; :meth:`release` restores it) with a step that,
    while fewer than PROBE_SIZE rows are kept, appends the batch's inputs to variables of
    dynamic shape: with small batches the probe gathers rows from several steps, so that one
    batch of one row never decides what "dead for every input" means.
    """

    def __init__(self, model):
        import tensorflow as tf

        keras = compat.keras_of(model)

        self._vars = None
        self._structure = None
        self._model = model
        self.error: Exception | None = None  # the first error of ours while tracing
        self._kept = tf.Variable(tf.constant(0, tf.int64), trainable=False, name="gradscope_probe_rows")
        self._batch = tf.Variable(tf.constant(0, tf.int64), trainable=False, name="gradscope_batch_rows")
        original = model.train_step

        def train_step(data):
            if self.error is None:
                try:
                    x, _, _ = keras.utils.unpack_x_y_sample_weight(data)
                    self._keep(x)
                except Exception as exc:  # the step goes on without a probe; the monitor warns
                    self.error = exc
            return original(data)

        model.train_step = train_step

    def _keep(self, x):
        import tensorflow as tf

        from gradscope.recorders.tf_ops import is_primary_replica

        if not is_primary_replica():
            return
        flat = tf.nest.flatten(x)
        if self._vars is None:
            with tf.init_scope():
                self._vars = [
                    tf.Variable(tf.zeros([0] * len(t.shape), t.dtype), shape=tf.TensorShape(None),
                                trainable=False, validate_shape=False, name="gradscope_probe")
                    for t in flat
                ]
            self._structure = x

        def keep():
            kept = self._kept.read_value()
            need = PROBE_SIZE - kept
            rows = tf.cast(tf.shape(flat[0])[0], tf.int64)

            def first():
                for var, t in zip(self._vars, flat):
                    var.assign(t[:need], read_value=False)
                self._batch.assign(rows)
                return tf.constant(True)

            def more():
                for var, t in zip(self._vars, flat):
                    var.assign(tf.concat([var.read_value(), t[:need]], 0), read_value=False)
                return tf.constant(True)

            tf.cond(tf.equal(kept, 0), first, more)
            self._kept.assign(kept + tf.minimum(rows, need))
            return tf.constant(True)

        tf.cond(self._kept < PROBE_SIZE, keep, lambda: tf.constant(False))

    def value(self):
        """The kept inputs (up to PROBE_SIZE rows), or None before the first training step.

        Taking the value freezes the probe: every later epoch is measured on the same rows.
        """
        import tensorflow as tf

        if self._vars is None or int(self._kept.numpy()) == 0:
            return None
        flat = [tf.identity(v) for v in self._vars]
        self._kept.assign(PROBE_SIZE)  # nothing more is kept
        return tf.nest.pack_sequence_as(self._structure, flat)

    def batch_rows(self) -> int | None:
        """The number of rows of the first training batch (the batch size), or None before it."""
        rows = int(self._batch.numpy())
        return rows or None

    def release(self):
        """Give the model its own ``train_step`` back."""
        try:
            del self._model.train_step
        except AttributeError:
            pass
