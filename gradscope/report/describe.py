"""A run in words for the report's tables: what it trained, how, and on what.

Works for runs of ``gradscope analyze`` (their ``config`` names the activation, init, optimizer,
epochs and data) and for own-model runs (the monitor's ``model``, ``optimizer`` and
``training`` sections say the same things). A value that is not known says what is missing
and how to add it; nothing is shown as "?".

Example:
    >>> meta = {"config": {}, "model": {"class": "Functional", "name": "my_classifier", "params": 1234,
    ...         "layers": [{"name": "a", "class": "Dense", "activation": "relu", "params": 1000},
    ...                    {"name": "b", "class": "Dense", "activation": "tanh", "params": 200},
    ...                    {"name": "head", "class": "Dense", "activation": "softmax", "params": 34}]},
    ...         "optimizer": {"class": "Adam", "learning_rate": 0.003}}
    >>> d = describe(meta)
    >>> d["model"]
    'Functional my_classifier: 2 Dense + Dense head, 1,234 params, Adam 0.003'
    >>> d["activation"]
    'a: relu, b: tanh (head: softmax)'
    >>> d["data"]
    'not recorded: add_to_run(tags={"data": ...})'
"""

from __future__ import annotations

from gradscope.vocabulary import fmt

NOT_DESCRIBED = "not recorded (the run has no model description)"


#: Layers that only apply an activation: a linear layer followed by one of them has its activation.
ACTIVATION_LAYERS = {"Activation": None, "ReLU": "relu", "Softmax": "softmax", "LeakyReLU": "leaky_relu",
                     "ELU": "elu", "PReLU": "prelu"}


def _with_activation_layers(layers: list) -> list:
    """The layers, each linear one followed (in the model's layer order) by an activation layer
    (``Dense(n)`` then ``Activation("tanh")``) given that activation.

    Example:
        >>> [l.get("activation") for l in _with_activation_layers([
        ...     {"class": "Dense", "activation": "linear", "params": 10}, {"class": "Activation", "activation": "tanh"},
        ...     {"class": "Dense", "activation": "linear", "params": 3}, {"class": "Softmax"}])]
        ['tanh', 'tanh', 'softmax', None]
    """
    out = [dict(layer) for layer in layers]
    for i, layer in enumerate(out[:-1]):
        after = out[i + 1]
        if layer.get("params") and layer.get("activation") in (None, "linear") and after.get("class") in ACTIVATION_LAYERS:
            layer["activation"] = after.get("activation") or ACTIVATION_LAYERS[after["class"]] or layer.get("activation")
    return out


def _hidden_and_heads(model: dict):
    """The layers with weights before the output layers, and the output layers (the last such layer
    unless the model names several outputs); a linear layer followed by an activation layer has
    that activation."""
    layers = [layer for layer in _with_activation_layers(model.get("layers", [])) if layer.get("params")]
    outputs = model.get("outputs") or []
    heads = [layer for layer in layers if layer["name"] in outputs]
    if len(heads) > 1:
        return [layer for layer in layers if layer["name"] not in outputs], heads
    return (layers[:-1], layers[-1:]) if layers else ([], [])


def _heads_value(heads, key) -> str | None:
    """``softmax`` for one head, ``cls softmax, reg linear`` for several (None when nothing is known)."""
    values = [(head["name"], head[key]) for head in heads if head.get(key)]
    if not values:
        return None
    return values[0][1] if len(heads) == 1 else ", ".join(f"{name} {v}" for name, v in values)


def _heads_text(heads, key) -> str:
    """`` (head: softmax)`` or `` (heads: cls softmax, reg linear)`` (empty when nothing is known)."""
    value = _heads_value(heads, key)
    return "" if value is None else f" ({'head' if len(heads) == 1 else 'heads'}: {value})"


def _per_layer(hidden, key) -> str | None:
    """One value when every hidden layer has the same, else ``name: value`` for each."""
    values = [(layer["name"], layer[key]) for layer in hidden if layer.get(key)]
    if not values:
        return None
    distinct = {v for _, v in values}
    if len(distinct) == 1:
        return values[0][1]
    return ", ".join(f"{name}: {v}" for name, v in values)


def _optimizer_text(optimizer: dict | None) -> str | None:
    if not optimizer:
        return None
    lr = optimizer.get("learning_rate")
    if isinstance(lr, dict):
        start = lr.get("initial_learning_rate")
        rate = f"{lr.get('schedule', 'schedule')}" + (f" from {fmt(start)}" if start is not None else "")
    else:
        rate = fmt(lr) if lr is not None else "lr not recorded"
    if optimizer.get("learning_rate_end") is not None:
        rate += f" (down to {fmt(optimizer['learning_rate_end'])})" if lr is not None and \
            optimizer["learning_rate_end"] < lr else f" (ended at {fmt(optimizer['learning_rate_end'])})"
    return f"{optimizer.get('class', 'optimizer')} {rate}"


