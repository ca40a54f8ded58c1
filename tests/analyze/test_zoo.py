"""Zoo listing: published parameter counts from meta-device builds, glob and substring patterns."""

import torch

from cnnlab.analyze.zoo import count_params, describe_models


def test_published_parameter_counts():
    assert count_params("vgg16") == 138_357_544          # Simonyan & Zisserman 2015 / torchvision
    assert count_params("resnet50") == 25_557_032        # He et al. 2016 / torchvision
    assert count_params("resnet50", num_classes=10) == 25_557_032 - 990 * 2049


def test_meta_build_leaves_the_default_device_alone():
    count_params("lenet5")
    assert torch.empty(1).device.type == "cpu"


def test_patterns():
    globbed = {r["name"] for r in describe_models("resnet5*")}
    assert {"resnet50", "resnet56"} <= globbed and all(n.startswith("resnet5") for n in globbed)
    word = {r["name"] for r in describe_models("lenet")}             # googlenet matches too
    assert {"lenet5", "lenet5_paper", "googlenet"} <= word and all("lenet" in n for n in word)
    (row,) = describe_models("lenet5_paper")
    assert row["input_size"] == 32 and row["in_chans"] == 1 and row["num_classes"] == 10
    assert describe_models("nosuchnet") == []
