"""Pieces shared by several model families: argument checks, 3x3/1x1 convolutions, weight
initialisation, classifier heads and the Squeeze-and-Excitation block of Hu et al. 2018."""

from __future__ import annotations

import numbers
from typing import Callable

import torch
from torch import nn

from cnnlab.errors import ConfigError


def check_count(what: str, value: int, minimum: int = 1, hint: str = "") -> None:
    """Raise ConfigError unless `value` is an int (not a bool) >= `minimum`."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(f"{what} must be an integer >= {minimum}; got {value!r}."
                          + (f" {hint}" if hint else ""))


def check_model_args(num_classes: int, in_chans: int) -> None:
    """The arguments every zoo builder takes: at least one class and one input channel.

    A head-less model is made with ``reset_classifier(0)`` after building, not with
    ``num_classes=0``, so every freshly built model returns logits.
    """
    hint = "For the features alone, call reset_classifier(0) after building." if (
        num_classes == 0) else ""
    check_count("num_classes", num_classes, hint=hint)
    check_count("in_chans", in_chans)


def check_dropout(p: float, what: str = "dropout", hint: str = "") -> None:
    """Raise ConfigError unless `p` is a probability in [0, 1) (1 would zero every activation)."""
    if isinstance(p, bool) or not isinstance(p, numbers.Real) or not 0.0 <= p < 1.0:
        raise ConfigError(f"{what} must be a probability in [0, 1); got {p!r}."
                          + (f" {hint}" if hint else ""))


def conv3x3(in_planes: int, out_planes: int, stride: int = 1, groups: int = 1) -> nn.Conv2d:
    """3x3 convolution, padding 1, no bias (a BatchNorm follows), as in He et al. 2016."""
    return nn.Conv2d(in_planes, out_planes, 3, stride=stride, padding=1, groups=groups, bias=False)


def conv1x1(in_planes: int, out_planes: int, stride: int = 1) -> nn.Conv2d:
    """1x1 convolution, no bias: bottleneck reduce/expand and projections (He et al. 2016)."""
    return nn.Conv2d(in_planes, out_planes, 1, stride=stride, bias=False)


def kaiming_init_(model: nn.Module, mode: str = "fan_out",
                  linear_init: Callable[[nn.Linear], object] | None = None) -> nn.Module:
    """He et al. 2015 normal init for convs (ReLU gain, zero bias); BatchNorm to the identity map.

    The default fan_out rather than the paper's fan_in follows torchvision's ResNets, so a freshly
    built cnnlab ResNet is statistically the same network as a freshly built torchvision one.
    Linear layers keep PyTorch's default init unless `linear_init` is given; it runs in module
    order, in the same pass, so a seeded build draws the same numbers as a loop written inline.
    """
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode=mode, nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.BatchNorm2d, nn.GroupNorm)):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear) and linear_init is not None:
            linear_init(m)
    return model


INIT_SCHEMES = ("default", "xavier", "kaiming")


def init_weights_(model: nn.Module, scheme: str = "default") -> nn.Module:
    """Re-draw every conv/linear weight: Glorot & Bengio 2010 uniform ("xavier") or He et al.
    2015 normal with fan_in ("kaiming", the paper's forward-pass form); biases to zero.

    "default" keeps the init each builder gave (the paper's own). Norm layers are left alone.
    """
    if scheme not in INIT_SCHEMES:
        raise ConfigError(f"unknown init {scheme!r}; choose one of {', '.join(INIT_SCHEMES)}")
    if scheme == "default":
        return model
    for m in model.modules():
        if isinstance(m, (nn.modules.conv._ConvNd, nn.Linear)):
            if scheme == "xavier":
                nn.init.xavier_uniform_(m.weight)
            else:
                nn.init.kaiming_normal_(m.weight, mode="fan_in", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
    return model


def normal_init_(layer: nn.Module, std: float = 0.01) -> nn.Module:
    """N(0, std) weights and zero bias: the output-layer init of Krizhevsky et al. 2012 (sec. 5),
    which torchvision also gives VGG, MobileNetV2, SqueezeNet's conv10 and the Inceptions.

    Small weights make the first logits near zero, so training starts at a loss of about
    ln(num_classes). Plain normal, not truncated: at std 0.01 truncation changes nothing that
    matters, and trunc_normal_ is ~10x slower on CPU.
    """
    nn.init.normal_(layer.weight, 0.0, std)
    if layer.bias is not None:
        nn.init.zeros_(layer.bias)
    return layer


def classifier_layer(
    in_features: int,
    num_classes: int,
    init: Callable[[nn.Module], object] | None = None,
    like: nn.Module | None = None,
    layer: Callable[[int, int], nn.Module] = nn.Linear,
) -> nn.Module:
    """A fresh output layer ``layer(in_features, num_classes)``, or ``nn.Identity`` for 0 classes.

    `init` re-initialises it (None keeps PyTorch's default); `like` (usually the model) gives the
    device and dtype, so ``reset_classifier`` on a GPU or float64 model yields a head that fits.
    """
    check_count("num_classes", num_classes, minimum=0,
                hint="0 removes the classifier and returns the pooled features.")
    if num_classes == 0:
        return nn.Identity()
    head = layer(in_features, num_classes)
    if init is not None:
        init(head)
    ref = next(like.parameters(), None) if like is not None else None
    if ref is not None:
        head = head.to(device=ref.device, dtype=ref.dtype)
    return head


class SqueezeExcite(nn.Module):
    """Squeeze-and-Excitation block (Hu et al. 2018, Fig. 1 and Eqs. 2-4).

    Squeeze: global average pool to one value per channel. Excitation: FC to C/r, ReLU, FC back to
    C, sigmoid. The output is the input rescaled channel by channel by that gate in (0, 1).
    The two FC layers are 1x1 convolutions on the (N, C, 1, 1) squeeze (same parameters as
    Linear layers, with bias), named ``fc1``/``fc2`` as in timm's SE-ResNets.
    """

    def __init__(self, channels: int, reduction: int = 16):
        super().__init__()
        if channels < 1 or reduction < 1:
            raise ConfigError(
                f"SqueezeExcite needs channels >= 1 and reduction >= 1; got channels={channels}, "
                f"reduction={reduction}. Hu et al. 2018 use reduction=16."
            )
        hidden = max(1, channels // reduction)  # never a 0-wide bottleneck on narrow layers
        self.channels, self.reduction = channels, reduction
        self.fc1 = nn.Conv2d(channels, hidden, 1)
        self.relu = nn.ReLU(inplace=True)
        self.fc2 = nn.Conv2d(hidden, channels, 1)
        self.sigmoid = nn.Sigmoid()

    def gate(self, x: torch.Tensor) -> torch.Tensor:
        """The per-channel excitation s in (0, 1), shape (N, C, 1, 1) (Hu et al. 2018, Eq. 3)."""
        z = x.mean(dim=(2, 3), keepdim=True)  # squeeze: (N, C, 1, 1)
        return self.sigmoid(self.fc2(self.relu(self.fc1(z))))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gate(x)  # (N, C, H, W) rescaled per channel (Eq. 4)

    def extra_repr(self) -> str:
        return f"channels={self.channels}, reduction={self.reduction}"
