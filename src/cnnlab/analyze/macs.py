"""Multiply-accumulate counts (MACs), read off the ATen ops a forward pass actually runs.

Counting at the ATen level (a TorchDispatchMode) sees every convolution and matrix product wherever
it happens: inside nn.Conv2d, in a functional call in some ``forward``, or inside a composite such
as nn.MultiheadAttention. The convention is the one behind the published figures (AlexNet 0.71G,
VGG-16 15.47G, ResNet-50 4.09G, ...): one MAC per multiply-add of a conv, fully-connected layer or
matrix product; biases, normalisation, activations, pooling and additions are not counted (they
add well under 1% for these networks).
"""

from __future__ import annotations

import math

import torch
from torch.utils._python_dispatch import TorchDispatchMode

aten = torch.ops.aten


def _numel(shape) -> int:
    return math.prod(int(s) for s in shape)


def conv_macs(input_shape, weight_shape, output_shape, transposed: bool = False) -> int:
    """MACs of a convolution: Cout * (Cin / groups) * prod(kernel) * prod(output spatial) * N.

    ``weight_shape[1:]`` is (Cin / groups, *kernel) for a conv, so each output element costs that
    many MACs; a transposed conv's weight is (Cin, Cout / groups, *kernel), so each *input* element
    is scattered over ``prod(weight_shape[1:])`` outputs.
    """
    per = _numel(weight_shape[1:])
    return (_numel(input_shape) if transposed else _numel(output_shape)) * per


def _shape(t):
    return tuple(t.shape)


def aten_macs(func, args, out) -> int:
    """MACs of one ATen op call (0 for ops that are not convolutions or matrix products)."""
    packet = func.overloadpacket
    if packet in (aten.convolution, aten._convolution):
        return conv_macs(_shape(args[0]), _shape(args[1]), _shape(out), transposed=bool(args[6]))
    if packet in (aten.mm, aten.bmm, aten.matmul):
        return _numel(_shape(out)) * int(args[0].shape[-1])
    if packet in (aten.addmm, aten.baddbmm):
        return _numel(_shape(out)) * int(args[1].shape[-1])
    if packet is aten.addbmm:           # sums a batch of products into one matrix
        return _numel(_shape(out)) * int(args[1].shape[0]) * int(args[1].shape[-1])
    if packet is aten.mv:
        return _numel(_shape(out)) * int(args[0].shape[-1])
    if packet is aten.addmv:
        return _numel(_shape(out)) * int(args[1].shape[-1])
    if packet in (aten.dot, aten.vdot):
        return int(args[0].numel())
    if packet in _SDPA:
        # q (..., L, E), k (..., S, E), v (..., S, Ev): Q K^T then softmax(.) V
        q, k, v = args[0], args[1], args[2]
        batch = _numel(q.shape[:-2])
        n_q, e, n_k, e_v = int(q.shape[-2]), int(q.shape[-1]), int(k.shape[-2]), int(v.shape[-1])
        return batch * n_q * n_k * (e + e_v)
    return 0


_SDPA = tuple(
    getattr(aten, n) for n in (
        "_scaled_dot_product_attention_math",
        "_scaled_dot_product_flash_attention",
        "_scaled_dot_product_flash_attention_for_cpu",
        "_scaled_dot_product_efficient_attention",
        "_scaled_dot_product_cudnn_attention",
    ) if hasattr(aten, n)
)


class MacCounter(TorchDispatchMode):
    """Adds the MACs of every ATen op run under it to ``on_macs(n)`` (a callback)."""

    def __init__(self, on_macs):
        super().__init__()
        self.on_macs = on_macs

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        n = aten_macs(func, args, out[0] if isinstance(out, (tuple, list)) else out)
        if n:
            self.on_macs(n)
        return out
