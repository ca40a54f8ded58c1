"""Receptive field and effective stride ("jump"), propagated op by op through any network.

Araujo, Norris & Sim, "Computing Receptive Fields of Convolutional Neural Networks", Distill 2019.
Every activation tensor carries a :class:`Field`: the receptive field ``rf`` of one of its units
(in input pixels) and its ``jump``, the distance in input pixels between two neighbouring units.
An op with kernel ``k``, stride ``s`` and dilation ``d`` gives

    rf_out = rf + (k - 1) * d * jump        jump_out = jump * s

Convention (the article's "theoretical" receptive field): we report the field of the layer's
*output* unit, padding included, so it may exceed the image. Where paths merge (the residual ``+``,
``torch.cat`` of Inception branches, any op with several activation inputs) we take the maximum over
the inputs, which is the field of the widest path. Ops that mix every position of the grid (global
pooling, a fully-connected layer on a flattened map, a mean over H and W) grow the field by the
whole grid: ``rf + (grid - 1) * jump``, so an FC unit's field is that of the full feature map.
Attention over flattened positions counts as such a global op.

Numbers this gives for the zoo, at the last spatial feature map (``Summary.feature_rf``):

* AlexNet 195 and VGG-16 212, jump 32, as in Araujo et al. Both are the output of the last max-pool
  (pool5); the last *conv* of VGG-16 (conv5_3) has 196.
* ResNet-50 427, jump 32, at the output of layer4, where Araujo et al. list 483. Same depth and
  total stride; what differs is where each stage's stride-2 sits. Ours (torchvision's, "v1.5")
  puts it on the 3x3 conv of a stage's first unit, so that 3x3 still runs at the previous, finer
  jump and adds half as much. In their network, TF-slim's resnet_v1_50 (stride on the last unit of
  stages 1-3), and in the paper's layout (stride on the first unit's 1x1), every 3x3 of a stage
  runs at that stage's jump: 8 + 16 + 32 = 56 px more, 483 (tests/analyze/test_summary.py builds
  all three). Stride convention: the jump is the product of all strides so far, in input pixels.
* Inception-v3 (torchvision layout) at 299x299: 1,311, jump 32, at Mixed_7c, as in Araujo et al.
  (the maximum over every branch path, their convention too).

Only 2-D ops (conv2d, max/avg/lp/adaptive pools) change the field; 1-D and 3-D ops pass it through
unchanged, and so does any op we do not know (elementwise, normalisation, reshapes, padding).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence


def _num(x: float):
    """An int when the value is integral (jumps are integers in every classic CNN)."""
    return int(x) if float(x).is_integer() else float(x)


@dataclass(frozen=True)
class Field:
    """Receptive field, jump and spatial grid (H, W) of one activation tensor's units."""

    rf: tuple = (1, 1)
    jump: tuple = (1, 1)
    grid: tuple = (1, 1)   # size of the last 4-D map this tensor came from; used by global ops


def input_field(height: int, width: int) -> Field:
    """The field of the input image: one pixel per unit, jump 1."""
    return Field((1, 1), (1, 1), (height, width))


def _pair(v, default=None) -> tuple:
    if v is None or (isinstance(v, (list, tuple)) and len(v) == 0):
        v = default
    if isinstance(v, (list, tuple)):
        return (v[0], v[1]) if len(v) >= 2 else (v[0], v[0])
    return (v, v)


def _grid_of(shape: Sequence[int], fallback: tuple) -> tuple:
    return (int(shape[-2]), int(shape[-1])) if len(shape) == 4 else fallback


def merge(fields: Sequence[Field], out_shape: Sequence[int]) -> Field:
    """Several paths meet (``+``, ``cat``, elementwise ops): the widest path wins."""
    rf = tuple(max(f.rf[i] for f in fields) for i in range(2))
    jump = tuple(max(f.jump[i] for f in fields) for i in range(2))
    grid = tuple(max(f.grid[i] for f in fields) for i in range(2))
    return Field(rf, jump, _grid_of(out_shape, grid))


def window(f: Field, kernel, stride, dilation, out_shape: Sequence[int]) -> Field:
    """A sliding window (conv or pool) with kernel, stride and dilation per axis (H, W)."""
    k, s, d = _pair(kernel), _pair(stride, kernel), _pair(dilation, 1)
    rf = tuple(_num(f.rf[i] + (k[i] - 1) * d[i] * f.jump[i]) for i in range(2))
    jump = tuple(_num(f.jump[i] * s[i]) for i in range(2))
    return Field(rf, jump, _grid_of(out_shape, f.grid))


