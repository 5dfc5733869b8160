"""GradientMonitor on a model of your own: a Functional classifier of scikit-learn's 8x8 digits.

Trains the same small network twice, once as a newcomer might write it (sigmoid hidden layers,
N(0, 1) weights) and once with the textbook fix (ReLU, He initialisation), each monitored into
its own run directory, then evaluates them, adds the test accuracy and a tag to each run, and
renders one report of both:

    python docs/examples/own_model.py --out reports/example-own-model
    gradscope report reports/example-own-model

Nothing here is specific to gradscope but the three lines marked "gradscope".
"""

import argparse

import keras
import tensorflow as tf
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from gradscope import GradientMonitor, audit  # gradscope (1 of 3)

parser = argparse.ArgumentParser()
parser.add_argument("--out", default="reports/example-own-model")
parser.add_argument("--epochs", type=int, default=30)
args = parser.parse_args()

tf.config.experimental.enable_op_determinism()  # the same numbers on every run
x, y = load_digits(return_X_y=True)
x = (x / 16.0).astype("float32")
x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=0.3, random_state=0, stratify=y)


def classifier(activation, initializer, name):
    keras.utils.set_random_seed(0)
    initializer = keras.initializers.get(initializer)  # built after the seed: the same weights every time
    inputs = keras.Input((64,), name="pixels")
    h = keras.layers.Dense(128, activation=activation, kernel_initializer=initializer, name="dense_a")(inputs)
    h = keras.layers.Dense(128, activation=activation, kernel_initializer=initializer, name="dense_b")(h)
    h = keras.layers.Dense(64, activation=activation, kernel_initializer=initializer, name="dense_c")(h)
    outputs = keras.layers.Dense(10, activation="softmax", name="head")(h)
    model = keras.Model(inputs, outputs, name=name)
    model.compile(optimizer=keras.optimizers.SGD(0.05), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


for run, activation, initializer in (("digits-sigmoid-normal", "sigmoid", {"class_name": "RandomNormal",
                                                                           "config": {"stddev": 1.0}}),
                                     ("digits-relu-he", "relu", "he_normal")):
    model = classifier(activation, initializer, name=run.replace("-", "_"))
    print(run, "before training:", audit(model, x_train, y_train) or "no problem predicted")
    monitor = GradientMonitor(run=run, run_dir=f"{args.out}/runs/{run}")  # gradscope (2 of 3)
    model.fit(x_train, y_train, batch_size=32, epochs=args.epochs, validation_split=0.2, callbacks=[monitor], verbose=0)
    loss, accuracy = model.evaluate(x_test, y_test, verbose=0)
    monitor.add_to_run(metrics={"test_accuracy": accuracy}, tags={"data": "scikit-learn digits (8x8)"})  # gradscope (3 of 3)
    print(f"{run}: test accuracy {accuracy:.4f}")
