"""ResNet (He et al. 2016), ResNeXt (Xie et al. 2017) and Wide ResNet (Zagoruyko & Komodakis 2016).

Module names and state-dict layout are torchvision's (``conv1``, ``bn1``, ``layer1``..``layer4``
of ``BasicBlock``/``Bottleneck`` with ``conv1``/``bn1``/``conv2``/``bn2``[/``conv3``/``bn3``] and
``downsample.0``/``.1``, then ``fc``), so torchvision's ImageNet weights load with ``strict=True``.

Deliberate departure from the paper: the stride-2 of a downsampling Bottleneck sits on its 3x3
conv ("ResNet v1.5", as in torchvision and Goyal et al. 2017); He et al. put it on the first 1x1.
NVIDIA's model notes report about +0.5% ImageNet top-1 for v1.5 at a few percent lower
throughput, and it is the layout that torchvision's published weights expect.

``stem="cifar"`` swaps the 7x7/2 conv + 3x3/2 max-pool for one 3x3/1 conv and no pool: the common
"CIFAR ResNet-18" for 32x32 images (``create_model("resnet18", num_classes=10, stem="cifar")``).
Its ``conv1.weight`` is (64, C, 3, 3) instead of (64, C, 7, 7), so ImageNet weights do not load
into it. The 6n+2-layer CIFAR nets of the paper's section 4.2 are in ``cifar.py``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
from torch import nn

from cnnlab.errors import ConfigError
from cnnlab.models.layers import check_model_args, classifier_layer, conv1x1, conv3x3, kaiming_init_
from cnnlab.models.registry import register_model

# Builds the attention module that runs on a block's residual branch, given its channel count
# (e.g. SqueezeExcite, wired in by senet.py); None for plain ResNets.
SELayer = Callable[[int], nn.Module]

STEMS = ("imagenet", "cifar")


class BasicBlock(nn.Module):
    """Two 3x3 convs with an identity shortcut (He et al. 2016, Fig. 5 left)."""

    expansion = 1

    def __init__(
        self,
        inplanes: int,
        planes: int,
        stride: int = 1,
        downsample: nn.Module | None = None,
        groups: int = 1,
        base_width: int = 64,
        se_layer: SELayer | None = None,
    ):
        super().__init__()
        if groups != 1 or base_width != 64:
            raise ConfigError(
                f"BasicBlock takes groups=1 and width_per_group=64 only; got groups={groups}, "
                f"width_per_group={base_width}. Grouped or wide variants use Bottleneck blocks."
            )
        self.conv1 = conv3x3(inplanes, planes, stride)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = conv3x3(planes, planes)
        self.bn2 = nn.BatchNorm2d(planes)
        self.se = se_layer(planes) if se_layer is not None else None
        self.downsample = downsample

    def zero_init_last(self) -> None:
        """Zero the last BN's gamma so the block starts as the identity (Goyal et al. 2017)."""
        nn.init.zeros_(self.bn2.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        if self.se is not None:
            out = self.se(out)
        return self.relu(out + identity)


class Bottleneck(nn.Module):
    """1x1 reduce, 3x3 (grouped for ResNeXt), 1x1 expand by 4 (He et al. 2016, Fig. 5 right).

    Stride on the 3x3 conv (ResNet v1.5); the paper strides the first 1x1.
    """

    expansion = 4

    def __init__(
        self,
        inplanes: int,
        planes: int,
        stride: int = 1,
        downsample: nn.Module | None = None,
        groups: int = 1,
        base_width: int = 64,
        se_layer: SELayer | None = None,
    ):
        super().__init__()
        # Xie et al. 2017: width = cardinality x bottleneck width, scaled with the stage
        # (32x4d: 128 channels in stage 1). Wide ResNet-50-2 doubles base_width to 128.
        width = int(planes * (base_width / 64.0)) * groups
        self.conv1 = conv1x1(inplanes, width)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = conv3x3(width, width, stride, groups)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = conv1x1(width, planes * self.expansion)
        self.bn3 = nn.BatchNorm2d(planes * self.expansion)
        self.relu = nn.ReLU(inplace=True)
        self.se = se_layer(planes * self.expansion) if se_layer is not None else None
        self.downsample = downsample

    def zero_init_last(self) -> None:
        """Zero the last BN's gamma so the block starts as the identity (Goyal et al. 2017)."""
        nn.init.zeros_(self.bn3.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        if self.se is not None:
            out = self.se(out)  # after the last BN, before the addition (Hu et al. 2018, Fig. 3)
        return self.relu(out + identity)


@dataclass(frozen=True)
class ResNetCfg:
    """One row of the family table."""

    block: type[BasicBlock] | type[Bottleneck]
    layers: tuple[int, int, int, int]  # blocks in conv2_x..conv5_x
    groups: int = 1  # ResNeXt cardinality
    width_per_group: int = 64  # 3x3 width per group in conv2_x


# He et al. 2016, Table 1; Xie et al. 2017, Table 1 (32x4d) and sec. 5.1 (101 32x8d);
# Zagoruyko & Komodakis 2016, WRN-50-2-bottleneck (inner 3x3 widths doubled, outer ones not).
RESNET_CFGS: dict[str, ResNetCfg] = {
    "resnet18": ResNetCfg(BasicBlock, (2, 2, 2, 2)),
    "resnet34": ResNetCfg(BasicBlock, (3, 4, 6, 3)),
    "resnet50": ResNetCfg(Bottleneck, (3, 4, 6, 3)),
    "resnet101": ResNetCfg(Bottleneck, (3, 4, 23, 3)),
    "resnet152": ResNetCfg(Bottleneck, (3, 8, 36, 3)),
    "resnext50_32x4d": ResNetCfg(Bottleneck, (3, 4, 6, 3), groups=32, width_per_group=4),
    "resnext101_32x8d": ResNetCfg(Bottleneck, (3, 4, 23, 3), groups=32, width_per_group=8),
    "wide_resnet50_2": ResNetCfg(Bottleneck, (3, 4, 6, 3), width_per_group=128),
}


class ResNet(nn.Module):
    """A ResNet of four stages of residual blocks (He et al. 2016, Table 1)."""

    def __init__(
        self,
        block: type[BasicBlock] | type[Bottleneck],
        layers: tuple[int, int, int, int],
        num_classes: int = 1000,
        in_chans: int = 3,
        groups: int = 1,
        width_per_group: int = 64,
        stem: str = "imagenet",
        zero_init_residual: bool = False,
        se_layer: SELayer | None = None,
    ):
        super().__init__()
        check_model_args(num_classes, in_chans)
        if stem not in STEMS:
            raise ConfigError(
                f"unknown ResNet stem {stem!r}; expected one of {STEMS}. 'imagenet' is the paper's "
                "7x7/2 conv + max-pool, 'cifar' a 3x3/1 conv without pooling for 32x32 input."
            )
        self.num_classes = num_classes
        self.in_chans = in_chans
        self.stem = stem
        self.inplanes = 64
        if stem == "imagenet":
            self.conv1 = nn.Conv2d(in_chans, 64, 7, stride=2, padding=3, bias=False)
        else:  # 32x32 images would shrink to 8x8 before layer1 with the ImageNet stem
            self.conv1 = nn.Conv2d(in_chans, 64, 3, stride=1, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1) if stem == "imagenet" else nn.Identity()
        kw = dict(groups=groups, base_width=width_per_group, se_layer=se_layer)
        self.layer1 = self._make_layer(block, 64, layers[0], stride=1, **kw)
        self.layer2 = self._make_layer(block, 128, layers[1], stride=2, **kw)
        self.layer3 = self._make_layer(block, 256, layers[2], stride=2, **kw)
        self.layer4 = self._make_layer(block, 512, layers[3], stride=2, **kw)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.num_features = 512 * block.expansion
        self.fc = nn.Linear(self.num_features, num_classes)

        kaiming_init_(self)
        if zero_init_residual:
            for m in self.modules():
                if isinstance(m, (BasicBlock, Bottleneck)):
                    m.zero_init_last()

    def _make_layer(self, block, planes: int, blocks: int, stride: int, **kw) -> nn.Sequential:
        downsample = None
        if stride != 1 or self.inplanes != planes * block.expansion:
            # Projection shortcut (option B of He et al. 2016, sec. 3.3) where the shape changes.
            downsample = nn.Sequential(
                conv1x1(self.inplanes, planes * block.expansion, stride),
                nn.BatchNorm2d(planes * block.expansion),
            )
        stage = [block(self.inplanes, planes, stride, downsample, **kw)]
        self.inplanes = planes * block.expansion
        stage += [block(self.inplanes, planes, **kw) for _ in range(1, blocks)]
        return nn.Sequential(*stage)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Stem and four stages: (N, C, H, W) -> (N, num_features, H/32, W/32) (imagenet stem)."""
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))  # (N, 64, H/4, W/4); H with cifar stem
        x = self.layer1(x)
        x = self.layer2(x)  # (N, 128*e, H/8, W/8)
        x = self.layer3(x)
        return self.layer4(x)  # (N, 512*e, H/32, W/32)

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        """Global average pool and fc; ``pre_logits=True`` stops before fc: (N, num_features)."""
        x = torch.flatten(self.avgpool(x), 1)
        return x if pre_logits else self.fc(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))

    def reset_classifier(self, num_classes: int) -> None:
        """A fresh fc for `num_classes` outputs; 0 leaves an identity (the pooled features)."""
        self.fc = classifier_layer(self.num_features, num_classes, like=self)
        self.num_classes = num_classes


def build_resnet(name: str, num_classes: int, in_chans: int, **kwargs) -> ResNet:
    """A ResNet from row `name` of RESNET_CFGS (He et al. 2016, Table 1); `kwargs` go to ResNet."""
    cfg = RESNET_CFGS[name]
    return ResNet(cfg.block, cfg.layers, num_classes=num_classes, in_chans=in_chans,
                  groups=cfg.groups, width_per_group=cfg.width_per_group, **kwargs)


_HE = "He et al. 2016, Deep Residual Learning for Image Recognition"


@register_model(input_size=224, paper=_HE)
def resnet18(
    num_classes: int = 1000, in_chans: int = 3, *, stem: str = "imagenet",
    zero_init_residual: bool = False,
) -> ResNet:
    """ResNet-18 (He et al. 2016, Table 1); ``stem="cifar"`` for 32x32 images."""
    return build_resnet("resnet18", num_classes, in_chans, stem=stem,
                        zero_init_residual=zero_init_residual)


@register_model(input_size=224, paper=_HE)
def resnet34(
    num_classes: int = 1000, in_chans: int = 3, *, stem: str = "imagenet",
    zero_init_residual: bool = False,
) -> ResNet:
    """ResNet-34 (He et al. 2016, Table 1)."""
    return build_resnet("resnet34", num_classes, in_chans, stem=stem,
                        zero_init_residual=zero_init_residual)


@register_model(input_size=224, paper=_HE)
def resnet50(
    num_classes: int = 1000, in_chans: int = 3, *, stem: str = "imagenet",
    zero_init_residual: bool = False,
) -> ResNet:
    """ResNet-50 (He et al. 2016, Table 1), v1.5 strides."""
    return build_resnet("resnet50", num_classes, in_chans, stem=stem,
                        zero_init_residual=zero_init_residual)


@register_model(input_size=224, paper=_HE)
def resnet101(
    num_classes: int = 1000, in_chans: int = 3, *, stem: str = "imagenet",
    zero_init_residual: bool = False,
) -> ResNet:
    """ResNet-101 (He et al. 2016, Table 1), v1.5 strides."""
    return build_resnet("resnet101", num_classes, in_chans, stem=stem,
                        zero_init_residual=zero_init_residual)


@register_model(input_size=224, paper=_HE)
def resnet152(
    num_classes: int = 1000, in_chans: int = 3, *, stem: str = "imagenet",
    zero_init_residual: bool = False,
) -> ResNet:
    """ResNet-152 (He et al. 2016, Table 1), v1.5 strides."""
    return build_resnet("resnet152", num_classes, in_chans, stem=stem,
                        zero_init_residual=zero_init_residual)


_XIE = "Xie et al. 2017, Aggregated Residual Transformations for Deep Neural Networks"


@register_model(input_size=224, paper=_XIE)
def resnext50_32x4d(
    num_classes: int = 1000, in_chans: int = 3, *, stem: str = "imagenet",
    zero_init_residual: bool = False,
) -> ResNet:
    """ResNeXt-50 32x4d: cardinality 32, bottleneck width 4 (Xie et al. 2017, Table 1)."""
    return build_resnet("resnext50_32x4d", num_classes, in_chans, stem=stem,
                        zero_init_residual=zero_init_residual)


@register_model(input_size=224, paper=_XIE)
def resnext101_32x8d(
    num_classes: int = 1000, in_chans: int = 3, *, stem: str = "imagenet",
    zero_init_residual: bool = False,
) -> ResNet:
    """ResNeXt-101 32x8d: cardinality 32, bottleneck width 8 (Xie et al. 2017, sec. 5.1)."""
    return build_resnet("resnext101_32x8d", num_classes, in_chans, stem=stem,
                        zero_init_residual=zero_init_residual)


@register_model(input_size=224, paper="Zagoruyko & Komodakis 2016, Wide Residual Networks")
def wide_resnet50_2(
    num_classes: int = 1000, in_chans: int = 3, *, stem: str = "imagenet",
    zero_init_residual: bool = False,
) -> ResNet:
    """Wide ResNet-50-2: ResNet-50 with the 3x3 widths doubled (Zagoruyko & Komodakis 2016)."""
    return build_resnet("wide_resnet50_2", num_classes, in_chans, stem=stem,
                        zero_init_residual=zero_init_residual)