def transposed(f: Field, kernel, stride, dilation, out_shape: Sequence[int]) -> Field:
    """A transposed conv: the jump shrinks by the stride; each output unit sees
    ``floor((k - 1) * d / s)`` extra input units."""
    k, s, d = _pair(kernel), _pair(stride, 1), _pair(dilation, 1)
    rf = tuple(_num(f.rf[i] + ((k[i] - 1) * d[i] // s[i]) * f.jump[i]) for i in range(2))
    jump = tuple(_num(f.jump[i] / s[i]) for i in range(2))
    return Field(rf, jump, _grid_of(out_shape, f.grid))


def adaptive(f: Field, in_hw: tuple, out_hw: tuple, out_shape: Sequence[int]) -> Field:
    """Adaptive pooling: bins of varying size; the field uses the largest bin and the mean stride."""
    rf, jump = [], []
    for i in range(2):
        n, o = int(in_hw[i]), int(out_hw[i])
        # PyTorch's bins: [floor(j*n/o), ceil((j+1)*n/o)) for output index j
        k = max(math.ceil((j + 1) * n / o) - (j * n) // o for j in range(o)) if o else n
        rf.append(_num(f.rf[i] + (k - 1) * f.jump[i]))
        jump.append(_num(f.jump[i] * (n / o if o else 1)))
    return Field(tuple(rf), tuple(jump), _grid_of(out_shape, f.grid))


def global_(f: Field, axes=(0, 1)) -> Field:
    """An op that mixes every grid position along `axes` (0: H, 1: W)."""
    rf = tuple(_num(f.rf[i] + (f.grid[i] - 1) * f.jump[i]) if i in axes else f.rf[i] for i in range(2))
    grid = tuple(1 if i in axes else f.grid[i] for i in range(2))
    return Field(rf, f.jump, grid)


# --- op rules: function-level names as a TorchFunctionMode sees them ------------------------------

def _arg(args, kwargs, pos: int, name: str, default=None):
    if name in kwargs:
        return kwargs[name]
    return args[pos] if len(args) > pos else default


_REDUCTIONS = {"mean", "sum", "amax", "amin", "max", "min", "std", "var", "logsumexp", "nanmean",
               "nansum", "prod"}
_ATTENTION = {"multi_head_attention_forward", "scaled_dot_product_attention"}
_MATMULS = {"linear", "matmul", "__matmul__", "mm", "bmm", "addmm", "baddbmm", "einsum"}


def propagate(name: str, args, kwargs, out_shape: Sequence[int], fields: Sequence[Field],
              in_shape: Sequence[int] | None) -> Field:
    """The field of an op's output, given the op name, its arguments and its inputs' fields.

    `fields` are those of the activation inputs, first positional input first; `in_shape` is the
    first activation input's shape.
    """
    f0 = fields[0]
    spatial_in = in_shape is not None and len(in_shape) == 4
    if name in {"conv2d", "max_pool2d", "max_pool2d_with_indices"} and spatial_in:
        if name == "conv2d":
            weight = args[1] if len(args) > 1 else kwargs["weight"]
            kernel = tuple(weight.shape[-2:])
            stride, dilation = _arg(args, kwargs, 3, "stride", 1), _arg(args, kwargs, 5, "dilation", 1)
        else:
            kernel = _arg(args, kwargs, 1, "kernel_size")
            stride, dilation = _arg(args, kwargs, 2, "stride"), _arg(args, kwargs, 4, "dilation", 1)
        return window(f0, kernel, stride, dilation, out_shape)
    if name == "avg_pool2d" and spatial_in:
        kernel = _arg(args, kwargs, 1, "kernel_size")
        return window(f0, kernel, _arg(args, kwargs, 2, "stride"), 1, out_shape)
    if name == "lp_pool2d" and spatial_in:
        kernel = _arg(args, kwargs, 2, "kernel_size")
        return window(f0, kernel, _arg(args, kwargs, 3, "stride"), 1, out_shape)
    if name == "conv_transpose2d" and spatial_in:
        weight = args[1] if len(args) > 1 else kwargs["weight"]
        return transposed(f0, tuple(weight.shape[-2:]), _arg(args, kwargs, 3, "stride", 1),
                          _arg(args, kwargs, 7, "dilation", 1), out_shape)
    if name.startswith("adaptive_") and "pool2d" in name and spatial_in and len(out_shape) == 4:
        return adaptive(f0, in_shape[-2:], out_shape[-2:], out_shape)
    if name in _ATTENTION:
        return global_(merge(fields, out_shape))
    if name in _MATMULS and in_shape is not None and len(in_shape) != 4:
        # An FC layer on a flattened map (or on pooled features: a 1x1 grid, no growth).
        return global_(merge(fields, out_shape))
    if name in _REDUCTIONS and spatial_in:
        dims = _arg(args, kwargs, 1, "dim")
        if dims is None:  # a full reduction
            dims = (2, 3)
        if isinstance(dims, int):
            dims = (dims,)
        try:
            axes = tuple(sorted({d % 4 - 2 for d in dims if d % 4 >= 2}))
        except TypeError:  # named dims or something exotic: leave the field alone
            axes = ()
        if axes:
            return global_(f0, axes)
    return merge(fields, out_shape)
