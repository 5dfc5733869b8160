"""How far back in time a gradient reaches: ``||dL/dh_t||`` of every recurrent layer, per time step.

For each recurrent layer (``SimpleRNN``, ``LSTM``, ``GRU``, ``RNN`` over any cell), on the probe
batch and its targets, one forward/backward pass gives, at every time step ``t``:

* ``h`` — the gradient of the loss with respect to the layer's hidden state ``h_t``, the total
  derivative: through the layer's output at ``t`` and through every later step of the
  recurrence;
* ``c`` (LSTM, and any cell with a second state) — the gradient reaching the cell state ``c_t``
  from the later steps (the memory path: ``c_t -> c_{t+1} -> ...``);
* ``input`` — the gradient with respect to the layer's input ``x_t``.

How: while probing, the layer's input gets extra zero channels ``e_t`` that its cell adds to
the new states (``h_t + e_h``, ``c_t + e_c``) and to its output; the gradient with respect to
``e_t`` at zero is the gradient with respect to the state, for all ``t`` in one backward pass,
computed by the layer's own loop (so masking, ``go_backwards`` and ``return_sequences`` are the
layer's). The layer and its cell are restored afterwards. Each gradient is reduced to its L2
norm over the batch and the units: records of metric ``time_grad_norm`` with ``variable`` the
state (``h``, ``c``, ``input``) and ``time`` the step index (0 = first step the layer reads).

Example:
    >>> import keras, numpy as np
    >>> keras.utils.set_random_seed(0)
    >>> model = keras.Sequential([keras.Input((30, 1)), keras.layers.SimpleRNN(8), keras.layers.Dense(1)])
    >>> model.compile(loss="mse")
    >>> x = np.random.default_rng(0).normal(size=(16, 30, 1)).astype("float32")
    >>> (name, depth, grads), = time_gradients(model, x, np.zeros((16, 1), "float32"))
    >>> name, sorted(grads), grads["h"].shape
    ('simple_rnn', ['h', 'input'], (30,))
    >>> bool(grads["h"][0] < grads["h"][-1])   # the first step gets less gradient than the last
    True
"""

from __future__ import annotations

import functools

import numpy as np

from gradscope.recorders import keras_compat as compat
from gradscope.recorders.layer_names import walk_layers
from gradscope.recorders.traced_once import TracedOnce
from gradscope.vocabulary import TIME_METRIC

STATE_NAMES = ("h", "c")  #: what the records call a cell's first and second state


def recurrent_layers(model, table=None) -> list:
    """``(layer, name, depth)`` of every recurrent layer of ``model`` (Keras ``RNN`` subclasses);
    names and depths as in the records (``table``: from :func:`~gradscope.recorders.layer_names.layer_table`)."""
    import keras

    depth_of = {name: depth for name, depth, _ in (table or {}).values()}
    out, depth = [], 0
    for name, layer in walk_layers(model):
        depth = depth_of.get(name, depth)
        if isinstance(layer, keras.layers.RNN) and not isinstance(layer, keras.Model):
            out.append((layer, name, depth))
    return out


def _state_sizes(cell) -> list[int]:
    size = cell.state_size
    sizes = list(size) if isinstance(size, (list, tuple)) else [size]
    return [int(s) for s in sizes]


class _Perturbed:
    """While active: ``layer``'s input carries zero channels its cell adds to its new states."""

    def __init__(self, layer, tape):
        self.layer, self.cell, self.tape = layer, layer.cell, tape
        self.sizes = _state_sizes(self.cell)
        self.inputs = self.eps = None

    def __enter__(self):
        import tensorflow as tf

        layer_call, cell_call, sizes = self.layer.call, self.cell.call, self.sizes

        def call(sequences, *args, **kwargs):
            self.tape.watch(sequences)
            self.inputs = sequences
            shape = tf.concat([tf.shape(sequences)[:2], [sum(sizes)]], axis=0)
            self.eps = tf.zeros(shape, dtype=sequences.dtype)
            self.tape.watch(self.eps)
            return layer_call(tf.concat([sequences, self.eps], axis=-1), *args, **kwargs)

        def step(inputs, states, *args, **kwargs):
            width = inputs.shape[-1] - sum(sizes)
            x, e = inputs[..., :width], inputs[..., width:]
            output, new_states = cell_call(x, states, *args, **kwargs)
            single = not isinstance(new_states, (list, tuple))
            parts = tf.split(e, sizes, axis=-1)
            states_out = [s + p for s, p in zip([new_states] if single else list(new_states), parts)]
            return output + parts[0], (states_out[0] if single else states_out)

        compat.wrap(self.layer, "call", call)
        compat.wrap(self.cell, "call", step)
        return self

    def __exit__(self, *exc):
        for obj in (self.layer, self.cell):
            compat.unwrap(obj, "call")
        return False


