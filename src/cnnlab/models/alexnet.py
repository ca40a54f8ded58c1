"""AlexNet (Krizhevsky, Sutskever & Hinton 2012) and ZFNet (Zeiler & Fergus 2014).

Three builders over one class, five convolutions in ``features`` and three fully connected
layers in ``classifier``:

``alexnet``
    torchvision's variant, from Krizhevsky 2014 ("One weird trick for parallelizing
    convolutional neural networks"): 64/192/384/256/256 kernels, no response normalisation, no
    grouping, an adaptive average pool to 6x6 so any input from 63x63 up works, dropout before
    fc6 and fc7. Its state dict is torchvision's, so torchvision's weights load with strict=True.
    61,100,840 parameters at 1000 classes.
``alexnet_paper``
    The 2012 network: 227x227 input, 96/256/384/384/256 kernels, ReLU then local response
    normalisation after conv1 and conv2, overlapping 3x3 stride-2 max-pooling, dropout on the
    outputs of fc6 and fc7. The two-GPU split is expressed as ``groups=2`` on conv2, conv4 and
    conv5, the layers whose kernels see only the maps on their own GPU (section 3.2, Fig. 2).
    60,965,224 parameters at 1000 classes.
``zfnet``
    Zeiler & Fergus 2014, "Visualizing and Understanding Convolutional Networks", Fig. 3: the
    AlexNet layout on one GPU (dense connections) with a 7x7 stride-2 first layer and a stride-2
    conv2, each followed by ReLU, 3x3 stride-2 max-pooling and contrast normalisation across maps.

Departures, each deliberate:
- The 2012 paper writes 224x224 inputs, but its 55x55 conv1 output needs 227x227
  ((227 - 11) / 4 + 1 = 55); we register 227.
- ``nn.LocalResponseNorm`` divides alpha by n; the paper's formula does not. We pass
  alpha = n * 1e-4 so the layer computes the paper's b = a / (k + 1e-4 * sum a^2)^0.75.
- ZFNet's Fig. 3 sizes (224 -> 110 -> 55 -> 26 -> 13 -> 6) need padding 1 on conv1 and
  ceil-mode rounding in the first two pools (as in Caffe and cuda-convnet); the paper states
  neither. It gives no contrast-normalisation constants either: we use AlexNet's.
- ``alexnet_paper`` and ``zfnet`` have no adaptive pool (the papers have none): they take their
  nominal input size (give or take the few pixels the strides round away); built with
  ``create_model``, they raise InputShapeError for others, with ``input_hint`` in the message.
"""

from __future__ import annotations

import torch
from torch import nn

from cnnlab.models.layers import (
    check_dropout, check_model_args, classifier_layer, kaiming_init_, normal_init_,
)
from cnnlab.models.registry import register_model

_KRIZHEVSKY_2012 = "Krizhevsky et al. 2012, ImageNet Classification with Deep CNNs"
_KRIZHEVSKY_2014 = "Krizhevsky 2014, One weird trick for parallelizing CNNs (torchvision variant)"
_ZEILER = "Zeiler & Fergus 2014, Visualizing and Understanding Convolutional Networks"

# Krizhevsky et al. 2012, section 3.3: k = 2, n = 5, alpha = 1e-4, beta = 0.75. PyTorch's layer
# computes a / (k + alpha/n * sum a^2)^beta, hence alpha = n * 1e-4 for the paper's formula.
LRN_SIZE, LRN_ALPHA, LRN_BETA, LRN_K = 5, 5 * 1e-4, 0.75, 2.0

POOLED_SIDE = 6  # fc6 takes 256 maps of 6x6 in all three networks: 9216 inputs


def local_response_norm() -> nn.LocalResponseNorm:
    """Response normalisation across 5 neighbouring maps (Krizhevsky et al. 2012, section 3.3)."""
    return nn.LocalResponseNorm(LRN_SIZE, alpha=LRN_ALPHA, beta=LRN_BETA, k=LRN_K)


