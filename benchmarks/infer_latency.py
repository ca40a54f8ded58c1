"""Inference latency: a plain ``model.eval()`` forward against a fast path, in the same run.

Issue 6, section 5. For AlexNet, VGG-16, ResNet-18/50, DenseNet-121 and Inception-v3 at their
registered input sizes (224 px; Inception-v3 299 px), single-image and batched (--batch, default
32) latency in eval mode:

- plain: ``model.eval()`` then ``model(x)`` under ``torch.no_grad()``, NCHW, fp32 (and the same
  under bf16 autocast; fp16 on MPS, which has no bf16 autocast);
- fast: :func:`cnnlab.models.fuse.prepare_for_inference` with its defaults, as ``cnnlab
  predict`` and ``cnnlab evaluate`` run it: a copy with each BatchNorm folded into the
  convolution before it, channels_last on CPU and CUDA, ``torch.inference_mode()``, and bf16
  (fp16 on MPS and pre-Ampere GPUs) autocast only where that is native. Where it is not, the
  forced reduced-precision copy is its own row.

Each figure is the median of --repeats timed calls after --warmup calls (spread min..max); the
ratio is plain fp32 / fast, both from this run. The folded model's output is checked against
the plain one (max abs difference of the logits). On a CPU without native bf16 (AVX2 only) bf16
rows are far slower: --quick then measures them single-image only, and a per-measurement
--budget-s cuts the repeats of anything slow.

    python benchmarks/infer_latency.py --quick                       # a few minutes on 2 cores
    python benchmarks/infer_latency.py --models resnet18 resnet50 --batch 32
    python benchmarks/infer_latency.py --device cuda

Prints one JSON object, then one summary line per model.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import statistics
import time

MODELS = ["alexnet", "vgg16", "resnet18", "resnet50", "densenet121", "inception_v3"]


def time_calls(fn, warmup: int, repeats: int, budget_s: float, sync=lambda: None
               ) -> list[float]:
    """Seconds per call of `fn` for up to `repeats` calls after `warmup` (at least one timed).

    `sync` waits for queued device work (CUDA and MPS run asynchronously).
    """
    for _ in range(warmup):
        fn()
    sync()
    times, start = [], time.perf_counter()
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - t0)
        if time.perf_counter() - start > budget_s:
            break
    return times


def spread_ms(times: list[float]) -> dict:
    return {"median_ms": round(1e3 * statistics.median(times), 2),
            "min_ms": round(1e3 * min(times), 2), "max_ms": round(1e3 * max(times), 2),
            "runs": len(times)}


def bench_model(name: str, args, device, low: str, native_low: bool) -> dict:
    """Rows for one model; `low` is the device's reduced precision ("bf16", or "16" on MPS)."""
    import torch
    from torch import nn

    import cnnlab
    from cnnlab.models.fuse import InferenceModel, prepare_for_inference

    torch.manual_seed(0)
    plain = cnnlab.create_model(name).eval().to(device)
    size = cnnlab.model_info(name).input_size
    fast = prepare_for_inference(plain, device)            # precision "auto"
    dtypes = {"bf16": torch.bfloat16, "16": torch.float16}
    sync = getattr(torch, device.type).synchronize if device.type in ("cuda", "mps") \
        else (lambda: None)

    def amp(on: bool):
        return torch.autocast(device.type, dtype=dtypes[low]) if on else contextlib.nullcontext()

    def plain_fn(x, use_low):
        def run():
            with torch.no_grad(), amp(use_low):
                plain(x)
        return run

    def fast_fn(model, x):
        # the input already in the model's layout, so the timed call does no conversion
        xc = x.contiguous(memory_format=torch.channels_last) if model.channels_last else x

        def run():
            model(xc)
        return run

    g = torch.Generator().manual_seed(0)
    x_check = torch.randn(2, 3, size, size, generator=g).to(device)
    fast32 = InferenceModel(fast.model, "32", fast.channels_last)   # same folded weights
    with torch.no_grad():
        diff = (plain(x_check).float() - fast32(x_check)).abs().max().item()
    bns = [sum(isinstance(m, nn.BatchNorm2d) for m in net.modules())
           for net in (plain, fast.model)]
    out = {"input_size": size, "folded_conv_bn": bns[0] - bns[1], "fast_precision":
           fast.precision, "fold_max_abs_diff": diff, "rows": {}}
    low_forced = None if native_low else InferenceModel(fast.model, low, fast.channels_last)
    for batch in (1, args.batch):
        x = torch.randn(batch, 3, size, size, generator=g).to(device)
        variants = {"plain_fp32": plain_fn(x, False), "fast": fast_fn(fast, x)}
        if "bf16" in args.precisions and (batch == 1 or not args.quick or native_low):
            variants[f"plain_{low}"] = plain_fn(x, True)
            if low_forced is not None:
                variants[f"fast_{low}_forced"] = fast_fn(low_forced, x)
        if "32" not in args.precisions:
            variants.pop("plain_fp32")
        rows = {}
        for label, fn in variants.items():
            rows[label] = spread_ms(time_calls(fn, args.warmup, args.repeats, args.budget_s,
                                               sync))
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
    from cnnlab.models.fuse import inference_precision
    from cnnlab.train.run import resolve_device

    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--models", nargs="+", default=MODELS, help=f"default: {' '.join(MODELS)}")
    p.add_argument("--batch", type=int, default=None, help="batched size (default 32; --quick 8)")
    p.add_argument("--warmup", type=int, default=None, help="untimed calls (default 2)")
    p.add_argument("--repeats", type=int, default=None, help="timed calls (default 7)")
    p.add_argument("--budget-s", type=float, default=None,
                   help="stop repeating a measurement after this many seconds (default 60)")
    p.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N, mps or auto (default cpu)")
    p.add_argument("--precisions", nargs="+", default=["32", "bf16"], choices=["32", "bf16"],
                   help="bf16: also the reduced-precision rows (fp16 on MPS, which lacks bf16)")
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
    device = resolve_device(args.device)
    auto = inference_precision("auto", device)
    native = auto != "32"   # the fast path's "auto" picks a reduced precision here
    low = auto if native else ("16" if device.type == "mps" else "bf16")
    low_name = {"bf16": "bf16", "16": "fp16"}[low]
    out = {"benchmark": "infer_latency", "cnnlab": cnnlab.__version__,
           "torch": str(torch.__version__), "numpy": np.__version__,
           "python": platform.python_version(), "machine": platform.machine(),
           "cpu_capability": torch.backends.cpu.get_cpu_capability(),
           "cpus": len(os.sched_getaffinity(0)), "torch_threads": torch.get_num_threads(),
           "device": str(device), "gpu": torch.cuda.get_device_name(device)
           if device.type == "cuda" else None, "fast_precision": auto,
           "bf16_native": native and low == "bf16",
           "load_avg_before": [round(v, 2) for v in os.getloadavg()],
           "batch": args.batch, "warmup": args.warmup, "repeats": args.repeats,
           "budget_s": args.budget_s, "quick": args.quick, "seed": 0, "models": {}}
    t0 = time.perf_counter()
    for name in args.models:
        out["models"][name] = bench_model(name, args, device, low, native)
    out["seconds"] = round(time.perf_counter() - t0, 1)
    out["load_avg_after"] = [round(v, 2) for v in os.getloadavg()]
    print(json.dumps(out, indent=1))
    fast_label = f"fast ({low_name if native else 'fp32'}, folded, inference_mode)"
    where = out["gpu"] or f"{out['cpu_capability']}, {out['cpus']} CPUs"
    print(f"{fast_label} vs plain fp32 eval on {device}; {where}, "
          f"{low_name} native: {native}; load avg {out['load_avg_before'][0]} -> "
          f"{out['load_avg_after'][0]}")
    for name, r in out["models"].items():
        parts = []
        for key, rows in r["rows"].items():
            pl, fa = rows.get("plain_fp32"), rows["fast"]
            s = f"{key}: fast {fa['median_ms']:.1f} ms"
            if pl:
                s += f" vs plain {pl['median_ms']:.1f} ms = {fa['speedup_vs_plain_fp32']:.2f}x"
            if f"plain_{low}" in rows:
                s += f", plain {low_name} {rows[f'plain_{low}']['median_ms']:.1f} ms"
            if f"fast_{low}_forced" in rows:
                s += f", fast {low_name} {rows[f'fast_{low}_forced']['median_ms']:.1f} ms"
            parts.append(s)
        print(f"{name} {r['input_size']}px ({r['folded_conv_bn']} conv+BN folded, max diff "
              f"{r['fold_max_abs_diff']:.1e}): " + "; ".join(parts))
    print(f"medians of up to {args.repeats} calls after {args.warmup} warm-up, "
          f"{out['seconds']:.0f} s in all")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
