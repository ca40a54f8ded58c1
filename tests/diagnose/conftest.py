import pytest
import torch

from cnnlab.train.batches import Loaders, TensorBatches
from toys import TinyNet, blobs


def toy_loaders(n: int = 48, batch_size: int = 16) -> Loaders:
    x, y = blobs(n)
    xv, yv = blobs(24, seed=1)
    return Loaders(TensorBatches(x, y, batch_size, shuffle=True), TensorBatches(xv, yv, 64),
                   None, ["a", "b", "c"])


def toy_net(seed: int = 0, **kw) -> TinyNet:
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        return TinyNet(**kw)


@pytest.fixture(scope="session")
def digits():
    """The embedded digits as standardised batches of 32 (loaded once: ~2 s)."""
    from cnnlab.train.batches import digits_loaders

    return digits_loaders(batch_size=32)


@pytest.fixture
def toy():
    """Factories: toy.net(seed, conv_bias=...), toy.loaders(n, batch_size), toy.blobs(n)."""
    from types import SimpleNamespace

    return SimpleNamespace(net=toy_net, loaders=toy_loaders, blobs=blobs)
