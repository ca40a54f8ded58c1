"""SE-ResNets (Hu et al. 2018, "Squeeze-and-Excitation Networks").

Only wiring: the ``SqueezeExcite`` block (models/layers.py) is inserted into every ResNet
bottleneck after its last BN and before the addition with the shortcut (the paper's Fig. 3), as
``layerK.B.se.fc1``/``se.fc2`` (timm's key names). Everything else is resnet.py's ResNet-50/101,
including the v1.5 stride on the 3x3 conv; the paper's Caffe models stride the first 1x1.

SE adds 2C^2/r + C/r + C parameters per block of C output channels (two FCs with bias): about
2.5M on ResNet-50, the paper's "~2.5 million additional parameters beyond the ~25 million"
(sec. 4, Model and Computational Complexity).
"""

from __future__ import annotations

from functools import partial

from cnnlab.models.layers import SqueezeExcite
from cnnlab.models.registry import register_model
from cnnlab.models.resnet import ResNet, build_resnet

# Hu et al. 2018, sec. 6.1 / Table 10: r = 16 balances accuracy and complexity.
SE_REDUCTION = 16

_SE_LAYER = partial(SqueezeExcite, reduction=SE_REDUCTION)

_HU = "Hu et al. 2018, Squeeze-and-Excitation Networks"


@register_model(input_size=224, paper=_HU)
def seresnet50(
    num_classes: int = 1000, in_chans: int = 3, *, stem: str = "imagenet",
    zero_init_residual: bool = False,
) -> ResNet:
    """SE-ResNet-50, reduction 16 (Hu et al. 2018, Table 1)."""
    return build_resnet("resnet50", num_classes, in_chans, stem=stem,
                        zero_init_residual=zero_init_residual, se_layer=_SE_LAYER)


@register_model(input_size=224, paper=_HU)
def seresnet101(
    num_classes: int = 1000, in_chans: int = 3, *, stem: str = "imagenet",
    zero_init_residual: bool = False,
) -> ResNet:
    """SE-ResNet-101, reduction 16 (Hu et al. 2018, Table 2)."""
    return build_resnet("resnet101", num_classes, in_chans, stem=stem,
                        zero_init_residual=zero_init_residual, se_layer=_SE_LAYER)
