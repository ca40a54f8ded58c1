"""The CIFAR-10 ResNets and plain nets of He et al. 2016, section 4.2 (Fig. 6, Table 6).

6n+2 weighted layers: a 3x3 conv with 16 filters, then three stages of n two-conv blocks with
16, 32 and 64 filters on 32x32, 16x16 and 8x8 maps (the first conv of stages 2 and 3 has stride
2), global average pooling and a 10-way fc. ResNets add an identity shortcut around each block;
where the shape changes the paper uses option A (sec. 3.3): subsample the input by 2 and pad
the new channels with zeros, so ResNet-n and plain-n have exactly the same parameters.

    model = cnnlab.create_model("resnet56")   # 853,018 parameters (Table 6: 0.85M)
    model = cnnlab.create_model("plain56")    # the same layers and parameters, no shortcuts

``shortcut="B"`` swaps in 1x1 conv + BN projections at the two stage transitions (the paper's
option B; +2,752 parameters), for comparison with implementations that use them.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from cnnlab.errors import ConfigError
from cnnlab.models.layers import (
    check_model_args, classifier_layer, conv1x1, conv3x3, kaiming_init_, normal_init_,
)
from cnnlab.models.registry import register_model
from cnnlab.models.resnet import BasicBlock

# Per-channel statistics of the CIFAR-10 training images; He et al. subtract only the per-pixel
# mean, but registry metadata is per-channel mean/std.
CIFAR10_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR10_STD = (0.2470, 0.2435, 0.2616)

STAGE_WIDTHS = (16, 32, 64)  # sec. 4.2: "the numbers of filters are {16, 32, 64}"
SHORTCUTS = ("A", "B")


class ZeroPadShortcut(nn.Module):
    """Option A shortcut (He et al. 2016, sec. 3.3): stride-s subsampling and zero channels.

    Parameter-free. ``x[..., ::s, ::s]`` picks the same positions that the block's stride-s,
    padding-1 3x3 conv centres on, so both branches have ceil(H/s) x ceil(W/s) outputs.
    """

    def __init__(self, in_planes: int, out_planes: int, stride: int):
        super().__init__()
        self.in_planes, self.out_planes, self.stride = in_planes, out_planes, stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x[:, :, :: self.stride, :: self.stride]
        return F.pad(x, (0, 0, 0, 0, 0, self.out_planes - self.in_planes))  # zeros after channel C

    def extra_repr(self) -> str:
        return f"{self.in_planes}->{self.out_planes}, stride={self.stride}"


class PlainBlock(nn.Module):
    """Two 3x3 conv-BN-ReLU layers without a shortcut: the plain baseline of sec. 4.2 (Fig. 6)."""

    def __init__(self, inplanes: int, planes: int, stride: int = 1):
        super().__init__()
        self.conv1 = conv3x3(inplanes, planes, stride)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = conv3x3(planes, planes)
        self.bn2 = nn.BatchNorm2d(planes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        return self.relu(self.bn2(self.conv2(out)))


# He et al. 2016, Table 6: name -> (block, n), depth 6n+2.
CIFAR_CFGS: dict[str, tuple[type[nn.Module], int]] = {
    "resnet20": (BasicBlock, 3),
    "resnet32": (BasicBlock, 5),
    "resnet44": (BasicBlock, 7),
    "resnet56": (BasicBlock, 9),
    "resnet110": (BasicBlock, 18),
    "plain20": (PlainBlock, 3),
    "plain32": (PlainBlock, 5),
    "plain44": (PlainBlock, 7),
    "plain56": (PlainBlock, 9),
    "plain110": (PlainBlock, 18),
}


class CifarResNet(nn.Module):
    """6n+2-layer CIFAR network of He et al. 2016, sec. 4.2, residual or plain by `block`."""

    def __init__(
        self,
        block: type[BasicBlock] | type[PlainBlock],
        n: int,
        num_classes: int = 10,
        in_chans: int = 3,
        shortcut: str = "A",
    ):
        super().__init__()
        check_model_args(num_classes, in_chans)
        if shortcut not in SHORTCUTS:
            raise ConfigError(
                f"unknown shortcut option {shortcut!r}; expected 'A' (zero-padding identity, the "
                "paper's CIFAR choice) or 'B' (1x1 conv + BN projection where the shape changes)."
            )
        if n < 1:
            raise ConfigError(
                f"a CIFAR ResNet needs n >= 1 blocks per stage (depth 6n+2); got n={n}."
            )
        self.num_classes, self.in_chans, self.shortcut = num_classes, in_chans, shortcut
        self.inplanes = STAGE_WIDTHS[0]
        self.conv1 = conv3x3(in_chans, STAGE_WIDTHS[0])
        self.bn1 = nn.BatchNorm2d(STAGE_WIDTHS[0])
        self.relu = nn.ReLU(inplace=True)
        self.layer1 = self._make_stage(block, STAGE_WIDTHS[0], n, stride=1)
        self.layer2 = self._make_stage(block, STAGE_WIDTHS[1], n, stride=2)
        self.layer3 = self._make_stage(block, STAGE_WIDTHS[2], n, stride=2)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.num_features = STAGE_WIDTHS[-1]
        self.fc = nn.Linear(self.num_features, num_classes)
        # Sec. 4.2 initialises the weights "as in [13]" (He et al. 2015); the fc layer gets small
        # N(0, 0.01) weights so the initial loss is ln(num_classes) (the course's sanity check).
        kaiming_init_(self, linear_init=normal_init_)

    def _make_stage(self, block, planes: int, n: int, stride: int) -> nn.Sequential:
        stage = []
        for i in range(n):
            s = stride if i == 0 else 1
            if block is PlainBlock:
                stage.append(PlainBlock(self.inplanes, planes, s))
            else:
                stage.append(block(self.inplanes, planes, s, self._shortcut(planes, s)))
            self.inplanes = planes
        return nn.Sequential(*stage)

    def _shortcut(self, planes: int, stride: int) -> nn.Module | None:
        if stride == 1 and self.inplanes == planes:
            return None  # identity
        if self.shortcut == "A":
            return ZeroPadShortcut(self.inplanes, planes, stride)
        return nn.Sequential(conv1x1(self.inplanes, planes, stride), nn.BatchNorm2d(planes))

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Stem and three stages: (N, C, 32, 32) -> (N, 64, 8, 8)."""
        x = self.relu(self.bn1(self.conv1(x)))  # (N, 16, H, W)
        x = self.layer1(x)
        x = self.layer2(x)  # (N, 32, H/2, W/2)
        return self.layer3(x)  # (N, 64, H/4, W/4)

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        """Global average pool and fc; ``pre_logits=True`` returns the pooled (N, 64) features."""
        x = torch.flatten(self.avgpool(x), 1)
        return x if pre_logits else self.fc(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))

    def reset_classifier(self, num_classes: int) -> None:
        """A fresh fc for `num_classes` outputs; 0 leaves an identity (the pooled features)."""
        self.fc = classifier_layer(self.num_features, num_classes, normal_init_, like=self)
        self.num_classes = num_classes


