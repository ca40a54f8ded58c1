"""Optimisers by name with weight decay on weights only, and learning-rate schedules by hand."""

import math

import pytest
import torch
from torch import nn

from cnnlab.errors import ConfigError
from cnnlab.train.config import TrainConfig
from cnnlab.train.optim import LRSchedule, build_optimizer, build_schedule, param_groups


def small_net():
    return nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.ReLU(),
                         nn.LayerNorm([4, 6, 6]), nn.Flatten(), nn.Linear(144, 3))


@pytest.mark.parametrize("name, cls, momentum, nesterov", [
    ("sgd", torch.optim.SGD, 0.0, False),
    ("momentum", torch.optim.SGD, 0.9, False),
    ("nesterov", torch.optim.SGD, 0.9, True),
    ("adagrad", torch.optim.Adagrad, None, None),
    ("rmsprop", torch.optim.RMSprop, 0.0, None),
    ("adadelta", torch.optim.Adadelta, None, None),
    ("adam", torch.optim.Adam, None, None),
    ("adamw", torch.optim.AdamW, None, None),
])
def test_names_build_the_torch_optimizer(name, cls, momentum, nesterov):
    opt = build_optimizer(small_net(), name, lr=0.03, weight_decay=1e-4)
    assert type(opt) is cls
    g = opt.param_groups[0]
    assert g["lr"] == 0.03 and g["weight_decay"] == 1e-4
    if momentum is not None:
        assert g["momentum"] == momentum
    if nesterov is not None:
        assert g["nesterov"] is nesterov


def test_momentum_settings():
    net = small_net()
    assert build_optimizer(net, "sgd", momentum=0.5).param_groups[0]["momentum"] == 0.5
    assert build_optimizer(net, "momentum", momentum=0.8, nesterov=True).param_groups[0]["nesterov"]
    with pytest.raises(ConfigError, match="needs momentum > 0"):
        build_optimizer(net, "nesterov", momentum=0.0)
    with pytest.raises(ConfigError, match="did you mean 'adam'"):
        build_optimizer(net, "adamm")


def test_weight_decay_skips_biases_and_norm_parameters():
    net = small_net()
    conv, bn, ln, lin = net[0], net[1], net[3], net[5]
    decay, no_decay = param_groups(net, 5e-4)
    assert decay["weight_decay"] == 5e-4 and no_decay["weight_decay"] == 0.0
    assert {id(p) for p in decay["params"]} == {id(conv.weight), id(lin.weight)}
    # LayerNorm's weight is 3-D here: excluded because it belongs to a norm layer, not by rank
    assert {id(p) for p in no_decay["params"]} == {id(p) for p in (
        conv.bias, bn.weight, bn.bias, ln.weight, ln.bias, lin.bias)}
    everything = param_groups(net, 5e-4, decay_bias_and_norm=True)
    assert len(everything) == 1 and len(everything[0]["params"]) == len(list(net.parameters()))


def test_weight_decay_acts_only_on_weights():
    net = small_net()
    with torch.no_grad():
        for p in net.parameters():
            p.fill_(1.0)
    opt = build_optimizer(net, "sgd", lr=1.0, weight_decay=0.1)
    loss = sum((p * 0).sum() for p in net.parameters())  # zero gradients: only decay moves
    loss.backward()
    opt.step()
    assert torch.allclose(net[0].weight, torch.full_like(net[0].weight, 0.9))
    assert torch.allclose(net[0].bias, torch.ones_like(net[0].bias))
    assert torch.allclose(net[1].weight, torch.ones_like(net[1].weight))


def lrs(schedule: LRSchedule, steps: int) -> list[float]:
    out = []
    for _ in range(steps):
        out.append(schedule.lr)
        schedule.step_batch()
    return out


def opt_with_lr(lr):
    return torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=lr)


