"""The seed course's TF 1.x MNIST MLP, run with tf.compat.v1, recorded by gradscope.

Written for gradscope (not copied from the course notes): placeholders, get_variable kernels
with He initialisation, N(0, 1) biases, ReLU, GradientDescentOptimizer(0.1) and a sess.run loop
over the whole training set. The three lines marked "gradscope" are all it takes to record it.

    python docs/examples/seed_tf1_mlp.py --data ../shared/data/mnist.npz --steps 3000
    gradscope report reports/seed-tf1
"""

import argparse

import numpy as np
import tensorflow as tf

from gradscope import SessionRecorder, data  # gradscope (1 of 3)

parser = argparse.ArgumentParser()
parser.add_argument("--data", default="sample")
parser.add_argument("--steps", type=int, default=3000)
parser.add_argument("--out", default="reports/seed-tf1")
args = parser.parse_args()

ds = data.load(args.data)  # flattened, MinMaxScaler-ed, split like the seed
train_x, test_x = ds.x_train, ds.x_test
train_t, test_t = np.eye(10)[ds.y_train], np.eye(10)[ds.y_test]

tf1 = tf.compat.v1
graph = tf.Graph()
with graph.as_default():
    X = tf1.placeholder(tf.float32, shape=[None, 784])
    T = tf1.placeholder(tf.float32, shape=[None, 10])

    def dense(inputs, name, n_in, n_out):
        w = tf1.get_variable(name, shape=[n_in, n_out], initializer=tf1.variance_scaling_initializer(2.0))
        b = tf1.Variable(tf1.random_normal([n_out]))
        return tf.matmul(inputs, w) + b

    h2 = tf.nn.relu(dense(X, "weight2", 784, 512))
    h3 = tf.nn.relu(dense(h2, "weight3", 512, 256))
    h4 = tf.nn.relu(dense(h3, "weight4", 256, 128))
    logit = dense(h4, "weight5", 128, 10)
    loss = tf.reduce_mean(tf.nn.softmax_cross_entropy_with_logits(logits=logit, labels=T))
    train = tf1.train.GradientDescentOptimizer(learning_rate=0.1).minimize(loss)
    recorder = SessionRecorder(train, run="seed-tf1", run_dir=f"{args.out}/runs/seed-tf1")  # gradscope (2 of 3)
    accuracy = tf.reduce_mean(tf.cast(tf.equal(tf.argmax(logit, 1), tf.argmax(T, 1)), tf.float32))

    sess = tf1.Session(graph=graph)
    sess.run(tf1.global_variables_initializer())
    for step in range(args.steps):
        _, loss_val = recorder.run(sess, [train, loss], feed_dict={X: train_x, T: train_t})  # gradscope (3 of 3)
        if step % 300 == 0:
            print(f"step {step}: loss {loss_val:.4f}")
    print("test accuracy:", sess.run(accuracy, feed_dict={X: test_x, T: test_t}))
