"""What a layer has learned to look for, read straight from its weights or its output maps.

The first layer's kernels live in pixel space and can be shown as images (Krizhevsky et al. 2012,
Fig. 3; Zeiler & Fergus 2014, Fig. 6); deeper kernels cannot, so for those layers one shows the
feature maps a given image produces (Zeiler & Fergus 2014; Yosinski et al. 2015).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from cnnlab.errors import ConfigError
from cnnlab.visualize.hooks import (capture, default_layer, eval_mode, find_layer, prepare,
                                    relu_rule, to_unit)


def filter_tiles(model: nn.Module, layer: str | None = None, max_tiles: int = 256) -> np.ndarray:
    """A conv layer's kernels as image tiles in [0, 1] (Krizhevsky et al. 2012, Fig. 3).

    3 input channels: one RGB tile per filter, (K, kh, kw, 3). Otherwise one grey tile per
    (filter, input channel) pair, (K * C_in, kh, kw, 1), at most `max_tiles`. All tiles share
    one min-max scale, so weak filters look weak, as in the papers' figures. `layer` defaults
    to the first convolution.
    """
    layer = layer or default_layer(model, "first")
    w = getattr(find_layer(model, layer), "weight", None)
    if not isinstance(w, torch.Tensor) or w.dim() != 4:
        raise ConfigError(f"layer {layer!r} has no 4-D conv kernel to show; pick a convolution "
                          f"(the first one, {default_layer(model, 'first')!r}, is the default)")
    w = w.detach().float().cpu()                          # (K, C_in, kh, kw)
    k, c, kh, kw = w.shape
    if c == 3:
        tiles = w.permute(0, 2, 3, 1)                     # (K, kh, kw, 3)
    else:
        tiles = w.reshape(k * c, kh, kw, 1)               # (K * C_in, kh, kw, 1)
    return to_unit(tiles[:max_tiles])


def feature_maps(model: nn.Module, image, layer: str | None = None, max_maps: int = 64,
                 **prepare_kw) -> np.ndarray:
    """The output maps of `layer` for one image, (C, h, w) in [0, 1] on one joint scale
    (Zeiler & Fergus 2014); at most `max_maps`. `layer` defaults to the first convolution."""
    layer = layer or default_layer(model, "first")
    x, _ = prepare(image, model, **prepare_kw)
    with eval_mode(model), relu_rule(model), capture(model, layer) as store, torch.no_grad():
        model(x)
    out = store.get("out")
    if out is None or out.dim() != 4:
        shape = None if out is None else tuple(out.shape)
        raise ConfigError(f"layer {layer!r} gave no spatial (N, C, H, W) output (got {shape}); "
                          "pick a convolution or pooling layer")
    return to_unit(out[0, :max_maps])
