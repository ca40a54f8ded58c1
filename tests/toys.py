"""Tiny models and data shared by the training and diagnostics tests (seconds, not minutes)."""

import torch
from torch import nn


class TinyNet(nn.Module):
    """conv -> ReLU -> pool -> linear on 8x8 inputs, with the zoo's interface."""

    def __init__(self, num_classes: int = 3, in_chans: int = 1, conv_bias: float | None = None):
        super().__init__()
        self.num_classes = num_classes
        self.features = nn.Sequential(nn.Conv2d(in_chans, 4, 3, padding=1), nn.ReLU(),
                                      nn.AdaptiveAvgPool2d(2), nn.Flatten())
        self.fc = nn.Linear(16, num_classes)
        if conv_bias is not None:  # e.g. -100: every unit of the ReLU is dead
            nn.init.constant_(self.features[0].bias, conv_bias)

    def forward_features(self, x):
        return self.features(x)

    def forward_head(self, x, pre_logits=False):
        return x if pre_logits else self.fc(x)

    def forward(self, x):
        return self.forward_head(self.forward_features(x))


def blobs(n: int = 96, classes: int = 3, seed: int = 0):
    """Separable 8x8 images: class c has a bright quadrant c."""
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % classes
    x = 0.3 * torch.randn(n, 1, 8, 8, generator=g)
    for c in range(classes):
        r, col = divmod(c, 2)
        x[y == c, :, 4 * r:4 * r + 4, 4 * col:4 * col + 4] += 1.5
    return x, y


class RaiseAt:
    """A callback that presses Ctrl-C at global step `step`."""

    def __init__(self, step):
        self.step = step

    def on_batch_end(self, step, **_):
        if step == self.step:
            raise KeyboardInterrupt


def randomise_batchnorm(model: nn.Module, seed: int = 0) -> nn.Module:
    """Running statistics and affine parameters far from the identity (BatchNorm2d, in place)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d) and m.running_mean is not None:
                n = m.num_features
                m.running_mean.copy_(0.3 * torch.randn(n, generator=g))
                m.running_var.copy_(0.5 + torch.rand(n, generator=g))
                if m.affine:
                    m.weight.copy_(0.5 + torch.rand(n, generator=g))
                    m.bias.copy_(0.2 * torch.randn(n, generator=g))
    return model


def digits_run(out, name: str = "d", **overrides):
    """The run directory of a real one-epoch LeNet-5 run on the embedded digits, under `out`."""
    from cnnlab.train.config import TrainConfig
    from cnnlab.train.run import train

    cfg = TrainConfig(epochs=1, quiet=True, out_dir=str(out), name=name, precision="32",
                      **overrides)
    return train(cfg).run_dir
