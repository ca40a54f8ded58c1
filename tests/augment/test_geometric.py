"""Flips, crops, random-resized crops, rotation/affine, resize and centre crop."""

import pytest
import torch
import torch.nn.functional as F

from cnnlab.augment.geometric import (CenterCrop, HorizontalFlip, RandomAffine, RandomCrop,
                                      RandomResizedCrop, RandomRotation, Resize, ScaleJitter,
                                      crop_at, sample_boxes)
from cnnlab.errors import InputShapeError


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


@pytest.fixture
def batch():
    return torch.randint(0, 256, (16, 3, 20, 24), dtype=torch.uint8, generator=gen(1))


def test_flip_twice_is_identity_with_the_same_draws(batch):
    once = HorizontalFlip()(batch, gen(5))
    assert torch.equal(HorizontalFlip()(once, gen(5)), batch)


def test_flip_mirrors_some_images_and_keeps_others(batch):
    out = HorizontalFlip(0.5)(batch, gen(3))
    flipped = [torch.equal(o, b.flip(-1)) for o, b in zip(out, batch)]
    kept = [torch.equal(o, b) for o, b in zip(out, batch)]
    assert all(f or k for f, k in zip(flipped, kept))
    assert 0 < sum(flipped) < len(batch)                 # per-sample draws, 16 coins
    assert torch.equal(HorizontalFlip(1.0)(batch), batch.flip(-1))
    assert torch.equal(HorizontalFlip(0.0)(batch), batch)


def test_pad_crop_with_zero_shift_is_identity(batch):
    n = len(batch)
    padded = F.pad(batch, (4, 4, 4, 4))
    assert torch.equal(crop_at(padded, torch.full((n,), 4), torch.full((n,), 4), (20, 24)), batch)


def test_pad_crop_pixels_come_from_the_shifted_image(batch):
    out = RandomCrop((20, 24), padding=4)(batch, gen(2))
    assert out.shape == batch.shape and out.dtype == torch.uint8
    padded = F.pad(batch, (4, 4, 4, 4))
    for o, p in zip(out, padded):                       # each crop is a window of its own image
        hits = [(i, j) for i in range(9) for j in range(9)
                if torch.equal(p[:, i:i + 20, j:j + 24], o)]
        assert hits


def test_crop_without_padding_is_alexnet_style(batch):
    out = RandomCrop(16, padding=0)(batch, gen(0))
    assert out.shape == (16, 3, 16, 16)
    with pytest.raises(InputShapeError, match="RandomCrop"):
        RandomCrop(30, padding=0)(batch)


def test_reflect_padding_keeps_uint8_values(batch):
    out = RandomCrop((20, 24), padding=2, padding_mode="reflect")(batch, gen(0))
    assert out.dtype == torch.uint8 and set(out.unique().tolist()) <= set(batch.unique().tolist())


def test_random_resized_crop_full_box_is_a_resize():
    x = torch.rand(4, 3, 20, 20, generator=gen(0))
    for side in (13, 31):                                   # down and up
        out = RandomResizedCrop(side, scale=(1, 1), ratio=(1, 1))(x, gen(0))
        ref = F.interpolate(x, size=(side, side), mode="bilinear", align_corners=False,
                            antialias=True)
        assert torch.allclose(out, ref, atol=1e-6)
    x8 = (x * 255).to(torch.uint8)
    out8 = RandomResizedCrop(13, scale=(1, 1), ratio=(1, 1))(x8, gen(0))
    assert out8.dtype == torch.uint8
    ref8 = F.interpolate(x8.float(), size=(13, 13), mode="bilinear", antialias=True)
    assert (out8.float() - ref8).abs().max() <= 1                  # uint8 kernel rounds


def test_random_resized_crop_reads_inside_its_box():
    x = torch.zeros(64, 1, 40, 40)
    x[..., 20:, :] = 1.0                                    # top half 0, bottom half 1
    out = RandomResizedCrop(8, scale=(0.01, 0.05))(x, gen(1))   # small boxes: mostly one half
    means = out.mean(dim=(1, 2, 3))
    assert (means < 0.05).any() and (means > 0.95).any()


