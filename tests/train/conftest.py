import pytest
import torch

from cnnlab.train.batches import Loaders, TensorBatches
from toys import TinyNet, blobs


def make_toy(shift: int = 0):
    """A freshly initialised TinyNet (seed 0) and train/val/test batches of separable blobs."""
    with torch.random.fork_rng():
        torch.manual_seed(0)
        model = TinyNet()
    x, y = blobs()
    xv, yv = blobs(30, seed=1)
    loaders = Loaders(TensorBatches(x, y, 16, shuffle=True, shift=shift),
                      TensorBatches(xv, yv, 64), TensorBatches(xv, yv, 64), ["a", "b", "c"])
    return model, loaders


@pytest.fixture
def toy():
    return make_toy()


@pytest.fixture
def toy_factory():
    return make_toy


COLOURS = {"blue": (30, 60, 220), "green": (40, 200, 60), "red": (220, 40, 30)}


def make_image_folder(root, per_class: int = 10, size: int = 16, grey: bool = False,
                      bad_file: bool = False):
    """ROOT/<colour>/i.png: a coloured square on a noisy dark background, one folder per class."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    for k, (name, rgb) in enumerate(COLOURS.items()):
        d = root / name
        d.mkdir(parents=True)
        for i in range(per_class):
            a = rng.integers(0, 40, (size, size, 3), dtype=np.uint8)
            r, c = rng.integers(0, size // 2, 2)
            a[r:r + size // 2, c:c + size // 2] = (80 * (k + 1),) * 3 if grey else rgb
            img = Image.fromarray(a)
            (img.convert("L") if grey else img).save(d / f"{i}.png")
    if bad_file:
        (root / "red" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    return root


@pytest.fixture
def image_folder(tmp_path):
    return make_image_folder(tmp_path / "shapes", bad_file=True)


@pytest.fixture(scope="session")   # a plain function: module-scoped fixtures may use it too
def folder_factory():
    return make_image_folder
