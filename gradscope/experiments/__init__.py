"""Experiments: plans of training runs, each recorded and saved (``analyze``, ``sweep``, ``paper``).

* :mod:`~gradscope.experiments.config`: the settings of a run and their defaults;
* :mod:`~gradscope.experiments.train`: one run, Keras (:mod:`~gradscope.experiments.tf1_training`
  for TF1 graphs), recorded and saved;
* :mod:`~gradscope.experiments.plans`: the grid and the depth sweep;
* :mod:`~gradscope.experiments.papers`: reproductions of Glorot & Bengio 2010 and He et al. 2015.

Importing this package does not import TensorFlow; training does.
"""
