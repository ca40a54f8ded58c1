"""MAC counting at the ATen level: convolutions, FC layers and matrix products, wherever they run."""

import torch
import torch.nn.functional as F
from torch import nn

from cnnlab.analyze.macs import MacCounter, conv_macs


def _count(fn, *args):
    total = []
    with torch.no_grad(), MacCounter(total.append):
        fn(*args)
    return sum(total)


def test_conv_formula():
    # Cout * Cin * k * k * Hout * Wout
    assert conv_macs((1, 3, 10, 12), (8, 3, 3, 3), (1, 8, 10, 12)) == 8 * 3 * 9 * 10 * 12


def test_conv_counted_with_groups_stride_and_batch():
    conv = nn.Conv2d(8, 16, 3, stride=2, groups=2)
    x = torch.randn(3, 8, 11, 11)
    out = conv(x)                                     # (3, 16, 5, 5)
    assert _count(conv, x) == 3 * 16 * (8 // 2) * 9 * out.shape[-1] * out.shape[-2]


def test_transposed_conv_counts_each_input_once_per_kernel_tap():
    conv = nn.ConvTranspose2d(4, 6, 3, stride=2)
    x = torch.randn(1, 4, 5, 5)
    assert _count(conv, x) == 4 * 5 * 5 * 6 * 9


def test_linear_matmul_bmm_and_attention():
    x = torch.randn(2, 5, 8)
    assert _count(nn.Linear(8, 3), x) == 2 * 5 * 8 * 3          # 3-D input: via matmul/mm
    assert _count(torch.matmul, x, torch.randn(8, 4)) == 2 * 5 * 8 * 4
    assert _count(torch.bmm, x, torch.randn(2, 8, 7)) == 2 * 5 * 8 * 7
    q = torch.randn(1, 2, 6, 4)                                  # (N, heads, L, E)
    assert _count(F.scaled_dot_product_attention, q, q, q) == 2 * 6 * 6 * (4 + 4)


def test_meta_device_counts_the_same():
    conv = nn.Conv2d(3, 5, 3, device="meta")
    assert _count(conv, torch.empty(2, 3, 9, 9, device="meta")) == 2 * 5 * 3 * 9 * 7 * 7


def test_elementwise_and_pooling_are_free():
    x = torch.randn(1, 3, 8, 8)
    assert _count(lambda t: F.max_pool2d(F.relu(t + t), 2).mean(), x) == 0
