"""Training images/s: a plain PyTorch loop against cnnlab's trainer and the machine's ceiling.

Issue 6, section 1. In ONE run on the same machine, for the CIFAR ResNet-18
(``create_model("resnet18", num_classes=10, stem="cifar")``, 32 px, batch 128), ResNet-20
(CIFAR, 32 px, batch 128) and ResNet-50 (128 px, batch 64, 1,000 classes):

- plain: the textbook loop (fp32, NCHW, torch.optim.SGD with momentum 0.9, cross-entropy,
  zero_grad/backward/step) over random in-memory tensors;
- trainer: ``cnnlab.train.run.train(cfg, model=..., loaders=...)`` with TrainConfig's defaults
  (precision "auto", channels_last auto, threads auto, momentum SGD, cosine schedule, the
  diagnostics monitor, run directory in a temp folder) on the same tensors, timed by a callback
  that records the end of every batch (``on_batch_end``) and stops the run when enough batches
  are timed;
- ceiling: fp32 and bf16 matmul GFLOP/s (N x N x N, default 2048), measured in the same run.

With ``--data`` also end to end on real JPEGs: the trainer on ``folder_loaders`` of
../shared/data/cifar10-jpg.tar.gz (decode once into uint8 memory, then pad-crop + flip per
batch) for the CIFAR models; decode time reported separately, images/s from the timed batches.

Then the levers one at a time on the CIFAR ResNet-18, each against the plain loop in the same
run: bf16 autocast, channels_last, both, torch.compile (``--compile``; compile time reported),
batch size 64/256, 1 torch thread instead of the default.

Effective training GFLOP/s = 6 x forward MACs x images/s (forward 2 FLOPs per MAC, backward
about twice the forward; MACs from cnnlab.analyze.macs). Each figure is the median of
--repeats timed windows of --window steps after --warmup steps (spread: min..max). These
machines are shared: the load average before and after is recorded, and ratios are only
meaningful between numbers of the same run.

    python benchmarks/train_throughput.py --quick            # < 3 minutes on 2 cores
    python benchmarks/train_throughput.py --compile          # full run, with torch.compile
    python benchmarks/train_throughput.py --quick --data ../shared/data/cifar10-jpg.tar.gz

Prints one JSON object, then a one-line summary per model and the lever table.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "cifar10-jpg.tar.gz"

# (label, builder name, builder kwargs, image size, batch size): issue 6's three models
MODELS = [
    ("resnet18_cifar", "resnet18", {"num_classes": 10, "stem": "cifar"}, 32, 128),
    ("resnet20", "resnet20", {"num_classes": 10}, 32, 128),
    ("resnet50", "resnet50", {"num_classes": 1000}, 128, 64),
]


def sync(device) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()


def summarise(rates: list[float], digits: int = 1) -> dict:
    """Median and range of per-window rates (medians: the neighbours make means jumpy)."""
    return {"median": round(statistics.median(rates), digits), "min": round(min(rates), digits),
            "max": round(max(rates), digits), "windows": len(rates)}


def window_rates(stamps: list[float], batch: int, warmup: int, window: int) -> list[float]:
    """Images/s of consecutive `window`-step windows after `warmup` steps, from batch-end stamps."""
    rates = []
    for start in range(warmup - 1, len(stamps) - window, window):
        rates.append(batch * window / (stamps[start + window] - stamps[start]))
    return rates


def forward_macs(model, shape) -> int:
    """Conv + linear MACs of one forward pass on one image (published convention: 0.56 G for the
    CIFAR ResNet-18, 4.1 G for ResNet-50 at 224 px)."""
    import torch

    from cnnlab.train.run import macs_per_image

    return macs_per_image(model, torch.zeros(1, *shape, device=next(model.parameters()).device))


def matmul_gflops(dtype, n: int, device, repeats: int, inner: int = 3) -> dict:
    """GFLOP/s of (n x n) @ (n x n) in `dtype`: 2 n^3 FLOPs per product."""
    import torch

    # Without native bf16 (AVX2-only CPUs) a bf16 product is emulated at ~1 GFLOP/s: a 2048^3
    # one takes ~15 s. Probe at 256 and shrink n so one product takes ~0.3 s (the n is reported).
    probe = torch.randn(256, 256, device=device).to(dtype)
    probe @ probe
    sync(device)
    t0 = time.perf_counter()
    probe @ probe
    sync(device)
    rate = 2 * 256**3 / max(time.perf_counter() - t0, 1e-9)
    while n > 256 and 2 * n**3 / rate > 0.3:
        n //= 2

    a = torch.randn(n, n, device=device).to(dtype)
    b = torch.randn(n, n, device=device).to(dtype)
    a @ b  # warm-up: oneDNN/cuBLAS pick their kernels on the first call
    sync(device)
    rates = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(inner):
            a @ b
        sync(device)
        rates.append(2 * n**3 * inner / (time.perf_counter() - t0) / 1e9)
    return {**summarise(rates), "n": n}


def random_data(n: int, size: int, classes: int, seed: int = 0):
    import torch

    g = torch.Generator().manual_seed(seed)
    return (torch.randn(n, 3, size, size, generator=g),
            torch.randint(0, classes, (n,), generator=g))


def build(name: str, kwargs: dict, device):
    import torch

    import cnnlab

    torch.manual_seed(0)
    return cnnlab.create_model(name, **kwargs).to(device)


def plain_loop(model, x, y, batch: int, steps: int, device, precision: str = "32",
               channels_last: bool = False, compile_model: bool = False,
               budget_s: float = float("inf"), min_steps: int = 2):
    """The textbook loop (plus at most one lever); returns (start time, end time of every step)."""
    import torch
    import torch.nn.functional as F

    fmt = torch.channels_last if channels_last else torch.contiguous_format
    model.train().to(memory_format=fmt)
    step_fn = torch.compile(model) if compile_model else model
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
    order = torch.randperm(len(x), generator=torch.Generator().manual_seed(0))
    amp = (torch.autocast(device.type, dtype=torch.bfloat16) if precision == "bf16"
           else contextlib.nullcontext())
    start, stamps = time.perf_counter(), []
    for i in range(steps):
        idx = order[i * batch:(i + 1) * batch]
        xb = x[idx].to(device, memory_format=fmt)
        yb = y[idx].to(device)
        with amp:
            out = model(xb) if step_fn is model else step_fn(xb)
        loss = F.cross_entropy(out.float(), yb)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sync(device)
        stamps.append(time.perf_counter())
        if len(stamps) >= min_steps and stamps[-1] - start > budget_s:
            break  # a slow lever (bf16 without native support) gets fewer windows, not hours
    return start, stamps


class StampAndStop:
    """Records the end time of every batch; asks the trainer to stop after `steps` batches."""

    def __init__(self, steps: int, budget_s: float = float("inf"), min_steps: int = 2):
        self.steps, self.budget_s, self.min_steps, self.stamps = steps, budget_s, min_steps, []
        self.start = time.perf_counter()

    def on_batch_end(self, **_):
        self.stamps.append(time.perf_counter())
        return len(self.stamps) >= self.steps or (
            len(self.stamps) >= self.min_steps and self.stamps[-1] - self.start > self.budget_s)


def trainer_run(model, loaders, batch: int, steps: int, device, work: Path, tag: str,
                budget: dict) -> dict:
    """cnnlab's train() with TrainConfig defaults on given loaders: batch-end stamps, settings."""
    from cnnlab.train.config import TrainConfig
    from cnnlab.train.run import train

    cfg = TrainConfig(model=tag, batch_size=batch, epochs=1, quiet=True, out_dir=str(work),
                      name=f"{tag}-{time.time_ns()}", device=str(device))
    stamper = StampAndStop(steps, **budget)
    result = train(cfg, model=model, loaders=loaders, callbacks=[stamper])
    env = result.summary["environment"]
    return {"stamps": stamper.stamps, "precision": env["precision"],
            "channels_last": env["channels_last"], "threads": env["threads"]}


