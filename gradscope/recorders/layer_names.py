"""How gradscope names Keras layers and their variables, and orders them from input to output."""

from __future__ import annotations

from gradscope.recorders.keras_compat import is_model, own_trainable_variables, sub_layers, variable_name, variable_path


def walk_layers(model):
    """Yield ``(name, layer)`` for the layers of ``model``, input side first.

    Nested models are walked recursively and their layers' names prefixed with the model's
    name (``encoder/dense``). Other layers are yielded whole, even when they are built from
    sub-layers (an LSTM and its cell, an attention layer and its projections). A shared layer
    is yielded once.
    """
    seen = set()

    def walk(layer, name):
        if id(layer) in seen:
            return
        seen.add(id(layer))
        yield name, layer
        if is_model(layer):
            for sub in sub_layers(layer):
                yield from walk(sub, f"{name}/{sub.name}")

    for sub in sub_layers(model):
        yield from walk(sub, sub.name)


def _own_variables(layer, prefix=""):
    """Trainable variables of a layer and its non-model sub-layers, with their inner paths."""
    for v in own_trainable_variables(layer):
        yield f"{prefix}{variable_name(v)}", v
    for sub in sub_layers(layer):
        if not is_model(sub):
            yield from _own_variables(sub, f"{prefix}{sub.name}/")


def layer_table(model) -> dict[int, tuple[str, int, str]]:
    """Map ``id(variable)`` of each trainable variable to ``(layer, depth, variable)``.

    ``layer`` is the Keras layer name (prefixed for nested models), ``depth`` counts the layers
    that own trainable variables from the input (0) toward the output in the model's layer order
    (topological for Functional models), and ``variable`` is the variable's short name
    (``kernel``), or its path inside the layer when the short name repeats there
    (``query/kernel`` in an attention layer).
    """
    table: dict[int, tuple[str, int, str]] = {}
    depths: dict[str, int] = {}

    def add(layer_name, variable, short):
        if id(variable) in table:
            return
        depth = depths.setdefault(layer_name, len(depths))
        table[id(variable)] = (layer_name, depth, short)

    for name, layer in walk_layers(model):
        if is_model(layer):
            owned = [(variable_name(v), v) for v in own_trainable_variables(layer)]
        else:
            owned = list(_own_variables(layer))
        counts: dict[str, int] = {}
        for _, v in owned:
            counts[variable_name(v)] = counts.get(variable_name(v), 0) + 1
        for path, v in owned:
            add(name, v, variable_name(v) if counts[variable_name(v)] == 1 else path)
    for v in own_trainable_variables(model):
        add(model.name, v, variable_name(v))
    for v in model.trainable_variables:  # tracked some other way: use the variable's path
        if id(v) not in table:
            path = variable_path(v)
            add(path.rsplit("/", 1)[0] if "/" in path else model.name, v, variable_name(v))
    return table
