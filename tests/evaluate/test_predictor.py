"""cnnlab.evaluate.load / Predictor: a trained digits run classifies files like its test set."""

import shutil

import numpy as np
import pytest
import torch
import yaml
from PIL import Image

from cnnlab.errors import ConfigError, InputShapeError, InvalidCheckpointError
from cnnlab.evaluate.predictor import expand_inputs, load, load_split, predict_files
from toys import digits_run


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    return digits_run(tmp_path_factory.mktemp("runs"))


@pytest.fixture(scope="module")
def digit_files(tmp_path_factory, run_dir):
    """Three test digits as PNG files (8-bit, so 1/255 quantisation against the float set)."""
    p = load(run_dir)
    x, y, _, _ = load_split(p)
    d = tmp_path_factory.mktemp("digits")
    paths = []
    for i in range(3):
        f = d / f"digit{i}_label{int(y[i])}.png"
        Image.fromarray((x[i, 0].numpy() * 255).round().astype(np.uint8)).save(f)
        paths.append(str(f))
    return paths, x[:3]


def test_load_reads_what_the_run_recorded(run_dir):
    p = load(run_dir)
    state = torch.load(run_dir / "best.state.pt", weights_only=True)
    assert p.model_name == "lenet5" and p.checkpoint.endswith("best.safetensors")
    assert p.classes == [str(d) for d in range(10)] and p.num_classes == 10
    assert (p.image_size, p.in_chans, p.mode) == (32, 1, "L")
    assert p.mean == pytest.approx(tuple(state["meta"]["mean"]))
    assert not p.model.training
    # a weights file names its own checkpoint
    assert load(run_dir / "last.safetensors").checkpoint.endswith("last.safetensors")


def test_predict_format_and_probabilities(run_dir, digit_files):
    p = load(run_dir)
    paths, _ = digit_files
    out = p.predict(paths, topk=3)
    assert len(out) == 3 and all(len(top) == 3 for top in out)
    name, prob = out[0][0]
    assert name in p.classes and isinstance(prob, float)
    assert all(a[1] >= b[1] for top in out for a, b in zip(top, top[1:]))
    full = p.predict(paths[0], topk=50)          # k is capped at the 10 classes
    assert len(full[0]) == 10 and sum(pr for _, pr in full[0]) == pytest.approx(1.0, abs=1e-5)


def test_every_input_kind_preprocesses_alike(run_dir, digit_files):
    p = load(run_dir)
    paths, x = digit_files
    arr = np.array(Image.open(paths[0]))
    batch = p.preprocess([paths[0], Image.open(paths[0]), arr, torch.from_numpy(arr)[None],
                          x[0]])
    assert batch.shape == (5, 1, 32, 32)
    for row in batch[1:4]:
        assert torch.equal(row, batch[0])
    # the float tensor skips 8-bit quantisation; both are standardised by the run's mean/std
    assert torch.allclose(batch[4], batch[0], atol=1.0 / 255 / p.std[0] + 1e-6)
    # an RGB image is reduced to luma for this one-channel model; other sizes are fitted
    rgb = np.repeat(arr[..., None], 3, axis=2)
    assert torch.equal(p.preprocess(rgb), batch[:1])
    assert p.preprocess(np.zeros((50, 70), np.uint8)).shape == (1, 1, 32, 32)
    with pytest.raises(InputShapeError, match=r"\(1, 32, 32\)"):
        p.preprocess(torch.rand(1, 28, 28))
    with pytest.raises(InputShapeError, match="uint8"):
        p.preprocess(np.zeros((32, 32), np.float32))


def test_files_agree_with_the_evaluation_split(run_dir, digit_files):
    p = load(run_dir)
    paths, x = digit_files
    from_files = p.probabilities(p.preprocess(paths))
    from_split = p.probabilities(p.normalize(x))
    assert torch.allclose(from_files, from_split, atol=0.02)    # 8-bit rounding only
    assert torch.equal(from_files.argmax(1), from_split.argmax(1))


def test_broken_image_in_the_middle(run_dir, digit_files, tmp_path):
    paths, _ = digit_files
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 20)
    res = predict_files(load(run_dir), [paths[0], str(bad), paths[1]], topk=2)
    assert [("top" in r, "error" in r) for r in res] == [(True, False), (False, True),
                                                         (True, False)]
    assert res[1]["image"] == str(bad) and res[1]["error"]
    assert len(res[2]["top"]) == 2