def in_memory_loaders(x, y, batch: int, num_classes: int):
    from cnnlab.train.batches import Loaders, TensorBatches

    classes = [str(i) for i in range(num_classes)]
    return Loaders(TensorBatches(x, y, batch, shuffle=True, drop_last=True), None, None, classes)


def budget(args) -> dict:
    return {"budget_s": args.budget_s, "min_steps": args.warmup + args.window}


def bench_model(label, name, kwargs, size, batch, args, device, work, ceiling) -> dict:
    batch = max(1, int(batch * args.batch_scale))
    steps = args.warmup + args.repeats * args.window
    x, y = random_data(batch * steps, size, kwargs["num_classes"])
    model = build(name, kwargs, device)
    macs = forward_macs(model, (3, size, size))
    gflop_per_img = 6 * macs / 1e9
    _, stamps = plain_loop(model, x, y, batch, steps, device, **budget(args))
    plain = window_rates(stamps, batch, args.warmup, args.window)
    model = build(name, kwargs, device)  # fresh weights: the trainer starts where plain did
    loaders = in_memory_loaders(x, y, batch, kwargs["num_classes"])
    tr = trainer_run(model, loaders, batch, steps, device, work, label, budget(args))
    trainer = window_rates(tr["stamps"], batch, args.warmup, args.window)
    p, t = statistics.median(plain), statistics.median(trainer)
    out = {"image_size": size, "batch_size": batch, "forward_macs": macs,
           "plain_img_s": summarise(plain), "trainer_img_s": summarise(trainer),
           "trainer_settings": {k: tr[k] for k in ("precision", "channels_last", "threads")},
           "plain_gflop_s": round(p * gflop_per_img, 1),
           "trainer_gflop_s": round(t * gflop_per_img, 1),
           "trainer_over_plain": round(t / p, 3),
           "trainer_over_bf16_ceiling": round(t * gflop_per_img / ceiling["bf16"], 3),
           "trainer_over_fp32_ceiling": round(t * gflop_per_img / ceiling["fp32"], 3)}
    if args.data and size == 32:
        out["end_to_end"] = end_to_end(name, kwargs, batch, args, device, work, label, t)
    return out


