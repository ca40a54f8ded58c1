"""TrainConfig: the defaults are valid, bad values fail with what to try, synonyms are hinted."""

import pytest

from cnnlab.config import from_dict, resolve
from cnnlab.errors import ConfigError
from cnnlab.train.config import TrainConfig


def test_defaults_are_the_digits_recipe():
    cfg = TrainConfig()
    assert (cfg.model, cfg.data, cfg.loss, cfg.precision) == ("lenet5", None, "ce", "auto")
    assert cfg.optimizer in ("momentum", "nesterov", "sgd") and cfg.epochs * cfg.lr > 0


@pytest.mark.parametrize("kwargs, message", [
    ({"epochs": 0}, "epochs must be >= 1"),
    ({"lr": 0.0}, "lr must be > 0"),
    ({"label_smoothing": 1.0}, "label_smoothing must be in"),
    ({"loss": "svm", "label_smoothing": 0.1}, "cross-entropy loss only"),
    ({"epochs": 3, "warmup_epochs": 3}, "warmup_epochs"),
    ({"momentum": 1.0}, "momentum must be in"),
    ({"name": "a/b"}, "plain directory name"),
    ({"device": "tpu"}, "device must be"),
    ({"min_lr": 1.0}, "min_lr"),
    ({"l1": -1e-4}, "l1 must be >= 0"),
    ({"dropout": 1.0}, "dropout must be in"),
    ({"clip_grad_norm": 0.0}, "clip_grad_norm must be > 0"),
    ({"accumulate": 0}, "accumulate must be >= 1"),
    ({"early_stopping_patience": -1}, "early_stopping_patience must be >= 0"),
    ({"checkpoint_every": -5}, "checkpoint_every must be >= 0"),
])
def test_bad_values_are_config_errors(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        TrainConfig(**kwargs)


def test_choices_and_synonyms_from_files(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text("learning_rate: 0.1\n")
    with pytest.raises(ConfigError, match="'learning_rate'; did you mean 'lr'"):
        resolve(TrainConfig, path)
    with pytest.raises(ConfigError, match="did you mean 'early_stopping_patience'"):
        from_dict(TrainConfig, {"early_stopping": 5})
    with pytest.raises(ConfigError, match="did you mean 'nesterov'"):
        from_dict(TrainConfig, {"optimizer": "nesterow"})
    with pytest.raises(ConfigError, match="precision must be one of auto, bf16, 32"):
        from_dict(TrainConfig, {"precision": "fp16"})
    assert from_dict(TrainConfig, {"precision": 32, "weight_decay": "1e-4"}) == TrainConfig(
        precision="32", weight_decay=1e-4)



def test_every_packaged_recipe_resolves_to_a_zoo_model():
    from pathlib import Path

    import cnnlab

    recipes = sorted((Path(__file__).resolve().parents[2] / "configs").glob("*.yaml"))
    assert len(recipes) >= 2
    for path in recipes:
        assert resolve(TrainConfig, path).model in cnnlab.list_models(), path


def test_held_out_fractions_must_leave_training_images():
    with pytest.raises(ConfigError, match="test_fraction"):
        TrainConfig(val_fraction=0.5, test_fraction=0.5)
    assert TrainConfig(val_fraction=0.2, test_fraction=0.2).test_fraction == 0.2
