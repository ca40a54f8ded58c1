"""In-memory batches: seeded per-epoch order, random shifts, the standardised digits split."""

import pytest
import torch

from cnnlab.errors import DataError
from cnnlab.train.batches import (TensorBatches, channel_stats, digits_loaders, folder_loaders,
                                  random_shift)


def test_order_is_a_seeded_permutation_per_epoch():
    x, y = torch.arange(10.0)[:, None], torch.arange(10)
    b = TensorBatches(x, y, batch_size=4, shuffle=True, seed=3)
    assert len(b) == 3
    first = torch.cat([yb for _, yb in b])
    assert sorted(first.tolist()) == list(range(10))           # every sample once
    again = torch.cat([yb for _, yb in TensorBatches(x, y, 4, shuffle=True, seed=3)])
    assert torch.equal(first, again)                            # same seed, same epoch: same order
    b.set_epoch(1)
    assert not torch.equal(torch.cat([yb for _, yb in b]), first)  # a new order each epoch
    assert [len(yb) for _, yb in TensorBatches(x, y, 4, drop_last=True)] == [4, 4]
    with pytest.raises(DataError):
        TensorBatches(x, y[:5], 4)


def test_random_shift_moves_a_dot_within_the_pad():
    x = torch.zeros(64, 1, 7, 7)
    x[:, :, 3, 3] = 1.0                                          # a dot at the centre
    out = random_shift(x, 2, fill=-1.0, generator=torch.Generator().manual_seed(0))
    assert out.shape == x.shape
    pos = (out[:, 0] == 1.0).flatten(1).float().argmax(1)
    rows, cols = pos // 7, pos % 7
    assert rows.min() >= 1 and rows.max() <= 5 and cols.min() >= 1 and cols.max() <= 5
    assert len(set(zip(rows.tolist(), cols.tolist()))) > 10      # many different shifts
    assert (out == -1.0).any()                                   # padding uses the fill value
    assert torch.equal(random_shift(x, 2, -1.0, torch.Generator().manual_seed(0)), out)


def test_digits_loaders_split_and_standardise():
    L = digits_loaders(image_size=16, batch_size=100, val_fraction=0.1)
    xtr, xva, xte = L.train.x, L.val.x, L.test.x
    assert xtr.shape[1:] == (1, 16, 16) and xte.shape[1:] == (1, 16, 16)
    assert len(xtr) + len(xva) + len(xte) == 1797
    assert abs(len(xva) - 0.1 * (len(xtr) + len(xva))) <= 1
    assert abs(float(xtr.mean())) < 1e-4 and abs(float(xtr.std()) - 1) < 1e-3  # train statistics
    assert L.classes == [str(d) for d in range(10)] and L.info["test"] == len(xte)
    assert L.train.fill == pytest.approx(-L.mean[0] / L.std[0])


def test_uint8_batches_are_standardised_then_flipped():
    x = torch.randint(0, 256, (8, 3, 4, 5), dtype=torch.uint8)
    mean, std = (0.5, 0.4, 0.3), (0.2, 0.25, 0.5)
    plain = torch.cat([xb for xb, _ in TensorBatches(x, torch.arange(8), 3, mean=mean, std=std)])
    want = (x.double() / 255 - torch.tensor(mean)[:, None, None].double()) \
        / torch.tensor(std)[:, None, None].double()
    assert plain.dtype == torch.float32 and torch.allclose(plain.double(), want, atol=1e-5)
    flipped = torch.cat([xb for xb, _ in TensorBatches(x, torch.arange(8), 8, flip=True,
                                                       mean=mean, std=std)])
    mirrored = [torch.equal(flipped[i], plain[i].flip(-1)) for i in range(8)]
    unchanged = [torch.equal(flipped[i], plain[i]) for i in range(8)]
    assert all(m or u for m, u in zip(mirrored, unchanged)) and any(mirrored) and any(unchanged)


