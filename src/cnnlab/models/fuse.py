"""Inference transforms: fold BatchNorm into the convolution before it, and a fast eval path.

In eval mode a BatchNorm is a fixed per-channel affine map (Ioffe & Szegedy 2015, sec. 3.1), so
``bn(conv(x))`` equals one convolution with rescaled weights and a new bias; the arithmetic is
:func:`torch.nn.utils.fusion.fuse_conv_bn_weights`. Which pairs fold:

- a ``Conv2d`` directly followed by a ``BatchNorm2d`` inside a plain ``nn.Sequential`` (VGG-BN's
  ``features``, ResNet's ``downsample``, MobileNetV2's ``ConvBNReLU``, DenseNet's ``conv0``/
  ``norm0`` stem);
- sibling children named ``conv``/``bn`` or ``convK``/``bnK`` (ResNet and CIFAR blocks and
  stems, SE-ResNets, Inception's ``BasicConv2d``). This relies on the zoo's (and torchvision's)
  convention that such a ``bnK`` is applied to ``convK``'s output and nothing else reads it.

Pre-activation BatchNorm (DenseNet's BN-ReLU-conv layers and transitions, its final ``norm5``)
is left alone: a ReLU sits between it and the next conv, and the conv before it feeds a
concatenation, so no conv computes exactly what it normalises. Neither is a BatchNorm without
running statistics (``track_running_stats=False`` normalises by each batch's own).
"""

from __future__ import annotations

import contextlib
import copy
import warnings

import torch
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_weights

from cnnlab.errors import ConfigError

PRECISIONS = ("auto", "32", "bf16", "16")
_DTYPES = {"bf16": torch.bfloat16, "16": torch.float16}


def _foldable(conv: nn.Module, bn: nn.Module) -> bool:
    # exactly Conv2d: a subclass may change its forward (weight standardisation, masks)
    return (type(conv) is nn.Conv2d and isinstance(bn, nn.BatchNorm2d)
            and bn.running_mean is not None and bn.num_features == conv.out_channels)


def _fold_pair(parent: nn.Module, conv_name: str, bn_name: str) -> None:
    conv, bn = getattr(parent, conv_name), getattr(parent, bn_name)
    # the conv belongs to our copy, so its weights are replaced in place rather than copied again
    conv.weight, conv.bias = fuse_conv_bn_weights(conv.weight, conv.bias, bn.running_mean,
                                                  bn.running_var, bn.eps, bn.weight, bn.bias)
    setattr(parent, bn_name, nn.Identity())


def fold_batchnorm(model: nn.Module) -> nn.Module:
    """An eval-mode copy of `model` with each foldable BatchNorm merged into its conv.

    The copy computes the same function as ``model.eval()`` (up to float rounding); folded
    BatchNorms become ``nn.Identity``, so its state dict has fewer keys. `model` itself, its
    training flag and its state-dict layout are left untouched. See the module docstring for
    which pairs fold.
    """
    folded = copy.deepcopy(model).eval()
    for parent in list(folded.modules()):
        children = dict(parent.named_children())
        # only Sequential's own forward guarantees that the next child reads this one's output
        if type(parent).forward is nn.Sequential.forward:
            names = list(children)
            for a, b in zip(names, names[1:]):
                if _foldable(children[a], children[b]):
                    _fold_pair(parent, a, b)
            continue
        for name, conv in children.items():
            bn_name = "bn" + name[len("conv"):]
            if name.startswith("conv") and _foldable(conv, children.get(bn_name)):
                _fold_pair(parent, name, bn_name)
    return folded


def model_device(model: nn.Module) -> torch.device:
    """The device of `model`'s first parameter or buffer (CPU for a model with neither)."""
    for t in (*model.parameters(), *model.buffers()):
        return t.device
    return torch.device("cpu")


def inference_precision(precision: str, device: torch.device) -> str:
    """"auto" -> the fastest autocast dtype that is native on `device`, else "32".

    bf16 where the trainer's :func:`cnnlab.train.loop.bf16_supported` says it is fast (CUDA with
    bf16, AVX-512 CPUs; an AVX2 CPU emulates it at a fraction of fp32 speed). fp16 ("16") on
    CUDA GPUs without bf16 but with tensor cores (Volta, Turing), and on Apple's MPS, which has
    no bf16 autocast in most torch releases but runs fp16 natively. Explicit values pass
    through after a check.
    """
    from cnnlab.train.loop import bf16_supported

    if precision not in PRECISIONS:
        raise ConfigError(f"precision must be one of {PRECISIONS}; got {precision!r}")
    if precision != "auto":
        return precision
    if bf16_supported(device):
        return "bf16"
    if device.type == "cuda":
        return "16" if torch.cuda.get_device_capability(device) >= (7, 0) else "32"
    if device.type == "mps":
        # older releases reject autocast on MPS with an error, some only warn and disable it
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            try:
                with torch.autocast("mps", dtype=torch.float16):
                    pass
            except (RuntimeError, ValueError, UserWarning):
                return "32"
        return "16"
    return "32"


class InferenceModel(nn.Module):
    """A prepared model: inputs moved to its device and layout, run under inference mode.

    Outputs are float32 whatever the autocast dtype, so callers need no precision branches.
    Made by :func:`prepare_for_inference`; for evaluation only (no autograd graph is kept).
    """

    def __init__(self, model: nn.Module, precision: str, channels_last: bool) -> None:
        super().__init__()
        self.model = model
        self.precision = precision
        self.channels_last = channels_last

    @property
    def device(self) -> torch.device:
        return model_device(self.model)   # follows a later .to(), unlike a stored value

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        fmt = torch.channels_last if self.channels_last and x.dim() == 4 \
            else torch.contiguous_format
        device = self.device
        x = x.to(device, memory_format=fmt)
        dtype = _DTYPES.get(self.precision)
        amp = torch.autocast(device.type, dtype=dtype) if dtype \
            else contextlib.nullcontext()
        with torch.inference_mode(), amp:
            out = self.model(x)
        return out.float() if isinstance(out, torch.Tensor) else out

    def extra_repr(self) -> str:
        return (f"device={self.device}, precision={self.precision}, "
                f"channels_last={self.channels_last}")


def prepare_for_inference(model: nn.Module, device: str | torch.device | None = None,
                          precision: str = "auto", channels_last: bool | None = None
                          ) -> InferenceModel:
    """`model` made fast for evaluation: BatchNorm folded, eval mode, best layout and dtype.

    Works on a copy (see :func:`fold_batchnorm`); `model` is not changed. `device` None keeps
    the model's own device; "auto" picks CUDA when there is one. `precision`: "auto" (see :func:`inference_precision`), "32", "bf16"
    or "16" (fp16 autocast). `channels_last` None: on for conv nets on CPU and CUDA, where
    oneDNN and cuDNN run NHWC convolutions without layout reorders; off on MPS, whose kernels
    are NCHW-first and would convert back on every layer.
    """
    from cnnlab.train.loop import use_channels_last
    from cnnlab.train.run import resolve_device   # "auto", and a clear error for a missing GPU

    device = model_device(model) if device is None else resolve_device(str(device))
    precision = inference_precision(precision, device)
    if channels_last is None and device.type not in ("cpu", "cuda"):
        channels_last = False
    cl = use_channels_last(channels_last, model)
    fast = fold_batchnorm(model).to(device)
    if cl:
        fast = fast.to(memory_format=torch.channels_last)
    fast.requires_grad_(False)
    return InferenceModel(fast, precision, cl)
