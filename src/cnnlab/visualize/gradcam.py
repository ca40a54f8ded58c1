"""Grad-CAM (Selvaraju et al. 2017, "Grad-CAM: Visual Explanations from Deep Networks via
Gradient-based Localization", eq. 1-2): weight each channel of a conv layer's map by the spatial
mean of the class score's gradient, sum the channels, keep the positive part and upsample.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from cnnlab.errors import ConfigError
from cnnlab.visualize.hooks import (capture, default_layer, eval_mode, predicted_or, prepare,
                                    relu_rule, to_unit)


def gradcam_map(model: nn.Module, x: torch.Tensor, target: int | None = None,
                layer: str | None = None) -> tuple[torch.Tensor, int]:
    """``(cam (h, w) >= 0 at the layer's resolution, target)`` (Selvaraju et al. 2017, eq. 1-2);
    `layer` defaults to the last convolution."""
    layer = layer or default_layer(model, "last")
    x = x.detach()
    with eval_mode(model), relu_rule(model, "vanilla"), capture(model, layer) as store, \
            torch.enable_grad():
        # x requires grad so the layer's output does even when the parameters are frozen.
        logits = model(x.clone().requires_grad_(True))
        target = predicted_or(model, logits, target)
        acts = store["out"]                              # (1, K, h, w)
        if acts.dim() != 4 or not acts.requires_grad:
            raise ConfigError(f"Grad-CAM needs a layer with a spatial (N, C, H, W) output that "
                              f"the score depends on; {layer!r} gave shape "
                              f"{tuple(acts.shape)}. Try a convolution (the default is the "
                              "last one).")
        # autograd.grad, not backward(): the parameters' .grad stay untouched
        (grads,) = torch.autograd.grad(logits[0, target], acts, allow_unused=True)
    if grads is None:
        grads = torch.zeros_like(acts)                   # the score does not depend on the layer
    alpha = grads.mean(dim=(2, 3), keepdim=True)         # eq. 1: global-average-pooled gradients
    cam = F.relu((alpha * acts.detach()).sum(1))[0]     # eq. 2: ReLU of the weighted sum, (h, w)
    return cam, target


def gradcam(model: nn.Module, image, target: int | None = None, layer: str | None = None,
            **prepare_kw) -> np.ndarray:
    """(H, W) Grad-CAM heat-map in [0, 1] at the input's size (Selvaraju et al. 2017)."""
    x, _ = prepare(image, model, **prepare_kw)
    cam, _ = gradcam_map(model, x, target, layer)
    up = F.interpolate(cam[None, None], size=x.shape[-2:], mode="bilinear", align_corners=False)
    return to_unit(up[0, 0])
