"""LeNet-5 (LeCun, Bottou, Bengio & Haffner 1998, "Gradient-Based Learning Applied to Document
Recognition", Fig. 2 and section II-B): 32x32 grey digits in, 10 classes out.

Two builders:

``lenet5``
    The variant most courses teach: ReLU, 2x2 max-pooling, C3 fully connected to S2, C5 as a
    Linear layer on the flattened 16x5x5 maps. 61,706 parameters at 10 classes.
``lenet5_paper``
    The paper's network: the scaled tanh ``1.7159 * tanh(2x/3)`` after every layer, trainable
    subsampling S2/S4 (the sum of a 2x2 window times one coefficient per map, plus a bias),
    C3 wired by the partial connection table of Table I, C5 a 5x5 convolution to 120 maps, F6 84.
    60,000 trainable parameters up to F6, exactly as the paper counts them, plus the output layer.

Deliberate departure in ``lenet5_paper``: the output layer is a plain Linear layer (84 * 10 + 10
= 850 parameters) trained with cross-entropy. The paper's output is a layer of Euclidean RBF
units (section II-B) whose fixed centres are stylised 7x12 bitmaps of the characters, trained
with its MAP criterion (section II-C); those bitmaps are not published as data, and a linear layer
keeps the model a drop-in classifier for the rest of cnnlab.

Both variants name their layers after the paper (``c1``, ``s2``, ``c3``, ``s4``, ``c5``, ``f6``,
``output``) inside ``features`` (C1..S4, the last maps with spatial extent) and ``classifier``.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from cnnlab.errors import ConfigError
from cnnlab.models.layers import check_model_args, classifier_layer, normal_init_
from cnnlab.models.registry import register_model

_PAPER = "LeCun et al. 1998, Gradient-Based Learning Applied to Document Recognition"

# The paper normalises pixels so the background is -0.1 and the ink 1.175 (mean about 0, variance
# about 1; section II-B). For inputs in [0, 1] with ink = 1, as cnnlab.data.digits gives, that is
# (x - 0.0784) / 0.7843: 1 / 1.275 = 0.7843 and 0.1 * 0.7843 = 0.0784.
_MEAN, _STD = (0.0784,), (0.7843,)

# LeCun et al. 1998, Table I: the S2 maps (0..5) that feed each C3 map (0..15). Maps 0-5 take
# three neighbouring maps, 6-11 four neighbouring, 12-14 four non-neighbouring, 15 all six.
C3_TABLE: tuple[tuple[int, ...], ...] = (
    (0, 1, 2), (1, 2, 3), (2, 3, 4), (3, 4, 5), (0, 4, 5), (0, 1, 5),
    (0, 1, 2, 3), (1, 2, 3, 4), (2, 3, 4, 5), (0, 3, 4, 5), (0, 1, 4, 5), (0, 1, 2, 5),
    (0, 1, 3, 4), (1, 2, 4, 5), (0, 2, 3, 5),
    (0, 1, 2, 3, 4, 5),
)

INPUT_SIZE = 32  # Fig. 2: 32x32 input, so that 5x5 convolutions and 2x2 pools end at 5x5 in S4


class ScaledTanh(nn.Module):
    """The squashing function f(a) = A tanh(S a), A = 1.7159, S = 2/3 (LeCun et al. 1998, II-B).

    With these constants f(1) = 1 and f(-1) = -1, and the overall gain stays near 1 over the
    normal operating range (Appendix A).
    """

    amplitude = 1.7159
    slope = 2.0 / 3.0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.amplitude * torch.tanh(self.slope * x)


class Subsampling(nn.Module):
    """S2/S4: each unit sums a 2x2 window, times a trainable coefficient, plus a trainable bias
    (LeCun et al. 1998, section II-B); one coefficient and one bias per feature map."""

    def __init__(self, channels: int):
        super().__init__()
        self.channels = channels
        self.weight = nn.Parameter(torch.empty(channels))
        self.bias = nn.Parameter(torch.empty(channels))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        _uniform_fan_in_(self.weight, fan_in=4)  # each unit has four inputs
        nn.init.zeros_(self.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = F.avg_pool2d(x, 2, divisor_override=1)  # the 2x2 sums: (N, C, H/2, W/2)
        return s * self.weight.view(1, -1, 1, 1) + self.bias.view(1, -1, 1, 1)

    def extra_repr(self) -> str:
        return f"channels={self.channels}"


class PartialConv2d(nn.Module):
    """A convolution in which output map j sees only the input maps ``table[j]``: the C3 layer of
    LeCun et al. 1998 (Table I).

    Only the kernels of existing connections are parameters (``weight`` holds one k x k kernel
    per connection, in table order), so the parameter count is the paper's. The forward pass
    convolves each connection's input map with its kernel (one group per connection) and sums
    the results into their output maps, so it does the paper's work, 150,000 multiply-adds for
    C3, rather than that of a dense 6 -> 16 convolution (240,000).
    """

    def __init__(self, table: Sequence[Sequence[int]], in_channels: int, kernel_size: int):
        super().__init__()
        self.table = tuple(tuple(int(i) for i in row) for row in table)
        bad = [i for row in self.table for i in row if not 0 <= i < in_channels]
        if bad or any(len(set(row)) != len(row) or not row for row in self.table):
            raise ConfigError(
                f"a connection table needs non-empty rows of distinct input maps in "
                f"0..{in_channels - 1}; got {self.table}."
            )
        self.in_channels, self.out_channels = in_channels, len(self.table)
        self.kernel_size = kernel_size
        # The input map and the output map of each connection, in table order.
        src = [i for row in self.table for i in row]
        dst = [j for j, row in enumerate(self.table) for _ in row]
        self.register_buffer("src_index", torch.tensor(src, dtype=torch.long), persistent=False)
        self.register_buffer("dst_index", torch.tensor(dst, dtype=torch.long), persistent=False)
        self.weight = nn.Parameter(torch.empty(len(src), kernel_size, kernel_size))
        self.bias = nn.Parameter(torch.empty(self.out_channels))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        # The paper's rule per unit: fan-in = (input maps of this output map) * k * k.
        k2 = self.kernel_size**2
        fan_in = [len(row) * k2 for row in self.table for _ in row]
        bound = 2.4 / torch.tensor(fan_in, dtype=self.weight.dtype, device=self.weight.device)
        with torch.no_grad():
            self.weight.uniform_(-1.0, 1.0).mul_(bound.view(-1, 1, 1))
        nn.init.zeros_(self.bias)

    def dense_weight(self) -> torch.Tensor:
        """The equivalent ordinary kernel, (out, in, k, k), zero where Table I has no connection."""
        k = self.kernel_size
        flat = self.dst_index * self.in_channels + self.src_index
        dense = self.weight.new_zeros(self.out_channels * self.in_channels, k, k)
        dense = dense.index_copy(0, flat, self.weight)
        return dense.view(self.out_channels, self.in_channels, k, k)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n_conn = self.weight.shape[0]
        per_conn = F.conv2d(x.index_select(1, self.src_index), self.weight.unsqueeze(1),
                            groups=n_conn)  # (N, connections, H - k + 1, W - k + 1)
        n, _, h, w = per_conn.shape
        out = per_conn.new_zeros(n, self.out_channels, h, w).index_add(1, self.dst_index, per_conn)
        return out + self.bias.view(1, -1, 1, 1)  # (N, out_channels, H - k + 1, W - k + 1)

    def extra_repr(self) -> str:
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
                f"connections={self.weight.shape[0]}")


def _uniform_fan_in_(tensor: torch.Tensor, fan_in: int) -> torch.Tensor:
    # LeCun et al. 1998, Appendix A: weights uniform in (-2.4/F, 2.4/F), F the unit's fan-in, so
    # the weighted sums start in the range where the scaled tanh is not saturated.
    bound = 2.4 / fan_in
    with torch.no_grad():
        return tensor.uniform_(-bound, bound)


def lecun_init_(m: nn.Module) -> None:
    """LeCun et al. 1998 init for one layer: uniform +-2.4/fan-in weights; biases zero (the paper
    gives no rule for biases)."""
    if isinstance(m, (nn.Conv2d, nn.Linear)):
        fan_in = m.weight[0].numel()
        _uniform_fan_in_(m.weight, fan_in)
        if m.bias is not None:
            nn.init.zeros_(m.bias)
    elif isinstance(m, (Subsampling, PartialConv2d)):
        m.reset_parameters()


def he_init_(m: nn.Module) -> None:
    """He et al. 2015 (fan-in, ReLU gain) for one layer, biases zero: for the ReLU variant, which
    has no init of its own in the paper."""
    if isinstance(m, (nn.Conv2d, nn.Linear)):
        nn.init.kaiming_normal_(m.weight, mode="fan_in", nonlinearity="relu")
        if m.bias is not None:
            nn.init.zeros_(m.bias)


class LeNet5(nn.Module):
    """LeNet-5 (LeCun et al. 1998, Fig. 2): ``features`` C1..S4, ``classifier`` C5, F6, output."""

    # Appended by the zoo's input check (models/shapes.py) to its size errors. C5 takes a fixed
    # 5x5 map, which inputs from 32x32 to 35x35 give (the pools floor the odd sides away).
    input_hint = (f"The paper pads MNIST's 28x28 digits by 2 pixels on each side to "
                  f"{INPUT_SIZE}x{INPUT_SIZE}.")

    def __init__(
        self,
        features: nn.Sequential,
        classifier: nn.Sequential,
        num_classes: int,
        in_chans: int,
        init: Callable[[nn.Module], None],
        head_init: Callable[[nn.Module], object] | None = None,
    ):
        super().__init__()
        self.features = features
        self.classifier = classifier
        self.num_classes = num_classes
        self.in_chans = in_chans
        self.num_features = classifier.output.in_features  # 84, the F6 units
        self.apply(init)
        # reused by reset_classifier, so a new head matches the variant
        self._init_layer = head_init or init
        if head_init is not None:
            head_init(classifier.output)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """C1, S2, C3, S4: (N, C, 32, 32) -> (N, 16, 5, 5)."""
        return self.features(x)

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        """C5, F6 and the output layer; ``pre_logits=True`` stops at F6: (N, 84)."""
        for name, layer in self.classifier.named_children():
            if pre_logits and name == "output":
                break
            x = layer(x)
        return x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))

    def reset_classifier(self, num_classes: int) -> None:
        """A fresh output layer for `num_classes` classes; 0 leaves F6's 84 units as the output."""
        self.classifier.output = classifier_layer(self.num_features, num_classes,
                                                  init=self._init_layer, like=self)
        self.num_classes = num_classes


