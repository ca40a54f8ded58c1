"""Tiny constructed networks with known answers, shared by the visualisation tests.

Each follows the zoo protocol (forward_features, forward_head, reset_classifier, num_classes), so
the methods treat them exactly like zoo models.
"""

from types import SimpleNamespace

import pytest
import torch
from torch import nn


class Protocol(nn.Module):
    """Base: forward = forward_head(forward_features(x)); subclasses fill the two halves."""

    def forward(self, x):
        return self.forward_head(self.forward_features(x))

    def reset_classifier(self, num_classes):
        self.num_classes = num_classes


class LinearNet(Protocol):
    """logits = W vec(x) + b: the saliency of class c is |W_c| (Simonyan et al. 2014, sec. 3)."""

    def __init__(self, shape=(3, 8, 8), num_classes=4):
        super().__init__()
        self.shape, self.num_classes, self.in_chans = shape, num_classes, shape[0]
        self.fc = nn.Linear(int(torch.tensor(shape).prod()), num_classes)

    def forward_features(self, x):
        return x

    def forward_head(self, x, pre_logits=False):
        x = x.flatten(1)
        return x if pre_logits else self.fc(x)


class HalfNet(Protocol):
    """Ignores one half of the image (multiplies it by 0), then conv + in-place ReLU + global
    average pool + linear: its decision depends only on the left (or right) half."""

    def __init__(self, side="left", num_classes=2):
        super().__init__()
        self.side, self.num_classes = side, num_classes
        self.features = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1, bias=False),
                                      nn.ReLU(inplace=True))
        self.fc = nn.Linear(4, num_classes)
        with torch.no_grad():
            self.fc.weight.abs_()   # every channel counts for every class

    def forward_features(self, x):
        w = x.shape[-1] // 2
        mask = torch.zeros_like(x)
        mask[..., :w] = 1
        return self.features(x * (mask if self.side == "left" else 1 - mask))

    def forward_head(self, x, pre_logits=False):
        x = x.mean((2, 3))   # (N, 4)
        return x if pre_logits else self.fc(x)


class PatchNet(Protocol):
    """Class 0's logit is 10 x the mean of the square [top:top+s, left:left+s]; class 1's is 0."""

    def __init__(self, top=8, left=16, size=8):
        super().__init__()
        self.box, self.num_classes = (top, left, size), 2
        self.stem = nn.Conv2d(1, 1, 1, bias=False)
        nn.init.ones_(self.stem.weight)

    def forward_features(self, x):
        return self.stem(x)

    def forward_head(self, x, pre_logits=False):
        t, l, s = self.box
        score = 10 * x[:, 0, t:t + s, l:l + s].mean((1, 2))
        return torch.stack([score, torch.zeros_like(score)], 1)


class ReluNet(Protocol):
    """logit_0 = sum(w * relu(x)) over one channel: each ReLU backward rule has a closed form."""

    def __init__(self, weight):
        super().__init__()
        self.num_classes = 1
        self.act = nn.ReLU(inplace=True)
        self.w = nn.Parameter(weight)

    def forward_features(self, x):
        return self.act(x)

    def forward_head(self, x, pre_logits=False):
        return (x * self.w).flatten(1).sum(1, keepdim=True)


@pytest.fixture
def nets():
    """The constructed networks above, seeded (pytest's importlib mode cannot import conftest)."""
    torch.manual_seed(0)
    return SimpleNamespace(LinearNet=LinearNet, HalfNet=HalfNet, PatchNet=PatchNet, ReluNet=ReluNet)