def test_expand_inputs_lists_folders(digit_files, tmp_path):
    paths, _ = digit_files
    for f in paths:
        shutil.copy(f, tmp_path)
    (tmp_path / "notes.txt").write_text("not an image")
    got = expand_inputs([str(tmp_path), "x.jpg"])
    assert len(got) == 4 and got[-1] == "x.jpg" and got[:3] == sorted(got[:3])
    from cnnlab.errors import DataError

    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DataError, match="no image files"):
        expand_inputs([str(empty)])


def test_old_run_without_classes_or_statistics(tmp_path):
    """A digits run from before classes/mean/std were saved: defaults from the run's config."""
    import cnnlab
    from cnnlab.evaluate.predictor import _digits_stats
    from cnnlab.train.checkpoint import save_checkpoint
    from cnnlab.train.config import TrainConfig

    model = cnnlab.create_model("lenet5")
    save_checkpoint(tmp_path, "last", model, meta={"input_size": 32})
    cfg = {"model": "lenet5", "data": None, "image_size": 32, "val_fraction": 0.1}
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(cfg))
    p = load(tmp_path)
    assert p.classes == [str(d) for d in range(10)] and p.in_chans == 1
    mean, std = _digits_stats(32, 0.1)
    from cnnlab.train.batches import digits_loaders

    loaders = digits_loaders(32, val_fraction=TrainConfig().val_fraction)
    assert p.mean == mean == loaders.mean and p.std == loaders.std
    x = torch.randn(2, 1, 32, 32)
    assert torch.allclose(p.model(x), model.eval()(x))


def test_load_errors(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load(tmp_path / "nope")
    with pytest.raises(InvalidCheckpointError, match="best.safetensors"):
        load(tmp_path)
    (tmp_path / "w.pt").write_bytes(b"x")
    with pytest.raises(InvalidCheckpointError, match="safetensors"):
        load(tmp_path / "w.pt")
    bad = tmp_path / "r"
    bad.mkdir()
    (bad / "best.safetensors").write_bytes(b"garbage")
    with pytest.raises(InvalidCheckpointError):
        load(bad)


def _bn_predictor(fast: bool = True):
    """A Predictor around a CIFAR ResNet whose BatchNorms are far from the identity."""
    from cnnlab.evaluate.predictor import Predictor
    from cnnlab.models import create_model
    from toys import randomise_batchnorm

    torch.manual_seed(0)
    model = randomise_batchnorm(create_model("resnet20", num_classes=4))
    return Predictor(model, list("abcd"), 16, 3, (0.5,) * 3, (0.25,) * 3, fast=fast)


def test_fast_path_agrees_with_the_plain_model_and_leaves_it_alone():
    from cnnlab.models.fuse import InferenceModel

    fast, plain = _bn_predictor(), _bn_predictor(fast=False)
    keys = list(fast.model.state_dict())
    x = fast.normalize(torch.rand(3, 3, 16, 16))
    assert isinstance(fast.runner(), InferenceModel) and plain.runner() is plain.model
    assert fast.runner() is fast.runner()                       # made once, then reused
    for tta in (None, "flip"):
        assert torch.allclose(fast.probabilities(x, tta), plain.probabilities(x, tta),
                              atol=1e-5)
    assert list(fast.model.state_dict()) == keys               # the model keeps its BN keys
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in fast.runner().modules())


def test_fast_copy_follows_changed_weights():
    p = _bn_predictor()
    x = p.normalize(torch.rand(2, 3, 16, 16))
    before, old = p.probabilities(x), p.runner()
    with torch.no_grad():
        p.model.fc.bias[0] += 5.0                              # class "a" now dominates
    assert p.runner() is not old
    after = p.probabilities(x)
    assert (after[:, 0] > before[:, 0]).all()
    with torch.no_grad():
        assert torch.allclose(after, p.model.eval()(x).softmax(1), atol=1e-5)


def test_load_passes_fast_through(run_dir):
    assert load(run_dir).fast and not load(run_dir, fast=False).fast
