"""A Keras model read as trials need it: its hidden kernel layers and their activations, its head, its cells.

An activation may be a layer's own (``Dense(64, activation="tanh")``) or a separate layer after
it (``Dense(64)`` then ``Activation("tanh")``); both read the same here, so that a model written
either way gets the same arms. Sequential and Functional models are read from their graph;
a subclassed model only from its layers' order (it is rebuilt by the user's ``model_fn``).

Example:
    >>> import keras
    >>> model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(4, name="d0"),
    ...                           keras.layers.Activation("sigmoid", name="a0"),
    ...                           keras.layers.Dense(3, name="head"), keras.layers.Softmax(name="sm")])
    >>> parts = read_model(model)
    >>> [(h.name, h.activation, h.act_layer.name) for h in parts.hidden], parts.head.activation
    ([('d0', 'sigmoid', 'a0')], 'softmax')
"""

from __future__ import annotations

from dataclasses import dataclass, field

from gradscope.recorders import keras_compat as compat
from gradscope.recorders.activation_probe import activation_name
from gradscope.recorders.layer_names import walk_layers

#: Layers that only pass their input on (no weights), which may sit between a head and the output.
_PASS_THROUGH = ("Activation", "ReLU", "LeakyReLU", "ELU", "Softmax", "Dropout", "Flatten", "Reshape",
                 "GaussianNoise", "GaussianDropout", "AlphaDropout", "SpatialDropout1D", "SpatialDropout2D")
#: Layers that are only an activation.
_ACTIVATION_LAYERS = ("Activation", "ReLU", "LeakyReLU", "ELU", "Softmax", "PReLU")
_NORMALISATION = ("BatchNormalization", "LayerNormalization", "GroupNormalization", "UnitNormalization")
_MERGES = ("Add", "Concatenate", "Average", "Multiply", "Subtract", "Maximum", "Minimum")
#: Recurrent layers with a kernel of their own (an ``RNN`` over a cell is read through its cell).
RECURRENT = ("SimpleRNN", "LSTM", "GRU", "RNN")


def has_kernel(layer) -> bool:
    return getattr(layer, "kernel", None) is not None and type(layer).__name__ not in RECURRENT


@dataclass
class KernelLayer:
    """A layer with a kernel, and the activation applied to its output (its own, or the next layer's)."""

    layer: object
    activation: str | None
    act_layer: object = None  # the separate activation layer, if that is where the activation is

    @property
    def name(self) -> str:
        return self.layer.name


@dataclass
class ModelParts:
    """What trials know about a model's structure.

    Attributes:
        kind: ``sequential``, ``functional`` or ``subclassed``.
        graph: a Functional model over the same layers (a Sequential model as a graph), to clone;
            None for a subclassed model.
        hidden: the kernel layers before the head, input side first.
        head: the kernel layer that makes the output, with the output activation.
        recurrent: the recurrent layers, and whether each is a plain (ungated) one.
        normalised: the model already normalises (BatchNormalization and its kin).
        merges: the model already merges paths (Add, Concatenate, ...).
        chain: every layer reads exactly one other layer (a plain stack).
        single_io: one input and one output.
    """

    model: object
    kind: str
    graph: object = None
    hidden: list = field(default_factory=list)
    head: KernelLayer | None = None
    recurrent: list = field(default_factory=list)
    normalised: bool = False
    merges: bool = False
    chain: bool = False
    single_io: bool = True

    @property
    def plain_recurrent(self) -> list:
        return [layer for layer in self.recurrent if _is_plain_cell(layer)]

    def hidden_names(self) -> list:
        return [h.name for h in self.hidden]


def _is_plain_cell(layer) -> bool:
    name = type(layer).__name__
    if name == "SimpleRNN":
        return True
    return name == "RNN" and type(getattr(layer, "cell", None)).__name__ == "SimpleRNNCell"


def _own_activation(layer) -> str | None:
    act = activation_name(layer)
    return None if act in (None, "linear") else act


def read_model(model) -> ModelParts:
    """Read a built Keras model's structure (see :class:`ModelParts`)."""
    import keras

    kind = ("sequential" if isinstance(model, keras.Sequential) else
            "functional" if compat.is_functional(model) else "subclassed")
    if kind == "subclassed":
        return _read_subclassed(model)
    if kind == "functional":
        graph = model
    else:  # a Sequential model as a graph over the same layers (one input and one output stay single tensors)
        inputs, outputs = model.inputs, model.outputs
        graph = keras.Model(inputs[0] if len(inputs) == 1 else inputs, outputs[0] if len(outputs) == 1 else outputs,
                            name=model.name)
    layers = [layer for layer in graph.layers if type(layer).__name__ != "InputLayer"]
    readers: dict[int, list] = {}
    for layer in layers:
        for parent in compat.producers(layer):
            readers.setdefault(id(parent), []).append(layer)

    def applied_activation(layer):
        own = _own_activation(layer)
        if own is not None:
            return own, None
        after = readers.get(id(layer), [])
        if len(after) == 1 and type(after[0]).__name__ in _ACTIVATION_LAYERS:
            return _own_activation(after[0]) or activation_name(after[0]), after[0]
        return None, None

    heads = []
    for producer in compat.output_producers(graph):
        layer = producer
        while layer is not None and not has_kernel(layer) and type(layer).__name__ in _PASS_THROUGH:
            parents = compat.producers(layer)
            layer = parents[0] if len(parents) == 1 else None
        heads.append(layer if layer is not None and has_kernel(layer) else None)
    head_layer = heads[0] if len(heads) == 1 else None
    head = None
    if head_layer is not None:
        act, act_layer = applied_activation(head_layer)
        head = KernelLayer(head_layer, act or "linear", act_layer)
    hidden = [KernelLayer(layer, *applied_activation(layer)) for layer in layers
              if has_kernel(layer) and layer is not head_layer]
    names = [type(layer).__name__ for layer in layers]
    return ModelParts(
        model=model, kind=kind, graph=graph, hidden=hidden, head=head,
        recurrent=[layer for layer in layers if type(layer).__name__ in RECURRENT],
        normalised=any(n in _NORMALISATION for n in names), merges=any(n in _MERGES for n in names),
        chain=all(len(compat.producers(layer)) == 1 for layer in layers),
        single_io=len(graph.inputs) == 1 and len(graph.outputs) == 1,
    )


def _read_subclassed(model) -> ModelParts:
    """A subclassed model: its kernel layers in the order it tracks them; the last one is the head."""
    layers = [layer for _, layer in walk_layers(model)]
    kernels = [layer for layer in layers if has_kernel(layer)]
    hidden = [KernelLayer(layer, _own_activation(layer)) for layer in kernels[:-1]]
    head = KernelLayer(kernels[-1], _own_activation(kernels[-1]) or "linear") if kernels else None
    names = [type(layer).__name__ for layer in layers]
    return ModelParts(model=model, kind="subclassed", hidden=hidden, head=head,
                      recurrent=[layer for layer in layers if type(layer).__name__ in RECURRENT],
                      normalised=any(n in _NORMALISATION for n in names), merges=False, chain=False)
