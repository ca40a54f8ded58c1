"""Built-in recipes: they load into TrainConfig, layer under --config and flags, and the pieces the
trainer gained for them (milestones, alternating flips, flip-translate TTA) work."""

import json
from importlib import resources

import pytest
import torch
import yaml

from cnnlab.cli.main import build_parser, main
from cnnlab.cli.train import config_from_args
from cnnlab.config import from_dict
from cnnlab.errors import ConfigError
from cnnlab.evaluate.tta import TTAModel, tta_probs, tta_views
from cnnlab.recipes import list_recipes, load_recipe
from cnnlab.train.batches import TensorBatches, alternate_flip_mask
from cnnlab.train.config import TrainConfig
from cnnlab.train.optim import build_schedule

RECIPES = ("cifar10-fast", "imagenette", "resnet-cifar-paper")


def test_every_recipe_loads_into_a_train_config_and_cites_its_source():
    assert set(RECIPES) <= set(list_recipes())
    for name in list_recipes():
        cfg = from_dict(TrainConfig, load_recipe(name))
        assert cfg != TrainConfig()
        text = (resources.files("cnnlab.recipes") / f"{name}.yaml").read_text()
        assert text.startswith(f"# {name}: ")       # a header naming the source comes first
    fast = from_dict(TrainConfig, load_recipe("cifar10-fast"))
    assert (fast.model, fast.batch_size, fast.alternate_flip, fast.tta) == (
        "airbench94", 1024, True, "flip-translate")


