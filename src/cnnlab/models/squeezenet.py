"""SqueezeNet (Iandola et al. 2016, "SqueezeNet: AlexNet-level accuracy with 50x fewer parameters
and <0.5MB model size"): Fire modules, no fully connected layers.

``squeezenet1_0`` is the paper's Table 1 / Fig. 2 (left). ``squeezenet1_1`` is version 1.1 from
the authors' repository (not in the paper): a 3x3/64 conv1 and the pools moved earlier, 2.4x less
computation for the same accuracy. Module layout is torchvision's (``features`` of ``Fire``
modules with ``squeeze`` / ``expand1x1`` / ``expand3x3``, then ``classifier``), so torchvision's
ImageNet weights load with strict=True.
"""

from __future__ import annotations

from functools import partial

import torch
from torch import nn

from cnnlab.models.layers import check_dropout, check_model_args, classifier_layer, normal_init_
from cnnlab.models.registry import register_model

_PAPER = "Iandola et al. 2016, SqueezeNet"


class Fire(nn.Module):
    """A Fire module (Iandola et al. 2016, section 3.2): a 1x1 "squeeze" layer feeding 1x1 and 3x3
    "expand" layers whose outputs are concatenated, ReLU after each."""

    def __init__(self, inplanes: int, squeeze_planes: int, expand1x1_planes: int,
                 expand3x3_planes: int):
        super().__init__()
        self.inplanes = inplanes
        self.squeeze = nn.Conv2d(inplanes, squeeze_planes, 1)
        self.squeeze_activation = nn.ReLU(inplace=True)
        self.expand1x1 = nn.Conv2d(squeeze_planes, expand1x1_planes, 1)
        self.expand1x1_activation = nn.ReLU(inplace=True)
        # Padding 1 so both expand outputs have the same size (section 3.3).
        self.expand3x3 = nn.Conv2d(squeeze_planes, expand3x3_planes, 3, padding=1)
        self.expand3x3_activation = nn.ReLU(inplace=True)

    @property
    def out_channels(self) -> int:
        return self.expand1x1.out_channels + self.expand3x3.out_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = self.squeeze_activation(self.squeeze(x))  # (N, s1x1, H, W)
        return torch.cat(
            [self.expand1x1_activation(self.expand1x1(s)),
             self.expand3x3_activation(self.expand3x3(s))],
            dim=1,
        )  # (N, e1x1 + e3x3, H, W)


# Iandola et al. 2016, Table 1 (v1.0) and the authors' v1.1 release. "stem": conv1 (filters,
# kernel), stride 2, then a 3x3/2 max-pool. Tuples: Fire (s1x1, e1x1, e3x3); "M": 3x3/2 max-pool.
# "min_input_size": the smallest side for which the last ceil-mode pool still gets a window
# (torchvision records the same), e.g. v1.1 at 17: conv1 8, pools 4, 2, 1. Kept as a record:
# the zoo's input check (models/shapes.py) derives the limit itself, and the tests compare.
SQUEEZENET_CFGS: dict[str, dict] = {
    "squeezenet1_0": {
        "stem": (96, 7),
        "min_input_size": 21,
        "layers": [(16, 64, 64), (16, 64, 64), (32, 128, 128), "M", (32, 128, 128),
                   (48, 192, 192), (48, 192, 192), (64, 256, 256), "M", (64, 256, 256)],
    },
    "squeezenet1_1": {
        "stem": (64, 3),
        "min_input_size": 17,
        "layers": [(16, 64, 64), (16, 64, 64), "M", (32, 128, 128), (32, 128, 128), "M",
                   (48, 192, 192), (48, 192, 192), (64, 256, 256), (64, 256, 256)],
    },
}

def _max_pool() -> nn.MaxPool2d:
    # ceil_mode: Caffe's pooling rounds up, which the published weights were trained with.
    return nn.MaxPool2d(3, stride=2, ceil_mode=True)


class SqueezeNet(nn.Module):
    """SqueezeNet (Iandola et al. 2016, Table 1): conv1, eight Fire modules, conv10 as the
    classifier (a 1x1 conv to one map per class, ReLU, global average pool)."""

    def __init__(self, cfg: dict, num_classes: int = 1000, in_chans: int = 3,
                 dropout: float = 0.5):
        super().__init__()
        check_model_args(num_classes, in_chans)
        check_dropout(dropout, hint="The paper uses 0.5 after fire9.")
        self.num_classes = num_classes
        self.in_chans = in_chans
        self.min_input_size = cfg["min_input_size"]
        width, kernel = cfg["stem"]
        layers: list[nn.Module] = [nn.Conv2d(in_chans, width, kernel, stride=2),
                                   nn.ReLU(inplace=True), _max_pool()]
        channels = width
        for spec in cfg["layers"]:
            if spec == "M":
                layers.append(_max_pool())
                continue
            fire = Fire(channels, *spec)
            layers.append(fire)
            channels = fire.out_channels
        self.features = nn.Sequential(*layers)
        self.num_features = channels  # 512
        # Dropout 0.5 after fire9 (section 3.3, "other details"), then conv10.
        self.classifier = nn.Sequential(
            nn.Dropout(dropout),
            nn.Conv2d(channels, num_classes, 1),
            nn.ReLU(inplace=True),
            nn.AdaptiveAvgPool2d(1),
        )
        # The paper states no init. He for every conv; N(0, 0.01) for conv10 as in the authors'
        # released Caffe model, so the ReLU'd class maps start small.
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_uniform_(m.weight, nonlinearity="relu")
                nn.init.zeros_(m.bias)
        normal_init_(self.classifier[1])

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """conv1 to fire9: (N, C, H, W) -> (N, 512, h, w), h = 13 at 224 (v1.0 and v1.1)."""
        return self.features(x)

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        """Dropout, conv10, ReLU, global average pool: (N, num_classes).

        ``pre_logits=True`` returns fire9's maps averaged over space, (N, 512): conv10 acts
        before the pool, so there is no pooled vector in front of the class scores to return.
        """
        if pre_logits:
            return torch.flatten(x.mean(dim=(2, 3)), 1)
        return torch.flatten(self.classifier(x), 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))

    def reset_classifier(self, num_classes: int) -> None:
        """A fresh conv10 for `num_classes` classes; 0 leaves fire9's pooled (ReLU'd) maps."""
        self.classifier[1] = classifier_layer(self.num_features, num_classes, normal_init_, self,
                                              layer=partial(nn.Conv2d, kernel_size=1))
        self.num_classes = num_classes


@register_model(input_size=224, paper=_PAPER)
def squeezenet1_0(num_classes: int = 1000, in_chans: int = 3, dropout: float = 0.5) -> SqueezeNet:
    """SqueezeNet v1.0 (Iandola et al. 2016, Table 1): 1.25M parameters at 1000 classes."""
    return SqueezeNet(SQUEEZENET_CFGS["squeezenet1_0"], num_classes, in_chans, dropout)


@register_model(input_size=224, paper=_PAPER + " (v1.1, authors' repository)")
def squeezenet1_1(num_classes: int = 1000, in_chans: int = 3, dropout: float = 0.5) -> SqueezeNet:
    """SqueezeNet v1.1 (Iandola et al.'s release after the 2016 paper): 2.4x less computation."""
    return SqueezeNet(SQUEEZENET_CFGS["squeezenet1_1"], num_classes, in_chans, dropout)
