"""In-memory batches: seeded per-epoch order, random shifts, the standardised digits split."""

import pytest
import torch

from cnnlab.errors import DataError
from cnnlab.train.batches import TensorBatches, digits_loaders, random_shift


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
