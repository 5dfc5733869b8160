"""The seed course's TF 1.x MLP, rebuilt with ``tf.compat.v1`` in a graph of its own.

Placeholders for pixels and one-hot labels, ``get_variable`` kernels with the chosen
initialiser, N(0, 1) biases (as the seed had them), the chosen activation,
``softmax_cross_entropy_with_logits`` and ``GradientDescentOptimizer(lr).minimize(loss)``.
:mod:`gradscope.experiments.tf1_training` trains it in a plain ``sess.run`` loop.
"""

from __future__ import annotations

from dataclasses import dataclass

from gradscope.errors import GradscopeError
from gradscope.models.initializers import check_activation, make_tf1_initializer
from gradscope.data import N_CLASSES, N_PIXELS


@dataclass
class Tf1Mlp:
    """The tensors and ops of one TF1 MLP graph.

    Attributes:
        hidden: ``(layer name, depth, output tensor)`` of each hidden layer, input side first.
    """

    act: str
    graph: object
    x: object
    t: object
    loss: object
    accuracy: object
    train: object
    init: object
    hidden: list


def build_tf1_mlp(hidden, act, init, lr, optimizer="sgd", seed=0, n_inputs=N_PIXELS, n_classes=N_CLASSES) -> Tf1Mlp:
    """Build the seed MLP in a new ``tf.Graph``.

    Raises:
        GradscopeError: for an unknown activation, initialiser or optimizer.
    """
    import tensorflow as tf

    tf1 = tf.compat.v1
    activation = check_activation(act)
    graph = tf.Graph()
    with graph.as_default():
        tf1.set_random_seed(seed)
        x = tf1.placeholder(tf.float32, [None, n_inputs], name="X")
        t = tf1.placeholder(tf.float32, [None, n_classes], name="T")
        layer, hidden_out = x, []
        sizes = [n_inputs, *hidden, n_classes]
        for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
            last = i == len(sizes) - 2
            with tf1.variable_scope("output" if last else f"dense_{i}"):
                w = tf1.get_variable("kernel", shape=[n_in, n_out], initializer=make_tf1_initializer(init, seed + i))
                b = tf1.get_variable("bias", shape=[n_out],
                                     initializer=tf1.random_normal_initializer(0.0, 1.0, seed=seed + 100 + i))
                z = tf.matmul(layer, w) + b
                if not last:
                    layer = tf.convert_to_tensor(activation(z))
                    hidden_out.append((f"dense_{i}", i, layer))
        logits = z
        loss = tf.reduce_mean(tf.nn.softmax_cross_entropy_with_logits(logits=logits, labels=t))
        if optimizer == "sgd":
            opt = tf1.train.GradientDescentOptimizer(lr)
        elif optimizer == "adam":
            opt = tf1.train.AdamOptimizer(lr)
        else:
            raise GradscopeError(f"unknown optimizer {optimizer!r}; choose sgd or adam")
        train = opt.minimize(loss)
        correct = tf.equal(tf.argmax(logits, 1), tf.argmax(t, 1))
        accuracy = tf.reduce_mean(tf.cast(correct, tf.float32))
        init_op = tf1.global_variables_initializer()
    return Tf1Mlp(act=act, graph=graph, x=x, t=t, loss=loss, accuracy=accuracy, train=train, init=init_op,
                  hidden=hidden_out)
