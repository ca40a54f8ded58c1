"""Per-layer architecture analysis: shapes, parameters, activation memory, MACs, receptive field.

One forward pass is traced, with no hand-kept table of layer types:

* forward hooks on every module give the rows: one row per call of a leaf module (one with no
  submodules), in the order the calls finish; a module called twice gets ``name#2``;
* a TorchFunctionMode sees every functional op (``+``, ``torch.cat``, ``F.relu``, ``flatten``...).
  Ops called directly in a container's ``forward`` (the residual ``+=``, DenseNet's ``cat``) get rows
  of their own, named after the container (``layer1.0.add_``); a parameter a container owns itself
  (a free projection matrix) is counted on the op row that first uses it. Each op also carries the
  receptive field and jump from its inputs to its output (see :mod:`cnnlab.analyze.receptive`);
* a TorchDispatchMode counts the MACs of every ATen convolution and matrix product
  (see :mod:`cnnlab.analyze.macs`).

Per-row MACs and activation counts are per image (batch size divided out), as in the papers and the
CS231n notes; the output shape shows the batch. A row whose output is its input, or a view of it
(in-place ReLU, eval-mode dropout, flatten), allocates nothing: it is marked and not counted again.

Activation totals, per image:

* ``activations``: the outputs of all rows, each allocation once (rows that reuse their input's
  memory are skipped); the forward's activation memory when every output is kept, as training does;
* ``conv_pool_fc_activations``: the CS231n convention (the VGG-16 "case study" table): the input
  plus the outputs of convolution, pooling and fully-connected layers only; ReLUs are in place and
  batch norm, dropout and the rest are not counted, nor is an adaptive pool that keeps the shape
  (torchvision's 7x7 pool after VGG's pool5). For VGG-16 this is 15,237,608 values = 61 MB in
  float32: exactly the sum of the course's per-layer lines. The course's total line ("24M * 4 bytes
  ~= 93MB") is not the sum of its own lines; no choice of layers we know of reproduces it.

The forward+backward memory estimate (for the whole batch) is ``params + gradients of trainable
params + input + 2 x activations`` (each kept activation gets a gradient of its size). It is an
estimate: autograd keeps what each op needs, optimisers add their own state.

The forward runs in eval mode (so batch norm works at batch size 1 and dropout is an identity) under
``torch.no_grad()``; the model's train/eval flags are restored afterwards and its parameters are
never modified. With ``device="meta"`` nothing is computed or allocated: shapes only, instantly.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from torch import nn
from torch.overrides import TorchFunctionMode
from torch.utils._pytree import tree_flatten

from cnnlab.analyze.macs import MacCounter
from cnnlab.analyze.receptive import Field, input_field, propagate
from cnnlab.errors import ConfigError, InputShapeError

_FIELD = "_cnnlab_field"          # attribute that carries a Field on each traced activation tensor

# Types the CS231n convention counts: the output of every CONV, POOL and FC layer.
_COURSE_MODULES = ("Conv", "Pool", "Linear")
_COURSE_OPS = ("conv", "pool", "linear")


@dataclass
class LayerRow:
    """One row of a summary: a module call or a functional op outside any leaf module."""

    name: str
    type: str
    kind: str                       # "module" or "op"
    input_shape: tuple[int, ...]    # of the first activation input
    output_shape: tuple[int, ...]
    trainable_params: int
    frozen_params: int
    bias_params: int                # included in the two counts above; CS231n counts weights only
    activations: int                # output elements per image
    activation_bytes: int           # per image, in the dtype the forward ran in
    new_memory: bool                # False: output is its input or a view of it (in place)
    macs: int                       # per image
    rf: tuple[int, int] | None      # receptive field (H, W) of one output unit, in input pixels
    jump: tuple[float, float] | None  # effective stride (H, W), in input pixels

    @property
    def params(self) -> int:
        return self.trainable_params + self.frozen_params

    @property
    def weights(self) -> int:
        """Parameters other than biases (what the CS231n table calls weights)."""
        return self.params - self.bias_params

    def is_shape_keeping_pool(self) -> bool:
        """An adaptive pool whose output has its input's shape (a copy, not a layer)."""
        return "adaptive" in self.type.lower() and self.input_shape == self.output_shape

    def counts_for_course(self) -> bool:
        """Whether the CS231n convention counts this row's output (conv, pool, FC).

        An adaptive pool that keeps the shape (torchvision's 7x7 pool after VGG's 7x7 pool5, there
        so other input sizes work) is not a layer of the paper's network: not counted.
        """
        if self.is_shape_keeping_pool():
            return False
        if self.kind == "module":
            return any(k in self.type for k in _COURSE_MODULES)
        return any(k in self.type for k in _COURSE_OPS)


