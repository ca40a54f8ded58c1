import numpy as np
import pytest
import torch
import torch.nn.functional as F

from cnnlab.errors import ConfigError, InputShapeError
from cnnlab.reference import gradcheck
from cnnlab.reference.losses import multiclass_svm, softmax_cross_entropy

# CS231n linear-classification notes: scores of three images for the classes (cat, car, frog);
# the images are a cat, a car and a frog.
COURSE_SCORES = np.array([[3.2, 5.1, -1.7], [1.3, 4.9, 2.0], [2.2, 2.5, -3.1]])
COURSE_LABELS = np.array([0, 1, 2])


def torch_loss_and_grad(fn, scores, y):
    s = torch.tensor(scores, requires_grad=True)
    loss = fn(s, torch.tensor(y))
    loss.sum().backward()
    return loss.detach().numpy(), s.grad.numpy()


def test_svm_course_example():
    # cat: max(0, 5.1-3.2+1) + max(0, -1.7-3.2+1) = 2.9; car: 0; frog: 6.3 + 6.6 = 12.9.
    losses, _ = multiclass_svm(COURSE_SCORES, COURSE_LABELS, reduction="none")
    np.testing.assert_allclose(losses, [2.9, 0.0, 12.9], atol=1e-12)
    loss, _ = multiclass_svm(COURSE_SCORES, COURSE_LABELS)
    assert round(loss, 2) == 5.27                      # the course's data loss


def test_softmax_course_example():
    # The notes' cat image: probabilities 0.13, 0.87, 0.00, so L = -ln(0.13) = 2.04.
    loss, _ = softmax_cross_entropy(COURSE_SCORES[:1], COURSE_LABELS[:1])
    assert round(loss, 2) == 2.04


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_softmax_cross_entropy_matches_torch(reduction):
    r = np.random.default_rng(0)
    scores, y = r.normal(scale=3.0, size=(6, 5)), r.integers(0, 5, size=6)
    loss, dscores = softmax_cross_entropy(scores, y, reduction=reduction)
    t_loss, t_grad = torch_loss_and_grad(lambda s, t: F.cross_entropy(s, t, reduction=reduction), scores, y)
    np.testing.assert_allclose(loss, t_loss, rtol=1e-12)
    np.testing.assert_allclose(dscores, t_grad, atol=1e-12)


@pytest.mark.parametrize("margin", [1.0, 0.5])
def test_svm_matches_torch_multi_margin_loss_times_classes(margin):
    r = np.random.default_rng(1)
    scores, y = r.normal(size=(8, 4)), r.integers(0, 4, size=8)
    loss, dscores = multiclass_svm(scores, y, margin=margin, reduction="sum")
    # torch averages the hinge terms over the classes; the course sums them.
    t_loss, t_grad = torch_loss_and_grad(
        lambda s, t: F.multi_margin_loss(s, t, margin=margin, reduction="sum") * s.shape[1], scores, y
    )
    np.testing.assert_allclose(loss, t_loss, rtol=1e-12)
    np.testing.assert_allclose(dscores, t_grad, atol=1e-12)
    assert loss > 0


@pytest.mark.parametrize("loss_fn", [softmax_cross_entropy, multiclass_svm])
def test_loss_gradients_pass_gradcheck(loss_fn):
    r = np.random.default_rng(2)
    scores, y = r.normal(size=(5, 4)), r.integers(0, 4, size=5)
    _, dscores = loss_fn(scores, y)
    assert gradcheck(lambda s: loss_fn(s, y)[0], scores, dscores) < 1e-7


def test_softmax_is_stable_for_huge_scores():
    scores = np.array([[1000.0, 0.0, -1000.0], [1e4, 1e4, 0.0]])
    with np.errstate(over="raise", invalid="raise"):
        losses, d = softmax_cross_entropy(scores, np.array([1, 0]), reduction="none")
    np.testing.assert_allclose(losses, [1000.0, np.log(2.0)], rtol=1e-12)
    assert np.isfinite(d).all()


def test_bad_labels_and_reduction_raise():
    with pytest.raises(InputShapeError, match=r"labels must be in \[0, 2\]"):
        softmax_cross_entropy(COURSE_SCORES, np.array([0, 1, 3]))
    with pytest.raises(InputShapeError, match="integer labels"):
        multiclass_svm(COURSE_SCORES, np.array([0.0, 1.0, 2.0]))
    with pytest.raises(ConfigError, match="reduction"):
        multiclass_svm(COURSE_SCORES, COURSE_LABELS, reduction="avg")
