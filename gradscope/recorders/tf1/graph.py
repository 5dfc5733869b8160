"""Find, in a ``tf.compat.v1`` graph, the gradients a train op applies, and build their norms.

The train op that ``optimizer.minimize(loss)`` returns groups one *apply* op per variable
(``ResourceApplyGradientDescent``, ``ResourceApplyAdam``, ...), and each apply op takes the
gradient tensor as an input. :func:`build_step_stats` finds those ops and adds to the graph,
for each variable, the norm of that very gradient tensor (no second ``tf.gradients``), the
norm of the change the train op made (for gradient descent, read off the gradient's), and
the norm of the variable after the train op ran (fetched only on the steps that read it).

Layers are named after the variable scope (``dense_0/kernel`` -> layer ``dense_0``); variables
outside any scope (``tf.get_variable('weight2', ...)``) are grouped by depth and named after
their weight variable. ``depth`` is measured in the graph: the number of matrix-multiply or
convolution ops on the longest path from an input (placeholder or dataset iterator) to the op
that consumes the variable, minus one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import tensorflow as tf

from gradscope.recorders.reductions import REDUCTIONS, reduction_of
from gradscope.recorders import tf_ops
from gradscope.recorders.schedule import DEFAULT_EVERY_STEP, Plan
from gradscope.recorders.step_rows import SMALL_VARIABLE
from gradscope.vocabulary import METRICS

_APPLY = re.compile(r"^(Resource)?(Sparse)?Apply[A-Z]\w*$")
_LAYER_OPS = {"MatMul", "BatchMatMul", "BatchMatMulV2", "BatchMatMulV3", "Conv2D", "Conv3D",
              "Conv1D", "DepthwiseConv2dNative", "Einsum", "Conv2DBackpropInput"}
_SOURCES = {"Placeholder", "PlaceholderWithDefault", "IteratorGetNext", "IteratorGetNextSync"}
_READS = {"ReadVariableOp", "Identity", "Enter"}


@dataclass
class StepStats:
    """Graph tensors that measure one train step, and what each row of them means.

    Attributes:
        stats: float32 tensor of shape ``(n_variables, len(columns))``, one column per metric
            measured at every recorded step. Fetch it in the same ``run`` as the train op.
        columns: the metric of each column (in :data:`gradscope.vocabulary.MEASURED_METRICS` order).
        weights: the weight norms after the train op, fetched on the steps that read them.
        variables: the variables, in row order.
        meta: ``(layer, depth, variable)`` for each row.
        update_rule: per variable, how the update is measured (``lr*grad`` or ``difference``).
    """

    stats: tf.Tensor
    columns: tuple
    variables: list
    meta: list
    update_rule: list = field(default_factory=list)
    weights: tf.Tensor | None = None  # (n_variables,) weight norms after the train op, fetched now and then
    small: list = field(default_factory=list)  # rows of the small variables ...
    small_weights: tf.Tensor | None = None     # ... whose weight norms are fetched at every recorded step


def _is_backward(name: str) -> bool:
    return any(part.startswith("gradients") for part in name.split("/"))


def _variable_ops(variables):
    """Map the op that holds each variable (VarHandleOp or VariableV2) to the variable."""
    out = {}
    for v in variables:
        handle = getattr(v, "handle", None)
        op = handle.op if handle is not None and hasattr(handle, "op") else v.op
        out[op] = v
    return out


def find_apply_ops(train_op) -> list:
    """The optimizer apply ops that ``train_op`` runs (found through its inputs)."""
    if isinstance(train_op, tf.Tensor):
        train_op = train_op.op
    seen, stack, found = set(), [train_op], []
    while stack:
        op = stack.pop()
        if op in seen:
            continue
        seen.add(op)
        if _APPLY.match(op.type):
            found.append(op)
            continue  # its inputs are the backward pass: no need to walk them
        stack.extend(op.control_inputs)
        stack.extend(t.op for t in op.inputs)
    return found


def _input(op, *names):
    arg_names = [a.name for a in op.op_def.input_arg]
    for name in names:
        if name in arg_names:
            return op.inputs[arg_names.index(name)]
    return None


def graph_depths(graph, variables) -> dict:
    """Depth of each variable: matmul/conv ops from an input to its forward consumer, minus one."""
    count: dict = {}
    ops = [op for op in graph.get_operations() if not _is_backward(op.name)]
    sources = [op for op in ops if op.type in _SOURCES] or [op for op in ops if not op.inputs]
    for op in sources:
        count[op] = 0
    for op in ops:  # ops are created after their inputs: creation order is topological
        reached = [count[t.op] for t in op.inputs if t.op in count]
        if reached:
            here = max(reached) + (1 if op.type in _LAYER_OPS else 0)
            count[op] = max(count.get(op, 0), here)
    depths = {}
    for var_op, var in _variable_ops(variables).items():
        reached = [count[op] for op in _forward_consumers(var_op) if op in count]
        depths[id(var)] = max(max(reached) - 1, 0) if reached else None
    return depths


def _forward_consumers(var_op) -> list:
    """The forward-pass ops that use a variable's value (looking through read ops)."""
    frontier, visited, found = [var_op], set(), []
    while frontier:
        op = frontier.pop()
        for out in op.outputs:
            for consumer in out.consumers():
                if consumer in visited or _is_backward(consumer.name):
                    continue
                visited.add(consumer)
                if consumer.type in _READS:
                    frontier.append(consumer)
                else:
                    found.append(consumer)
    return found