def end_to_end(name, kwargs, batch, args, device, work, label, in_memory: float) -> dict:
    """The trainer on the real JPEG archive: decode once (timed), then timed training batches."""
    from cnnlab.train.config import TrainConfig
    from cnnlab.train.run import build_loaders

    steps = args.warmup + args.repeats * args.window
    cfg = TrainConfig(model=name, data=args.data, batch_size=batch, quiet=True)
    t0 = time.perf_counter()
    loaders = build_loaders(cfg, 32)
    decode_s = time.perf_counter() - t0
    loaders.val = loaders.test = None  # only training batches are timed
    model = build(name, kwargs, device)
    tr = trainer_run(model, loaders, batch, steps, device, work, f"{label}-jpeg", budget(args))
    rates = window_rates(tr["stamps"], batch, args.warmup, args.window)
    med = statistics.median(rates)
    return {"data": str(args.data), "train_images": loaders.info.get("train"),
            "decode_and_load_s": round(decode_s, 1), "img_s": summarise(rates),
            "over_in_memory": round(med / in_memory, 3)}


LEVERS = [
    # (label, plain_loop keyword changes, batch size (times --batch-scale), threads or None for
# torch's default)
    ("plain fp32 NCHW (baseline)", {}, 128, None),
    ("bf16 autocast", {"precision": "bf16"}, 128, None),
    ("channels_last", {"channels_last": True}, 128, None),
    ("bf16 + channels_last", {"precision": "bf16", "channels_last": True}, 128, None),
    ("torch.compile", {"compile_model": True}, 128, None),
    ("batch {b}", {}, 64, None),
    ("batch {b}", {}, 256, None),
    ("1 thread", {}, 128, 1),
]


