"""GoogLeNet (Inception v1, Szegedy et al. 2015) and Inception-v3 (Szegedy et al. 2016).

Both keep torchvision's module names and order, so its published weight files load with
``strict=True``. Both add BatchNorm after every convolution (Google's released checkpoints have
it; the 2015 paper used local response normalisation instead) with ``eps=1e-3``, the value those
TensorFlow checkpoints were trained with.

In train mode a model built with ``aux_logits=True`` returns a named tuple (the main logits first,
then the auxiliary classifiers' logits) whose losses the paper adds with weight 0.3 (v1) or uses as
a regulariser (v3); in eval mode it returns the logits alone.
"""

from __future__ import annotations

from collections import namedtuple

import torch
import torch.nn.functional as F
from torch import nn

from cnnlab.errors import ConfigError
from cnnlab.models.layers import (
    check_dropout, check_model_args, classifier_layer, kaiming_init_, normal_init_,
)
from cnnlab.models.registry import register_model

GoogLeNetOutputs = namedtuple("GoogLeNetOutputs", ["logits", "aux_logits2", "aux_logits1"])
InceptionOutputs = namedtuple("InceptionOutputs", ["logits", "aux_logits"])

# Szegedy et al. 2015, Table 1, one row per inception module:
# (#1x1, #3x3 reduce, #3x3, #5x5 reduce, #5x5, pool proj).
# Output width = #1x1 + #3x3 + #5x5 + pool proj.
GOOGLENET_CFG = {
    "3a": (64, 96, 128, 16, 32, 32),
    "3b": (128, 128, 192, 32, 96, 64),
    "4a": (192, 96, 208, 16, 48, 64),
    "4b": (160, 112, 224, 24, 64, 64),
    "4c": (128, 128, 256, 24, 64, 64),
    "4d": (112, 144, 288, 32, 64, 64),
    "4e": (256, 160, 320, 32, 128, 128),
    "5a": (256, 160, 320, 32, 128, 128),
    "5b": (384, 192, 384, 48, 128, 128),
}

# ImageNet statistics (torchvision's). With transform_input=True an input normalised with them is
# re-normalised to the [-1, 1] scaling (x - 0.5) / 0.5 that Google's ported weights expect.
_IMAGENET_MEAN = (0.485, 0.456, 0.406)
_IMAGENET_STD = (0.229, 0.224, 0.225)


class BasicConv2d(nn.Module):
    """Convolution (no bias) + BatchNorm + ReLU: the unit every Inception branch is built from."""

    def __init__(self, in_channels: int, out_channels: int, **conv_kwargs) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, bias=False, **conv_kwargs)
        self.bn = nn.BatchNorm2d(out_channels, eps=0.001)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.bn(self.conv(x)), inplace=True)


def _init_weights(model: nn.Module) -> None:
    # Neither paper states an initialisation. Every convolution feeds a BatchNorm, so its scale
    # does not matter and He et al. (2015, fan-in) is a safe default; classifier weights drawn
    # with std 0.01 make the first logits near zero, so training starts at a loss of about
    # ln(num_classes).
    kaiming_init_(model, mode="fan_in", linear_init=normal_init_)