def test_cosine_with_warmup_by_hand():
    # 4 epochs x 2 steps, 1 warm-up epoch: warm-up (t+1)/2 for t < 2, then
    # 0.5 * (1 + cos(pi * (t - 2) / 6)) for t = 2..7
    s = LRSchedule(opt_with_lr(1.0), "cosine", epochs=4, steps_per_epoch=2, warmup_epochs=1)
    c = lambda p: 0.5 * (1 + math.cos(math.pi * p))  # noqa: E731
    assert lrs(s, 8) == pytest.approx([0.5, 1.0, c(0), c(1 / 6), c(2 / 6), c(3 / 6), c(4 / 6),
                                       c(5 / 6)])
    assert c(1 / 6) == pytest.approx(0.9330127)


def test_step_schedule_by_hand():
    s = LRSchedule(opt_with_lr(0.5), "step", epochs=6, steps_per_epoch=2, step_epochs=2, decay=0.1)
    assert lrs(s, 12) == pytest.approx([0.5] * 4 + [0.05] * 4 + [0.005] * 4)


def test_plateau_divides_by_ten_after_patience():
    s = LRSchedule(opt_with_lr(1.0), "plateau", epochs=10, steps_per_epoch=1, patience=1)
    seen = []
    for metric in [0.5, 0.6, 0.6, 0.6, 0.7, 0.65, 0.65]:
        s.step_batch()
        s.step_epoch(metric)
        seen.append(s.lr)
    # two epochs without gain (> patience 1) -> /10; 0.7 resets the count
    assert seen == pytest.approx([1, 1, 1, 0.1, 0.1, 0.1, 0.01])


def test_onecycle_endpoints():
    s = LRSchedule(opt_with_lr(1.0), "onecycle", epochs=5, steps_per_epoch=2)
    seq = lrs(s, 10)
    # 30% of 10 steps rising from 1/25: t=1 is 1 - 0.96 * 0.5 * (1 + cos(pi/3)) = 0.28
    assert seq[0] == pytest.approx(1 / 25) and seq[1] == pytest.approx(0.28)
    assert max(seq) == pytest.approx(1.0) and seq.index(max(seq)) == 3
    assert seq[-1] == pytest.approx(1 / (25 * 1e4))


def test_constant_state_dict_and_config_builder():
    opt = opt_with_lr(0.2)
    cfg = TrainConfig(schedule="plateau", epochs=3, plateau_patience=0)
    s = build_schedule(opt, cfg, steps_per_epoch=4)
    s.step_batch()
    s.step_epoch(0.5)
    s.step_epoch(0.4)
    assert s.lr == pytest.approx(0.02)
    fresh = build_schedule(opt_with_lr(0.2), cfg, steps_per_epoch=4)
    fresh.load_state_dict(s.state_dict())
    assert fresh.lr == pytest.approx(0.02) and fresh.step == 1
    with pytest.raises(ConfigError, match="same --schedule"):
        LRSchedule(opt_with_lr(0.2), "cosine", 3, 4).load_state_dict(s.state_dict())
    with pytest.raises(ConfigError, match="did you mean 'cosine'"):
        LRSchedule(opt_with_lr(0.2), "cosin", 3, 4)
    const = LRSchedule(opt_with_lr(0.3), "constant", epochs=2, steps_per_epoch=3)
    assert lrs(const, 6) == pytest.approx([0.3] * 6)


def test_given_param_groups_keep_their_own_rates_and_decay():
    net = small_net()
    head, body = list(net[5].parameters()), [p for m in net[:4] for p in m.parameters()]
    groups = [{"params": head, "lr": 0.1, "name": "head"},
              {"params": body, "lr": 0.01, "weight_decay": 0.0, "name": "body"}]
    opt = build_optimizer(net, "momentum", lr=0.5, weight_decay=1e-3, param_groups=groups)
    got = {g["name"]: (g["lr"], g["weight_decay"], len(g["params"])) for g in opt.param_groups}
    # head: its own lr, the default decay filled in; body: both its own
    assert got == {"head": (0.1, 1e-3, 2), "body": (0.01, 0.0, len(body))}
    assert "weight_decay" not in groups[0]        # the caller's dicts are copied, not filled in
    with pytest.raises(ConfigError, match="not parameters of the model"):
        build_optimizer(small_net(), "sgd", param_groups=groups)   # groups of another model
    with pytest.raises(ConfigError, match="no parameters"):
        build_optimizer(net, "sgd", param_groups=[{"params": []}])


