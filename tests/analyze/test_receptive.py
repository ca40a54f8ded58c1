"""Receptive-field rules (Araujo et al., Distill 2019), checked by hand and by brute force."""

import pytest
import torch
from torch import nn

from cnnlab.analyze.receptive import Field, adaptive, global_, input_field, merge, window
from cnnlab.analyze.summary import summary


def test_window_rule_by_hand():
    f = input_field(32, 32)
    f = window(f, 3, 1, 1, (1, 1, 32, 32))            # 3x3: rf 3, jump 1
    f = window(f, 3, 1, 1, (1, 1, 32, 32))            # second 3x3: 3 + 2 = 5
    assert f.rf == (5, 5) and f.jump == (1, 1)
    g = window(input_field(32, 32), 3, 2, 1, (1, 1, 16, 16))
    g = window(g, 3, 1, 1, (1, 1, 16, 16))            # after a stride-2 3x3, a 3x3 adds 2 * 2
    assert g.rf == (7, 7) and g.jump == (2, 2)


def test_window_defaults_stride_to_kernel_like_pooling():
    f = window(Field((3, 3), (1, 1), (8, 8)), 2, None, 1, (1, 1, 4, 4))
    assert f.rf == (4, 4) and f.jump == (2, 2) and f.grid == (4, 4)


def test_dilation_and_rectangular_kernels():
    f = window(input_field(20, 20), (1, 7), 1, (1, 2), (1, 1, 20, 8))
    assert f.rf == (1, 13)


def test_merge_takes_the_widest_path():
    a, b = Field((5, 5), (2, 2), (8, 8)), Field((1, 1), (2, 2), (8, 8))
    assert merge([a, b], (1, 4, 8, 8)).rf == (5, 5)
    assert merge([b, a], (1, 4, 8, 8)).rf == (5, 5)


def test_global_ops_cover_the_grid():
    f = Field((212, 212), (32, 32), (7, 7))
    assert global_(f).rf == (212 + 6 * 32, 212 + 6 * 32)
    assert global_(f).grid == (1, 1)
    assert global_(f, axes=(1,)).rf == (212, 404)


def test_adaptive_pool_identity_and_global():
    f = Field((195, 195), (32, 32), (6, 6))
    assert adaptive(f, (6, 6), (6, 6), (1, 1, 6, 6)).rf == (195, 195)
    assert adaptive(f, (6, 6), (1, 1), (1, 1, 1, 1)).rf == (195 + 5 * 32,) * 2
    # 7 -> 3 bins of PyTorch: [0,3) [2,5) [4,7): largest bin 3, mean stride 7/3
    g = adaptive(Field((1, 1), (1, 1), (7, 7)), (7, 7), (3, 3), (1, 1, 3, 3))
    assert g.rf == (3, 3) and g.jump[0] == pytest.approx(7 / 3)


def _brute_force_rf(model: nn.Module, size: int) -> int:
    """Rows of the input that influence the centre output unit, by autograd (average pools only:
    a max-pool passes gradient to one input per window, which would undercount)."""
    x = torch.randn(1, 1, size, size, requires_grad=True)
    y = model(x)
    c = y.shape[-1] // 2
    y[0, 0, c, c].backward()
    rows = (x.grad[0, 0].abs().sum(1) != 0).nonzero().flatten()
    return int(rows.max() - rows.min() + 1)


@pytest.mark.parametrize("layers", [
    [nn.Conv2d(1, 1, 3), nn.Conv2d(1, 1, 3)],
    [nn.Conv2d(1, 1, 3, stride=2), nn.Conv2d(1, 1, 3)],
    [nn.Conv2d(1, 1, 5, stride=2), nn.AvgPool2d(3, 2), nn.Conv2d(1, 1, 3, dilation=2)],
    [nn.Conv2d(1, 1, 7, stride=2, padding=3), nn.AvgPool2d(2), nn.Conv2d(1, 1, 3, padding=1)],
])
def test_rf_matches_gradient_support(layers):
    torch.manual_seed(0)
    net = nn.Sequential(*layers)
    for m in net:
        if isinstance(m, nn.Conv2d):       # positive weights: no accidental zero gradients
            nn.init.uniform_(m.weight, 0.1, 1.0)
    s = summary(net, (1, 64, 64))
    assert s.rows[-1].rf[0] == _brute_force_rf(net, 64)
