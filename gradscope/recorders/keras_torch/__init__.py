"""The step source of Keras 3 on PyTorch: each eager step measured as the optimizer applies it."""