def bench_levers(args, device, macs: int) -> list[dict]:
    """Each lever alone on the CIFAR ResNet-18's plain loop; ratios against the baseline row."""
    import torch

    label, name, kwargs, size, _ = MODELS[0]
    rows, base = [], None
    for lever, opts, batch, threads in LEVERS:
        batch = max(1, int(batch * args.batch_scale))
        if opts.get("compile_model") and not args.compile:
            rows.append({"lever": lever, "skipped": "pass --compile (compiling takes minutes)"})
            continue
        if threads is not None and device.type != "cpu":
            continue
        steps = args.warmup + args.repeats * args.window
        x, y = random_data(batch * steps, size, kwargs["num_classes"])
        model = build(name, kwargs, device)
        before = torch.get_num_threads()
        if threads is not None:
            torch.set_num_threads(threads)
        try:
            start, stamps = plain_loop(model, x, y, batch, steps, device, **opts, **budget(args))
        finally:
            torch.set_num_threads(before)
        rates = window_rates(stamps, batch, args.warmup, args.window)
        med = statistics.median(rates)
        base = base or med
        row = {"lever": lever.format(b=batch), "batch_size": batch,
               "threads": threads or before,
               "img_s": summarise(rates), "gflop_s": round(med * 6 * macs / 1e9, 1),
               "over_baseline": round(med / base, 3)}
        if opts.get("compile_model"):
            row["first_step_s_incl_compile"] = round(stamps[0] - start, 1)
        rows.append(row)
    return rows


