import numpy as np
import pytest
import torch

from cnnlab.errors import ConfigError
from cnnlab.zeroshot.data import iter_image_batches, read_cub
from cnnlab.zeroshot.features import extract_dataset, extract_features, load_backbone


def test_lenet_features_match_the_model_head():
    torch.manual_seed(0)
    model, mean, std, chans = load_backbone("lenet5")
    assert chans == 1 and len(mean) == 1
    imgs = np.random.default_rng(0).integers(0, 256, (3, 3, 32, 32), dtype=np.uint8)
    feats, maps = extract_features(model, imgs, mean, std, conv_maps=True)
    assert feats.shape == (3, 84) and maps.shape == (3, 16, 5, 5)
    # RGB goes in as its channel mean, normalised with the model's statistics
    grey = torch.from_numpy(imgs).float().mean(1, keepdim=True) / 255
    x = (grey - float(mean[0])) / float(std[0])
    with torch.no_grad():
        expect = model.forward_head(model.forward_features(x), pre_logits=True)
    np.testing.assert_allclose(feats, expect.numpy(), rtol=1e-5, atol=1e-5)


def test_dataset_extraction_keeps_order_and_pools_maps(tiny_cub):
    data = read_cub(tiny_cub.parent)
    model, mean, std, _ = load_backbone("resnet18")
    rels = data.images["003.Green_Bird"] + data.images["001.Red_Bird"][:1]
    kept, [(f, m)] = extract_dataset(data, rels, model, mean, std, 64, conv_maps=True,
                                     map_size=1, batch_size=2)
    assert f.shape == (5, 512) and m.shape == (5, 512, 1, 1) and list(kept) == [0, 1, 2, 3, 4]
    batch, _ = next(iter_image_batches(data, rels[-1:], 64))
    one, _ = extract_features(model, batch, mean, std)
    np.testing.assert_allclose(f[-1], one[0], rtol=1e-4, atol=1e-5)
    # both views from one decoding pass: the second is the mirror image's
    kept2, views = extract_dataset(data, rels, model, mean, std, 64, mirrors=(False, True))
    assert list(kept2) == list(kept) and len(views) == 2 and views[0][1] is None
    np.testing.assert_allclose(views[0][0], f, rtol=1e-4, atol=1e-5)
    mirrored, _ = extract_features(model, batch, mean, std, mirror=True)
    np.testing.assert_allclose(views[1][0][-1], mirrored[0], rtol=1e-4, atol=1e-5)
    assert not np.allclose(mirrored, one, atol=1e-3)


def test_channel_mismatch_is_an_error():
    model, mean, std, _ = load_backbone("resnet18")
    with pytest.raises(ConfigError, match="channels"):
        extract_features(model, np.zeros((1, 2, 32, 32), np.uint8), mean, std)


def test_feature_layers_put_pooled_stages_before_the_penultimate_features():
    torch.manual_seed(0)
    model, mean, std, _ = load_backbone("resnet18")
    imgs = np.random.default_rng(1).integers(0, 256, (2, 3, 64, 64), dtype=np.uint8)
    plain, _ = extract_features(model, imgs, mean, std)
    feats, _ = extract_features(model, imgs, mean, std, layers=("layer2", "layer3"))
    assert feats.shape == (2, 128 + 256 + 512)
    np.testing.assert_allclose(feats[:, -512:], plain, rtol=1e-5, atol=1e-6)
    x = (torch.from_numpy(imgs).float() / 255 - torch.tensor(mean).view(1, -1, 1, 1)) \
        / torch.tensor(std).view(1, -1, 1, 1)
    with torch.no_grad():
        stem = model.maxpool(model.relu(model.bn1(model.conv1(x))))
        l2 = model.layer2(model.layer1(stem))
    np.testing.assert_allclose(feats[:, :128], l2.mean((2, 3)).numpy(), rtol=1e-4, atol=1e-5)
    assert not model._forward_hooks and not model.layer2._forward_hooks   # hooks removed
    # layer groups name the same stages on any backbone; the head is already there
    staged, _ = extract_features(model, imgs, mean, std, layers=("stage2", "stage3"))
    np.testing.assert_allclose(staged, feats, rtol=1e-5, atol=1e-6)
    with pytest.raises(ConfigError, match="already the penultimate"):
        extract_features(model, imgs, mean, std, layers=("pre_logits",))


def test_unknown_feature_layer_names_the_modules_to_choose_from():
    model, mean, std, _ = load_backbone("resnet18")
    with pytest.raises(ConfigError, match="unknown layer 'layer9'.*stage1.*named_modules"):
        extract_features(model, np.zeros((1, 3, 32, 32), np.uint8), mean, std, layers=("layer9",))