def test_skipping_batches_resumes_the_same_epoch_exactly():
    x, y = torch.randn(40, 1, 6, 6), torch.arange(40)
    full = TensorBatches(x, y, 8, shuffle=True, seed=2, shift=1, flip=True)
    full.set_epoch(3)
    want = list(full)
    part = TensorBatches(x, y, 8, shuffle=True, seed=2, shift=1, flip=True)
    part.set_epoch(3)
    part.skip_batches(2)
    got = list(part)
    assert len(got) == 3
    assert all(torch.equal(a[0], b[0]) and torch.equal(a[1], b[1]) for a, b in zip(got, want[2:]))
    assert len(list(part)) == 5                                  # the skip applies once


def test_channel_stats_match_a_float_computation():
    x = torch.randint(0, 256, (50, 3, 7, 7), dtype=torch.uint8)
    mean, std = channel_stats(x, chunk=16)                      # chunked sums = one pass
    f = x.double() / 255
    as64 = dict(dtype=torch.float64)
    assert torch.allclose(torch.tensor(mean, **as64), f.mean(dim=(0, 2, 3)), atol=1e-9)
    assert torch.allclose(torch.tensor(std, **as64), f.std(dim=(0, 2, 3), unbiased=False),
                          atol=1e-9)
    assert channel_stats(torch.full((2, 1, 3, 3), 7, dtype=torch.uint8))[1] == (1.0,)


def test_folder_loaders_split_standardise_and_report(image_folder):
    L = folder_loaders(image_folder, 16, 8, val_fraction=0.2, test_fraction=0.2, shift=2)
    assert L.classes == ["blue", "green", "red"] and L.train.x.dtype == torch.uint8
    n = (L.info["train"], L.info["val"], L.info["test"])
    assert sum(n) == 30 and min(n[1:]) >= 5                     # 31 files, one of them broken
    assert len(L.skipped.skipped) == 1 and "broken.png" in L.skipped.skipped[0].path
    assert L.split.method == "stratified" and len(L.split.files["test"]) == 6
    xb = torch.cat([b for b, _ in L.train])
    assert xb.shape == (n[0], 3, 16, 16) and len(L.mean) == 3
    x = torch.cat([L.train.to_float(L.train.x[i:i + 5]) for i in range(0, n[0], 5)])
    assert torch.allclose(x.mean(dim=(0, 2, 3)), torch.zeros(3), atol=1e-4)   # train statistics
    assert torch.allclose(x.std(dim=(0, 2, 3), unbiased=False), torch.ones(3), atol=1e-3)


def test_grey_folders_give_one_channel_only_when_asked(tmp_path, folder_factory):
    make_image_folder = folder_factory
    root = make_image_folder(tmp_path / "g", per_class=4, grey=True)
    assert folder_loaders(root, 8, 4, one_channel_if_grey=True, val_fraction=0.25
                          ).train.x.shape[1] == 1
    assert folder_loaders(root, 8, 4, val_fraction=0.25).train.x.shape[1] == 3
    colour = make_image_folder(tmp_path / "c", per_class=4)
    assert folder_loaders(colour, 8, 4, one_channel_if_grey=True, val_fraction=0.25
                          ).train.x.shape[1] == 3


def test_folder_batches_augment_per_epoch_and_resume_mid_epoch(image_folder):
    L = folder_loaders(image_folder, 16, 4, val_fraction=0.2, shift=2)   # pad-crop + flips
    L.train.set_epoch(1)
    full = list(L.train)
    plain = torch.cat([L.train.to_float(L.train.x[L.train.order()[i:i + 4]])
                       for i in range(0, len(L.train.y), 4)])
    assert not torch.equal(torch.cat([x for x, _ in full]), plain)      # augmented
    L.train.skip_batches(2)
    part = list(L.train)
    assert len(part) == len(full) - 2
    assert all(torch.equal(a[0], b[0]) and torch.equal(a[1], b[1]) for a, b in zip(part, full[2:]))


def test_folder_loaders_reuse_the_decoded_cache(image_folder, tmp_path):
    cache = tmp_path / "cache"
    a = folder_loaders(image_folder, 8, 4, data_overrides={"cache_dir": str(cache)})
    assert any(cache.rglob("images.npy"))
    b = folder_loaders(image_folder, 8, 4, data_overrides={"cache_dir": str(cache)})
    assert torch.equal(a.train.x, b.train.x) and torch.equal(a.val.x, b.val.x)
    assert a.mean == b.mean and b.info["skipped"] == 1
