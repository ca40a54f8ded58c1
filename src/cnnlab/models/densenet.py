"""DenseNet-BC (Huang et al. 2017): every layer in a dense block sees all earlier layers' maps.

Module names follow torchvision (``features.denseblock1.denselayer1.norm1``,
``features.transition1``, ``features.norm5``, ``classifier``) so its weight files load with
``strict=True``; files saved before torchvision 0.3 spell the layer keys ``norm.1`` / ``conv.2``
and need :func:`convert_legacy_keys` first.
"""

from __future__ import annotations

import re
from collections import OrderedDict

import torch
import torch.nn.functional as F
from torch import nn

from cnnlab.models.layers import check_dropout, check_model_args, classifier_layer, kaiming_init_
from cnnlab.models.registry import register_model

# Huang et al. 2017, Table 1 (DenseNet-BC, compression 0.5). growth_rate is k; block_config the
# number of layers in each of the four dense blocks; num_init_features the stem width (2k).
# Every row uses the default bn_size=4: a 4k-wide 1x1 bottleneck in each layer, as in the paper.
# densenet161 is not in Table 1: it is the k=48 ImageNet model the authors released with the code.
DENSENET_CFGS = {
    "densenet121": dict(growth_rate=32, block_config=(6, 12, 24, 16), num_init_features=64),
    "densenet161": dict(growth_rate=48, block_config=(6, 12, 36, 24), num_init_features=96),
    "densenet169": dict(growth_rate=32, block_config=(6, 12, 32, 32), num_init_features=64),
    "densenet201": dict(growth_rate=32, block_config=(6, 12, 48, 32), num_init_features=64),
}


class DenseLayer(nn.Module):
    """BN-ReLU-Conv(1x1)-BN-ReLU-Conv(3x3) adding growth_rate maps (Huang et al. 2017, Sec. 3)."""

    def __init__(self, in_features: int, growth_rate: int, bn_size: int, drop_rate: float) -> None:
        super().__init__()
        self.norm1 = nn.BatchNorm2d(in_features)
        self.relu1 = nn.ReLU(inplace=True)
        self.conv1 = nn.Conv2d(in_features, bn_size * growth_rate, kernel_size=1, bias=False)
        self.norm2 = nn.BatchNorm2d(bn_size * growth_rate)
        self.relu2 = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(bn_size * growth_rate, growth_rate, kernel_size=3, padding=1,
                               bias=False)
        self.drop_rate = float(drop_rate)

    def forward(self, features: list[torch.Tensor]) -> torch.Tensor:
        x = torch.cat(features, dim=1)  # (N, in_features, H, W): all earlier maps
        x = self.conv1(self.relu1(self.norm1(x)))
        x = self.conv2(self.relu2(self.norm2(x)))  # (N, growth_rate, H, W)
        if self.drop_rate > 0:
            x = F.dropout(x, p=self.drop_rate, training=self.training)
        return x


class DenseBlock(nn.ModuleDict):
    """`num_layers` DenseLayers, each fed the concatenation of the block input and all before it."""

    def __init__(self, num_layers: int, in_features: int, growth_rate: int, bn_size: int,
                 drop_rate: float) -> None:
        super().__init__()
        for i in range(num_layers):
            layer = DenseLayer(in_features + i * growth_rate, growth_rate, bn_size, drop_rate)
            self.add_module(f"denselayer{i + 1}", layer)
        self.out_features = in_features + num_layers * growth_rate

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = [x]
        for layer in self.values():
            features.append(layer(features))
        return torch.cat(features, dim=1)  # (N, out_features, H, W)


class Transition(nn.Sequential):
    """BN-ReLU-Conv(1x1) halving the channels, then 2x2 average pool (Huang et al. 2017, Sec. 3)."""

    def __init__(self, in_features: int, out_features: int) -> None:
        super().__init__()
        self.norm = nn.BatchNorm2d(in_features)
        self.relu = nn.ReLU(inplace=True)
        self.conv = nn.Conv2d(in_features, out_features, kernel_size=1, bias=False)
        self.pool = nn.AvgPool2d(kernel_size=2, stride=2)


def _init_classifier(fc: nn.Linear) -> None:
    # PyTorch's default weights and a zero bias, as torchvision initialises its DenseNets (the
    # paper states no init for the classifier).
    nn.init.zeros_(fc.bias)