class AlexNet(nn.Module):
    """Five convolutions and three fully connected layers (Krizhevsky et al. 2012, Fig. 2).

    ``avgpool`` is torchvision's adaptive pool to 6x6, or None where the classifier takes the
    6x6 maps of the nominal ``input_size`` only.
    """

    def __init__(
        self,
        features: nn.Sequential,
        classifier: nn.Sequential,
        num_classes: int,
        in_chans: int,
        avgpool: nn.Module | None = None,
        input_size: int = 224,
        input_hint: str = "",
    ):
        super().__init__()
        self.features = features
        self.avgpool = avgpool
        self.classifier = classifier
        self.num_classes = num_classes
        self.in_chans = in_chans
        self.input_size = input_size
        # Appended by the zoo's input check (models/shapes.py) to its size errors.
        self.input_hint = input_hint
        self.num_features = classifier[-1].in_features  # 4096

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """The five conv layers with their pools: (N, C, H, W) -> (N, 256, h, w)."""
        return self.features(x)

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        """(Adaptive pool to 6x6,) flatten, fc6, fc7 (, fc8); ``pre_logits``: (N, 4096)."""
        if self.avgpool is not None:
            x = self.avgpool(x)  # (N, 256, 6, 6)
        x = torch.flatten(x, 1)  # (N, 9216)
        return self.classifier[:-1](x) if pre_logits else self.classifier(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))

    def reset_classifier(self, num_classes: int) -> None:
        """A fresh fc8 for `num_classes` outputs, N(0, 0.01); 0 leaves fc7's 4096 features."""
        self.classifier[-1] = classifier_layer(self.num_features, num_classes, normal_init_, self)
        self.num_classes = num_classes


def _gaussian_init_(model: AlexNet, bias_one: tuple[nn.Module, ...] = ()) -> AlexNet:
    """N(0, 0.01) for every weight; bias 1 for the layers in `bias_one`, 0 for the others."""
    for m in model.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            nn.init.normal_(m.weight, 0.0, 0.01)
            nn.init.constant_(m.bias, 1.0 if any(m is b for b in bias_one) else 0.0)
    return model


def _classifier(num_classes: int, dropout: float, dropout_first: bool) -> nn.Sequential:
    # Dropout on the inputs of fc6 and fc7 (torchvision) or on the outputs of fc6 and fc7 (the
    # 2012 paper, section 4.2: "dropout in the first two fully-connected layers").
    def hidden(n_in: int) -> list[nn.Module]:
        fc = [nn.Linear(n_in, 4096), nn.ReLU(inplace=True)]
        return [nn.Dropout(dropout), *fc] if dropout_first else [*fc, nn.Dropout(dropout)]

    return nn.Sequential(
        *hidden(256 * POOLED_SIDE * POOLED_SIDE),  # fc6: 9216 -> 4096
        *hidden(4096),                             # fc7
        nn.Linear(4096, num_classes),              # fc8
    )


def _check_args(num_classes: int, in_chans: int, dropout: float) -> None:
    check_model_args(num_classes, in_chans)
    check_dropout(dropout, hint="The papers use 0.5.")


@register_model(input_size=224, paper=_KRIZHEVSKY_2014)
def alexnet(num_classes: int = 1000, in_chans: int = 3, dropout: float = 0.5) -> AlexNet:
    """AlexNet as in torchvision (Krizhevsky 2014 "one weird trick" single-tower variant)."""
    _check_args(num_classes, in_chans, dropout)
    features = nn.Sequential(
        nn.Conv2d(in_chans, 64, 11, stride=4, padding=2),  # (N, 64, 55, 55) at 224
        nn.ReLU(inplace=True),
        nn.MaxPool2d(3, stride=2),                          # (N, 64, 27, 27)
        nn.Conv2d(64, 192, 5, padding=2),
        nn.ReLU(inplace=True),
        nn.MaxPool2d(3, stride=2),                          # (N, 192, 13, 13)
        nn.Conv2d(192, 384, 3, padding=1),
        nn.ReLU(inplace=True),
        nn.Conv2d(384, 256, 3, padding=1),
        nn.ReLU(inplace=True),
        nn.Conv2d(256, 256, 3, padding=1),
        nn.ReLU(inplace=True),
        nn.MaxPool2d(3, stride=2),                          # (N, 256, 6, 6)
    )
    model = AlexNet(features, _classifier(num_classes, dropout, dropout_first=True),
                    num_classes, in_chans, avgpool=nn.AdaptiveAvgPool2d(POOLED_SIDE))
    # Krizhevsky 2014 states no init. He (fan-out) for the convs and N(0, 0.01) for the fc
    # layers, as torchvision initialises VGG: trains from scratch without the 2012 bias trick.
    return kaiming_init_(model, linear_init=normal_init_)


