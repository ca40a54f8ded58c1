"""Losses: softmax cross-entropy with label smoothing and the multiclass SVM, by hand."""

import math

import pytest
import torch

from cnnlab.errors import ConfigError, InputShapeError
from cnnlab.train.losses import cross_entropy, make_loss, multiclass_svm_loss

# CS231n lecture 3: three images (cat, car, frog) scored for the classes (cat, car, frog). The
# slide prints one column per image; here one row per image, e.g. the cat image scores
# cat 3.2, car 5.1, frog -1.7.
SCORES = torch.tensor([[3.2, 5.1, -1.7], [1.3, 4.9, 2.0], [2.2, 2.5, -3.1]])
LABELS = torch.tensor([0, 1, 2])  # cat, car, frog


def test_svm_matches_cs231n_example():
    # cat:  max(0, 5.1 - 3.2 + 1) + max(0, -1.7 - 3.2 + 1) = 2.9 + 0
    # car:  max(0, 1.3 - 4.9 + 1) + max(0, 2.0 - 4.9 + 1) = 0 + 0
    # frog: max(0, 2.2 + 3.1 + 1) + max(0, 2.5 + 3.1 + 1) = 6.3 + 6.6 = 12.9
    per_image = [multiclass_svm_loss(SCORES[i:i + 1], LABELS[i:i + 1]).item() for i in range(3)]
    assert per_image == pytest.approx([2.9, 0.0, 12.9], abs=1e-5)
    mean = multiclass_svm_loss(SCORES, LABELS).item()
    assert mean == pytest.approx((2.9 + 0 + 12.9) / 3, abs=1e-5)  # 5.27 on the slide


def test_svm_gradient_counts_violations():
    s = SCORES.clone().requires_grad_(True)
    multiclass_svm_loss(s[:1], LABELS[:1]).backward()
    # cat image: only the car margin is violated -> d/ds_car = +1, d/ds_cat = -1, frog 0
    assert s.grad[0].tolist() == pytest.approx([-1.0, 1.0, 0.0])


def test_svm_gradcheck_float64():
    torch.manual_seed(0)
    s = torch.randn(4, 5, dtype=torch.float64, requires_grad=True)
    y = torch.tensor([0, 3, 1, 4])
    assert torch.autograd.gradcheck(lambda t: multiclass_svm_loss(t, y), (s,))


def test_cross_entropy_matches_hand_formula():
    logp = torch.log_softmax(SCORES, dim=1)
    nll = -logp[torch.arange(3), LABELS].mean()
    assert cross_entropy(SCORES, LABELS).item() == pytest.approx(nll.item(), rel=1e-6)
    eps = 0.1  # smoothed target: (1 - eps) one-hot + eps / C uniform (Szegedy et al. 2016)
    smooth = (1 - eps) * nll - eps * logp.mean(dim=1).mean()
    assert cross_entropy(SCORES, LABELS, eps).item() == pytest.approx(smooth.item(), rel=1e-6)
    # equal scores: the loss is log(C) whatever the smoothing
    flat = torch.zeros(2, 4)
    assert cross_entropy(flat, torch.tensor([0, 3]), 0.3).item() == pytest.approx(math.log(4))


def test_make_loss_and_errors():
    assert make_loss("svm")(SCORES, LABELS).item() == pytest.approx(15.8 / 3, abs=1e-5)
    assert make_loss("ce", 0.0)(SCORES, LABELS).item() == pytest.approx(
        cross_entropy(SCORES, LABELS).item())
    with pytest.raises(ConfigError, match="cross-entropy loss only"):
        make_loss("svm", 0.1)
    with pytest.raises(ConfigError, match="unknown loss"):
        make_loss("hinge")
    with pytest.raises(InputShapeError, match=r"\(N, C\)"):
        multiclass_svm_loss(SCORES[0], LABELS[:1])


def test_l1_penalty_is_the_sum_of_absolute_values():
    from cnnlab.train.losses import l1_penalty

    w = [torch.tensor([[1.0, -2.0]], requires_grad=True), torch.tensor([[-0.5]])]
    out = l1_penalty(w)
    assert out.item() == pytest.approx(3.5)
    out.backward()
    assert w[0].grad.tolist() == [[1.0, -1.0]]  # the subgradient sign(w)
