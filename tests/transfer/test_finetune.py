"""transfer.prepare wired into train(): frozen groups stay put, rates reach the optimiser,
gradual unfreezing advances with the epochs."""

import pytest
import torch

import cnnlab
from cnnlab.errors import ConfigError
from cnnlab.train.batches import Loaders, TensorBatches
from cnnlab.train.config import TrainConfig
from cnnlab.train.run import train
from cnnlab.transfer.freeze import trainable_groups
from cnnlab.transfer.prepare import prepare


def _loaders(n=24, side=16):
    """Three separable classes of 16x16 RGB images: class c is bright in channel c."""
    g = torch.Generator().manual_seed(0)
    y = torch.arange(n) % 3
    x = 0.3 * torch.randn(n, 3, side, side, generator=g)
    x[torch.arange(n), y] += 1.0
    return Loaders(TensorBatches(x, y, 8, shuffle=True), TensorBatches(x[:9], y[:9], 9), None,
                   ["r", "g", "b"])


def _source():
    torch.manual_seed(0)
    return cnnlab.create_model("resnet20")    # stem, stage1..3, classifier


def _cfg(tmp_path, name, **kw):
    return TrainConfig(**{"epochs": 1, "lr": 0.05, "out_dir": str(tmp_path), "name": name,
                          "quiet": True, "precision": "32", "threads": 1,
                          "schedule": "constant", **kw})


class Record:
    """Per epoch: the optimiser's rate per group and the groups that require grad."""

    def __init__(self, groups):
        self.groups, self.lrs, self.trainable = groups, [], []

    def on_epoch_start(self, model, optimizer, **_):
        self.lrs.append({g["name"].split("/")[0]: g["lr"] for g in optimizer.param_groups})
        self.trainable.append(trainable_groups(model, self.groups))


def _changed(before, model, names):
    params = dict(model.named_parameters())
    return {n: not torch.equal(before[n], params[n].detach()) for n in names}


def test_linear_probe_trains_only_the_classifier_bn_statistics_included(tmp_path):
    model = _source()
    prep = prepare(model, "linear-probe", num_classes=3, lr=0.05, weight_decay=5e-4)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    result = train(_cfg(tmp_path, "lp", epochs=2), model=model, loaders=_loaders(),
                   callbacks=prep.callbacks, param_groups=prep.param_groups)
    after = result.model.state_dict()
    changed = {k for k in after if not torch.equal(after[k], before[k])}
    assert changed == {"fc.weight", "fc.bias"}     # running means/vars and counters too stay
    assert any("running_mean" in k for k in before)


def test_full_with_lr_mult_gives_the_backbone_a_tenth_and_moves_it(tmp_path):
    model = _source()
    prep = prepare(model, "full", num_classes=3, lr=0.05, lr_mult={"backbone": 0.1})
    rec = Record(prep.groups)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    cfg = _cfg(tmp_path, "full", epochs=2, schedule="cosine")
    train(cfg, model=model, loaders=_loaders(), callbacks=[rec], param_groups=prep.param_groups)
    first = rec.lrs[0]
    assert first["classifier"] == pytest.approx(0.05)
    assert all(first[g] == pytest.approx(0.005) for g in ("stem", "stage1", "stage2", "stage3"))
    # the cosine schedule lowers every group by the same factor: the ratio holds in epoch 2
    assert rec.lrs[1]["stem"] / rec.lrs[1]["classifier"] == pytest.approx(0.1)
    assert rec.lrs[1]["classifier"] < 0.05
    moved = _changed(before, model, ["conv1.weight", "layer1.0.conv1.weight", "fc.weight"])
    assert all(moved.values()), moved


def test_gradual_unfreezes_one_group_per_epoch(tmp_path):
    model = _source()
    prep = prepare(model, "gradual", num_classes=3, lr=0.05)
    rec = Record(prep.groups)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    train(_cfg(tmp_path, "grad", epochs=3), model=model, loaders=_loaders(),
          callbacks=[*prep.callbacks, rec], param_groups=prep.param_groups)
    assert rec.trainable == [["classifier"], ["stage3", "classifier"],
                             ["stage2", "stage3", "classifier"]]
    moved = _changed(before, model, ["conv1.weight", "layer1.0.conv1.weight",
                                     "layer2.0.conv1.weight", "layer3.0.conv1.weight"])
    assert moved == {"conv1.weight": False, "layer1.0.conv1.weight": False,
                     "layer2.0.conv1.weight": True, "layer3.0.conv1.weight": True}


def test_param_groups_need_their_model(tmp_path):
    prep = prepare(_source(), "full", num_classes=3)
    with pytest.raises(ConfigError, match="pass that model"):
        train(_cfg(tmp_path, "x"), loaders=_loaders(), param_groups=prep.param_groups)
    with pytest.raises(ConfigError, match="not parameters of the model"):
        other = prepare(_source(), "full", num_classes=3).model
        train(_cfg(tmp_path, "y"), model=other, loaders=_loaders(),
              param_groups=prep.param_groups)


def test_plan_uses_given_loaders_instead_of_decoding_the_data(tmp_path):
    """Repeated fine-tunes (transfer_bench.py) decode once: plan() takes ready Loaders."""
    from safetensors.torch import save_file

    from cnnlab.transfer.finetune import plan

    weights = tmp_path / "r20.safetensors"
    save_file({k: v.contiguous() for k, v in _source().state_dict().items()}, str(weights))
    loaders = _loaders()
    cfg = _cfg(tmp_path, "given", data=str(tmp_path / "not-there"), image_size=16)
    p = plan(cfg, str(weights), "linear-probe", model="resnet20", loaders=loaders)
    assert p.loaders is loaders and p.record["num_classes"] == 3
    assert p.prepared.model.num_classes == 3 and p.prepared.trainable == ["classifier"]
    with pytest.raises(ConfigError, match="does not exist"):
        plan(cfg, str(weights), "linear-probe", model="resnet20")   # without them: cfg.data