def layer_meta(graph, variables) -> list[tuple[str, int, str]]:
    """``(layer, depth, variable)`` for each variable, from scopes and the graph."""
    depths = graph_depths(graph, variables)
    known = sorted({d for d in depths.values() if d is not None})
    rank = {d: i for i, d in enumerate(known)}
    meta = []
    unscoped_kernels: dict[int, list[str]] = {}
    for v in variables:
        name = v.name.split(":")[0]
        depth = depths.get(id(v))
        depth = rank[depth] if depth is not None else len(known)
        if "/" in name:
            layer, short = name.rsplit("/", 1)
        else:
            layer, short = None, _role(graph, v) or name
            if short == "kernel":
                unscoped_kernels.setdefault(depth, []).append(name)
        meta.append([layer, depth, short, name])
    for row in meta:
        if row[0] is None:
            kernels = unscoped_kernels.get(row[1], [])
            row[0] = kernels[0] if len(kernels) == 1 else f"layer{row[1]}"
            if row[2] not in ("kernel", "bias"):
                row[2] = row[3]
    return [(layer, depth, short) for layer, depth, short, _ in meta]


def _role(graph, var) -> str | None:
    """``kernel`` if the variable feeds a matmul/conv in the forward pass, ``bias`` if it is a
    vector added to something, else None."""
    var_op = next(iter(_variable_ops([var])))
    consumer_types = {op.type for op in _forward_consumers(var_op)}
    if consumer_types & _LAYER_OPS:
        return "kernel"
    if consumer_types & {"Add", "AddV2", "BiasAdd"} and len(var.shape) == 1:
        return "bias"
    return None


