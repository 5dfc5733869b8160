"""Write the first 42,000 images of ../shared/data/mnist.npz's training set as a Kaggle
digit-recognizer CSV (label, pixel0..pixel783): the stand-in for the seed's train.csv.

    python docs/examples/mnist42k.py ../shared/data/mnist.npz mnist42k.csv
"""

import sys

import numpy as np
import pandas as pd

source, target = (sys.argv[1:] + ["../shared/data/mnist.npz", "mnist42k.csv"][len(sys.argv) - 1:])[:2]
data = np.load(source)
x, y = data["x_train"][:42000].reshape(42000, -1), data["y_train"][:42000]
frame = pd.DataFrame(x, columns=[f"pixel{i}" for i in range(784)])
frame.insert(0, "label", y)
frame.to_csv(target, index=False)
print(f"{target}: {frame.shape[0]} images")
