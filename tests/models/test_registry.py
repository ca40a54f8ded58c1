import pytest
import torch
from torch import nn

import cnnlab
from cnnlab.errors import CnnlabError, DuplicateModelError, UnknownModelError
from cnnlab.models import registry


def test_unknown_model_names_close_matches():
    with pytest.raises(UnknownModelError) as e:
        cnnlab.create_model("resnt18")
    msg = str(e.value)
    assert "resnet18" in msg and "cnnlab models" in msg
    assert isinstance(e.value, KeyError) and isinstance(e.value, CnnlabError)


def test_duplicate_registration_is_refused():
    def resnet18():  # same name as a zoo builder
        return nn.Identity()

    with pytest.raises(DuplicateModelError):
        registry.register_model(resnet18)


def test_list_models_glob_and_sorting():
    names = cnnlab.list_models()
    assert len(names) == len(set(names)) >= 30
    assert names.index("resnet20") < names.index("resnet110")  # natural order
    vgg = cnnlab.list_models("vgg*")
    assert vgg and all(n.startswith("vgg") for n in vgg)
    assert "vgg16_bn" in vgg and "resnet50" not in vgg


def test_create_model_passes_num_classes_and_records_name():
    m = cnnlab.create_model("resnet18", num_classes=7)
    assert m.num_classes == 7 and m.model_name == "resnet18"
    with torch.no_grad():
        assert m.eval()(torch.zeros(1, 3, 64, 64)).shape == (1, 7)


def test_model_info_defaults():
    assert cnnlab.model_info("inception_v3").input_size == 299
    assert cnnlab.model_info("lenet5").in_chans == 1
    with pytest.raises(UnknownModelError):
        cnnlab.model_info("nope")