def test_unknown_recipe_names_the_close_matches(tmp_path, capsys):
    with pytest.raises(ConfigError, match="did you mean 'cifar10-fast'"):
        load_recipe("cifar10-fats")
    assert main(["train", "--recipe", "imagenet", "--out-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "unknown recipe 'imagenet'" in err and "imagenette" in err and "Traceback" not in err


def test_recipe_then_config_file_then_flags(tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text("epochs: 3\nlr: 0.5\nema_decay: null\n")
    args = build_parser().parse_args(["train", "--recipe", "cifar10-fast", "--config",
                                      str(config), "--lr", "0.25"])
    cfg = config_from_args(args)
    assert cfg.batch_size == 1024 and cfg.label_smoothing == 0.2     # from the recipe
    assert cfg.epochs == 3 and cfg.ema_decay is None                 # the file over the recipe
    assert cfg.lr == 0.25                                            # the flag over both
    plain = config_from_args(build_parser().parse_args(["train", "--config", str(config)]))
    assert plain.batch_size == TrainConfig().batch_size              # no recipe: the defaults


def test_resume_refuses_a_recipe(tmp_path, capsys):
    assert main(["train", "--resume", str(tmp_path), "--recipe", "cifar10-fast"]) == 2
    assert "--recipe" in capsys.readouterr().err


def test_paper_schedule_divides_at_32k_and_48k_iterations():
    cfg = from_dict(TrainConfig, load_recipe("resnet-cifar-paper"))
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=cfg.lr)
    sched = build_schedule(opt, cfg, steps_per_epoch=391)              # ceil(50,000 / 128)
    assert [sched.factor(s) for s in (0, 31_999, 32_000, 47_999, 48_000, 63_999)] == \
        pytest.approx([1, 1, 0.1, 0.1, 0.01, 0.01])
    assert cfg.epochs * 391 >= 64_000


def test_milestones_are_checked():
    with pytest.raises(ConfigError, match="schedule 'step'"):
        TrainConfig(lr_milestones=(1.0,), epochs=3)
    with pytest.raises(ConfigError, match="increasing"):
        TrainConfig(lr_milestones=(2.0, 1.0), epochs=3, schedule="step")


def test_alternating_flips_mirror_each_image_every_other_epoch():
    even, odd = alternate_flip_mask(1000, 0, 0), alternate_flip_mask(1000, 0, 1)
    assert torch.equal(even, ~odd) and torch.equal(even, alternate_flip_mask(1000, 0, 2))
    assert 400 < int(even.sum()) < 600
    assert not torch.equal(even, alternate_flip_mask(1000, 1, 0))   # the phase follows the seed
    x = torch.arange(8 * 4 * 4, dtype=torch.float32).reshape(8, 1, 4, 4)
    batches = TensorBatches(x, torch.arange(8), 4, shuffle=True, seed=0)
    batches.alternate_flip = True
    for epoch in (0, 1):
        batches.set_epoch(epoch)
        order, mask = batches.order(), alternate_flip_mask(8, 0, epoch)
        seen = torch.cat([xb for xb, _ in batches])
        for k, i in enumerate(order):
            assert torch.equal(seen[k], x[i].flip(-1) if mask[i] else x[i])


def test_alternate_flip_replaces_the_random_flip():
    from cnnlab.train.run import build_loaders

    alt = build_loaders(TrainConfig(hflip=True, alternate_flip=True), 32).train
    assert alt.alternate_flip and not alt.flip
    coin = build_loaders(TrainConfig(hflip=True), 32).train
    assert coin.flip and not coin.alternate_flip
    off = build_loaders(TrainConfig(hflip=False, alternate_flip=True), 32).train
    assert not off.flip and not off.alternate_flip                 # no flips asked: none


def test_flip_translate_views_and_tta_model():
    x = torch.arange(16.0).reshape(1, 1, 4, 4)
    views = tta_views(x, "flip-translate")
    assert len(views) == 6 and torch.equal(views[1], x.flip(-1))
    assert torch.equal(views[2][..., :3, :3], x[..., 1:, 1:])         # shifted up-left
    assert torch.equal(views[4][..., 1:, 1:], x[..., :3, :3])         # shifted down-right
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(1, 3, 3), torch.nn.Flatten(),
                              torch.nn.Linear(12, 3)).eval()
    out = TTAModel(net, "flip-translate")(x)
    assert torch.allclose(out.exp(), tta_probs(net, x, "flip-translate"))
    assert not torch.allclose(out.exp(), net(x).softmax(1))           # the views do matter


def _cifar_like_folder(root, per_class=8):
    """ROOT/{train,test}/<class>/i.png, 32x32: a class-coloured square on dark noise."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    for split, n in (("train", per_class), ("test", per_class // 2)):
        for k, rgb in enumerate([(220, 40, 30), (40, 200, 60), (30, 60, 220), (200, 200, 40)]):
            (root / split / f"c{k}").mkdir(parents=True)
            for i in range(n):
                a = rng.integers(0, 40, (32, 32, 3), dtype=np.uint8)
                r, c = rng.integers(0, 16, 2)
                a[r:r + 16, c:c + 16] = rgb
                Image.fromarray(a).save(root / split / f"c{k}" / f"{i}.png")
    return root


def test_cifar10_fast_recipe_smoke_trains_one_epoch_from_the_cli(tmp_path):
    from cnnlab.train.checkpoint import load_checkpoint

    data = _cifar_like_folder(tmp_path / "cifar")
    rc = main(["train", "--recipe", "cifar10-fast", "--data", str(data), "--epochs", "1",
               "--warmup-epochs", "0.5", "--batch-size", "16", "--threads", "1",
               "--device", "cpu", "--out-dir", str(tmp_path), "--name", "fast", "--quiet"])
    assert rc == 0
    run = tmp_path / "fast"
    summary = json.loads((run / "summary.json").read_text())
    assert summary["model"] == "airbench94" and summary["epochs_completed"] == 1
    assert summary["tta"]["mode"] == "flip-translate" and summary["tta"]["split"] == "val"
    assert summary["tta"]["images"] == 16 and 0 <= summary["tta"]["acc1"] <= 1
    weights, _ = load_checkpoint(run, "last")
    assert bool(weights["whitening_ready"])                # fitted on the first training batch
    assert weights["whiten.weight"].abs().sum() > 0
    saved = from_dict(TrainConfig, yaml.safe_load((run / "config.yaml").read_text()))
    assert saved.alternate_flip and saved.batch_size == 16 and saved.label_smoothing == 0.2