def build_step_stats(train_op, graph=None, every_step=DEFAULT_EVERY_STEP) -> StepStats:
    """Add the norm tensors of one train step to the graph.

    Args:
        train_op: what ``optimizer.minimize(...)`` (or ``apply_gradients``) returned.
        graph: the graph (default: the train op's).
        every_step: the metrics measured at every recorded step (the update is always among
            them; ``"all"`` adds the weight norms), as for the Keras monitor.

    Raises:
        ValueError: if no optimizer apply op can be found behind ``train_op``.
    """
    graph = graph or train_op.graph
    with graph.as_default():
        apply_ops = find_apply_ops(train_op)
        candidates = graph.get_collection(tf.compat.v1.GraphKeys.TRAINABLE_VARIABLES) or \
            graph.get_collection(tf.compat.v1.GraphKeys.GLOBAL_VARIABLES)
        var_ops = _variable_ops(candidates)
        rows = []
        for op in apply_ops:
            var = var_ops.get(op.inputs[0].op)
            if var is None:
                continue
            grad = _input(op, "grad", "delta")
            if grad is None:
                continue
            indices = _input(op, "indices") if "Sparse" in op.type else None
            rows.append((var, op, grad, indices))
        if not rows:
            raise ValueError(
                "found no optimizer update behind this train op; pass the op that "
                "optimizer.minimize(loss) or optimizer.apply_gradients(...) returned"
            )
        order = {v.ref(): i for i, v in enumerate(candidates)}
        rows.sort(key=lambda r: order.get(r[0].ref(), len(order)))
        variables = [r[0] for r in rows]
        meta = layer_meta(graph, variables)
        by_depth = sorted(range(len(rows)), key=lambda i: (meta[i][1], i))
        rows = [rows[i] for i in by_depth]
        variables = [variables[i] for i in by_depth]
        meta = [meta[i] for i in by_depth]

        columns = Plan.of(every_step=every_step).with_measured("update_norm").every_step
        reduced = {name: [] for name in columns}
        scales = {name: [] for name in columns}  # per row: a factor the column's value is multiplied by, or None
        weights = []
        rules = []
        factors = {}

        def factor(alpha, power):  # |alpha| ** power, built once per learning-rate tensor
            key = (alpha.ref(), power)
            if key not in factors:
                a = tf.cast(alpha, tf.float32)
                factors[key] = tf.square(a) if power == 2 else tf.abs(a) ** power
            return factors[key]

        with tf.name_scope("gradscope"):
            for var, op, grad, indices in rows:
                if indices is not None:
                    unique, seg = tf.unique(indices)
                    grad = tf.math.unsorted_segment_sum(grad, seg, tf.shape(unique)[0])
                alpha = _input(op, "alpha") if op.type in ("ResourceApplyGradientDescent", "ApplyGradientDescent") else None
                before = None
                if alpha is None:
                    before = tf.identity(var.read_value() if hasattr(var, "read_value") else var)
                    op._add_control_input(before.op)  # snapshot before the update
                rules.append("lr*grad" if alpha is not None else "difference")
                with tf.control_dependencies([train_op]):
                    after = tf.identity(var.read_value() if hasattr(var, "read_value") else var)
                weights.append(tf_ops.graph(REDUCTIONS["l2"])(after))
                of_grad = {}
                for name in columns:
                    source, reduction = METRICS[name].source, reduction_of(name)
                    scale = None
                    if source == "grad" or (source == "update" and alpha is not None):
                        if id(reduction) not in of_grad:
                            of_grad[id(reduction)] = tf_ops.graph(reduction)(grad)
                        value = of_grad[id(reduction)]
                        if source == "update":  # gradient descent applies exactly alpha * grad
                            scale = factor(alpha, reduction.power)
                    elif source == "weight":
                        value = tf_ops.graph(reduction)(after)
                    else:
                        value = tf_ops.graph(reduction)(after - before)
                    reduced[name].append(value)
                    scales[name].append(scale)
            stacked = {}  # columns of the same tensors (the gradient's, read for its norm and its update) stack once
            finished = []
            for name in columns:
                key = tuple(id(t) for t in reduced[name])
                if key not in stacked:
                    stacked[key] = tf.stack(reduced[name])
                column = stacked[key]
                factors_of = scales[name]
                if any(f is not None for f in factors_of):  # one multiply per column, not three ops per variable
                    same = all(f is factors_of[0] for f in factors_of)
                    column = column * (factors_of[0] if same else
                                       tf.stack([tf.constant(1.0) if f is None else f for f in factors_of]))
                finished.append(tf_ops.finish(reduction_of(name))(column))
            stats = tf.stack(finished, axis=1)
            weight_norms = tf_ops.finish(REDUCTIONS["l2"])(tf.stack(weights))
            small = [i for i, v in enumerate(variables) if v.shape.num_elements() is not None
                     and v.shape.num_elements() <= SMALL_VARIABLE] if "weight_norm" not in columns else []
            small_weights = tf_ops.finish(REDUCTIONS["l2"])(tf.stack([weights[i] for i in small])) if small else None
    return StepStats(stats=stats, columns=columns, variables=variables, meta=meta, update_rule=rules,
                     weights=weight_norms, small=small, small_weights=small_weights)
