import pytest
import torch

import cnnlab
from cnnlab.errors import ConfigError
from cnnlab.train.checkpoint import save_checkpoint
from cnnlab.transfer.source import is_cnnlab_run, load_source


def test_a_cnnlab_run_restores_model_and_normalisation(tmp_path):
    torch.manual_seed(0)
    model = cnnlab.create_model("lenet5")
    save_checkpoint(tmp_path, "best", model, classes=list("0123456789"),
                    meta={"model": "lenet5", "input_size": 32, "in_chans": 1,
                          "mean": [0.2], "std": [0.5]})
    assert is_cnnlab_run(tmp_path) and is_cnnlab_run(tmp_path / "best.safetensors")
    src = load_source(tmp_path)
    assert src.model_name == "lenet5" and src.mean == (0.2,) and src.std == (0.5,)
    assert src.mode == "L"
    assert torch.equal(src.model.classifier.output.weight, model.classifier.output.weight)
    with pytest.raises(ConfigError, match="holds a lenet5"):
        load_source(tmp_path, "resnet20")


def test_foreign_weights_need_a_model_and_use_its_statistics(tmp_path):
    torch.manual_seed(0)
    path = tmp_path / "plain.pth"
    torch.save(cnnlab.create_model("resnet20").state_dict(), path)
    assert not is_cnnlab_run(path)
    with pytest.raises(ConfigError, match="--model"):
        load_source(path)
    src = load_source(path, "resnet20")
    assert src.mean == cnnlab.model_info("resnet20").mean and src.in_chans == 3
    assert "loaded" in src.notes[0]


def test_no_weights_is_a_random_model_with_a_note():
    src = load_source(None, "lenet5", image_size=40)
    assert src.image_size == 40 and "randomly initialised" in src.notes[0]
