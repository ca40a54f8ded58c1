"""The airbench94 network of Jordan 2024, "94% on CIFAR-10 in 3.29 seconds on a single GPU".

A fixed 2x2 patch-whitening convolution, then three groups of conv-pool-BN-GELU-conv-BN-GELU
(32 -> 31 -> 15 -> 7 -> 3 pixels), a global max-pool and a bias-free linear head whose output is
scaled by 1/9. Written from the paper's description:

- **Patch whitening**: the first conv's filters are the eigenvectors of the covariance
  of 2x2 training patches, each divided by the square root of its eigenvalue, plus their
  negatives (so GELU sees both signs); 2 * C * 2 * 2 = 24 filters for RGB. Its weights are not
  trained, only its bias. They are fitted on the first training batch the model sees (or by an
  explicit :meth:`AirbenchNet.init_whitening`); the ``whitening_ready`` buffer records that,
  so a resumed or loaded model keeps its fitted filters.
- **Dirac init**: in each conv with C_in inputs, the first C_in filters start as the
  identity, so an untrained network passes the whitened input through.
- BatchNorm with the scale fixed at 1 (only the shift learns) and a small epsilon, as in the paper.

    model = cnnlab.create_model("airbench94")   # 1,972,792 parameters
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from cnnlab.models.cifar import CIFAR10_MEAN, CIFAR10_STD
from cnnlab.models.layers import check_model_args, classifier_layer
from cnnlab.models.registry import register_model

# Jordan 2024, airbench94: output widths of the three conv groups.
AIRBENCH_CFGS: dict[str, tuple[int, int, int]] = {
    "airbench94": (64, 256, 256),
}

PATCH = 2               # side of the whitening patches
WHITEN_EPS = 5e-4       # added to each eigenvalue: keeps near-empty directions from blowing up
HEAD_SCALE = 1 / 9      # the paper's logit scale; a small head output keeps early training calm
BN_MOMENTUM = 0.4       # torch convention (weight of the new batch); the paper's 0.6 is 1 - this
BN_EPS = 1e-12


def _batchnorm(width: int) -> nn.BatchNorm2d:
    bn = nn.BatchNorm2d(width, eps=BN_EPS, momentum=BN_MOMENTUM)
    bn.weight.requires_grad_(False)  # scale fixed at 1, as in the paper: only the shift learns
    return bn


def _dirac_conv(c_in: int, c_out: int) -> nn.Conv2d:
    """3x3 'same' conv, no bias; the first min(c_in, c_out) filters start as the identity."""
    conv = nn.Conv2d(c_in, c_out, 3, padding=1, bias=False)
    with torch.no_grad():
        nn.init.dirac_(conv.weight[:c_in])
    return conv


class ConvGroup(nn.Module):
    """conv, 2x2 max-pool, BN, GELU, conv, BN, GELU (pooling before BN: BN on 1/4 the map)."""

    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        self.conv1 = _dirac_conv(c_in, c_out)
        self.pool = nn.MaxPool2d(2)
        self.bn1 = _batchnorm(c_out)
        self.conv2 = _dirac_conv(c_out, c_out)
        self.bn2 = _batchnorm(c_out)
        self.act = nn.GELU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.act(self.bn1(self.pool(self.conv1(x))))  # (N, C_out, H/2, W/2)
        return self.act(self.bn2(self.conv2(x)))


def patch_whitening_weights(images: torch.Tensor, patch: int = PATCH,
                            eps: float = WHITEN_EPS) -> torch.Tensor:
    """(2D, C, p, p) filters, D = C*p*p: whiten the p x p patches of `images`; then negated."""
    x = images.detach().to(torch.float64)
    c = x.shape[1]
    patches = F.unfold(x, patch).transpose(1, 2).reshape(-1, c * patch * patch)  # (M, D)
    patches = patches - patches.mean(0)
    cov = patches.T @ patches / max(len(patches) - 1, 1)                     # (D, D)
    eigvals, eigvecs = torch.linalg.eigh(cov)
    filters = (eigvecs / (eigvals.clamp_min(0) + eps).sqrt()).T              # row i: v_i/sqrt(l_i)
    filters = filters.reshape(-1, c, patch, patch)
    return torch.cat([filters, -filters]).to(images.dtype)


class AirbenchNet(nn.Module):
    """Jordan 2024's airbench94: patch whitening, three conv groups, a scaled head."""

    def __init__(self, widths: tuple[int, int, int], num_classes: int = 10, in_chans: int = 3):
        super().__init__()
        check_model_args(num_classes, in_chans)
        self.num_classes, self.in_chans = num_classes, in_chans
        whiten_width = 2 * in_chans * PATCH * PATCH
        self.whiten = nn.Conv2d(in_chans, whiten_width, PATCH, bias=True)
        self.whiten.weight.requires_grad_(False)  # fitted from data, never trained
        self.register_buffer("whitening_ready", torch.tensor(False))
        self.act = nn.GELU()
        self.block1 = ConvGroup(whiten_width, widths[0])
        self.block2 = ConvGroup(widths[0], widths[1])
        self.block3 = ConvGroup(widths[1], widths[2])
        self.pool = nn.AdaptiveMaxPool2d(1)  # the paper max-pools its final 3x3 map; any size here
        self.num_features = widths[2]
        self.fc = nn.Linear(self.num_features, num_classes, bias=False)

    @torch.no_grad()
    def init_whitening(self, images: torch.Tensor) -> None:
        """Fit the whitening filters to (N, C, H, W) training images (normalised as in training)."""
        with torch.autocast(images.device.type, enabled=False):
            w = patch_whitening_weights(images.float())
        self.whiten.weight.copy_(w.to(self.whiten.weight.dtype))
        self.whitening_ready.fill_(True)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Whitening and the three conv groups: (N, C, 32, 32) -> (N, 256, 3, 3)."""
        if self.training and not x.is_meta and not bool(self.whitening_ready):
            self.init_whitening(x)  # the first training batch; a loaded model skips this
        x = self.act(self.whiten(x))  # (N, 24, 31, 31)
        x = self.block1(x)            # (N, 64, 15, 15)
        x = self.block2(x)            # (N, 256, 7, 7)
        return self.block3(x)         # (N, 256, 3, 3)

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        """Global max-pool and the scaled linear layer; ``pre_logits`` returns (N, 256)."""
        x = torch.flatten(self.pool(x), 1)
        return x if pre_logits else self.fc(x) * HEAD_SCALE

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))

    def reset_classifier(self, num_classes: int) -> None:
        """A fresh bias-free head for `num_classes` outputs; 0 leaves the pooled features."""
        self.fc = classifier_layer(self.num_features, num_classes, like=self,
                                   layer=lambda i, o: nn.Linear(i, o, bias=False))
        self.num_classes = num_classes


_JORDAN = 'Jordan 2024, "94% on CIFAR-10 in 3.29 seconds on a single GPU" (airbench94)'


@register_model(input_size=32, num_classes=10, paper=_JORDAN, mean=CIFAR10_MEAN, std=CIFAR10_STD)
def airbench94(num_classes: int = 10, in_chans: int = 3) -> AirbenchNet:
    """airbench94: widths 64/256/256, patch whitening and dirac init (Jordan 2024)."""
    return AirbenchNet(AIRBENCH_CFGS["airbench94"], num_classes=num_classes, in_chans=in_chans)
