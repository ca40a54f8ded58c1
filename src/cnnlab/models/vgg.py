"""VGG (Simonyan & Zisserman 2015, "Very Deep Convolutional Networks for Large-Scale Image
Recognition"): stacks of 3x3 convolutions between 2x2 max-pools, then three fc layers.

Configurations A, B, D and E of Table 1 as ``vgg11``, ``vgg13``, ``vgg16`` and ``vgg19``, each
also with batch normalisation after every convolution (``*_bn``, torchvision's addition: the paper
predates BatchNorm). Module layout is torchvision's (``features`` / ``avgpool`` / ``classifier``),
so torchvision's ImageNet weights load with strict=True.

Departures from the paper: the adaptive average pool to 7x7 before fc6 (torchvision's; it lets
inputs other than 224x224, down to 32x32, reach the classifier) replaces the paper's conversion
of the fc layers to convolutions for dense evaluation at test time (section 3.2). The paper's
configuration A-LRN and C (with 1x1 convs) are not included.
"""

from __future__ import annotations

import torch
from torch import nn

from cnnlab.models.layers import (
    check_dropout, check_model_args, classifier_layer, kaiming_init_, normal_init_,
)
from cnnlab.models.registry import register_model

_PAPER = "Simonyan & Zisserman 2015, Very Deep Convolutional Networks"

