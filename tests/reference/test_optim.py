import inspect

import numpy as np
import pytest
import torch

from cnnlab.reference import optim

# (our update, our hyper-parameters, torch optimiser, its arguments for the same update)
CASES = {
    "sgd": (optim.sgd, dict(lr=0.1), torch.optim.SGD, dict(lr=0.1)),
    "momentum": (optim.momentum, dict(lr=0.1, mu=0.9), torch.optim.SGD, dict(lr=0.1, momentum=0.9)),
    "nesterov": (optim.nesterov, dict(lr=0.1, mu=0.8), torch.optim.SGD, dict(lr=0.1, momentum=0.8, nesterov=True)),
    "adagrad": (optim.adagrad, dict(lr=0.1, eps=1e-10), torch.optim.Adagrad, dict(lr=0.1, eps=1e-10)),
    "rmsprop": (optim.rmsprop, dict(lr=0.01, decay_rate=0.9, eps=1e-8), torch.optim.RMSprop,
                dict(lr=0.01, alpha=0.9, eps=1e-8)),
    "adadelta": (optim.adadelta, dict(lr=0.5, rho=0.95, eps=1e-6), torch.optim.Adadelta,
                 dict(lr=0.5, rho=0.95, eps=1e-6)),
    "adam": (optim.adam, dict(lr=0.01, beta1=0.8, beta2=0.99, eps=1e-8), torch.optim.Adam,
             dict(lr=0.01, betas=(0.8, 0.99), eps=1e-8)),
}


def run_both(update, ours, torch_cls, theirs, steps=6, seed=0):
    r = np.random.default_rng(seed)
    w0 = r.normal(size=(3, 4))
    grads = [r.normal(scale=s, size=w0.shape) for s in np.linspace(0.1, 2.0, steps)]
    p = torch.nn.Parameter(torch.tensor(w0))
    opt = torch_cls([p], **theirs)
    w, state, trail = w0, None, []
    for g in grads:
        w, state = update(w, g, state, **ours)
        p.grad = torch.tensor(g)
        opt.step()
        trail.append((w, p.detach().numpy().copy()))
    return w0, trail


@pytest.mark.parametrize("name", list(CASES))
def test_update_matches_torch_optim_step_by_step(name):
    w0, trail = run_both(*CASES[name])
    for step, (ours, theirs) in enumerate(trail, 1):
        np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-12, err_msg=f"{name}, step {step}")
    assert not np.allclose(trail[-1][0], w0)           # it moved


@pytest.mark.parametrize("name, torch_cls", [("adagrad", torch.optim.Adagrad), ("rmsprop", torch.optim.RMSprop),
                                             ("adadelta", torch.optim.Adadelta), ("adam", torch.optim.Adam)])
def test_defaults_are_torchs(name, torch_cls):
    _, trail = run_both(getattr(optim, name), {}, torch_cls, {})
    np.testing.assert_allclose(trail[-1][0], trail[-1][1], rtol=0, atol=1e-12)


def test_updates_leave_inputs_and_old_state_untouched():
    w, g = np.ones(3), np.full(3, 0.5)
    for update in optim.OPTIMIZERS.values():
        kw = {"lr": 0.1} if "lr" not in _defaults(update) else {}
        w1, s1 = update(w, g, None, **kw)
        frozen = {k: np.copy(v) for k, v in s1.items()}
        update(w1, g, s1, **kw)
        np.testing.assert_array_equal(w, np.ones(3))
        for k, v in frozen.items():
            np.testing.assert_array_equal(s1[k], v)


def _defaults(fn):
    return {k for k, p in inspect.signature(fn).parameters.items() if p.default is not inspect.Parameter.empty}


def test_momentum_course_velocity_is_minus_lr_times_torch_buffer():
    # The documented equivalence: v (course) = -lr * b (torch's momentum_buffer).
    lr, w, state = 0.05, np.zeros(2), None
    p = torch.nn.Parameter(torch.zeros(2, dtype=torch.float64))
    opt = torch.optim.SGD([p], lr=lr, momentum=0.9)
    for g in ([1.0, -2.0], [0.5, 0.5], [-1.0, 3.0]):
        w, state = optim.momentum(w, np.array(g), state, lr=lr, mu=0.9)
        p.grad = torch.tensor(g, dtype=torch.float64)
        opt.step()
    np.testing.assert_allclose(state["v"], -lr * opt.state[p]["momentum_buffer"].numpy(), atol=1e-15)


def test_adam_first_step_is_lr_times_sign():
    # Bias correction makes step 1 exactly lr * g / (|g| + eps): without it, m would be 10x too small.
    g = np.array([3.0, -0.2, 1e-3])
    w, _ = optim.adam(np.zeros(3), g, lr=0.01, eps=0.0)
    np.testing.assert_allclose(w, -0.01 * np.sign(g), rtol=1e-12)