def _model_line(meta: dict) -> str:
    model = meta.get("model")
    config = meta.get("config") or {}
    if not model:
        layers = config.get("layers")
        return f"MLP {'-'.join(map(str, layers))}" if layers else NOT_DESCRIBED
    hidden, heads = _hidden_and_heads(model)
    counts: dict = {}
    for layer in hidden:
        counts[layer["class"]] = counts.get(layer["class"], 0) + 1
    body = ", ".join(f"{n} {cls}" for cls, n in counts.items())
    head = (f"{heads[0]['class']} head" if len(heads) == 1 else
            f"{len(heads)} heads ({', '.join(h['class'] for h in heads)})" if heads else "")
    shape = " + ".join(part for part in (body, head) if part) or "no trainable layers"
    params = model.get("params")
    text = f"{model.get('class', 'Model')} {model.get('name', '')}: {shape}"
    if params is not None:
        text += f", {params:,} params"
    opt = _optimizer_text(meta.get("optimizer"))
    return text + (f", {opt}" if opt else "")


def _plain(name: str) -> str:
    """An initializer's name without case and underscores (``Zeros`` is ``zeros``)."""
    return str(name).lower().replace("_", "")


def describe(meta: dict) -> dict:
    """``model``, ``activation``, ``init``, ``optimizer``, ``training`` and ``data`` of a run, as text."""
    config = meta.get("config") or {}
    model = meta.get("model") or {}
    hidden, heads = _hidden_and_heads(model)
    head_act = _heads_text(heads, "activation")

    act = config.get("act") or _per_layer(hidden, "activation")
    act = (act + head_act) if act else (f"none{head_act}" if model else NOT_DESCRIBED)
    head_inits = {h.get("kernel_initializer") for h in heads if h.get("kernel_initializer")}
    init = config.get("init") or _per_layer(hidden, "kernel_initializer")
    if init and head_inits and {_plain(i) for i in head_inits} != {_plain(init)}:
        init += _heads_text(heads, "kernel_initializer")
    head_init = _heads_value(heads, "kernel_initializer")  # alone when the hidden layers say nothing
    if head_init and len(heads) > 1:
        head_init = f"heads: {head_init}"
    init = init or head_init or ("no kernels" if model else NOT_DESCRIBED)

    if config.get("optimizer"):
        optimizer = f"{config['optimizer']} (lr {fmt(config.get('lr'))})"
    else:
        optimizer = _optimizer_text(meta.get("optimizer")) or "not recorded (no optimizer description)"

    training = meta.get("training") or {}
    if config.get("full_batch"):
        train_text = f"{config.get('epochs')} full-batch steps"
    elif config.get("epochs"):
        train_text = f"{config['epochs']} epochs, batch {config.get('batch_size', 'not recorded')}"
    elif training:
        epochs = training.get("epochs")
        steps = training.get("steps_per_epoch")
        batch = training.get("batch_size")
        fits = training.get("fits") or 1
        done = (meta.get("progress") or {}).get("epochs_done")
        if epochs and meta.get("status") == "complete" and isinstance(done, int) and done < epochs:
            train_text = f"{done} of {epochs} epochs (stopped early)"  # EarlyStopping, stop_training
        else:
            train_text = (f"{epochs} epochs" if epochs else "epochs not known")
        if fits > 1:  # fits of different lengths: steps per epoch is only the last fit's
            train_text += f" in {fits} fits"
            last_step = (meta.get("progress") or {}).get("last_step")
            train_text += f" ({last_step + 1:,} steps)" if isinstance(last_step, int) else ""
        elif steps:
            train_text += f" of {steps} steps"
        sizes = training.get("batch_sizes")
        if not batch:
            train_text += ", batch size not known (fit was not given it, and no batch was seen)"
        else:
            train_text += f", batches of {', then '.join(map(str, sizes))}" if sizes else f", batch {batch}"
    else:
        train_text = "not recorded (no training description)"

    data = (config.get("data") or {}).get("source") or (meta.get("tags") or {}).get("data") \
        or (meta.get("tags") or {}).get("dataset") or 'not recorded: add_to_run(tags={"data": ...})'
    return {"model": _model_line(meta), "activation": act, "init": init, "optimizer": optimizer,
            "training": train_text, "data": data}