@register_model(input_size=32, in_chans=1, num_classes=10,
                paper=_PAPER + " (ReLU/max-pool variant)", mean=_MEAN, std=_STD)
def lenet5(num_classes: int = 10, in_chans: int = 1) -> LeNet5:
    """LeNet-5 as usually taught (LeCun et al. 1998, Fig. 2 with ReLU, max-pooling, full C3)."""
    check_model_args(num_classes, in_chans)
    features = nn.Sequential(OrderedDict([
        ("c1", nn.Conv2d(in_chans, 6, 5)),     # (N, 6, 28, 28): 6 * (25 * C + 1)
        ("c1_act", nn.ReLU(inplace=True)),
        ("s2", nn.MaxPool2d(2)),                # (N, 6, 14, 14)
        ("c3", nn.Conv2d(6, 16, 5)),            # (N, 16, 10, 10): 16 * (150 + 1) = 2,416
        ("c3_act", nn.ReLU(inplace=True)),
        ("s4", nn.MaxPool2d(2)),                # (N, 16, 5, 5)
    ]))
    classifier = nn.Sequential(OrderedDict([
        ("flatten", nn.Flatten(1)),             # (N, 400)
        ("c5", nn.Linear(16 * 5 * 5, 120)),     # 48,120: the paper's C5, on a 5x5 input
        ("c5_act", nn.ReLU(inplace=True)),
        ("f6", nn.Linear(120, 84)),             # 10,164
        ("f6_act", nn.ReLU(inplace=True)),
        ("output", nn.Linear(84, num_classes)),  # 850 at 10 classes; 61,706 in all
    ]))
    # He init everywhere but the output layer, which gets small N(0, 0.01) weights so the first
    # logits are near zero and the initial loss is ln(num_classes), the course's sanity check
    # (He-initialised output weights start it at ~4-5 instead of 2.3 for 10 classes).
    return LeNet5(features, classifier, num_classes, in_chans, init=he_init_,
                  head_init=normal_init_)


