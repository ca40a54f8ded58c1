"""NumPy reference implementation of the layers, losses and optimisers, for teaching and for testing the fast path.

Plain float64 NumPy, readable first. Layers are ``*_forward(x, ...) -> (out, cache)`` and
``*_backward(dout, cache) -> grads`` pairs (:mod:`cnnlab.reference.layers`); losses return
``(loss, dscores)`` (:mod:`~cnnlab.reference.losses`); optimisers are one update function each
(:mod:`~cnnlab.reference.optim`); :func:`gradcheck` compares a backward pass with centred
differences; :class:`LeNet5` is assembled from these pieces and trained by
``cnnlab reference-train``.
"""

from cnnlab.reference.gradient_check import gradcheck, numerical_gradient, relative_error
from cnnlab.reference.lenet import LeNet5
from cnnlab.reference.train import ReferenceTrainConfig, fit_lenet

__all__ = [
    "gradcheck",
    "numerical_gradient",
    "relative_error",
    "LeNet5",
    "ReferenceTrainConfig",
    "fit_lenet",
]