def _transform_input(x: torch.Tensor) -> torch.Tensor:
    """Map an ImageNet-normalised batch to the (x - 0.5) / 0.5 scaling of Google's weights."""
    mean = torch.tensor(_IMAGENET_MEAN, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    std = torch.tensor(_IMAGENET_STD, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    return x * (std / 0.5) + (mean - 0.5) / 0.5


def _check_args(num_classes: int, in_chans: int, transform_input: bool, **dropouts) -> None:
    check_model_args(num_classes, in_chans)
    for what, p in dropouts.items():
        check_dropout(p, what)
    if transform_input and in_chans != 3:
        raise ConfigError(
            f"transform_input re-normalises the 3 RGB channels; got in_chans={in_chans}. "
            "Use transform_input=False with other channel counts."
        )


# ----------------------------------------------------------------------------- GoogLeNet


class Inception(nn.Module):
    """One GoogLeNet inception module (Szegedy et al. 2015, Figure 2b): four parallel branches."""

    def __init__(self, in_channels: int, ch1x1: int, ch3x3red: int, ch3x3: int,
                 ch5x5red: int, ch5x5: int, pool_proj: int) -> None:
        super().__init__()
        self.branch1 = BasicConv2d(in_channels, ch1x1, kernel_size=1)
        self.branch2 = nn.Sequential(
            BasicConv2d(in_channels, ch3x3red, kernel_size=1),
            BasicConv2d(ch3x3red, ch3x3, kernel_size=3, padding=1),
        )
        # Departure kept for weight compatibility: the paper's "5x5" branch is a 3x3 convolution
        # here, as in torchvision (which lists it as a known bug, pytorch/vision#906). Its published
        # weights hold 3x3 kernels, so a true 5x5 would not load them.
        self.branch3 = nn.Sequential(
            BasicConv2d(in_channels, ch5x5red, kernel_size=1),
            BasicConv2d(ch5x5red, ch5x5, kernel_size=3, padding=1),
        )
        self.branch4 = nn.Sequential(
            nn.MaxPool2d(kernel_size=3, stride=1, padding=1, ceil_mode=True),
            BasicConv2d(in_channels, pool_proj, kernel_size=1),
        )
        self.out_channels = ch1x1 + ch3x3 + ch5x5 + pool_proj

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        branches = (self.branch1(x), self.branch2(x), self.branch3(x), self.branch4(x))
        return torch.cat(branches, dim=1)  # (N, out_channels, H, W)


class InceptionAux(nn.Module):
    """GoogLeNet's auxiliary classifier on inception 4a / 4d (Szegedy et al. 2015, Section 5)."""

    def __init__(self, in_channels: int, num_classes: int, dropout: float = 0.7) -> None:
        super().__init__()
        self.conv = BasicConv2d(in_channels, 128, kernel_size=1)
        self.fc1 = nn.Linear(128 * 4 * 4, 1024)
        self.fc2 = classifier_layer(1024, num_classes, normal_init_)
        self.dropout = nn.Dropout(p=dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # The paper pools 14x14 with a 5x5/3 window to 4x4; adaptive pooling gives 4x4 at any size.
        x = F.adaptive_avg_pool2d(x, (4, 4))
        x = torch.flatten(self.conv(x), 1)  # (N, 2048)
        x = self.dropout(F.relu(self.fc1(x), inplace=True))
        return self.fc2(x)


class _InceptionNet(nn.Module):
    """The classifier protocol GoogLeNet and Inception-v3 share around their different trunks.

    A subclass sets ``Outputs`` (its train-mode named tuple) and defines ``_trunk(x, with_aux)``
    returning the last module's map and, with `with_aux`, the auxiliary logits in Outputs' order.
    """

    Outputs: type

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """The last inception module's map, (N, num_features, h, w)."""
        return self._trunk(x, with_aux=False)[0]

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        """Global average pool, dropout and the linear classifier; pre_logits stops at the pool."""
        x = torch.flatten(self.avgpool(x), 1)
        if pre_logits:
            return x
        return self.fc(self.dropout(x))

    def forward(self, x: torch.Tensor):
        with_aux = self.training and self.aux_logits
        x, aux = self._trunk(x, with_aux)
        logits = self.forward_head(x)
        if with_aux:
            return self.Outputs(logits, *aux)
        return logits


class GoogLeNet(_InceptionNet):
    """GoogLeNet (Szegedy et al. 2015), with BatchNorm and torchvision's layout."""

    Outputs = GoogLeNetOutputs

    def __init__(self, num_classes: int = 1000, in_chans: int = 3, aux_logits: bool = True,
                 transform_input: bool = False, dropout: float = 0.2,
                 dropout_aux: float = 0.7) -> None:
        super().__init__()
        _check_args(num_classes, in_chans, transform_input, dropout=dropout,
                    dropout_aux=dropout_aux)
        self.num_classes = num_classes
        self.in_chans = in_chans
        self.aux_logits = aux_logits
        self.transform_input = transform_input

        self.conv1 = BasicConv2d(in_chans, 64, kernel_size=7, stride=2, padding=3)
        # ceil_mode: Caffe's pooling arithmetic, which the original GoogLeNet used.
        self.maxpool1 = nn.MaxPool2d(3, stride=2, ceil_mode=True)
        self.conv2 = BasicConv2d(64, 64, kernel_size=1)
        self.conv3 = BasicConv2d(64, 192, kernel_size=3, padding=1)
        self.maxpool2 = nn.MaxPool2d(3, stride=2, ceil_mode=True)
        width = 192
        for stage, cfg in GOOGLENET_CFG.items():
            block = Inception(width, *cfg)
            setattr(self, f"inception{stage}", block)
            width = block.out_channels
            if stage == "3b":
                self.maxpool3 = nn.MaxPool2d(3, stride=2, ceil_mode=True)
            elif stage == "4e":
                self.maxpool4 = nn.MaxPool2d(2, stride=2, ceil_mode=True)
        self.num_features = width  # 1024
        if aux_logits:
            self.aux1 = InceptionAux(self.inception4a.out_channels, num_classes, dropout_aux)
            self.aux2 = InceptionAux(self.inception4d.out_channels, num_classes, dropout_aux)
        else:
            self.aux1 = self.aux2 = None
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(p=dropout)
        self.fc = classifier_layer(self.num_features, num_classes, normal_init_)
        _init_weights(self)

    def _trunk(self, x: torch.Tensor, with_aux: bool):
        if self.transform_input:
            x = _transform_input(x)
        x = self.maxpool1(self.conv1(x))              # (N, 64, H/4, W/4)
        x = self.maxpool2(self.conv3(self.conv2(x)))  # (N, 192, H/8, W/8)
        x = self.maxpool3(self.inception3b(self.inception3a(x)))  # (N, 480, H/16, W/16)
        x = self.inception4a(x)
        aux1 = self.aux1(x) if with_aux else None
        x = self.inception4d(self.inception4c(self.inception4b(x)))
        aux2 = self.aux2(x) if with_aux else None
        x = self.maxpool4(self.inception4e(x))        # (N, 832, H/32, W/32)
        x = self.inception5b(self.inception5a(x))     # (N, 1024, H/32, W/32)
        return x, (aux2, aux1)                         # torchvision's field order

    def reset_classifier(self, num_classes: int) -> None:
        """Replace the main and auxiliary output layers with fresh ones for `num_classes`."""
        self.fc = classifier_layer(self.num_features, num_classes, normal_init_, self)
        if self.aux_logits:
            self.aux1.fc2 = classifier_layer(1024, num_classes, normal_init_, self)
            self.aux2.fc2 = classifier_layer(1024, num_classes, normal_init_, self)
        self.num_classes = num_classes


@register_model(input_size=224, paper="Szegedy et al. 2015")
def googlenet(num_classes: int = 1000, in_chans: int = 3, aux_logits: bool = True,
              transform_input: bool = False, dropout: float = 0.2,
              dropout_aux: float = 0.7) -> GoogLeNet:
    """GoogLeNet / Inception v1 (Szegedy et al. 2015), 22 layers, torchvision-compatible."""
    return GoogLeNet(num_classes, in_chans, aux_logits, transform_input, dropout, dropout_aux)


# ----------------------------------------------------------------------------- Inception-v3
# Block names follow torchvision (and Google's released checkpoint), which departs from the
# paper's Table 1 in the stem (a 1x1 conv to 80 channels, then 3x3 to 192, then max-pool).


class InceptionA(nn.Module):
    """35x35 module, 5x5 factorised into two 3x3 (Szegedy et al. 2016, Figure 5)."""

    def __init__(self, in_channels: int, pool_features: int) -> None:
        super().__init__()
        self.branch1x1 = BasicConv2d(in_channels, 64, kernel_size=1)
        # torchvision keeps one real 5x5 branch beside the 3x3-3x3 one, as the checkpoint has it.
        self.branch5x5_1 = BasicConv2d(in_channels, 48, kernel_size=1)
        self.branch5x5_2 = BasicConv2d(48, 64, kernel_size=5, padding=2)
        self.branch3x3dbl_1 = BasicConv2d(in_channels, 64, kernel_size=1)
        self.branch3x3dbl_2 = BasicConv2d(64, 96, kernel_size=3, padding=1)
        self.branch3x3dbl_3 = BasicConv2d(96, 96, kernel_size=3, padding=1)
        self.branch_pool = BasicConv2d(in_channels, pool_features, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b1 = self.branch1x1(x)
        b5 = self.branch5x5_2(self.branch5x5_1(x))
        b3 = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        bp = self.branch_pool(F.avg_pool2d(x, kernel_size=3, stride=1, padding=1))
        return torch.cat((b1, b5, b3, bp), dim=1)  # (N, 224 + pool_features, H, W)


class InceptionB(nn.Module):
    """Grid reduction 35x35 -> 17x17, parallel stride-2 branches (Szegedy et al. 2016, Fig. 10)."""

    def __init__(self, in_channels: int) -> None:
        super().__init__()
        self.branch3x3 = BasicConv2d(in_channels, 384, kernel_size=3, stride=2)
        self.branch3x3dbl_1 = BasicConv2d(in_channels, 64, kernel_size=1)
        self.branch3x3dbl_2 = BasicConv2d(64, 96, kernel_size=3, padding=1)
        self.branch3x3dbl_3 = BasicConv2d(96, 96, kernel_size=3, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b3 = self.branch3x3(x)
        bd = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        bp = F.max_pool2d(x, kernel_size=3, stride=2)
        return torch.cat((b3, bd, bp), dim=1)  # (N, 480 + in_channels, H/2, W/2)


class InceptionC(nn.Module):
    """17x17 module, 7x7 factorised into 1x7 and 7x1 (Szegedy et al. 2016, Figure 6, n=7)."""

    def __init__(self, in_channels: int, channels_7x7: int) -> None:
        super().__init__()
        c7 = channels_7x7
        self.branch1x1 = BasicConv2d(in_channels, 192, kernel_size=1)
        self.branch7x7_1 = BasicConv2d(in_channels, c7, kernel_size=1)
        self.branch7x7_2 = BasicConv2d(c7, c7, kernel_size=(1, 7), padding=(0, 3))
        self.branch7x7_3 = BasicConv2d(c7, 192, kernel_size=(7, 1), padding=(3, 0))
        self.branch7x7dbl_1 = BasicConv2d(in_channels, c7, kernel_size=1)
        self.branch7x7dbl_2 = BasicConv2d(c7, c7, kernel_size=(7, 1), padding=(3, 0))
        self.branch7x7dbl_3 = BasicConv2d(c7, c7, kernel_size=(1, 7), padding=(0, 3))
        self.branch7x7dbl_4 = BasicConv2d(c7, c7, kernel_size=(7, 1), padding=(3, 0))
        self.branch7x7dbl_5 = BasicConv2d(c7, 192, kernel_size=(1, 7), padding=(0, 3))
        self.branch_pool = BasicConv2d(in_channels, 192, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b1 = self.branch1x1(x)
        b7 = self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x)))
        bd = self.branch7x7dbl_1(x)
        for conv in (self.branch7x7dbl_2, self.branch7x7dbl_3, self.branch7x7dbl_4,
                     self.branch7x7dbl_5):
            bd = conv(bd)
        bp = self.branch_pool(F.avg_pool2d(x, kernel_size=3, stride=1, padding=1))
        return torch.cat((b1, b7, bd, bp), dim=1)  # (N, 768, H, W)


class InceptionD(nn.Module):
    """Grid reduction 17x17 -> 8x8 (Szegedy et al. 2016, Section 6)."""

    def __init__(self, in_channels: int) -> None:
        super().__init__()
        self.branch3x3_1 = BasicConv2d(in_channels, 192, kernel_size=1)
        self.branch3x3_2 = BasicConv2d(192, 320, kernel_size=3, stride=2)
        self.branch7x7x3_1 = BasicConv2d(in_channels, 192, kernel_size=1)
        self.branch7x7x3_2 = BasicConv2d(192, 192, kernel_size=(1, 7), padding=(0, 3))
        self.branch7x7x3_3 = BasicConv2d(192, 192, kernel_size=(7, 1), padding=(3, 0))
        self.branch7x7x3_4 = BasicConv2d(192, 192, kernel_size=3, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b3 = self.branch3x3_2(self.branch3x3_1(x))
        b7 = self.branch7x7x3_1(x)
        for conv in (self.branch7x7x3_2, self.branch7x7x3_3, self.branch7x7x3_4):
            b7 = conv(b7)
        bp = F.max_pool2d(x, kernel_size=3, stride=2)
        return torch.cat((b3, b7, bp), dim=1)  # (N, 512 + in_channels, H/2, W/2)


class InceptionE(nn.Module):
    """8x8 module with expanded 1x3 / 3x1 filter banks (Szegedy et al. 2016, Figure 7)."""

    def __init__(self, in_channels: int) -> None:
        super().__init__()
        self.branch1x1 = BasicConv2d(in_channels, 320, kernel_size=1)
        self.branch3x3_1 = BasicConv2d(in_channels, 384, kernel_size=1)
        self.branch3x3_2a = BasicConv2d(384, 384, kernel_size=(1, 3), padding=(0, 1))
        self.branch3x3_2b = BasicConv2d(384, 384, kernel_size=(3, 1), padding=(1, 0))
        self.branch3x3dbl_1 = BasicConv2d(in_channels, 448, kernel_size=1)
        self.branch3x3dbl_2 = BasicConv2d(448, 384, kernel_size=3, padding=1)
        self.branch3x3dbl_3a = BasicConv2d(384, 384, kernel_size=(1, 3), padding=(0, 1))
        self.branch3x3dbl_3b = BasicConv2d(384, 384, kernel_size=(3, 1), padding=(1, 0))
        self.branch_pool = BasicConv2d(in_channels, 192, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b1 = self.branch1x1(x)
        b3 = self.branch3x3_1(x)
        b3 = torch.cat((self.branch3x3_2a(b3), self.branch3x3_2b(b3)), dim=1)
        bd = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
        bd = torch.cat((self.branch3x3dbl_3a(bd), self.branch3x3dbl_3b(bd)), dim=1)
        bp = self.branch_pool(F.avg_pool2d(x, kernel_size=3, stride=1, padding=1))
        return torch.cat((b1, b3, bd, bp), dim=1)  # (N, 2048, H, W)


class InceptionV3Aux(nn.Module):
    """Auxiliary classifier on the 17x17 grid (Szegedy et al. 2016, Section 4 and Figure 8)."""

    # The 5x5/3 pool and the unpadded 5x5 conv need a 17x17 map, which only inputs of 299x299 or
    # more produce; smaller inputs work in eval mode or with aux_logits=False. The zoo's input
    # check (models/shapes.py) finds that limit by shape propagation; Inception3.input_hint
    # explains it.
    min_grid = 17

    def __init__(self, in_channels: int, num_classes: int) -> None:
        super().__init__()
        self.conv0 = BasicConv2d(in_channels, 128, kernel_size=1)
        self.conv1 = BasicConv2d(128, 768, kernel_size=5)
        self.fc = classifier_layer(768, num_classes, normal_init_)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.avg_pool2d(x, kernel_size=5, stride=3)   # (N, 768, 5, 5) at 17x17
        x = self.conv1(self.conv0(x))                   # (N, 768, 1, 1)
        x = torch.flatten(F.adaptive_avg_pool2d(x, 1), 1)
        return self.fc(x)


class Inception3(_InceptionNet):
    """Inception-v3 (Szegedy et al. 2016), with torchvision's layout."""

    Outputs = InceptionOutputs

    def __init__(self, num_classes: int = 1000, in_chans: int = 3, aux_logits: bool = True,
                 transform_input: bool = False, dropout: float = 0.5) -> None:
        super().__init__()
        _check_args(num_classes, in_chans, transform_input, dropout=dropout)
        self.num_classes = num_classes
        self.in_chans = in_chans
        self.aux_logits = aux_logits
        self.transform_input = transform_input

        self.Conv2d_1a_3x3 = BasicConv2d(in_chans, 32, kernel_size=3, stride=2)
        self.Conv2d_2a_3x3 = BasicConv2d(32, 32, kernel_size=3)
        self.Conv2d_2b_3x3 = BasicConv2d(32, 64, kernel_size=3, padding=1)
        self.maxpool1 = nn.MaxPool2d(kernel_size=3, stride=2)
        self.Conv2d_3b_1x1 = BasicConv2d(64, 80, kernel_size=1)
        self.Conv2d_4a_3x3 = BasicConv2d(80, 192, kernel_size=3)
        self.maxpool2 = nn.MaxPool2d(kernel_size=3, stride=2)
        self.Mixed_5b = InceptionA(192, pool_features=32)
        self.Mixed_5c = InceptionA(256, pool_features=64)
        self.Mixed_5d = InceptionA(288, pool_features=64)
        self.Mixed_6a = InceptionB(288)
        self.Mixed_6b = InceptionC(768, channels_7x7=128)
        self.Mixed_6c = InceptionC(768, channels_7x7=160)
        self.Mixed_6d = InceptionC(768, channels_7x7=160)
        self.Mixed_6e = InceptionC(768, channels_7x7=192)
        # Registered here, between Mixed_6e and Mixed_7a, to match torchvision's key order.
        self.AuxLogits = InceptionV3Aux(768, num_classes) if aux_logits else None
        self.Mixed_7a = InceptionD(768)
        self.Mixed_7b = InceptionE(1280)
        self.Mixed_7c = InceptionE(2048)
        self.num_features = 2048
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(p=dropout)
        self.fc = classifier_layer(self.num_features, num_classes, normal_init_)
        _init_weights(self)

    @property
    def input_hint(self) -> str:
        """Why train mode needs 299x299: appended by the zoo's input check to its size errors."""
        if not (self.training and self.aux_logits):
            return ""
        g = InceptionV3Aux.min_grid
        return (f"In train mode the AuxLogits head needs a {g}x{g} Mixed_6e map, which only "
                "299x299 input or larger gives; call .eval() or build with aux_logits=False to "
                "go down to 75x75.")

    def _trunk(self, x: torch.Tensor, with_aux: bool):
        if self.transform_input:
            x = _transform_input(x)
        x = self.Conv2d_2b_3x3(self.Conv2d_2a_3x3(self.Conv2d_1a_3x3(x)))  # (N, 64, 147, 147)
        x = self.maxpool1(x)                                                # (N, 64, 73, 73)
        x = self.maxpool2(self.Conv2d_4a_3x3(self.Conv2d_3b_1x1(x)))        # (N, 192, 35, 35)
        x = self.Mixed_5d(self.Mixed_5c(self.Mixed_5b(x)))                  # (N, 288, 35, 35)
        x = self.Mixed_6a(x)                                                # (N, 768, 17, 17)
        x = self.Mixed_6e(self.Mixed_6d(self.Mixed_6c(self.Mixed_6b(x))))
        aux = self.AuxLogits(x) if with_aux else None
        x = self.Mixed_7a(x)                                                # (N, 1280, 8, 8)
        x = self.Mixed_7c(self.Mixed_7b(x))                                 # (N, 2048, 8, 8)
        return x, (aux,)                                  # sizes above are for 299x299 input

    def reset_classifier(self, num_classes: int) -> None:
        """Replace the main and auxiliary output layers with fresh ones for `num_classes`."""
        self.fc = classifier_layer(self.num_features, num_classes, normal_init_, self)
        if self.aux_logits:
            self.AuxLogits.fc = classifier_layer(768, num_classes, normal_init_, self)
        self.num_classes = num_classes


@register_model(input_size=299, paper="Szegedy et al. 2016")
def inception_v3(num_classes: int = 1000, in_chans: int = 3, aux_logits: bool = True,
                 transform_input: bool = False, dropout: float = 0.5) -> Inception3:
    """Inception-v3 (Szegedy et al. 2016) for 299x299 input, torchvision-compatible."""
    return Inception3(num_classes, in_chans, aux_logits, transform_input, dropout)
