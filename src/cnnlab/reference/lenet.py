"""LeNet-5 built only from the NumPy reference layers: forward, backward and loss, by hand.

The common modern variant of LeCun et al. (1998): ReLU instead of scaled tanh, max-pooling
instead of trainable subsampling, a full C3 connection table and a plain linear output in
place of the RBF units. 61,706 parameters for 10 classes on 1x32x32 input.
"""

from __future__ import annotations

import numpy as np

from cnnlab.errors import InputShapeError
from cnnlab.reference import layers as L
from cnnlab.reference.losses import softmax_cross_entropy

# The layers with parameters, named as in the zoo's `lenet5` (cnnlab.models.lenet) so that
# `params` loads into it with strict=True: (name, weight shape for 10 classes and 1 channel).
LAYERS = [
    ("features.c1", (6, 1, 5, 5)),            # C1: 6@5x5 -> (6, 28, 28)
    ("features.c3", (16, 6, 5, 5)),           # C3: 16@5x5 on all six S2 maps -> (16, 10, 10)
    ("classifier.c5", (120, 16 * 5 * 5)),     # C5 as a linear layer on the flattened S4
    ("classifier.f6", (84, 120)),             # F6
    ("classifier.output", (10, 84)),          # output
]


class LeNet5:
    """LeNet-5 (LeCun et al. 1998) in NumPy float64; ``params`` maps torch state-dict keys to arrays."""

    input_size = 32

    def __init__(self, num_classes: int = 10, in_chans: int = 1, seed: int = 0):
        self.num_classes, self.in_chans = num_classes, in_chans
        rng = np.random.default_rng(seed)
        self.params: dict[str, np.ndarray] = {}
        for name, shape in LAYERS:
            if name == "features.c1":
                shape = (6, in_chans, 5, 5)
            elif name == "classifier.output":
                shape = (num_classes, 84)
            # He et al. (2015) initialisation for ReLU layers: std = sqrt(2 / fan_in); zero biases.
            fan_in = int(np.prod(shape[1:]))
            self.params[f"{name}.weight"] = rng.normal(0.0, np.sqrt(2.0 / fan_in), size=shape)
            self.params[f"{name}.bias"] = np.zeros(shape[0])

    def num_params(self) -> int:
        """Number of trainable values (61,706 for 10 classes, 1 channel)."""
        return sum(p.size for p in self.params.values())

    def _wb(self, name: str):
        return self.params[f"{name}.weight"], self.params[f"{name}.bias"]

    def forward(self, x: np.ndarray):
        """Class scores (N, num_classes) of images (N, in_chans, 32, 32), and the caches for :meth:`backward`."""
        if x.ndim != 4 or x.shape[1:] != (self.in_chans, 32, 32):
            raise InputShapeError(
                f"LeNet5 expects images (N, {self.in_chans}, 32, 32); got shape {tuple(x.shape)}. "
                "load_digits(image_size=32) gives this layout."
            )
        caches = []

        def step(fn, *args, **kw):
            out, cache = fn(*args, **kw)
            caches.append(cache)
            return out

        h = step(L.conv2d_forward, x, *self._wb("features.c1"))        # (N, 6, 28, 28)
        h = step(L.relu_forward, h)
        h = step(L.maxpool2d_forward, h, 2)                             # (N, 6, 14, 14)
        h = step(L.conv2d_forward, h, *self._wb("features.c3"))        # (N, 16, 10, 10)
        h = step(L.relu_forward, h)
        h = step(L.maxpool2d_forward, h, 2)                             # (N, 16, 5, 5)
        h = h.reshape(len(h), -1)                                       # (N, 400)
        h = step(L.relu_forward, step(L.linear_forward, h, *self._wb("classifier.c5")))   # (N, 120)
        h = step(L.relu_forward, step(L.linear_forward, h, *self._wb("classifier.f6")))   # (N, 84)
        scores = step(L.linear_forward, h, *self._wb("classifier.output"))              # (N, classes)
        return scores, caches

    def backward(self, dscores: np.ndarray, caches) -> dict[str, np.ndarray]:
        """Gradients of every parameter, given dL/dscores: the forward pass read in reverse."""
        (c1, r1, s2, c3, r3, s4, c5, r5, f6, r6, out) = caches
        g = {}

        def store(name, dw, db):
            g[f"{name}.weight"], g[f"{name}.bias"] = dw, db

        dh, *dwb = L.linear_backward(dscores, out)
        store("classifier.output", *dwb)
        dh, *dwb = L.linear_backward(L.relu_backward(dh, r6), f6)
        store("classifier.f6", *dwb)
        dh, *dwb = L.linear_backward(L.relu_backward(dh, r5), c5)
        store("classifier.c5", *dwb)
        dh = dh.reshape(-1, 16, 5, 5)                                   # undo the flatten
        dh, *dwb = L.conv2d_backward(L.relu_backward(L.maxpool2d_backward(dh, s4), r3), c3)
        store("features.c3", *dwb)
        _, *dwb = L.conv2d_backward(L.relu_backward(L.maxpool2d_backward(dh, s2), r1), c1,
                                    input_grad=False)                   # x is data: no dx needed
        store("features.c1", *dwb)
        return g

    def loss(self, x: np.ndarray, y: np.ndarray):
        """``(loss, grads, scores)``: mean softmax cross-entropy on a batch, every parameter's gradient, the scores."""
        scores, caches = self.forward(x)
        loss, dscores = softmax_cross_entropy(scores, y)
        return loss, self.backward(dscores, caches), scores

    def predict(self, x: np.ndarray, batch_size: int = 256) -> np.ndarray:
        """Predicted class indices, in batches to bound the im2col memory."""
        return np.concatenate(
            [self.forward(x[i: i + batch_size])[0].argmax(axis=1) for i in range(0, len(x), batch_size)]
        )
