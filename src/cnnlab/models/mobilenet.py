"""MobileNetV2 (Sandler, Howard, Zhu, Zhmoginov & Chen 2018, "MobileNetV2: Inverted Residuals and
Linear Bottlenecks").

Module layout is torchvision's (``features.0`` the stem, ``features.1``..``features.17`` the
``InvertedResidual`` blocks, each a ``conv`` Sequential, ``features.18`` the last 1x1 conv, then
``classifier``), so torchvision's ImageNet weights load with strict=True.
"""

from __future__ import annotations

import torch
from torch import nn

from cnnlab.errors import ConfigError
from cnnlab.models.layers import (
    check_dropout, check_model_args, classifier_layer, kaiming_init_, normal_init_,
)
from cnnlab.models.registry import register_model

_PAPER = "Sandler et al. 2018, MobileNetV2: Inverted Residuals and Linear Bottlenecks"

# Sandler et al. 2018, Table 2, one row per sequence of bottleneck blocks: expansion factor t,
# output channels c, repeats n, stride s of the first block (the others have stride 1).
MOBILENET_V2_CFG: list[tuple[int, int, int, int]] = [
    (1, 16, 1, 1),
    (6, 24, 2, 2),
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 2),
    (6, 320, 1, 1),
]
STEM_CHANNELS, LAST_CHANNELS = 32, 1280  # Table 2: conv2d 32 (stride 2) first, conv2d 1x1 1280 last


def make_divisible(value: float, divisor: int = 8) -> int:
    """Round a channel count to the nearest multiple of `divisor`, never below `divisor` nor
    more than 10% below `value` (the rounding of the authors' TensorFlow code for width_mult)."""
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < 0.9 * value else rounded


class ConvBNReLU(nn.Sequential):
    """Conv (no bias), BatchNorm, ReLU6: the non-linear layers of MobileNetV2 (section 4)."""

    def __init__(self, in_planes: int, out_planes: int, kernel_size: int = 3, stride: int = 1,
                 groups: int = 1):
        super().__init__(
            nn.Conv2d(in_planes, out_planes, kernel_size, stride, (kernel_size - 1) // 2,
                      groups=groups, bias=False),
            nn.BatchNorm2d(out_planes),
            # ReLU6 for its robustness in low-precision computation (section 4).
            nn.ReLU6(inplace=True),
        )


class InvertedResidual(nn.Module):
    """Bottleneck residual block (Sandler et al. 2018, Table 1, Fig. 3b): 1x1 expansion by t,
    3x3 depthwise, 1x1 linear projection, and an identity shortcut between the thin ends when
    stride is 1 and the widths match."""

    def __init__(self, inp: int, oup: int, stride: int, expand_ratio: int):
        super().__init__()
        if stride not in (1, 2):
            raise ConfigError(f"InvertedResidual stride must be 1 or 2; got {stride}.")
        self.stride = stride
        hidden = int(round(inp * expand_ratio))
        self.use_res_connect = stride == 1 and inp == oup
        layers: list[nn.Module] = []
        if expand_ratio != 1:  # t = 1 (the first block) has no expansion layer
            layers.append(ConvBNReLU(inp, hidden, kernel_size=1))
        layers += [
            ConvBNReLU(hidden, hidden, stride=stride, groups=hidden),  # depthwise 3x3
            # Linear bottleneck: no ReLU after the projection, which would destroy information
            # in the low-dimensional space (section 3.2).
            nn.Conv2d(hidden, oup, 1, bias=False),
            nn.BatchNorm2d(oup),
        ]
        self.conv = nn.Sequential(*layers)
        self.out_channels = oup

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv(x) if self.use_res_connect else self.conv(x)


class MobileNetV2(nn.Module):
    """MobileNetV2 (Sandler et al. 2018, Table 2), with the paper's width multiplier."""

    def __init__(self, num_classes: int = 1000, in_chans: int = 3, width_mult: float = 1.0,
                 dropout: float = 0.2):
        super().__init__()
        check_model_args(num_classes, in_chans)
        if not width_mult > 0:
            raise ConfigError(f"width_mult must be > 0; got {width_mult!r}. The paper explores "
                              "0.35 to 1.4 (section 4).")
        check_dropout(dropout, hint="torchvision uses 0.2 (the paper states no rate).")
        self.num_classes = num_classes
        self.in_chans = in_chans
        self.width_mult = width_mult
        channels = make_divisible(STEM_CHANNELS * width_mult)
        # Section 4: the multiplier applies to every layer but the last conv for width < 1.
        self.num_features = make_divisible(LAST_CHANNELS * max(1.0, width_mult))
        layers: list[nn.Module] = [ConvBNReLU(in_chans, channels, stride=2)]  # (N, 32, H/2, W/2)
        for t, c, n, s in MOBILENET_V2_CFG:
            out = make_divisible(c * width_mult)
            for i in range(n):
                layers.append(InvertedResidual(channels, out, s if i == 0 else 1, t))
                channels = out
        layers.append(ConvBNReLU(channels, self.num_features, kernel_size=1))  # (N, 1280, ...)
        self.features = nn.Sequential(*layers)
        # torchvision's recipe: dropout 0.2 before the classifier (the paper states no rate).
        self.classifier = nn.Sequential(
            nn.Dropout(dropout), nn.Linear(self.num_features, num_classes)
        )
        # The paper states no init: He (fan-out) for convs, BatchNorm as identity, N(0, 0.01)
        # for the classifier, as torchvision does.
        kaiming_init_(self, linear_init=normal_init_)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Stem, 17 bottleneck blocks, 1x1 conv: (N, C, H, W) -> (N, 1280, H/32, W/32)."""
        return self.features(x)

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        """Global average pool, dropout, linear; ``pre_logits=True`` stops before the linear."""
        x = torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1)  # (N, 1280)
        return self.classifier[:-1](x) if pre_logits else self.classifier(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))

    def reset_classifier(self, num_classes: int) -> None:
        """A fresh linear classifier for `num_classes`; 0 leaves the pooled 1280 features."""
        self.classifier[-1] = classifier_layer(self.num_features, num_classes, normal_init_, self)
        self.num_classes = num_classes


@register_model(input_size=224, paper=_PAPER)
def mobilenet_v2(num_classes: int = 1000, in_chans: int = 3, width_mult: float = 1.0,
                 dropout: float = 0.2) -> MobileNetV2:
    """MobileNetV2 (Sandler et al. 2018, Table 2); `width_mult` is the paper's width multiplier."""
    return MobileNetV2(num_classes, in_chans, width_mult, dropout)