class DenseNet(nn.Module):
    """DenseNet-BC for ImageNet (Huang et al. 2017): a 7x7 stem and four dense blocks."""

    def __init__(self, growth_rate: int = 32, block_config: tuple[int, ...] = (6, 12, 24, 16),
                 num_init_features: int = 64, bn_size: int = 4, drop_rate: float = 0.0,
                 num_classes: int = 1000, in_chans: int = 3) -> None:
        super().__init__()
        check_model_args(num_classes, in_chans)
        check_dropout(drop_rate, "drop_rate")
        self.num_classes = num_classes
        self.in_chans = in_chans
        self.features = nn.Sequential(OrderedDict([
            ("conv0", nn.Conv2d(in_chans, num_init_features, kernel_size=7, stride=2, padding=3,
                                bias=False)),
            ("norm0", nn.BatchNorm2d(num_init_features)),
            ("relu0", nn.ReLU(inplace=True)),
            ("pool0", nn.MaxPool2d(kernel_size=3, stride=2, padding=1)),
        ]))
        width = num_init_features
        for i, num_layers in enumerate(block_config):
            block = DenseBlock(num_layers, width, growth_rate, bn_size, drop_rate)
            self.features.add_module(f"denseblock{i + 1}", block)
            width = block.out_features
            if i != len(block_config) - 1:
                # compression theta = 0.5: each transition halves the channels (DenseNet-BC)
                self.features.add_module(f"transition{i + 1}", Transition(width, width // 2))
                width //= 2
        # The paper's BN-ReLU before global pooling; its ReLU runs in forward_features.
        self.features.add_module("norm5", nn.BatchNorm2d(width))
        self.num_features = width
        self.classifier = classifier_layer(width, num_classes, _init_classifier)
        # He et al. 2015 (fan-in) for convolutions, as the paper states (Section 4.2).
        kaiming_init_(self, mode="fan_in", linear_init=_init_classifier)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Last dense block's map after BN-ReLU, (N, C, H/32, W/32) (Huang et al. 2017)."""
        return F.relu(self.features(x))

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        """Global average pool and the linear classifier; pre_logits stops at (N, num_features)."""
        x = torch.flatten(F.adaptive_avg_pool2d(x, 1), 1)
        return x if pre_logits else self.classifier(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))

    def reset_classifier(self, num_classes: int) -> None:
        """Replace the classifier with a fresh one for `num_classes` (0: features only)."""
        self.classifier = classifier_layer(self.num_features, num_classes, _init_classifier, self)
        self.num_classes = num_classes


# Before torchvision 0.3, DenseLayer was a Sequential with modules named "norm.1", "conv.2", ...;
# torchvision's published densenet*.pth files still use those names.
_LEGACY_KEY = re.compile(
    r"^(.*denselayer\d+\.(?:norm|relu|conv))\.((?:[12])\.(?:weight|bias|running_mean|running_var"
    r"|num_batches_tracked))$"
)


def convert_legacy_keys(state_dict: dict) -> dict:
    """Rename old torchvision DenseNet keys (``denselayer1.norm.1.weight`` -> ``norm1.weight``)."""
    out = OrderedDict()
    for key, value in state_dict.items():
        m = _LEGACY_KEY.match(key)
        out[m.group(1) + m.group(2) if m else key] = value
    return out


def _densenet(name: str, num_classes: int, in_chans: int, drop_rate: float) -> DenseNet:
    return DenseNet(**DENSENET_CFGS[name], drop_rate=drop_rate, num_classes=num_classes,
                    in_chans=in_chans)


@register_model(input_size=224, paper="Huang et al. 2017")
def densenet121(num_classes: int = 1000, in_chans: int = 3, drop_rate: float = 0.0) -> DenseNet:
    """DenseNet-BC-121, k=32 (Huang et al. 2017, Table 1)."""
    return _densenet("densenet121", num_classes, in_chans, drop_rate)


@register_model(input_size=224, paper="Huang et al. 2017")
def densenet161(num_classes: int = 1000, in_chans: int = 3, drop_rate: float = 0.0) -> DenseNet:
    """DenseNet-BC-161, k=48, the authors' released ImageNet model (Huang et al. 2017)."""
    return _densenet("densenet161", num_classes, in_chans, drop_rate)


@register_model(input_size=224, paper="Huang et al. 2017")
def densenet169(num_classes: int = 1000, in_chans: int = 3, drop_rate: float = 0.0) -> DenseNet:
    """DenseNet-BC-169, k=32 (Huang et al. 2017, Table 1)."""
    return _densenet("densenet169", num_classes, in_chans, drop_rate)


@register_model(input_size=224, paper="Huang et al. 2017")
def densenet201(num_classes: int = 1000, in_chans: int = 3, drop_rate: float = 0.0) -> DenseNet:
    """DenseNet-BC-201, k=32 (Huang et al. 2017, Table 1)."""
    return _densenet("densenet201", num_classes, in_chans, drop_rate)