def test_sampled_boxes_lie_inside_and_follow_the_scale_range():
    x0, y0, bw, bh = sample_boxes(2000, 50, 70, (0.08, 1.0), (3 / 4, 4 / 3), gen(0))
    assert (x0 >= 0).all() and (y0 >= 0).all() and (x0 + bw <= 70).all() and (y0 + bh <= 50).all()
    frac = (bw * bh).float() / (50 * 70)
    assert frac.min() > 0.05 and frac.max() <= 1.0
    assert frac.std() > 0.1                              # areas spread over the range
    ratio = bw.float() / bh.float()
    assert ((ratio > 0.6) & (ratio < 1.6)).all()         # 3/4..4/3 up to integer rounding


def test_random_resized_crop_falls_back_on_strips():
    strip = torch.rand(2, 3, 1, 300, generator=gen(0))
    out = RandomResizedCrop(8)(strip, gen(1))
    assert out.shape == (2, 3, 8, 8) and torch.isfinite(out).all()


def test_scale_jitter_at_native_scale_is_a_random_crop(batch):
    out = ScaleJitter((8, 10), min_side=20, max_side=20)(batch, gen(0))   # S = shorter side
    assert out.shape == (16, 3, 8, 10) and out.dtype == torch.uint8
    for o, b in zip(out, batch):
        assert any(torch.equal(b[:, i:i + 8, j:j + 10], o) for i in range(13) for j in range(15))


def test_scale_jitter_zooms_in_as_s_grows():
    x = torch.zeros(32, 1, 40, 40)
    x[..., ::2, :] = 1.0                                    # 1-pixel stripes
    near = ScaleJitter(16, 40, 40, antialias=False)(x, gen(0))
    far = ScaleJitter(16, 160, 160, antialias=False)(x, gen(0))   # 4x zoom: stripes 4 px wide
    row_change = lambda t: (t[..., 1:, :] - t[..., :-1, :]).abs().mean()
    assert row_change(far) < row_change(near) / 2


def test_rotation_by_zero_is_identity_and_full_turns_preserve_content():
    x = torch.rand(3, 1, 9, 13, generator=gen(0))
    assert torch.allclose(RandomAffine(degrees=0)(x, gen(0)), x, atol=1e-5)
    tf = RandomRotation(30)
    out = tf(x, gen(1))
    assert not torch.allclose(out, x, atol=1e-3)
    # a centred square image rotated by 90 degrees is a transposition-flip
    sq = torch.rand(1, 1, 8, 8, generator=gen(2))
    from cnnlab.augment.geometric import affine_matrices, apply_affine

    m = affine_matrices(torch.tensor([90.0]), torch.zeros(1), torch.zeros(1), torch.ones(1))
    rot = apply_affine(sq, m, torch.zeros(1, 2))
    assert any(torch.allclose(rot, r, atol=1e-4) for r in (sq.rot90(1, (2, 3)),
                                                           sq.rot90(-1, (2, 3))))


def test_affine_fill_reads_outside_pixels():
    x = torch.zeros(2, 3, 10, 10)
    out = RandomAffine(translate=(0.5, 0.5), fill=1.0)(x, gen(0))
    assert out.max() == pytest.approx(1.0) and out.min() == 0.0


def test_resize_shorter_side_and_centre_crop_are_deterministic(batch):
    r = Resize(10)(batch)
    assert r.shape == (16, 3, 10, 12) and r.dtype == torch.uint8
    c = CenterCrop((4, 6))(batch)
    assert torch.equal(c, batch[..., 8:12, 9:15])
    assert torch.equal(Resize(10)(batch), r)
    with pytest.raises(InputShapeError, match="CenterCrop"):
        CenterCrop(30)(batch)


def test_seeded_transforms_are_reproducible(batch):
    for tf in (RandomCrop((20, 24)), RandomResizedCrop(12), RandomAffine(10, (0.1, 0.1),
                                                                          (0.9, 1.1), 5)):
        assert torch.equal(tf(batch, gen(7)), tf(batch, gen(7)))
        assert not torch.equal(tf(batch, gen(7)), tf(batch, gen(8)))


def test_rejects_non_batches():
    with pytest.raises(InputShapeError, match=r"\(N, C, H, W\)"):
        HorizontalFlip()(torch.zeros(3, 8, 8))
    with pytest.raises(InputShapeError, match="uint8"):
        HorizontalFlip()(torch.zeros(1, 3, 8, 8, dtype=torch.int32))
