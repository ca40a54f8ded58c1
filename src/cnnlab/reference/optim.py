"""NumPy reference optimiser updates: ``update(w, dw, state, **hyper) -> (w_new, state)``, one function each.

``state`` is a dict the function creates on the first step (pass None) and returns for the next;
neither ``w`` nor the old state is changed in place. The formulas are the course's (CS231n,
"Parameter updates"). Where torch.optim writes a method differently, the docstring shows the two
are the same update; the tests step both on the same float64 tensors. Defaults are torch's.
"""

from __future__ import annotations

import numpy as np


def sgd(w, dw, state=None, *, lr):
    """Vanilla (stochastic) gradient descent: w -= lr * dw (Robbins & Monro 1951)."""
    return w - lr * dw, {} if state is None else state


def momentum(w, dw, state=None, *, lr, mu=0.9):
    """SGD with momentum (Polyak 1964), the course's form: v = mu * v - lr * dw; w += v.

    torch.optim.SGD(momentum=mu) keeps b = mu * b + dw and steps w -= lr * b instead. With a
    constant lr and v = b = 0 at the start, v = -lr * b after every step, so the two agree.
    """
    v = np.zeros_like(w) if state is None else state["v"]
    v = mu * v - lr * dw
    return w + v, {"v": v}


def nesterov(w, dw, state=None, *, lr, mu=0.9):
    """Nesterov momentum (Nesterov 1983; Sutskever et al. 2013), the course's form in the shifted variable.

    v_prev = v; v = mu * v - lr * dw; w += -mu * v_prev + (1 + mu) * v. torch.optim.SGD(
    nesterov=True) keeps b = mu * b + dw and steps w -= lr * (dw + mu * b). With v = -lr * b,
    the course's step is v + mu * (v - v_prev) = -lr * (b + mu * (b - b_prev)) = -lr * (dw +
    mu * b), since b - mu * b_prev = dw: the same update.
    """
    v_prev = np.zeros_like(w) if state is None else state["v"]
    v = mu * v_prev - lr * dw
    return w - mu * v_prev + (1.0 + mu) * v, {"v": v}


def adagrad(w, dw, state=None, *, lr=1e-2, eps=1e-10):
    """AdaGrad (Duchi et al. 2011): cache += dw^2; w -= lr * dw / (sqrt(cache) + eps).

    Same as torch.optim.Adagrad with its defaults (lr_decay=0, initial_accumulator_value=0);
    eps=1e-10 is torch's default (the course suggests 1e-8 to 1e-4).
    """
    cache = (np.zeros_like(w) if state is None else state["cache"]) + dw * dw
    return w - lr * dw / (np.sqrt(cache) + eps), {"cache": cache}


def rmsprop(w, dw, state=None, *, lr=1e-2, decay_rate=0.99, eps=1e-8):
    """RMSProp (Tieleman & Hinton 2012, Lecture 6e), the course's form.

    cache = d * cache + (1 - d) * dw^2 with d = decay_rate; w -= lr * dw / (sqrt(cache) + eps).
    Same as torch.optim.RMSprop (alpha = decay_rate; centered=False, momentum=0), whose default
    alpha=0.99 is used here; the course's examples use 0.9 to 0.999.
    """
    cache = np.zeros_like(w) if state is None else state["cache"]
    cache = decay_rate * cache + (1.0 - decay_rate) * dw * dw
    return w - lr * dw / (np.sqrt(cache) + eps), {"cache": cache}


def adadelta(w, dw, state=None, *, lr=1.0, rho=0.9, eps=1e-6):
    """Adadelta (Zeiler 2012, Algorithm 1), with torch.optim.Adadelta's extra step size ``lr``.

    Not in the course's notes. The paper's update has no learning rate (lr=1, torch's default):
    E[g^2] = rho E[g^2] + (1-rho) g^2; dx = -sqrt(E[dx^2] + eps) / sqrt(E[g^2] + eps) * g;
    E[dx^2] = rho E[dx^2] + (1-rho) dx^2; w += lr * dx.
    """
    sq_grad = np.zeros_like(w) if state is None else state["sq_grad"]
    sq_delta = np.zeros_like(w) if state is None else state["sq_delta"]
    sq_grad = rho * sq_grad + (1.0 - rho) * dw * dw
    delta = np.sqrt(sq_delta + eps) / np.sqrt(sq_grad + eps) * dw
    sq_delta = rho * sq_delta + (1.0 - rho) * delta * delta
    return w - lr * delta, {"sq_grad": sq_grad, "sq_delta": sq_delta}


def adam(w, dw, state=None, *, lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8):
    """Adam with bias correction (Kingma & Ba 2015, Algorithm 1), the course's form.

    m = b1 m + (1-b1) dw; v = b2 v + (1-b2) dw^2; w -= lr * m_hat / (sqrt(v_hat) + eps) with
    m_hat = m / (1 - b1^t), v_hat = v / (1 - b2^t). torch.optim.Adam computes
    sqrt(v) / sqrt(1 - b2^t) + eps and divides lr by (1 - b1^t): the same numbers regrouped.
    """
    t = 1 if state is None else state["t"] + 1
    m = np.zeros_like(w) if state is None else state["m"]
    v = np.zeros_like(w) if state is None else state["v"]
    m = beta1 * m + (1.0 - beta1) * dw
    v = beta2 * v + (1.0 - beta2) * dw * dw
    m_hat = m / (1.0 - beta1**t)
    v_hat = v / (1.0 - beta2**t)
    return w - lr * m_hat / (np.sqrt(v_hat) + eps), {"m": m, "v": v, "t": t}


# Name -> update, for the trainer's --optimizer flag.
OPTIMIZERS = {
    "sgd": sgd,
    "momentum": momentum,
    "nesterov": nesterov,
    "adagrad": adagrad,
    "rmsprop": rmsprop,
    "adadelta": adadelta,
    "adam": adam,
}
