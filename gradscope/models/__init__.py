"""Models: the seed course's MLP, in Keras and as a TF1 graph, with any activation and initialiser.

Importing this package does not import TensorFlow; building a model does.
"""

from gradscope.models.initializers import check_activation, make_initializer, make_tf1_initializer
from gradscope.models.mlp import build_mlp
from gradscope.models.tf1_mlp import Tf1Mlp, build_tf1_mlp

__all__ = ["build_mlp", "build_tf1_mlp", "Tf1Mlp", "check_activation", "make_initializer", "make_tf1_initializer"]
