"""Inference latency: a plain ``model.eval()`` forward against a fast path, in the same run.

Issue 6, section 5. For AlexNet, VGG-16, ResNet-18/50, DenseNet-121 and Inception-v3 at their
registered input sizes (224 px; Inception-v3 299 px), single-image and batched (--batch, default
32) latency in eval mode:

- plain: ``model.eval()`` then ``model(x)`` under ``torch.no_grad()``, NCHW, fp32 (and the same
  under bf16 autocast);
- fast: a copy of the model with each BatchNorm folded into the convolution before it, in
  channels_last, under ``torch.inference_mode()``, with bf16 autocast where
  :func:`cnnlab.train.loop.bf16_supported` says bf16 is native (and, as its own row, with bf16
  forced).

Each figure is the median of --repeats timed calls after --warmup calls (spread min..max); the
ratio is plain fp32 / fast, both from this run. The folded model's output is checked against
the plain one (max abs difference of the logits). On a CPU without native bf16 (AVX2 only) bf16
rows are far slower: --quick then measures them single-image only, and a per-measurement
--budget-s cuts the repeats of anything slow.

    python benchmarks/infer_latency.py --quick                       # a few minutes on 2 cores
    python benchmarks/infer_latency.py --models resnet18 resnet50 --batch 32

Prints one JSON object, then one summary line per model.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import json
import os
import platform
import statistics
import time

MODELS = ["alexnet", "vgg16", "resnet18", "resnet50", "densenet121", "inception_v3"]


def fold_bn_into_conv(conv, bn):
    """A Conv2d computing bn(conv(x)) in eval mode (Ioffe & Szegedy 2015's affine, precomputed).

    bn(z) = gamma * (z - mean) / sqrt(var + eps) + beta, so with s = gamma / sqrt(var + eps):
    W' = W * s (per output channel) and b' = (b - mean) * s + beta.
    TODO(lead): this belongs in the library (e.g. cnnlab.models.layers, next to an inference
    ``prepare`` function) with a test; it lives here until then.
    """
    import torch
    from torch import nn

    fused = nn.Conv2d(conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride,
                      conv.padding, conv.dilation, conv.groups, bias=True,
                      padding_mode=conv.padding_mode)
    with torch.no_grad():
        s = bn.weight / torch.sqrt(bn.running_var + bn.eps)
        fused.weight.copy_(conv.weight * s[:, None, None, None])
        b = conv.bias if conv.bias is not None else torch.zeros_like(bn.running_mean)
        fused.bias.copy_((b - bn.running_mean) * s + bn.bias)
    return fused


def fold_model(model) -> int:
    """Fold every conv -> BN pair in place (BN replaced by Identity); returns how many.

    Pairs: consecutive (Conv2d, BatchNorm2d) in an nn.Sequential, and sibling attributes named
    conv/bn or convK/bnK (torchvision-style ResNet and Inception blocks, which apply bn right
    after conv). Pre-activation BN (DenseNet's BN-ReLU-conv) is not foldable into a conv and is
    left alone. The caller checks the outputs against the unfolded model.
    """
    from torch import nn

    count = 0
    for module in list(model.modules()):
        children = dict(module.named_children())
        if isinstance(module, nn.Sequential):
            names = list(children)
            for a, b in zip(names, names[1:]):
                conv, bn = children[a], children[b]
                if (isinstance(conv, nn.Conv2d) and isinstance(bn, nn.BatchNorm2d)
                        and bn.num_features == conv.out_channels):
                    setattr(module, a, fold_bn_into_conv(conv, bn))
                    setattr(module, b, nn.Identity())
                    count += 1
            continue
        for name, conv in children.items():
            if not (isinstance(conv, nn.Conv2d) and name.startswith("conv")):
                continue
            bn = children.get("bn" + name[len("conv"):])
            if isinstance(bn, nn.BatchNorm2d) and bn.num_features == conv.out_channels:
                setattr(module, name, fold_bn_into_conv(conv, bn))
                setattr(module, "bn" + name[len("conv"):], nn.Identity())
                count += 1
    return count


def time_calls(fn, warmup: int, repeats: int, budget_s: float) -> list[float]:
    """Seconds per call of `fn` for up to `repeats` calls after `warmup` (at least one timed)."""
    for _ in range(warmup):
        fn()
    times, start = [], time.perf_counter()
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
        if time.perf_counter() - start > budget_s:
            break
    return times


def spread_ms(times: list[float]) -> dict:
    return {"median_ms": round(1e3 * statistics.median(times), 2),
            "min_ms": round(1e3 * min(times), 2), "max_ms": round(1e3 * max(times), 2),
            "runs": len(times)}


def bench_model(name: str, args, native_bf16: bool) -> dict:
    import torch

    import cnnlab

    torch.manual_seed(0)
    plain = cnnlab.create_model(name).eval()
    size = cnnlab.model_info(name).input_size
    fast = copy.deepcopy(plain)
    folded = fold_model(fast)
    fast = fast.eval().to(memory_format=torch.channels_last)

    def bf16(on: bool):
        return torch.autocast("cpu", dtype=torch.bfloat16) if on else contextlib.nullcontext()

    def plain_fn(x, use_bf16):
        def run():
            with torch.no_grad(), bf16(use_bf16):
                plain(x)
        return run

    def fast_fn(x, use_bf16):
        xc = x.contiguous(memory_format=torch.channels_last)

        def run():
            with torch.inference_mode(), bf16(use_bf16):
                fast(xc)
        return run

    g = torch.Generator().manual_seed(0)
    x_check = torch.randn(2, 3, size, size, generator=g)
    with torch.no_grad():
        diff = (plain(x_check) - fast(x_check.contiguous(memory_format=torch.channels_last))
                ).abs().max().item()
    out = {"input_size": size, "folded_conv_bn": folded, "fold_max_abs_diff": diff, "rows": {}}
    for batch in (1, args.batch):
        x = torch.randn(batch, 3, size, size, generator=g)
        variants = {"plain_fp32": plain_fn(x, False), "fast": fast_fn(x, native_bf16)}
        if "bf16" in args.precisions and (batch == 1 or not args.quick or native_bf16):
            variants["plain_bf16"] = plain_fn(x, True)
            if not native_bf16:
                variants["fast_bf16_forced"] = fast_fn(x, True)
        if "32" not in args.precisions:
            variants.pop("plain_fp32")
        rows = {}
        for label, fn in variants.items():
            rows[label] = spread_ms(time_calls(fn, args.warmup, args.repeats, args.budget_s))
            rows[label]["img_s"] = round(batch / (rows[label]["median_ms"] / 1e3), 1)
        base = rows.get("plain_fp32")
        if base:
            for r in rows.values():
                r["speedup_vs_plain_fp32"] = round(base["median_ms"] / r["median_ms"], 2)
        out["rows"][f"batch{batch}"] = rows
    return out


def main(argv=None) -> int:
    import numpy as np
    import torch

    import cnnlab
    from cnnlab.train.loop import bf16_supported

    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--models", nargs="+", default=MODELS, help=f"default: {' '.join(MODELS)}")
    p.add_argument("--batch", type=int, default=None, help="batched size (default 32; --quick 8)")
    p.add_argument("--warmup", type=int, default=None, help="untimed calls (default 2)")
    p.add_argument("--repeats", type=int, default=None, help="timed calls (default 7)")
    p.add_argument("--budget-s", type=float, default=None,
                   help="stop repeating a measurement after this many seconds (default 60)")
    p.add_argument("--precisions", nargs="+", default=["32", "bf16"], choices=["32", "bf16"])
    p.add_argument("--quick", action="store_true",
                   help="batch 8, 1 warm-up, 3 repeats, 4 s budget, bf16 single-image only "
                        "where it is emulated")
    args = p.parse_args(argv)
    defaults = (dict(batch=8, warmup=1, repeats=3, budget_s=4.0) if args.quick
                else dict(batch=32, warmup=2, repeats=7, budget_s=60.0))
    for k, v in defaults.items():
        if getattr(args, k) is None:
            setattr(args, k, v)
    known = set(cnnlab.list_models())
    unknown = [m for m in args.models if m not in known]
    if unknown:
        p.error(f"unknown model(s) {unknown}; `cnnlab models` lists them")
    device = torch.device("cpu")  # inference latency here is a CPU benchmark
    native = bf16_supported(device)
    out = {"benchmark": "infer_latency", "cnnlab": cnnlab.__version__,
           "torch": str(torch.__version__), "numpy": np.__version__,
           "python": platform.python_version(), "machine": platform.machine(),
           "cpu_capability": torch.backends.cpu.get_cpu_capability(),
           "cpus": len(os.sched_getaffinity(0)), "torch_threads": torch.get_num_threads(),
           "bf16_native": native, "load_avg_before": [round(v, 2) for v in os.getloadavg()],
           "batch": args.batch, "warmup": args.warmup, "repeats": args.repeats,
           "budget_s": args.budget_s, "quick": args.quick, "seed": 0, "models": {}}
    t0 = time.perf_counter()
    for name in args.models:
        out["models"][name] = bench_model(name, args, native)
    out["seconds"] = round(time.perf_counter() - t0, 1)
    out["load_avg_after"] = [round(v, 2) for v in os.getloadavg()]
    print(json.dumps(out, indent=1))
    fast_label = "fast (bf16, cl, folded, inference_mode)" if native else \
        "fast (fp32, cl, folded, inference_mode)"
    print(f"{fast_label} vs plain fp32 eval; {out['cpu_capability']}, {out['cpus']} CPUs, "
          f"bf16 native: {native}; load avg {out['load_avg_before'][0]} -> "
          f"{out['load_avg_after'][0]}")
    for name, r in out["models"].items():
        parts = []
        for key, rows in r["rows"].items():
            pl, fa = rows.get("plain_fp32"), rows["fast"]
            s = f"{key}: fast {fa['median_ms']:.1f} ms"
            if pl:
                s += f" vs plain {pl['median_ms']:.1f} ms = {fa['speedup_vs_plain_fp32']:.2f}x"
            if "plain_bf16" in rows:
                s += f", plain bf16 {rows['plain_bf16']['median_ms']:.1f} ms"
            if "fast_bf16_forced" in rows:
                s += f", fast bf16 {rows['fast_bf16_forced']['median_ms']:.1f} ms"
            parts.append(s)
        print(f"{name} {r['input_size']}px ({r['folded_conv_bn']} conv+BN folded, max diff "
              f"{r['fold_max_abs_diff']:.1e}): " + "; ".join(parts))
    print(f"medians of up to {args.repeats} calls after {args.warmup} warm-up, "
          f"{out['seconds']:.0f} s in all")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
