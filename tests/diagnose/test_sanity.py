"""Initial-loss check (ln C / C - 1) and overfitting a tiny subset (CS231n sanity checks)."""

import math

import pytest
import torch

import cnnlab
from cnnlab.diagnose.sanity import (
    check_initial_loss,
    expected_initial_loss,
    overfit_small,
    pick_subset,
    run_sanity,
)
from cnnlab.errors import ConfigError


def test_expected_values_and_bad_input():
    assert expected_initial_loss(10) == pytest.approx(2.302585, abs=1e-6)
    assert expected_initial_loss(1000) == pytest.approx(6.907755, abs=1e-6)
    assert expected_initial_loss(10, "svm") == 9.0
    with pytest.raises(ConfigError):
        expected_initial_loss(1)
    with pytest.raises(ConfigError):
        expected_initial_loss(10, "mse")


def test_small_init_passes_for_softmax_and_svm(toy):
    x, y = toy.blobs(48)
    net = toy.net()
    with torch.no_grad():
        net.fc.weight.mul_(0.01)  # "small random weights", as the rule assumes
    ce = check_initial_loss(net, x, y)
    svm = check_initial_loss(net, x, y, loss="svm")
    assert ce.ok and abs(ce.loss - math.log(3)) < 0.05, ce.message
    assert svm.ok and abs(svm.loss - 2.0) < 0.1, svm.message
    assert "looks sane" in ce.message


def test_normal_zoo_init_passes(digits):
    # lenet5_paper: LeCun's uniform +-2.4/fan_in init keeps the scores small
    net = cnnlab.create_model("lenet5_paper", num_classes=10)
    check = check_initial_loss(net, digits.train.x[:128], digits.train.y[:128])
    assert check.ok, check.message


def test_scaled_last_layer_warns(toy):
    x, y = toy.blobs(48)
    net = toy.net()
    with torch.no_grad():
        net.fc.weight.mul_(100)
    check = check_initial_loss(net, x, y)
    assert not check.ok and check.loss > 2 * math.log(3)
    assert "last layer" in check.message and "std" in check.message


def test_wrong_class_count_warns(digits):
    net = cnnlab.create_model("lenet5_paper", num_classes=1000)  # data has 10 classes
    check = check_initial_loss(net, digits.train.x[:128], digits.train.y[:128], num_classes=10)
    assert not check.ok and check.outputs == 1000
    assert abs(check.loss - math.log(1000)) < 0.5          # chance over 1000 outputs, not 10
    assert "1000 outputs but the data has 10 classes" in check.message


def test_label_out_of_range_raises(toy):
    x, y = toy.blobs(12)
    with pytest.raises(ConfigError, match="out of range"):
        check_initial_loss(toy.net(), x, y + 5)


def test_pick_subset_spreads_over_classes():
    y = torch.tensor([0] * 10 + [1] * 10 + [2] * 3)
    idx = pick_subset(y, 9)
    assert len(idx) == 9 and len(set(idx.tolist())) == 9
    assert sorted(y[idx].tolist()) == [0, 0, 0, 1, 1, 1, 2, 2, 2]


def test_overfit_20_digits_with_lenet5(digits):
    torch.manual_seed(0)
    net = cnnlab.create_model("lenet5", num_classes=10)
    before = {k: v.clone() for k, v in net.state_dict().items()}
    r = overfit_small(net, digits.train.x, digits.train.y, n=20)
    assert r.reached and r.accuracy == 1.0 and r.images == 20
    assert r.losses[-1] < r.losses[0]
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())  # a copy trained


def test_dead_network_cannot_overfit(toy):
    x, y = toy.blobs(24)
    r = overfit_small(toy.net(conv_bias=-100.0), x, y, n=12, max_steps=20)
    assert not r.reached and "could not overfit" in r.message


def test_run_sanity_reports_each_check():
    # one step cannot memorise 20 digits: the overfit check fails and the verdict says which
    out = run_sanity("lenet5_paper", images=20, max_steps=1)
    assert out["classes"] == 10 and out["data"] == "digits" and out["loss_name"] == "ce"
    assert out["initial_loss"]["ok"] and out["initial_loss"]["num_classes"] == 10
    assert not out["overfit"]["reached"] and out["overfit"]["steps"] == 1
    assert not out["ok"] and out["verdict"] == "WARN: overfit check failed; see the messages above"
