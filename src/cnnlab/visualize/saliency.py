"""Gradient maps of a class score with respect to the input pixels.

- ``"vanilla"``: Simonyan, Vedaldi & Zisserman 2014, "Deep Inside Convolutional Networks", sec. 3:
  the image-specific saliency is ``max over channels |d S_c / d x|``.
- ``"guided"``: Springenberg et al. 2015, "Striving for Simplicity" (guided backpropagation): every
  ReLU passes a gradient back only where both its forward input and the gradient are positive.
- ``"deconv"``: Zeiler & Fergus 2014, "Visualizing and Understanding Convolutional Networks": the
  deconvnet projection, i.e. a backward pass in which each ReLU rectifies the gradient itself and
  ignores the forward mask; max-pool switches are those of the forward pass, as autograd keeps them.

The score is the class logit (pre-softmax), as in Simonyan et al.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from cnnlab.visualize.hooks import eval_mode, predicted_or, prepare, relu_rule, to_unit

METHODS = ("vanilla", "guided", "deconv")


def input_gradient(model: nn.Module, x: torch.Tensor, target: int | None = None,
                   method: str = "vanilla") -> tuple[torch.Tensor, int]:
    """``(d logit_target / d x of shape (C, H, W), target)`` under the ReLU rule of `method`
    (Simonyan et al. 2014; Springenberg et al. 2015; Zeiler & Fergus 2014)."""
    x = x.detach().clone().requires_grad_(True)
    with eval_mode(model), relu_rule(model, method), torch.enable_grad():
        logits = model(x)
        target = predicted_or(model, logits, target)
        # autograd.grad, not backward(): the parameters' .grad (a training run's) stay untouched
        (grad,) = torch.autograd.grad(logits[0, target], x)
    return grad[0].detach(), target


def saliency(model: nn.Module, image, target: int | None = None, method: str = "vanilla",
             normalize: bool = True, **prepare_kw) -> np.ndarray:
    """(H, W) saliency: max over channels of |gradient| (Simonyan et al. 2014, sec. 3.1), in [0, 1]
    when `normalize`; `method` picks the ReLU rule ("vanilla", "guided" or "deconv")."""
    x, _ = prepare(image, model, **prepare_kw)
    grad, _ = input_gradient(model, x, target, method)
    return saliency_from_gradient(grad, normalize)


def saliency_from_gradient(grad: torch.Tensor, normalize: bool = True) -> np.ndarray:
    """(C, H, W) input gradient -> (H, W) map: max over channels of |grad| (Simonyan et al.
    2014, sec. 3.1), scaled to [0, 1] when `normalize`."""
    heat = grad.detach().abs().amax(0).cpu().numpy().astype(np.float32)   # (H, W)
    return to_unit(heat) if normalize else heat


def gradient_image(grad: torch.Tensor) -> np.ndarray:
    """A signed (C, H, W) gradient as a picture, uint8 (H, W, C): zero is mid-grey and the
    largest magnitude reaches 0 or 255, the usual way to show guided backprop / deconv maps."""
    g = grad.detach().cpu().float()
    scale = float(g.abs().max()) or 1.0
    img = (g / scale * 0.5 + 0.5).clamp(0, 1).permute(1, 2, 0).numpy()
    return (img * 255).round().astype(np.uint8)
