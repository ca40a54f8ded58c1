"""RELIABILITY.md F4: determinism and numerics of training.

Also covered: tests/train/test_run.py::test_same_seed_same_weights_in_deterministic_mode (toy
model with dropout) and tests/train/test_losses.py::test_svm_gradcheck_float64.
"""

import copy
import dataclasses

import pytest
import torch

from cnnlab.train.config import TrainConfig
from cnnlab.train.losses import cross_entropy, l1_penalty, multiclass_svm_loss
from cnnlab.train.run import train


def tiny_digits():
    """The embedded digits cut to 128 train / 64 val images (2 batches an epoch)."""
    from cnnlab.train.batches import Loaders, TensorBatches, digits_loaders

    d = digits_loaders(image_size=32, val_fraction=0.1, shift=2)
    tr = TensorBatches(d.train.x[:128], d.train.y[:128], 64, shuffle=True, seed=0, shift=2,
                       fill=d.train.fill)
    return Loaders(tr, TensorBatches(d.val.x[:64], d.val.y[:64], 64), None, d.classes, d.mean,
                   d.std, d.info)


class Probe:
    """Checks, during training, that deterministic mode is on and a nondeterministic op raises."""

    def __init__(self):
        self.checked = 0

    def on_batch_end(self, **_):
        assert torch.are_deterministic_algorithms_enabled()
        with pytest.raises(RuntimeError, match="deterministic"):
            # put_ without accumulate has no deterministic kernel: it must fail, not differ
            torch.zeros(3).put_(torch.tensor([0, 0]), torch.tensor([1.0, 2.0]))
        self.checked += 1


def test_two_same_seed_deterministic_runs_are_bitwise_identical(tmp_path):
    data = tiny_digits()
    cfg = TrainConfig(epochs=2, deterministic=True, quiet=True, precision="32", seed=3,
                      out_dir=str(tmp_path), name="a")
    results = []
    for name, global_seed in (("a", 11), ("b", 12)):
        torch.manual_seed(global_seed)         # whatever came before, the run reseeds itself
        probe = Probe()
        results.append(train(dataclasses.replace(cfg, name=name), loaders=copy.deepcopy(data),
                             callbacks=[probe]))
        assert probe.checked == 4
    a, b = (r.model.state_dict() for r in results)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    drop = ("seconds", "images_per_s")
    ha, hb = ([{k: v for k, v in row.items() if k not in drop} for row in r.history]
              for r in results)
    assert ha == hb and len(ha) == 2
    # a different seed is a different run: the equality above is not vacuous
    other = train(dataclasses.replace(cfg, name="c", seed=4), loaders=copy.deepcopy(data))
    assert not all(torch.equal(a[k], other.model.state_dict()[k]) for k in a)


@pytest.mark.parametrize("loss", [
    pytest.param(lambda s, y: multiclass_svm_loss(s, y), id="svm"),
    pytest.param(lambda s, y: multiclass_svm_loss(s, y, margin=0.5), id="svm-margin"),
    pytest.param(lambda s, y: cross_entropy(s, y, 0.1), id="ce-smoothed"),
])
def test_losses_pass_gradcheck_and_gradgradcheck_in_float64(loss):
    g = torch.Generator().manual_seed(0)
    # scores spread out so that no hinge sits within gradcheck's eps of its kink
    s = (3 * torch.randn(5, 4, generator=g, dtype=torch.float64)).requires_grad_(True)
    y = torch.tensor([0, 3, 1, 2, 1])
    assert torch.autograd.gradcheck(lambda t: loss(t, y), (s,))
    assert torch.autograd.gradgradcheck(lambda t: loss(t, y), (s,))


def test_l1_penalty_gradcheck_in_float64():
    g = torch.Generator().manual_seed(1)
    w = [(torch.randn(3, 2, generator=g, dtype=torch.float64) + 0.5).requires_grad_(True),
         torch.randn(4, generator=g, dtype=torch.float64).requires_grad_(True)]
    assert torch.autograd.gradcheck(lambda a, b: l1_penalty([a, b]), tuple(w))
