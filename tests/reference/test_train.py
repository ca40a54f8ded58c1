import numpy as np
import pytest
from threadpoolctl import threadpool_limits

from cnnlab.data.digits import load_digits
from cnnlab.errors import ConfigError
from cnnlab.reference import LeNet5, ReferenceTrainConfig, fit_lenet
from cnnlab.reference.optim import OPTIMIZERS
from cnnlab.reference.train import DEFAULT_LR


@pytest.fixture(scope="module")
def digits():
    return load_digits(image_size=32)


def test_short_run_clearly_learns_the_digits(digits):
    # 3 epochs = 135 updates, a few seconds; chance is 10%, the full run (benchmarks/) ~97%.
    cfg = ReferenceTrainConfig(epochs=3, batch_size=32, optimizer="adam", seed=0)
    with threadpool_limits(1, "blas"):                 # small matrices: extra BLAS threads only contend
        model, report = fit_lenet(cfg, data=digits)
    assert report["steps"] == 3 * 45                   # ceil(1437 / 32) updates per epoch
    assert report["test_accuracy"] > 0.85
    losses = [h["loss"] for h in report["history"]]
    assert losses[-1] < 0.5 * losses[0]
    assert report["params"] == 61_706 and isinstance(model, LeNet5)


@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_every_optimizer_with_its_default_lr_fits_one_batch(name, digits):
    x, y = digits[0][:16].astype(np.float64), digits[1][:16]
    model = LeNet5(seed=0)
    first, states = model.loss(x, y)[0], dict.fromkeys(model.params)
    with threadpool_limits(1, "blas"):
        for _ in range(10):
            loss, grads, _ = model.loss(x, y)
            for k, g in grads.items():
                model.params[k], states[k] = OPTIMIZERS[name](model.params[k], g, states[k], lr=DEFAULT_LR[name])
    assert np.isfinite(loss) and loss < 0.6 * first, f"{name}: {first:.3f} -> {loss:.3f}"   # seen: 0.08-0.41


def test_config_errors_name_the_fix():
    with pytest.raises(ConfigError, match="did you mean 'adam'"):
        ReferenceTrainConfig(optimizer="adma")
    with pytest.raises(ConfigError, match="epochs"):
        ReferenceTrainConfig(epochs=0)
    with pytest.raises(ConfigError, match="lr must be positive"):
        ReferenceTrainConfig(lr=-0.1)
    assert ReferenceTrainConfig(optimizer="sgd").resolved_lr == DEFAULT_LR["sgd"]
