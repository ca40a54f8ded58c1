"""LR range test: a known curve's suggestions, stop at divergence, restored weights, the plot."""

import math

import pytest
import torch

import cnnlab
from cnnlab.diagnose.lrfind import lr_find, plot_lr_find, suggest
from cnnlab.errors import ConfigError, DataError


def test_suggest_on_a_known_curve():
    # the loss falls as 2 - tanh(2 (log10 lr + 2.5)), steepest at 10^-2.5, then turns up at 1e-1
    lrs = [10 ** (-5 + 5 * i / 100) for i in range(101)]
    loss = [2 - math.tanh(2 * (math.log10(v) + 2.5)) + (max(0, math.log10(v) + 1) * 5) ** 2
            for v in lrs]
    steep, min10 = suggest(lrs, loss)
    assert abs(math.log10(steep) + 2.5) <= 0.05 + 1e-9            # within one grid step
    k = min(range(len(loss)), key=loss.__getitem__)
    assert min10 == pytest.approx(lrs[k] / 10) and 1e-2 < lrs[k] <= 1e-1
    assert suggest(lrs[:3], loss[:3]) == (None, None)               # too short


def test_lenet5_digits_sane_suggestion_stop_and_plot(digits, tmp_path):
    torch.manual_seed(0)
    net = cnnlab.create_model("lenet5", num_classes=10)
    before = {k: v.clone() for k, v in net.state_dict().items()}
    r = lr_find(net, digits.train, start_lr=1e-5, end_lr=100.0, num_steps=60)
    assert r.stop_reason in ("diverged", "nonfinite") and len(r.lrs) < 60   # stopped early
    assert 1e-4 <= r.suggested_lr <= 1.0
    assert r.lrs[0] == pytest.approx(1e-5) and r.lrs[1] / r.lrs[0] == pytest.approx(
        (100 / 1e-5) ** (1 / 59))                                    # exponential schedule
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())
    png = plot_lr_find(r, tmp_path / "lr.png")
    assert png.read_bytes()[:4] == b"\x89PNG" and png.stat().st_size > 5000
    d = r.to_dict()
    assert d["steps"] == len(r.lrs) and d["suggested_lr"] == r.suggested_lr


def test_bad_arguments_and_empty_data(toy):
    net, loaders = toy.net(), toy.loaders()
    with pytest.raises(ConfigError):
        lr_find(net, loaders.train, start_lr=1.0, end_lr=0.1)
    with pytest.raises(ConfigError):
        lr_find(net, loaders.train, num_steps=1)
    with pytest.raises(DataError):
        lr_find(net, [], num_steps=5)