_HE = "He et al. 2016, Deep Residual Learning for Image Recognition (sec. 4.2, CIFAR-10)"
_CIFAR_INFO = dict(input_size=32, num_classes=10, paper=_HE, mean=CIFAR10_MEAN, std=CIFAR10_STD)


def _cifar(name: str, num_classes: int, in_chans: int, **kwargs) -> CifarResNet:
    block, n = CIFAR_CFGS[name]
    return CifarResNet(block, n, num_classes=num_classes, in_chans=in_chans, **kwargs)


@register_model(**_CIFAR_INFO)
def resnet20(num_classes: int = 10, in_chans: int = 3, *, shortcut: str = "A") -> CifarResNet:
    """ResNet-20 for CIFAR-10, n=3 (He et al. 2016, Table 6: 0.27M params)."""
    return _cifar("resnet20", num_classes, in_chans, shortcut=shortcut)


@register_model(**_CIFAR_INFO)
def resnet32(num_classes: int = 10, in_chans: int = 3, *, shortcut: str = "A") -> CifarResNet:
    """ResNet-32 for CIFAR-10, n=5 (He et al. 2016, Table 6: 0.46M params)."""
    return _cifar("resnet32", num_classes, in_chans, shortcut=shortcut)


@register_model(**_CIFAR_INFO)
def resnet44(num_classes: int = 10, in_chans: int = 3, *, shortcut: str = "A") -> CifarResNet:
    """ResNet-44 for CIFAR-10, n=7 (He et al. 2016, Table 6: 0.66M params)."""
    return _cifar("resnet44", num_classes, in_chans, shortcut=shortcut)


@register_model(**_CIFAR_INFO)
def resnet56(num_classes: int = 10, in_chans: int = 3, *, shortcut: str = "A") -> CifarResNet:
    """ResNet-56 for CIFAR-10, n=9 (He et al. 2016, Table 6: 0.85M params)."""
    return _cifar("resnet56", num_classes, in_chans, shortcut=shortcut)


@register_model(**_CIFAR_INFO)
def resnet110(num_classes: int = 10, in_chans: int = 3, *, shortcut: str = "A") -> CifarResNet:
    """ResNet-110 for CIFAR-10, n=18 (He et al. 2016, Table 6: 1.7M params)."""
    return _cifar("resnet110", num_classes, in_chans, shortcut=shortcut)


@register_model(**_CIFAR_INFO)
def plain20(num_classes: int = 10, in_chans: int = 3) -> CifarResNet:
    """Plain 20-layer net: ResNet-20 without shortcuts (He et al. 2016, Fig. 6 left)."""
    return _cifar("plain20", num_classes, in_chans)


@register_model(**_CIFAR_INFO)
def plain32(num_classes: int = 10, in_chans: int = 3) -> CifarResNet:
    """Plain 32-layer net: ResNet-32 without shortcuts (He et al. 2016, Fig. 6 left)."""
    return _cifar("plain32", num_classes, in_chans)


@register_model(**_CIFAR_INFO)
def plain44(num_classes: int = 10, in_chans: int = 3) -> CifarResNet:
    """Plain 44-layer net: ResNet-44 without shortcuts (He et al. 2016, Fig. 6 left)."""
    return _cifar("plain44", num_classes, in_chans)


@register_model(**_CIFAR_INFO)
def plain56(num_classes: int = 10, in_chans: int = 3) -> CifarResNet:
    """Plain 56-layer net: ResNet-56 without shortcuts (He et al. 2016, Fig. 6 left)."""
    return _cifar("plain56", num_classes, in_chans)


@register_model(**_CIFAR_INFO)
def plain110(num_classes: int = 10, in_chans: int = 3) -> CifarResNet:
    """Plain 110-layer net: ResNet-110 without shortcuts (He et al. 2016 train plain nets to 56)."""
    return _cifar("plain110", num_classes, in_chans)
