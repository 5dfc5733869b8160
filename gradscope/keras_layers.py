"""How gradscope names Keras layers and orders them from input to output."""

from __future__ import annotations


def tf_variable(variable):
    """The backend ``tf.Variable`` behind a Keras variable (or the argument itself)."""
    import keras

    return variable.value if isinstance(variable, keras.Variable) else variable


def walk_layers(model):
    """Yield ``(name, layer)`` for every layer below ``model``, input side first.

    Nested models and layers with sub-layers are walked recursively; their names are prefixed
    with the enclosing layer's name (``encoder/dense``). A shared layer is yielded once.
    """
    seen = set()

    def walk(layer, name):
        if id(layer) in seen:
            return
        seen.add(id(layer))
        yield name, layer
        for sub in getattr(layer, "_layers", []) or []:
            yield from walk(sub, f"{name}/{sub.name}")

    for sub in getattr(model, "_layers", []) or []:
        yield from walk(sub, sub.name)


def layer_table(model) -> dict[int, tuple[str, int, str]]:
    """Map ``id(variable)`` of each trainable variable to ``(layer, depth, variable)``.

    ``layer`` is the Keras layer name (prefixed for nested models), ``depth`` counts the layers
    that own trainable variables from the input (0) toward the output in the model's layer order
    (topological for Functional models), and ``variable`` is the variable's short name.
    """
    table: dict[int, tuple[str, int, str]] = {}
    depths: dict[str, int] = {}

    def add(layer_name, variable):
        if id(variable) in table:
            return
        depth = depths.setdefault(layer_name, len(depths))
        table[id(variable)] = (layer_name, depth, variable.name)

    for name, layer in walk_layers(model):
        for v in getattr(layer, "_trainable_variables", []):
            if v.trainable:
                add(name, v)
    for v in getattr(model, "_trainable_variables", []):
        if v.trainable:
            add(model.name, v)
    for v in model.trainable_variables:  # tracked some other way: use the variable's path
        if id(v) not in table:
            path = getattr(v, "path", v.name)
            add(path.rsplit("/", 1)[0] if "/" in path else model.name, v)
    return table
