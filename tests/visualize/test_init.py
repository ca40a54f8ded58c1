"""Every method of cnnlab.visualize on zoo models at small inputs: shapes and value ranges.

resnet18, vgg11 and densenet121 at 64x64 (3 classes) and lenet5 at 32x32, one pass of each
method with the cheapest settings, so the suite stays fast.
"""

import importlib

import numpy as np
import pytest
import torch

from cnnlab import visualize as V

# (builder, family module, input side)
CASES = [("lenet5", "lenet", 32), ("resnet18", "resnet", 64), ("vgg11", "vgg", 64),
         ("densenet121", "densenet", 64)]


@pytest.fixture(scope="module", params=CASES, ids=[c[0] for c in CASES])
def zoo(request):
    name, family, side = request.param
    torch.manual_seed(0)
    # The builder itself, not create_model: the zoo's input check probes shapes on its first call
    # (about 9 s for densenet121 on a busy 2-core machine), which is not what these tests test.
    builder = getattr(importlib.import_module(f"cnnlab.models.{family}"), name)
    model = builder(num_classes=3 if name != "lenet5" else 10).eval()
    c = model.features.c1.in_channels if name == "lenet5" else 3
    img = (np.random.default_rng(0).random((side, side, c)) * 255).astype(np.uint8)
    return model, img, side


def _unit(a, shape):
    assert a.shape == shape and a.dtype == np.float32
    assert a.min() >= 0 and a.max() <= 1 + 1e-6 and np.isfinite(a).all()


def test_gradient_methods(zoo):
    model, img, side = zoo
    for method in ("vanilla", "guided", "deconv"):
        heat = V.saliency(model, img, target=1, method=method)
        _unit(heat, (side, side))
        assert heat.max() == pytest.approx(1)
    flags = [m.inplace for m in model.modules() if isinstance(getattr(m, "inplace", None), bool)]
    heat = V.gradcam(model, img, target=2)
    _unit(heat, (side, side))
    assert flags == [m.inplace for m in model.modules()
                     if isinstance(getattr(m, "inplace", None), bool)]
    assert all(p.grad is None for p in model.parameters())


def test_occlusion_and_maps(zoo):
    model, img, side = zoo
    occ = V.occlusion(model, img, patch=side // 2, stride=side // 2)   # 4 positions, 1 batch
    assert occ.scores.shape == (2, 2) and 0 <= occ.baseline <= 1
    _unit(occ.heatmap, (side, side))
    tiles = V.filter_tiles(model)
    first = model.get_submodule(V.default_layer(model, "first")).weight   # (K, C, kh, kw)
    assert tiles.shape == ((len(first),) + first.shape[2:] + (3,) if first.shape[1] == 3
                           else (len(first) * first.shape[1],) + first.shape[2:] + (1,))
    assert tiles.min() == 0 and tiles.max() == pytest.approx(1)
    maps = V.feature_maps(model, img, max_maps=8)
    assert maps.ndim == 3 and len(maps) <= 8 and maps.min() >= 0 and maps.max() <= 1


def test_patches_class_model_and_features(zoo):
    model, img, side = zoo
    x, _ = V.prepare(img, model)
    batch = torch.cat([x, x.flip(-1)])                   # (2, C, S, S)
    layer = V.default_layer(model, "last")
    (patch,) = V.max_activating_patches(model, batch, layer, channel=0, k=1)
    top, left, bottom, right = patch.box
    assert 0 <= top < bottom <= side and 0 <= left < right <= side
    assert patch.pixels.shape == (bottom - top, right - left, x.shape[1])
    image, scores = V.class_model(model, 0, image_size=side, steps=1, jitter=0)
    assert image.shape == (1, x.shape[1], side, side) and len(scores) == 2
    feats = V.penultimate_features(model, batch)
    assert feats.shape[0] == 2 and feats.ndim == 2 and np.isfinite(feats).all()