@dataclass
class Summary:
    """What :func:`summary` returns: rows plus totals; print it, or export with to_dict/to_csv."""

    model_name: str
    input_shape: tuple[int, ...]    # (N, C, H, W)
    dtype: str
    device: str
    rows: list[LayerRow]
    params: int
    trainable_params: int
    frozen_params: int
    bias_params: int
    unused_params: int              # parameters of modules this forward never called (aux heads)
    param_bytes: int
    macs: int                       # per image, every conv/FC/matmul seen, in rows or not
    input_elements: int             # per image
    bytes_per_element: int
    notes: list[str] = field(default_factory=list)

    # --- totals derived from the rows -----------------------------------------------------------
    @property
    def batch_size(self) -> int:
        return int(self.input_shape[0])

    @property
    def activations(self) -> int:
        """Elements per image that the forward allocates (outputs of all rows, in-place ones once)."""
        return sum(r.activations for r in self.rows if r.new_memory)

    @property
    def activation_bytes(self) -> int:
        return sum(r.activation_bytes for r in self.rows if r.new_memory)

    @property
    def conv_pool_fc_activations(self) -> int:
        """CS231n convention, per image: the input plus conv, pool and FC outputs."""
        return self.input_elements + sum(
            r.activations for r in self.rows if r.new_memory and r.counts_for_course()
        )

    @property
    def conv_pool_fc_activation_bytes(self) -> int:
        return self.conv_pool_fc_activations * self.bytes_per_element

    @property
    def input_bytes(self) -> int:
        return self.input_elements * self.bytes_per_element

    @property
    def forward_backward_bytes(self) -> int:
        """Estimate for the batch: params + grads of trainable params + input + 2 x activations."""
        grads = self.param_bytes * self.trainable_params // max(self.params, 1)
        return (self.param_bytes + grads
                + self.batch_size * (self.input_bytes + 2 * self.activation_bytes))

    @property
    def feature_row(self) -> LayerRow | None:
        """The last row that is still a spatial map (4-D, larger than 1x1): where Araujo et al.
        read a network's receptive field (pool5 of VGG-16, Mixed_7c of Inception-v3)."""
        maps = [r for r in self.rows
                if len(r.output_shape) == 4 and r.rf is not None and not r.is_shape_keeping_pool()]
        big = [r for r in maps if r.output_shape[-1] * r.output_shape[-2] > 1]
        return (big or maps or [None])[-1]

    @property
    def feature_rf(self) -> tuple[int, int] | None:
        row = self.feature_row
        return row.rf if row else None

    def row(self, name: str) -> LayerRow:
        """The row named `name` (a module path such as ``features.0`` or an op row)."""
        for r in self.rows:
            if r.name == name:
                return r
        raise KeyError(f"no row named {name!r}; rows: {', '.join(r.name for r in self.rows[:8])}...")

    # --- exports --------------------------------------------------------------------------------
    def totals(self) -> dict[str, Any]:
        return {
            "params": self.params,
            "trainable_params": self.trainable_params,
            "frozen_params": self.frozen_params,
            "bias_params": self.bias_params,
            "unused_params": self.unused_params,
            "param_bytes": self.param_bytes,
            "macs_per_image": self.macs,
            "input_elements_per_image": self.input_elements,
            "activations_per_image": self.activations,
            "activation_bytes_per_image": self.activation_bytes,
            "conv_pool_fc_activations_per_image": self.conv_pool_fc_activations,
            "conv_pool_fc_activation_bytes_per_image": self.conv_pool_fc_activation_bytes,
            "forward_backward_bytes_estimate": self.forward_backward_bytes,
            "feature_rf": list(self.feature_rf) if self.feature_rf else None,
            "feature_jump": list(self.feature_row.jump) if self.feature_row else None,
            "feature_layer": self.feature_row.name if self.feature_row else None,
        }

    def to_dict(self) -> dict[str, Any]:
        rows = []
        for r in self.rows:
            d = asdict(r)
            d["input_shape"] = list(r.input_shape)
            d["output_shape"] = list(r.output_shape)
            d["rf"] = list(r.rf) if r.rf else None
            d["jump"] = list(r.jump) if r.jump else None
            d["params"] = r.params
            rows.append(d)
        return {
            "model": self.model_name,
            "input_shape": list(self.input_shape),
            "batch_size": self.batch_size,
            "dtype": self.dtype,
            "device": self.device,
            "rows": rows,
            "totals": self.totals(),
            "notes": list(self.notes),
        }

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent)

    CSV_FIELDS = ("name", "type", "kind", "input_shape", "output_shape", "trainable_params", "frozen_params",
                  "bias_params", "activations", "activation_bytes", "new_memory", "macs",
                  "rf_h", "rf_w", "jump_h", "jump_w")

    def to_csv(self) -> str:
        """One line per row; shapes as ``1x64x224x224``; totals are in to_dict()/to_table()."""
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(self.CSV_FIELDS)
        for r in self.rows:
            rf, jump = r.rf or ("", ""), r.jump or ("", "")
            w.writerow([r.name, r.type, r.kind, "x".join(map(str, r.input_shape)),
                        "x".join(map(str, r.output_shape)),
                        r.trainable_params, r.frozen_params, r.bias_params, r.activations,
                        r.activation_bytes, int(r.new_memory), r.macs, rf[0], rf[1], jump[0], jump[1]])
        return buf.getvalue()

    def to_table(self) -> str:
        """Aligned text: one line per row, then the totals and what they count."""
        show_frozen = any(r.frozen_params for r in self.rows)
        head = ["#", "Layer", "Type", "Output shape", "Params", "Bias"]
        head += ["Frozen"] if show_frozen else []
        head += ["Act/img", "MB/img", "MACs", "RF", "Jump"]
        lines = []
        for i, r in enumerate(self.rows):
            cells = [str(i), r.name, r.type, "x".join(map(str, r.output_shape)),
                     _commas(r.params), _commas(r.bias_params)]
            cells += [_commas(r.frozen_params)] if show_frozen else []
            cells += [_commas(r.activations) + ("" if r.new_memory else "*"),
                      f"{r.activation_bytes / 1e6:.2f}", _human(r.macs) if r.macs else "0",
                      _pair_str(r.rf), _pair_str(r.jump)]
            lines.append(cells)
        right = {0, 4, 5, 6, 7, 8, 9, 10} if show_frozen else {0, 4, 5, 6, 7, 8, 9}
        widths = [max(len(h), *(len(c[j]) for c in lines)) if lines else len(h)
                  for j, h in enumerate(head)]

        def fmt(cells):
            return "  ".join(c.rjust(w) if j in right or j >= len(cells) - 2 else c.ljust(w)
                             for j, (c, w) in enumerate(zip(cells, widths))).rstrip()

        n, c, h, w = self.input_shape
        out = [f"{self.model_name}: input {n}x{c}x{h}x{w} ({self.dtype}, {self.device})",
               fmt(head), "-" * len(fmt(head))]
        out += [fmt(cells) for cells in lines]
        out.append("-" * len(fmt(head)))
        human = f" ({_human(self.params)})" if self.params >= 1000 else ""
        out.append(f"Params: {_commas(self.params)}{human}; trainable "
                   f"{_commas(self.trainable_params)}, frozen {_commas(self.frozen_params)}, of which "
                   f"biases {_commas(self.bias_params)}; {_bytes(self.param_bytes)} in {self.dtype}")
        if self.unused_params:
            out.append(f"  {_commas(self.unused_params)} params belong to modules this forward did "
                       "not call (e.g. auxiliary heads, which run in training only)")
        out.append(f"MACs per image: {_human(self.macs)} ({_commas(self.macs)}; conv, FC and matmul "
                   "multiply-adds)")
        out.append(f"Activations per image: {_commas(self.activations)} elements = "
                   f"{_bytes(self.activation_bytes)} (every output a row allocates; rows marked * "
                   "reuse their input's memory)")
        out.append(f"  CS231n convention (input + conv/pool/FC outputs): "
                   f"{_commas(self.conv_pool_fc_activations)} elements = "
                   f"{_bytes(self.conv_pool_fc_activation_bytes)}")
        out.append(f"Forward+backward memory estimate, batch {n}: {_bytes(self.forward_backward_bytes)}"
                   " (params + grads + input + 2 x activations)")
        row = self.feature_row
        if row is not None:
            out.append(f"Receptive field of the last feature map ({row.name}): {_pair_str(row.rf)} px, "
                       f"jump {_pair_str(row.jump)} px (Araujo et al. 2019 convention)")
        out += [f"Note: {n_}" for n_ in self.notes]
        out.append("MB = 10^6 bytes; per-image columns divide the batch out.")
        return "\n".join(out)

    def __str__(self) -> str:
        return self.to_table()