def time_gradients(model, x, y, sample_weight=None, layers=None) -> list[tuple[str, int, dict]]:
    """``(layer name, depth, {"h": norms, "c": norms, "input": norms})`` of each recurrent layer,
    each an array of ``||dL/d.||`` per time step, on ``(x, y)`` at the model's current weights.

    Args:
        model: a compiled Keras model (its loss is used) with recurrent layers.
        x, y: a batch and its targets.
        layers: ``(layer, name, depth)`` from :func:`recurrent_layers` (default: all).
    """
    return TimeGradientProbe(model, recurrent_layers(model) if layers is None else layers)(x, y, sample_weight)


class TimeGradientProbe:
    """:func:`time_gradients` for the same model again and again (each epoch end): one traced
    function per layer, traced on the first call (the probe batch keeps its shape), so an epoch
    end costs one forward/backward pass per recurrent layer instead of an eager, step-by-step one.
    """

    def __init__(self, model, layers):
        self.model = model
        self.layers = [entry for entry in layers if len(_state_sizes(entry[0].cell)) <= len(STATE_NAMES)
                       and not getattr(entry[0], "stateful", False)]
        self._functions: dict = {}

    def __call__(self, x, y, sample_weight=None) -> list[tuple[str, int, dict]]:
        out = []
        for layer, name, depth in self.layers:  # one pass per layer: its perturbation alone is active
            if id(layer) not in self._functions:
                self._functions[id(layer)] = TracedOnce(functools.partial(_norms, self.model, layer))
            norms = self._functions[id(layer)](x, y, sample_weight)
            if norms:
                out.append((name, depth, {k: np.asarray(v, dtype=np.float64) for k, v in norms.items()}))
        return out


def _norms(model, layer, x, y, sample_weight=None) -> dict:
    """``{"h": ||dL/dh_t||, "c": ..., "input": ||dL/dx_t||}`` (tensors over t) of one layer ({} if it did not run)."""
    import tensorflow as tf

    with tf.GradientTape(persistent=True) as tape:
        with _Perturbed(layer, tape) as probe:
            y_pred = model(x, training=False)
        loss = model.compute_loss(x=x, y=y, y_pred=y_pred, sample_weight=sample_weight)
    if probe.eps is None:
        return {}
    g_eps, g_in = tape.gradient(loss, [probe.eps, probe.inputs])
    del tape
    norms = {state: _norm_per_step(part) for state, part in zip(STATE_NAMES, tf.split(g_eps, probe.sizes, axis=-1))}
    if g_in is not None:
        norms["input"] = _norm_per_step(g_in)
    return norms


def time_records(run: str, step: int, epoch: int, measured) -> "pd.DataFrame":
    """Records of :func:`time_gradients`' output: metric ``time_grad_norm``, ``variable`` the state
    (``h``, ``c``) or ``input``, ``time`` the step index."""
    from gradscope import records as rec

    rows = [(run, step, epoch, name, depth, variable, TIME_METRIC, float(v), t)
            for name, depth, grads in measured for variable, norms in grads.items() for t, v in enumerate(norms)]
    return rec.from_rows(rows) if rows else rec.empty()


def _norm_per_step(g):
    """L2 norm over the batch and units of a ``(batch, time, units...)`` gradient, per time step (float64)."""
    import tensorflow as tf

    g = tf.cast(g, tf.float64)
    return tf.sqrt(tf.reduce_sum(tf.square(tf.reshape(g, tf.concat([tf.shape(g)[:2], [-1]], 0))), axis=[0, 2]))
