"""Mixup and CutMix: mixed images, partner labels and lam."""

import pytest
import torch
import torch.nn.functional as F

from cnnlab.augment.mix import CutMix, MixedBatch, Mixup, mixed_cross_entropy
from cnnlab.errors import ConfigError, InputShapeError


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


@pytest.fixture
def data():
    x = torch.rand(32, 3, 10, 14, generator=gen(0))
    y = torch.arange(32) % 5
    return x, y


def test_mixup_is_the_convex_combination_with_lam(data):
    x, y = data
    x = x + torch.arange(32)[:, None, None, None]           # make every image distinct
    m = Mixup(alpha=1.0)(x, y, gen(1))
    assert m.lam.shape == (32,) and ((m.lam >= 0) & (m.lam <= 1)).all()
    # find each partner j: x_out = lam x_i + (1 - lam) x_j
    lam = m.lam[:, None, None, None]
    partner = (m.x - lam * x)[:, None] - (1 - lam)[:, None] * x[None]   # (N, N, C, H, W)
    err = partner.flatten(2).abs().amax(2)
    j = err.argmin(1)
    assert err[torch.arange(32), j].max() < 1e-4
    assert torch.equal(m.y_b, y[j]) and torch.equal(m.y_a, y)
    assert m.lam.std() > 0.1                                 # Beta(1, 1) is uniform


def test_mixup_soft_targets_and_loss_agree(data):
    x, y = data
    m = Mixup(0.4)(x, y, gen(2))
    t = m.soft_targets(5)
    assert torch.allclose(t.sum(1), torch.ones(32))
    logits = torch.randn(32, 5, generator=gen(3))
    soft = -(t * F.log_softmax(logits, 1)).sum(1).mean()
    assert torch.allclose(mixed_cross_entropy(logits, m), soft, atol=1e-6)


def test_cutmix_lam_equals_the_kept_area_fraction(data):
    x, y = data
    x = x + torch.arange(32)[:, None, None, None] * 10
    m = CutMix()(x, y, gen(4))
    kept = (m.x == x).all(dim=1).flatten(1).float().mean(1)          # own pixels per image
    # an image paired with itself (perm[i] == i) is unchanged whatever the box: skip those
    changed = torch.tensor([not torch.equal(a, b) for a, b in zip(m.x, x)])
    assert changed.sum() > 25
    assert torch.allclose(kept[changed], m.lam[changed], atol=1e-6)
    assert ((m.lam > 0) & (m.lam < 1)).sum() > 25


def test_cutmix_pastes_a_rectangle_from_one_partner(data):
    x, y = data
    x = x + torch.arange(32)[:, None, None, None] * 10
    m = CutMix()(x, y, gen(5))
    for i in range(32):
        pasted = ~(m.x[i] == x[i]).all(0)
        if not pasted.any():
            continue
        rows, cols = pasted.any(1).nonzero()[:, 0], pasted.any(0).nonzero()[:, 0]
        assert int(pasted.sum()) == len(rows) * len(cols)            # one rectangle
        src = ((m.x[i][:, pasted][None] - x[:, :, pasted]).abs().amax((1, 2)) == 0).nonzero()
        assert len(src) == 1 and int(y[src[0, 0]]) == int(m.y_b[i])


def test_mixers_are_seeded_and_keep_uint8(data):
    x, y = data
    x8 = (x * 255).to(torch.uint8)
    for mixer in (Mixup(), CutMix()):
        a, b = mixer(x8, y, gen(9)), mixer(x8, y, gen(9))
        assert a.x.dtype == torch.uint8 and torch.equal(a.x, b.x) and torch.equal(a.lam, b.lam)
        assert isinstance(a, MixedBatch)


def test_mixers_check_labels_and_alpha(data):
    x, y = data
    with pytest.raises(InputShapeError, match="label"):
        Mixup()(x, y[:3])
    with pytest.raises(ConfigError, match="alpha"):
        CutMix(alpha=0)(x, y)