def _commas(n) -> str:
    return f"{n:,}"


def _human(n: float) -> str:
    for unit, scale in (("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if abs(n) >= scale:
            return f"{n / scale:.2f}{unit}"
    return str(n)


def _bytes(n: float) -> str:
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("KB", 1e3)):
        if abs(n) >= scale:
            return f"{n / scale:.2f} {unit}"
    return f"{n} bytes"


def _pair_str(p) -> str:
    if p is None:
        return "-"
    a, b = (f"{v:g}" if isinstance(v, float) else str(v) for v in p)
    return a if a == b else f"{a}x{b}"


# --- input handling -----------------------------------------------------------------------------

def _first_conv_channels(model: nn.Module) -> int | None:
    for m in model.modules():
        if isinstance(m, nn.modules.conv._ConvNd):
            return int(m.in_channels)
    return None


def resolve_input_shape(model: nn.Module, input_size, batch_size: int = 1,
                        in_chans: int | None = None) -> tuple[int, int, int, int]:
    """(N, C, H, W) from an int side, (H, W) or (C, H, W); channels from the first conv if not given."""
    if input_size is None:
        input_size = getattr(model, "default_input_size", None) or 224
    if isinstance(input_size, int):
        dims = (input_size, input_size)
    else:
        try:
            dims = tuple(int(v) for v in input_size)
        except (TypeError, ValueError):
            dims = ()
    if len(dims) not in (2, 3) or any(d <= 0 for d in dims) or batch_size <= 0:
        raise ConfigError(
            f"input_size must be a positive int side, (H, W) or (C, H, W), with batch_size >= 1; "
            f"got input_size={input_size!r}, batch_size={batch_size!r}. Example: 224 or (3, 224, 224)."
        )
    if len(dims) == 3:
        if in_chans is not None and in_chans != dims[0]:
            raise ConfigError(f"input_size says {dims[0]} channels but in_chans={in_chans}; "
                              "give one or make them agree")
        c, h, w = dims
    else:
        c = in_chans or _first_conv_channels(model) or 3
        h, w = dims
    return (int(batch_size), int(c), int(h), int(w))


# --- tracing ------------------------------------------------------------------------------------

@dataclass
class _Frame:
    name: str
    module: nn.Module | None
    is_row: bool
    inputs: tuple = ()
    macs: int = 0


def _op_name(func) -> str:
    return getattr(func, "__name__", type(func).__name__)


def _first_tensor(obj):
    for t in tree_flatten(obj)[0]:
        if isinstance(t, torch.Tensor):
            return t
    return None


def _root(t: torch.Tensor) -> torch.Tensor:
    return t._base if t._base is not None else t


def _aliases(out: torch.Tensor, inputs) -> bool:
    root = _root(out)
    return any(isinstance(t, torch.Tensor) and _root(t) is root for t in inputs)


class _Tracer(TorchFunctionMode):
    """Builds the rows; see the module docstring."""

    def __init__(self, batch: int, module_params: dict[int, list], tensor_params: dict[int, tuple]):
        super().__init__()
        self.batch = batch
        # id(module) -> [(key, numel, requires_grad, is_bias)], key = id of the model's parameter
        self.module_params = module_params
        # id(tensor the forward sees: the parameter or its stand-in) -> the same tuple
        self.tensor_params = tensor_params
        self.seen_params: set[int] = set()
        self.stack: list[_Frame] = []
        self.rows: list[LayerRow] = []
        self.name_counts: dict[str, int] = {}
        self.paused = False
        self.module_depth = 0   # module frames on the stack; 0 outside the traced model's forward
        self.total_macs = 0
        self.unattributed_macs = 0

    # MacCounter calls this for every conv/matmul at the ATen level.
    def add_macs(self, n: int) -> None:
        if not self.module_depth:
            return      # e.g. the zoo's input check probing a meta copy in a pre-hook: not ours
        self.total_macs += n
        if self.stack:
            self.stack[-1].macs += n
        else:
            self.unattributed_macs += n

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if self.paused or not self.module_depth:
            return func(*args, **kwargs)
        frame = _Frame(_op_name(func), None, False)
        self.stack.append(frame)
        try:
            out = func(*args, **kwargs)
        finally:
            self.stack.pop()
        # The mode is off in here, so the tensor calls below are not traced.
        inputs = [t for t in tree_flatten((args, kwargs))[0] if isinstance(t, torch.Tensor)]
        fields = [getattr(t, _FIELD, None) for t in inputs]
        acts = [(t, f) for t, f in zip(inputs, fields) if f is not None]
        out_t = _first_tensor(out)
        parent = self.stack[-1] if self.stack else None
        if not acts or out_t is None or not (out_t.is_floating_point() or out_t.is_complex()):
            if parent is not None:              # e.g. a matmul of two weights: still counted
                parent.macs += frame.macs
            return out
        new = propagate(frame.name, args, kwargs, tuple(out_t.shape), [f for _, f in acts],
                        tuple(acts[0][0].shape))
        for t in tree_flatten(out)[0]:
            if isinstance(t, torch.Tensor) and t.is_floating_point():
                setattr(t, _FIELD, new)
        if parent is not None and parent.is_row:
            parent.macs += frame.macs
        else:
            prefix = f"{parent.name}." if parent is not None and parent.name else ""
            params = [self.tensor_params[id(t)] for t in inputs if id(t) in self.tensor_params]
            self._add_row(prefix + frame.name, frame.name, "op", out_t, inputs, frame.macs, params)
        return out

    def _add_row(self, name, type_, kind, out_t, inputs, macs, params):
        k = self.name_counts.get(name, 0) + 1
        self.name_counts[name] = k
        trainable = frozen = bias = 0
        for key, numel, requires_grad, is_bias in params:
            if key in self.seen_params:
                continue                      # shared weights count once, at their first use
            self.seen_params.add(key)
            trainable += numel if requires_grad else 0
            frozen += 0 if requires_grad else numel
            bias += numel if is_bias else 0
        f = getattr(out_t, _FIELD, None) if out_t is not None else None
        first_in = next((t for t in inputs if hasattr(t, _FIELD)), None)
        if first_in is None:
            first_in = next((t for t in inputs if isinstance(t, torch.Tensor)), None)
        numel = out_t.numel() // self.batch if out_t is not None else 0
        size = out_t.element_size() if out_t is not None else 0
        self.rows.append(LayerRow(
            name=name if k == 1 else f"{name}#{k}",
            type=type_,
            kind=kind,
            input_shape=tuple(int(s) for s in first_in.shape) if first_in is not None else (),
            output_shape=tuple(int(s) for s in out_t.shape) if out_t is not None else (),
            trainable_params=trainable,
            frozen_params=frozen,
            bias_params=bias,
            activations=numel,
            activation_bytes=numel * size,
            new_memory=out_t is not None and not _aliases(out_t, inputs),
            macs=macs // self.batch,
            rf=tuple(f.rf) if isinstance(f, Field) else None,
            jump=tuple(f.jump) if isinstance(f, Field) else None,
        ))

    # --- module hooks ---------------------------------------------------------------------------
    def pre_hook(self, name: str, is_row: bool):
        def hook(module, args):
            self.stack.append(_Frame(name, module, is_row, tuple(args)))
            self.module_depth += 1
        return hook

    def post_hook(self, module, args, output):
        self.paused = True
        try:
            frame = self.stack.pop()
            self.module_depth -= 1
            if frame.is_row:
                out_t = _first_tensor(output)
                name = frame.name or type(module).__name__
                self._add_row(name, type(module).__name__, "module", out_t,
                              tree_flatten(frame.inputs)[0], frame.macs,
                              self.module_params.get(id(module), ()))
            elif self.stack:
                self.stack[-1].macs += frame.macs   # MACs no op frame claimed (rare)
            else:
                self.unattributed_macs += frame.macs
        finally:
            self.paused = False


def _param_index(model: nn.Module, subs: dict | None) -> tuple[dict, dict]:
    """Per module and per tensor id: (key, numel, requires_grad, is_bias) of each parameter."""
    by_module: dict[int, list] = {}
    by_tensor: dict[int, tuple] = {}
    for m in model.modules():
        by_module[id(m)] = [(id(p), p.numel(), p.requires_grad, n == "bias" or n.endswith("_bias"))
                            for n, p in m.named_parameters(recurse=False)]
        for stats, p in zip(by_module[id(m)], m.parameters(recurse=False)):
            by_tensor[id(p)] = stats
    if subs is not None:                       # functional_call swaps in stand-ins
        for name, p in model.named_parameters():
            by_tensor[id(subs[name])] = by_tensor[id(p)]
    return by_module, by_tensor


def _substitutes(model: nn.Module, device: torch.device, dtype: torch.dtype) -> dict | None:
    """Stand-in tensors on `device` in `dtype` (uninitialised: only shapes matter), or None when
    the model already lives there and can run as it is."""
    tensors = list(model.named_parameters()) + list(model.named_buffers())
    if all(t.device == device and (t.dtype == dtype or not t.is_floating_point()) for _, t in tensors):
        return None
    subs = {}
    for name, t in tensors:
        new = torch.empty(t.shape, device=device, dtype=dtype if t.is_floating_point() else t.dtype)
        if t.dtype == torch.long or t.dtype == torch.int64:
            new.zero_()                                  # e.g. batch norm's num_batches_tracked
        subs[name] = new.requires_grad_(t.requires_grad) if new.is_floating_point() else new
    return subs


@contextlib.contextmanager
def _without_input_check(model: nn.Module):
    """Lift the zoo's input-check pre-hook for the traced forward.

    On a fresh model that check probes the network at many sizes on the meta device (seconds for
    DenseNet-121) and its probes would run under our tracing modes. The trace reports its own
    failures; on failure we call the check directly for its message (see _run_input_check).
    """
    from cnnlab.models.shapes import cnnlab_input_check

    hooks = model._forward_pre_hooks
    saved = list(hooks.items())
    for key, hook in saved:
        if hook is cnnlab_input_check:
            del hooks[key]
    try:
        yield
    finally:
        hooks.clear()
        hooks.update(saved)     # same hooks, same order


def _run_input_check(model: nn.Module, x: torch.Tensor) -> None:
    from cnnlab.models.shapes import cnnlab_input_check

    if any(h is cnnlab_input_check for h in model._forward_pre_hooks.values()):
        cnnlab_input_check(model, (x,))


def summary(model: nn.Module | str, input_size=None, batch_size: int = 1,
            dtype: torch.dtype = torch.float32, device="cpu", in_chans: int | None = None) -> Summary:
    """Trace one forward of `model` and return a per-layer :class:`Summary`.

    `input_size` is an int side, (H, W) or (C, H, W) (default: the zoo model's own, else 224);
    channels come from `in_chans`, else the first conv. `model` may be a zoo name. The receptive
    field follows Araujo et al., Distill 2019; the memory columns follow the CS231n notes.
    """
    if isinstance(dtype, str):
        dtype = getattr(torch, dtype)
    device = torch.device(device)
    if isinstance(model, str):
        from cnnlab.models import create_model

        with torch.device(device):
            model = create_model(model)
    shape = resolve_input_shape(model, input_size, batch_size, in_chans)
    model_name = getattr(model, "model_name", type(model).__name__)

    subs = _substitutes(model, device, dtype)
    module_params, tensor_params = _param_index(model, subs)
    tracer = _Tracer(shape[0], module_params, tensor_params)
    handles = []
    for name, m in model.named_modules():
        is_row = not any(True for _ in m.children())     # leaf modules; containers give op rows
        handles.append(m.register_forward_pre_hook(tracer.pre_hook(name, is_row)))
        handles.append(m.register_forward_hook(tracer.post_hook))
    training = {m: m.training for m in model.modules()}
    x = torch.zeros(shape, device=device, dtype=dtype)
    setattr(x, _FIELD, input_field(shape[2], shape[3]))
    try:
        model.eval()
        with torch.no_grad(), _without_input_check(model), MacCounter(tracer.add_macs), tracer:
            if subs is None:
                model(x)
            else:
                torch.func.functional_call(model, subs, (x,))
    except InputShapeError:
        raise
    except (RuntimeError, ValueError, IndexError) as e:
        _run_input_check(model, x)          # the zoo's own message, when it has one
        modules = [f for f in tracer.stack if f.module is not None and f.name]
        where = f"{modules[-1].name} ({type(modules[-1].module).__name__})" if modules else ""
        raise InputShapeError(
            f"{model_name} could not run on input {'x'.join(map(str, shape))} "
            f"({str(dtype).replace('torch.', '')}, {device}){f' (failed in {where})' if where else ''}: "
            f"{str(e).splitlines()[0] if str(e) else type(e).__name__}. Try the model's default "
            f"input size ({getattr(model, 'default_input_size', 224)}) or a larger one."
        ) from e
    finally:
        for h in handles:
            h.remove()
        for m, flag in training.items():
            m.train(flag)

    all_params = {id(p): p for p in model.parameters()}
    params = sum(p.numel() for p in all_params.values())
    trainable = sum(p.numel() for p in all_params.values() if p.requires_grad)
    bias = sum(numel for _, numel, _, is_bias in
               {s[0]: s for stats in module_params.values() for s in stats}.values() if is_bias)
    elem = torch.empty((), dtype=dtype).element_size()
    param_bytes = sum(p.numel() * (elem if p.is_floating_point() else p.element_size())
                      for p in all_params.values())
    notes = []
    if tracer.unattributed_macs:
        notes.append(f"{_human(tracer.unattributed_macs // shape[0])} MACs per image ran outside "
                     "any module and are in the total only")
    return Summary(
        model_name=model_name,
        input_shape=shape,
        dtype=str(dtype).replace("torch.", ""),
        device=str(device),
        rows=tracer.rows,
        params=params,
        trainable_params=trainable,
        frozen_params=params - trainable,
        bias_params=bias,
        unused_params=sum(p.numel() for pid, p in all_params.items() if pid not in tracer.seen_params),
        param_bytes=param_bytes,
        macs=tracer.total_macs // shape[0],
        input_elements=shape[1] * shape[2] * shape[3],
        bytes_per_element=elem,
        notes=notes,
    )