@register_model(input_size=227, paper=_KRIZHEVSKY_2012)
def alexnet_paper(num_classes: int = 1000, in_chans: int = 3, dropout: float = 0.5) -> AlexNet:
    """AlexNet as published (Krizhevsky et al. 2012, Fig. 2), the GPU split as grouped convs."""
    _check_args(num_classes, in_chans, dropout)
    conv2 = nn.Conv2d(96, 256, 5, padding=2, groups=2)   # 48 input maps per GPU: 307,456
    conv4 = nn.Conv2d(384, 384, 3, padding=1, groups=2)  # 663,936
    conv5 = nn.Conv2d(384, 256, 3, padding=1, groups=2)  # 442,624
    features = nn.Sequential(
        nn.Conv2d(in_chans, 96, 11, stride=4),  # (N, 96, 55, 55): 96 * (11*11*3 + 1) = 34,944
        nn.ReLU(inplace=True),
        local_response_norm(),
        nn.MaxPool2d(3, stride=2),               # overlapping pooling, s < z: (N, 96, 27, 27)
        conv2,                                   # (N, 256, 27, 27)
        nn.ReLU(inplace=True),
        local_response_norm(),
        nn.MaxPool2d(3, stride=2),               # (N, 256, 13, 13)
        nn.Conv2d(256, 384, 3, padding=1),       # conv3 sees both GPUs' maps: 885,120
        nn.ReLU(inplace=True),
        conv4,
        nn.ReLU(inplace=True),
        conv5,
        nn.ReLU(inplace=True),
        nn.MaxPool2d(3, stride=2),               # (N, 256, 6, 6)
    )
    classifier = _classifier(num_classes, dropout, dropout_first=False)
    hint = ("The paper writes 224x224, but its 55x55 conv1 maps need 227x227; alexnet's "
            "adaptive pool takes any input from 63x63.")
    model = AlexNet(features, classifier, num_classes, in_chans, input_size=227, input_hint=hint)
    # Section 5: N(0, 0.01) weights; biases 1 in conv2, conv4, conv5 and the hidden fc layers
    # ("accelerates the early stages of learning by providing the ReLUs with positive inputs").
    fc6, fc7 = (m for m in classifier if isinstance(m, nn.Linear) and m.out_features == 4096)
    return _gaussian_init_(model, bias_one=(conv2, conv4, conv5, fc6, fc7))


@register_model(input_size=224, paper=_ZEILER)
def zfnet(num_classes: int = 1000, in_chans: int = 3, dropout: float = 0.5) -> AlexNet:
    """ZFNet (Zeiler & Fergus 2014, Fig. 3): AlexNet with a 7x7/2 first layer, on one GPU."""
    _check_args(num_classes, in_chans, dropout)
    # Parameters (Fig. 3): 14,208 + 614,656 + 885,120 + 1,327,488 + 884,992 (convs)
    # + 37,752,832 + 16,781,312 + 4,097,000 (fc) = 62,357,608 at 1000 classes.
    features = nn.Sequential(
        nn.Conv2d(in_chans, 96, 7, stride=2, padding=1),  # (N, 96, 110, 110)
        nn.ReLU(inplace=True),
        nn.MaxPool2d(3, stride=2, ceil_mode=True),         # (N, 96, 55, 55)
        local_response_norm(),                             # "contrast normalised across maps"
        nn.Conv2d(96, 256, 5, stride=2),                   # (N, 256, 26, 26)
        nn.ReLU(inplace=True),
        nn.MaxPool2d(3, stride=2, ceil_mode=True),         # (N, 256, 13, 13)
        local_response_norm(),
        nn.Conv2d(256, 384, 3, padding=1),                 # (N, 384, 13, 13)
        nn.ReLU(inplace=True),
        nn.Conv2d(384, 384, 3, padding=1),                 # (N, 384, 13, 13)
        nn.ReLU(inplace=True),
        nn.Conv2d(384, 256, 3, padding=1),                 # (N, 256, 13, 13)
        nn.ReLU(inplace=True),
        nn.MaxPool2d(3, stride=2),                         # (N, 256, 6, 6)
    )
    # Section 3: dropout (rate 0.5) in fc6 and fc7, as in the 2012 network.
    classifier = _classifier(num_classes, dropout, dropout_first=False)
    hint = ("Its fc6 takes the 6x6 maps of a 224x224 input (Zeiler & Fergus 2014, Fig. 3); "
            "alexnet's adaptive pool takes any input from 63x63.")
    model = AlexNet(features, classifier, num_classes, in_chans, input_size=224, input_hint=hint)
    # Section 3: "All weights are initialized to 10^-2 and biases are set to 0"; read, as in
    # AlexNet, as a zero-mean Gaussian of std 1e-2 (a constant would not break symmetry).
    # Their RMS renormalisation of first-layer filters above 0.1 is a training-time step, not
    # part of the model.
    return _gaussian_init_(model)
