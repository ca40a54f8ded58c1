"""Freezing layer groups, with BatchNorm frozen or left to adapt.

A frozen parameter has ``requires_grad=False``: it gets no gradient, so no optimiser moves it
(SGD and Adam skip parameters whose ``.grad`` is None, weight decay included). BatchNorm has a
second kind of state, its running mean and variance, which training mode updates on every batch
even when the affine parameters are frozen. Freezing BN (``bn=True``) keeps a BN layer in eval
mode for its forward passes, so it normalises with the stored statistics and leaves them alone;
this is the usual choice with small target batches, where batch statistics are noisy.

The eval mode is enforced by a forward pre-hook on each frozen BN layer rather than by calling
``.eval()`` once, because a training loop calls ``model.train()`` at every epoch and would undo it.
"""

from __future__ import annotations

from typing import Iterable

from torch import nn

from cnnlab.errors import ConfigError
from cnnlab.transfer.groups import LayerGroups, layer_groups

def _bn_eval_hook(module: nn.Module, args) -> None:
    """Forward pre-hook: run this BN layer with its running statistics, never updating them."""
    module.training = False


def _check_names(groups: LayerGroups, names: Iterable[str]) -> list[str]:
    names = list(names)
    bad = [n for n in names if n not in groups]
    if bad:
        raise ConfigError(f"unknown layer group(s) {bad}; this model has {', '.join(groups)}")
    return names


def _bn_modules(model: nn.Module, params: set[str] | None) -> list[nn.Module]:
    """The BatchNorm layers whose parameters are in `params` (all of them when params is None)."""
    out = []
    for name, m in model.named_modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            own = {f"{name}.{p}" for p, _ in m.named_parameters(recurse=False)}
            if params is None or own & params:
                out.append(m)
    return out


def freeze_bn(model: nn.Module, modules: Iterable[nn.Module] | None = None) -> int:
    """Keep BatchNorm layers (all of `model`'s by default) in eval mode with no grad; the count."""
    bns = list(modules) if modules is not None else _bn_modules(model, None)
    for m in bns:
        for p in m.parameters(recurse=False):
            p.requires_grad_(False)
        if not is_bn_frozen(m):
            m.register_forward_pre_hook(_bn_eval_hook)
        m.eval()
    return len(bns)


def unfreeze_bn(model: nn.Module, modules: Iterable[nn.Module] | None = None) -> int:
    """Let BatchNorm layers train again (statistics and affine parameters); the count."""
    bns = list(modules) if modules is not None else _bn_modules(model, None)
    for m in bns:
        for key in [k for k, fn in m._forward_pre_hooks.items() if fn is _bn_eval_hook]:
            del m._forward_pre_hooks[key]
        for p in m.parameters(recurse=False):
            p.requires_grad_(True)
        m.train(model.training)
    return len(bns)


def is_bn_frozen(module: nn.Module) -> bool:
    """Whether :func:`freeze_bn` holds this BN layer in eval mode."""
    # Found by identity among the hooks (as attach_input_check does), so copies of the model
    # carry the state with them and nothing but the hook itself needs storing.
    return any(fn is _bn_eval_hook for fn in module._forward_pre_hooks.values())


def freeze(model: nn.Module, names: Iterable[str], *, bn: bool = False,
           groups: LayerGroups | None = None) -> list[str]:
    """Freeze the named layer groups (Yosinski et al. 2014: transfer the lower layers as they are).

    `bn=True` also holds their BatchNorm layers in eval mode. Returns the frozen parameter names.
    """
    groups = groups or layer_groups(model)
    names = _check_names(groups, names)
    params = dict(model.named_parameters())
    frozen = [p for n in names for p in groups[n].params]
    for p in frozen:
        params[p].requires_grad_(False)
    if bn:
        freeze_bn(model, _bn_modules(model, set(frozen)))
    return frozen


def unfreeze(model: nn.Module, names: Iterable[str], *, bn: bool = True,
             groups: LayerGroups | None = None) -> list[str]:
    """Make the named groups trainable again; `bn=True` also releases their BatchNorm layers.

    With ``bn=False`` their BN layers stay as they are (frozen BN stays frozen, its affine
    parameters included).
    """
    groups = groups or layer_groups(model)
    names = _check_names(groups, names)
    params = dict(model.named_parameters())
    chosen = [p for n in names for p in groups[n].params]
    held = {id(p) for m in _bn_modules(model, set(chosen)) if is_bn_frozen(m)
            for p in m.parameters(recurse=False)} if not bn else set()
    for p in chosen:
        if id(params[p]) not in held:
            params[p].requires_grad_(True)
    if bn:
        unfreeze_bn(model, _bn_modules(model, set(chosen)))
    return chosen


def freeze_all_but(model: nn.Module, keep: Iterable[str], *, bn: bool = False,
                   groups: LayerGroups | None = None) -> list[str]:
    """Freeze every group except `keep` (e.g. ``["classifier"]`` for a linear probe)."""
    groups = groups or layer_groups(model)
    keep = set(_check_names(groups, keep))
    return freeze(model, [n for n in groups if n not in keep], bn=bn, groups=groups)


def trainable_groups(model: nn.Module, groups: LayerGroups | None = None) -> list[str]:
    """Groups with at least one parameter that requires grad, bottom to top."""
    groups = groups or layer_groups(model)
    params = dict(model.named_parameters())
    return [n for n, g in groups.items() if any(params[p].requires_grad for p in g.params)]