# Simonyan & Zisserman 2015, Table 1, columns A, B, D, E. Ints: 3x3 conv widths (stride 1,
# padding 1, so only the pools change the size); "M": 2x2 max-pool, stride 2.
VGG_CFGS: dict[str, list[int | str]] = {
    "vgg11": [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "vgg13": [64, 64, "M", 128, 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "vgg16": [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M",
              512, 512, 512, "M"],
    "vgg19": [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M",
              512, 512, 512, 512, "M"],
}

POOLED_SIDE = 7  # 224 / 2**5: fc6 takes 512 maps of 7x7


def make_features(cfg: list[int | str], batch_norm: bool = False,
                  in_chans: int = 3) -> nn.Sequential:
    """The conv/pool stack of one Table 1 column (Simonyan & Zisserman 2015), ReLU after convs."""
    layers: list[nn.Module] = []
    channels = in_chans
    for v in cfg:
        if v == "M":
            layers.append(nn.MaxPool2d(2, stride=2))
            continue
        layers.append(nn.Conv2d(channels, v, 3, padding=1))
        if batch_norm:
            layers.append(nn.BatchNorm2d(v))
        layers.append(nn.ReLU(inplace=True))
        channels = v
    return nn.Sequential(*layers)


class VGG(nn.Module):
    """A VGG network: ``features`` from :func:`make_features`, then fc 4096, 4096, num_classes
    with dropout after the two hidden ones (Simonyan & Zisserman 2015, section 2.1)."""

    def __init__(self, features: nn.Sequential, num_classes: int = 1000, dropout: float = 0.5):
        super().__init__()
        convs = [m for m in features if isinstance(m, nn.Conv2d)]
        _check_args(num_classes, convs[0].in_channels, dropout)
        self.in_chans = convs[0].in_channels
        self.num_pools = sum(isinstance(m, nn.MaxPool2d) for m in features)
        self.num_classes = num_classes
        self.num_features = 4096
        self.features = features
        self.avgpool = nn.AdaptiveAvgPool2d((POOLED_SIDE, POOLED_SIDE))
        self.classifier = nn.Sequential(
            nn.Linear(convs[-1].out_channels * POOLED_SIDE * POOLED_SIDE, 4096),  # fc6
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
            nn.Linear(4096, 4096),                                                # fc7
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
            nn.Linear(4096, num_classes),                                         # fc8
        )
        # The paper trains net A from N(0, 1e-2) and starts the deeper nets from A's layers,
        # noting afterwards that Glorot init works without that (section 3.1). We use He
        # (fan-out) for the convs and N(0, 0.01) for the fc layers, as torchvision does: every
        # depth then trains from scratch.
        kaiming_init_(self, linear_init=normal_init_)

    @property
    def min_input_size(self) -> int:
        """The smallest input side that survives every 2x2 pool (32 for all of Table 1)."""
        return 2**self.num_pools

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """The conv stack: (N, C, H, W) -> (N, 512, H/32, W/32)."""
        return self.features(x)

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        """Pool to 7x7, flatten, fc6, fc7 (, fc8); ``pre_logits=True``: (N, 4096)."""
        x = torch.flatten(self.avgpool(x), 1)  # (N, 25088)
        return self.classifier[:-1](x) if pre_logits else self.classifier(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))

    def reset_classifier(self, num_classes: int) -> None:
        """A fresh fc8 for `num_classes` outputs; 0 leaves fc7's 4096 features as the output."""
        self.classifier[-1] = classifier_layer(self.num_features, num_classes, normal_init_, self)
        self.num_classes = num_classes


def _check_args(num_classes: int, in_chans: int, dropout: float) -> None:
    check_model_args(num_classes, in_chans)
    check_dropout(dropout, hint="The paper uses 0.5.")


def _vgg(cfg: str, batch_norm: bool, num_classes: int, in_chans: int, dropout: float) -> VGG:
    # Check before building the conv stack, so a bad argument fails without allocating it.
    _check_args(num_classes, in_chans, dropout)
    return VGG(make_features(VGG_CFGS[cfg], batch_norm, in_chans), num_classes, dropout)


@register_model(input_size=224, paper=_PAPER + ", config A")
def vgg11(num_classes: int = 1000, in_chans: int = 3, dropout: float = 0.5) -> VGG:
    """VGG-11, configuration A (Simonyan & Zisserman 2015, Table 1)."""
    return _vgg("vgg11", False, num_classes, in_chans, dropout)


@register_model(input_size=224, paper=_PAPER + ", config A + BatchNorm")
def vgg11_bn(num_classes: int = 1000, in_chans: int = 3, dropout: float = 0.5) -> VGG:
    """VGG-11 (Simonyan & Zisserman 2015, config A) with BatchNorm after each conv."""
    return _vgg("vgg11", True, num_classes, in_chans, dropout)


@register_model(input_size=224, paper=_PAPER + ", config B")
def vgg13(num_classes: int = 1000, in_chans: int = 3, dropout: float = 0.5) -> VGG:
    """VGG-13, configuration B (Simonyan & Zisserman 2015, Table 1)."""
    return _vgg("vgg13", False, num_classes, in_chans, dropout)


@register_model(input_size=224, paper=_PAPER + ", config B + BatchNorm")
def vgg13_bn(num_classes: int = 1000, in_chans: int = 3, dropout: float = 0.5) -> VGG:
    """VGG-13 (Simonyan & Zisserman 2015, config B) with BatchNorm after each conv."""
    return _vgg("vgg13", True, num_classes, in_chans, dropout)


@register_model(input_size=224, paper=_PAPER + ", config D")
def vgg16(num_classes: int = 1000, in_chans: int = 3, dropout: float = 0.5) -> VGG:
    """VGG-16, configuration D (Simonyan & Zisserman 2015, Table 1)."""
    return _vgg("vgg16", False, num_classes, in_chans, dropout)


@register_model(input_size=224, paper=_PAPER + ", config D + BatchNorm")
def vgg16_bn(num_classes: int = 1000, in_chans: int = 3, dropout: float = 0.5) -> VGG:
    """VGG-16 (Simonyan & Zisserman 2015, config D) with BatchNorm after each conv."""
    return _vgg("vgg16", True, num_classes, in_chans, dropout)


@register_model(input_size=224, paper=_PAPER + ", config E")
def vgg19(num_classes: int = 1000, in_chans: int = 3, dropout: float = 0.5) -> VGG:
    """VGG-19, configuration E (Simonyan & Zisserman 2015, Table 1)."""
    return _vgg("vgg19", False, num_classes, in_chans, dropout)


@register_model(input_size=224, paper=_PAPER + ", config E + BatchNorm")
def vgg19_bn(num_classes: int = 1000, in_chans: int = 3, dropout: float = 0.5) -> VGG:
    """VGG-19 (Simonyan & Zisserman 2015, config E) with BatchNorm after each conv."""
    return _vgg("vgg19", True, num_classes, in_chans, dropout)