def main(argv=None) -> int:
    import numpy as np
    import torch

    import cnnlab
    from cnnlab.train.loop import bf16_supported
    from cnnlab.train.run import resolve_device

    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true",
                   help="few steps per measurement (1 warm-up, 3 windows of 1 step): < 3 minutes")
    p.add_argument("--warmup", type=int, default=None, help="untimed steps first (default 2)")
    p.add_argument("--window", type=int, default=None, help="steps per timed window (default 3)")
    p.add_argument("--repeats", type=int, default=None, help="timed windows (default 5)")
    p.add_argument("--models", nargs="+", default=[m[0] for m in MODELS],
                   choices=[m[0] for m in MODELS])
    p.add_argument("--no-levers", dest="levers", action="store_false",
                   help="skip the one-lever-at-a-time table")
    p.add_argument("--compile", action="store_true", help="include the torch.compile lever")
    p.add_argument("--data", default=None, nargs="?", const=str(DATA),
                   help=f"also end to end on a JPEG archive (default path: {DATA})")
    p.add_argument("--batch-scale", type=float, default=None,
                   help="multiply every batch size by this (default 1; --quick: 1/8)")
    p.add_argument("--budget-s", type=float, default=None,
                   help="stop a measurement after this many seconds once it has one timed "
                        "window (default: none; --quick: 8)")
    p.add_argument("--matmul-n", type=int, default=2048,
                   help="largest matmul size; smaller where one product would take > 0.3 s "
                        "(emulated bf16, a loaded machine)")
    p.add_argument("--device", default="auto", help="auto (cuda if available), cpu, cuda, mps")
    args = p.parse_args(argv)
    # --quick: 1/8 of each batch size (so a step takes seconds, not tens of seconds, on 2
    # loaded cores) and at most ~--budget-s per measurement
    quick = (dict(warmup=1, window=1, repeats=3, batch_scale=0.125, budget_s=8.0) if args.quick
             else dict(warmup=2, window=3, repeats=5, batch_scale=1.0, budget_s=float("inf")))
    for k, v in quick.items():
        if getattr(args, k) is None:
            setattr(args, k, v)
    if args.data and not Path(args.data).exists():
        p.error(f"--data {args.data!r} does not exist; pass the CIFAR-10 JPEG archive")
    device = resolve_device(args.device)

    out = {"benchmark": "train_throughput", "cnnlab": cnnlab.__version__,
           "torch": str(torch.__version__), "numpy": np.__version__,
           "python": platform.python_version(), "machine": platform.machine(),
           "processor": platform.processor(), "device": str(device),
           "cpu_capability": torch.backends.cpu.get_cpu_capability(),
           "cpus": len(os.sched_getaffinity(0)), "torch_threads": torch.get_num_threads(),
           "mkldnn_bf16": bool(torch.ops.mkldnn._is_mkldnn_bf16_supported()),
           "bf16_supported_for_cnnlab": bf16_supported(device),
           "load_avg_before": [round(v, 2) for v in os.getloadavg()],
           "warmup": args.warmup, "window": args.window, "repeats": args.repeats,
           "seed": 0, "quick": args.quick}
    if device.type == "cuda":
        out["device_name"] = torch.cuda.get_device_name(device)
    t_start = time.perf_counter()
    out["matmul"] = {"n": args.matmul_n,
                     "fp32_gflop_s": matmul_gflops(torch.float32, args.matmul_n, device, 5),
                     "bf16_gflop_s": matmul_gflops(torch.bfloat16, args.matmul_n, device, 5)}
    out["batch_scale"] = args.batch_scale
    out["budget_s"] = None if args.budget_s == float("inf") else args.budget_s
    ceiling = {"fp32": out["matmul"]["fp32_gflop_s"]["median"],
               "bf16": out["matmul"]["bf16_gflop_s"]["median"]}
    out["models"] = {}
    with tempfile.TemporaryDirectory(prefix="cnnlab-train-bench-") as work:
        for label, name, kwargs, size, batch in MODELS:
            if label in args.models:
                out["models"][label] = bench_model(label, name, kwargs, size, batch, args,
                                                   device, Path(work), ceiling)
    if args.levers:
        macs = forward_macs(build(MODELS[0][1], MODELS[0][2], device), (3, 32, 32))
        out["levers_resnet18_cifar"] = bench_levers(args, device, macs)
    out["seconds"] = round(time.perf_counter() - t_start, 1)
    out["load_avg_after"] = [round(v, 2) for v in os.getloadavg()]
    print(json.dumps(out, indent=1))

    print(f"ceiling ({device}, {out['cpu_capability']}): fp32 matmul {ceiling['fp32']:.0f} "
          f"GFLOP/s (n={out['matmul']['fp32_gflop_s']['n']}), bf16 {ceiling['bf16']:.1f} GFLOP/s "
          f"(n={out['matmul']['bf16_gflop_s']['n']}); load avg "
          f"{out['load_avg_before'][0]} -> {out['load_avg_after'][0]}")
    for label, r in out["models"].items():
        pl, tr, s = r["plain_img_s"], r["trainer_img_s"], r["trainer_settings"]
        line = (f"{label} {r['image_size']}px b{r['batch_size']}: plain {pl['median']:.1f} img/s "
                f"({pl['min']:.1f}..{pl['max']:.1f}, {r['plain_gflop_s']:.0f} GFLOP/s); trainer "
                f"[{s['precision']}, cl={s['channels_last']}, {s['threads']} thr] "
                f"{tr['median']:.1f} img/s ({tr['min']:.1f}..{tr['max']:.1f}, "
                f"{r['trainer_gflop_s']:.0f} GFLOP/s) = {r['trainer_over_plain']:.2f}x plain, "
                f"{100 * r['trainer_over_bf16_ceiling']:.0f}% of bf16 matmul, "
                f"{100 * r['trainer_over_fp32_ceiling']:.0f}% of fp32 matmul")
        if "end_to_end" in r:
            e = r["end_to_end"]
            line += (f"; JPEG end to end {e['img_s']['median']:.1f} img/s "
                     f"({100 * e['over_in_memory']:.0f}% of in-memory; decode+load "
                     f"{e['decode_and_load_s']:.0f} s)")
        print(line)
    if args.levers:
        print("lever (resnet18_cifar, plain loop)  img/s median (min..max)  GFLOP/s  x baseline")
        for r in out["levers_resnet18_cifar"]:
            if "skipped" in r:
                print(f"  {r['lever']:<28} skipped: {r['skipped']}")
                continue
            i = r["img_s"]
            extra = (f"  (first step incl. compile {r['first_step_s_incl_compile']} s)"
                     if "first_step_s_incl_compile" in r else "")
            print(f"  {r['lever']:<28} {i['median']:7.1f} ({i['min']:.1f}..{i['max']:.1f})"
                  f"  {r['gflop_s']:6.0f}  {r['over_baseline']:.2f}x{extra}")
    print(f"{args.repeats} windows x {args.window} steps after {args.warmup} warm-up, "
          f"{out['seconds']:.0f} s in all")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