def test_schedule_scales_each_group_from_its_own_base_and_resumes():
    def make():
        a, b = nn.Parameter(torch.zeros(1)), nn.Parameter(torch.zeros(1))
        opt = torch.optim.SGD([{"params": [a], "lr": 0.2}, {"params": [b], "lr": 0.02}], lr=1.0)
        return opt, LRSchedule(opt, "cosine", epochs=3, steps_per_epoch=2, warmup_epochs=1,
                               min_lr=0.02)
    opt, s = make()
    c = lambda p: 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * p))  # noqa: E731  floor 0.02/0.2
    seen = []
    for _ in range(5):
        seen.append([g["lr"] for g in opt.param_groups])
        s.step_batch()
    factors = [0.5, 1.0, c(0), c(1 / 4), c(2 / 4)]
    assert [a for a, _ in seen] == pytest.approx([0.2 * f for f in factors])
    assert [b for _, b in seen] == pytest.approx([0.02 * f for f in factors])
    fresh_opt, fresh = make()
    fresh_opt.load_state_dict(opt.state_dict())
    fresh.load_state_dict(s.state_dict())
    assert [g["lr"] for g in fresh_opt.param_groups] == pytest.approx(
        [0.2 * c(3 / 4), 0.02 * c(3 / 4)])


def test_penalised_weights_are_conv_and_linear_weights_only():
    from cnnlab.train.optim import penalised_weights

    net = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.Flatten(), nn.Linear(2, 3))
    net[3].bias.requires_grad_(False)
    got = {id(p) for p in penalised_weights(net)}
    assert got == {id(net[0].weight), id(net[3].weight)}


def test_schedule_counts_optimiser_steps_under_accumulation():
    net = nn.Linear(2, 2)
    opt = build_optimizer(net, "sgd", lr=1.0)
    # 10 batches per epoch in groups of 4: 4 + 4 + 2 -> 3 optimiser steps per epoch
    sched = build_schedule(opt, TrainConfig(epochs=2, accumulate=4), 10)
    assert sched.steps_per_epoch == 3 and sched.total_steps == 6
    for _ in range(5):
        sched.step_batch()
    assert 0 < sched.lr < 1.0 and sched.factor(5) > 0  # cosine not yet at its end


def test_model_ema_ramps_its_decay_and_round_trips():
    from cnnlab.train.optim import ModelEMA

    net = nn.Sequential(nn.Linear(2, 2), nn.BatchNorm1d(2))
    ema = ModelEMA(net, decay=0.5)
    start = net[0].weight.detach().clone()
    with torch.no_grad():
        net[0].weight.add_(1.0)
    net[1].num_batches_tracked += 7
    ema.update(net)          # t=1: min(0.5, 2/11): weighs the new weights 9/11
    torch.testing.assert_close(ema.module[0].weight, start + 9 / 11)
    assert int(ema.module[1].num_batches_tracked) == 7 and ema.module[0].weight.grad is None
    for _ in range(20):      # later the decay is the configured 0.5: it converges fast
        ema.update(net)
    torch.testing.assert_close(ema.module[0].weight, net[0].weight, atol=1e-5, rtol=0)
    other = ModelEMA(nn.Sequential(nn.Linear(2, 2), nn.BatchNorm1d(2)), 0.5)
    other.load_state_dict(ema.state_dict())
    assert other.updates == 21 and torch.equal(other.module[0].weight, ema.module[0].weight)
