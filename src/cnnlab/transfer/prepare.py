"""Turn a strategy name into a ready model, optimiser parameter groups and training callbacks.

Strategies (CS231n "Transfer Learning"; Howard & Ruder 2018 for "gradual"):

- ``linear-probe``: everything frozen but the new classifier (a linear classifier on the top
  features, trained by SGD instead of on an .npz).
- ``top-k-layers``: the top `top_k` layer groups train (2: ResNet's stage4 + fc, VGG's fc6/fc7 +
  fc8), the rest is frozen.
- ``full``: every group trains, the backbone at ``lr_mult`` (e.g. ``{"backbone": 0.1}``).
- ``gradual``: the classifier first, one more group from the top every `unfreeze_every` epochs,
  each at a ULMFiT-style discriminative rate unless ``lr_mult`` says otherwise.
- ``auto``: :func:`cnnlab.transfer.recommend` picks one from `n_images` and `similarity`.

The result plugs into cnnlab.train: pass ``param_groups`` to the optimiser instead of
``model.parameters()``, and ``callbacks`` to ``fit`` (gradual unfreezing needs its hook).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from torch import nn

from cnnlab.errors import ConfigError
from cnnlab.transfer.freeze import freeze_all_but, freeze_bn as _freeze_bn
from cnnlab.transfer.groups import LayerGroups, layer_groups
from cnnlab.transfer.lr import GradualUnfreezing, discriminative_param_groups, layerwise_decay
from cnnlab.transfer.recommend import STRATEGIES, Recommendation, recommend


@dataclass
class Prepared:
    """What :func:`prepare` made: the model, optimiser groups, callbacks and what it decided."""

    model: nn.Module
    param_groups: list[dict]
    callbacks: list = field(default_factory=list)
    strategy: str = ""
    groups: LayerGroups | None = None
    trainable: list[str] = field(default_factory=list)   # groups training at the start
    recommendation: Recommendation | None = None

    def __iter__(self):  # model, param_groups, callbacks = prepare(...)
        return iter((self.model, self.param_groups, self.callbacks))


def prepare(model: nn.Module, strategy: str = "full", *, num_classes: int | None = None,
            lr: float = 0.01, lr_mult: dict | None = None, freeze_bn: bool = False,
            top_k: int = 2, unfreeze_every: int = 1, weight_decay: float = 0.0,
            n_images: int | None = None, similarity="similar") -> Prepared:
    """Set up `model` for fine-tuning with `strategy` (CS231n transfer-learning notes).

    `num_classes` replaces the classifier through ``reset_classifier`` (always fresh, even at
    the same size, since the old head scores the old classes). `freeze_bn` holds every
    BatchNorm layer in eval mode with its statistics and affine parameters fixed.
    """
    rec = None
    if strategy == "auto":
        if n_images is None:
            raise ConfigError("strategy 'auto' needs the number of training images (n_images)")
        rec = recommend(n_images, similarity)
        strategy = rec.strategy
        top_k = rec.top_k or top_k
        lr_mult = lr_mult if lr_mult is not None else rec.lr_mult
    if strategy not in STRATEGIES:
        raise ConfigError(f"unknown strategy {strategy!r}; choose auto or one of "
                          f"{', '.join(STRATEGIES)}")
    if num_classes is not None:
        model.reset_classifier(num_classes)
    groups = layer_groups(model)
    for p in model.parameters():
        p.requires_grad_(True)
    if freeze_bn:
        _freeze_bn(model)
    callbacks: list = []
    mults = dict(lr_mult or {})
    include_frozen = False
    if strategy == "linear-probe":
        # BN frozen too: a linear classifier on fixed features, so the features must not drift
        # with the target data's batch statistics
        freeze_all_but(model, ["classifier"], bn=True, groups=groups)
    elif strategy == "top-k-layers":
        if not 1 <= top_k <= len(groups):
            raise ConfigError(f"top_k must be between 1 and {len(groups)} for this model "
                              f"({', '.join(groups)}); got {top_k}")
        freeze_all_but(model, groups.top(top_k), bn=freeze_bn, groups=groups)
    elif strategy == "gradual":
        if not mults:
            mults = layerwise_decay(groups)
        callbacks.append(GradualUnfreezing(model, unfreeze_every, freeze_bn, groups=groups))
        include_frozen = True
    param_groups = discriminative_param_groups(model, lr, mults, weight_decay=weight_decay,
                                               include_frozen=include_frozen, groups=groups)
    params = dict(model.named_parameters())
    trainable = [n for n, g in groups.items() if any(params[p].requires_grad for p in g.params)]
    return Prepared(model, param_groups, callbacks, strategy, groups, trainable, rec)