@register_model(input_size=32, in_chans=1, num_classes=10, paper=_PAPER, mean=_MEAN, std=_STD)
def lenet5_paper(num_classes: int = 10, in_chans: int = 1) -> LeNet5:
    """LeNet-5 as published (LeCun et al. 1998, Fig. 2, Table I), with a linear output layer."""
    check_model_args(num_classes, in_chans)
    # Parameter counts in the comments are the paper's (section II-B), for in_chans=1.
    features = nn.Sequential(OrderedDict([
        ("c1", nn.Conv2d(in_chans, 6, 5)),           # (N, 6, 28, 28): 156
        ("c1_act", ScaledTanh()),
        ("s2", Subsampling(6)),                       # (N, 6, 14, 14): 12
        ("s2_act", ScaledTanh()),
        ("c3", PartialConv2d(C3_TABLE, 6, 5)),       # (N, 16, 10, 10): 1,516
        ("c3_act", ScaledTanh()),
        ("s4", Subsampling(16)),                      # (N, 16, 5, 5): 32
        ("s4_act", ScaledTanh()),
    ]))
    classifier = nn.Sequential(OrderedDict([
        ("c5", nn.Conv2d(16, 120, 5)),               # (N, 120, 1, 1): 48,120
        ("c5_act", ScaledTanh()),
        ("flatten", nn.Flatten(1)),                  # (N, 120)
        ("f6", nn.Linear(120, 84)),                  # 10,164; 60,000 from C1 to F6
        ("f6_act", ScaledTanh()),
        ("output", nn.Linear(84, num_classes)),      # departure: linear, not RBF (module docstring)
    ]))
    return LeNet5(features, classifier, num_classes, in_chans, init=lecun_init_)
