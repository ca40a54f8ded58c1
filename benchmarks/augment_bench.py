"""Images per second of the batched augmentation chains on synthetic uint8 batches.

Two chains, as in issue 4: CIFAR-like (32 px uint8, random crop with padding 4 + flip; target
>= 20,000 img/s) and Imagenette-like (160 px uint8 -> 128 random-resized crop + flip + colour
jitter; target >= 2,000 img/s). Synthetic pixels: the transforms' cost does not depend on content.
Each chain runs `--repeats` timed passes over `--batches` batches after one warm-up pass; the
result is mean +- standard deviation over passes. Two clocks: wall time, and the CPU time this
process got (on a shared, overloaded machine wall time mostly measures the neighbours; images per
CPU-second times the core count is what an idle machine would give with one chain per core, e.g.
two DataLoader workers on 2 cores). Prints one JSON object, then a summary line.

    python benchmarks/augment_bench.py --threads 1          # per core, and the 2-core estimate
    python benchmarks/augment_bench.py --threads 2 --repeats 5 --batch-size 256
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time


def chains():
    from cnnlab.augment import ColorJitter, Compose, HorizontalFlip, RandomCrop, RandomResizedCrop

    return {
        "cifar": (32, Compose([RandomCrop(32, padding=4), HorizontalFlip()]), 20_000),
        "imagenette": (160, Compose([RandomResizedCrop(128), HorizontalFlip(),
                                     ColorJitter(0.4, 0.4, 0.4)]), 2_000),
    }


def time_chain(tf, size: int, batch_size: int, batches: int, repeats: int, seed: int):
    import torch

    g = torch.Generator().manual_seed(seed)
    data = [torch.randint(0, 256, (batch_size, 3, size, size), dtype=torch.uint8, generator=g)
            for _ in range(min(batches, 4))]
    for x in data:                                   # warm-up
        tf(x, generator=g)
    wall, cpu = [], []
    for _ in range(repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        for i in range(batches):
            tf(data[i % len(data)], generator=g)
        wall.append(batches * batch_size / (time.perf_counter() - t0))
        cpu.append(batches * batch_size / max(1e-9, time.process_time() - c0))
    return wall, cpu


def spread(rates) -> tuple[int, int]:
    return round(statistics.mean(rates)), round(statistics.stdev(rates)) if len(rates) > 1 else 0


def main(argv=None) -> int:
    import torch

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    ap.add_argument("--batch-size", type=int, default=256)
    ap.add_argument("--batches", type=int, default=20)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--only", choices=("cifar", "imagenette"), default=None)
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)     # a script, not library code: may set threads
    out = {"hardware": {"machine": platform.machine(), "processor": platform.processor(),
                        "cpus": os.cpu_count(), "torch_threads": torch.get_num_threads()},
           "versions": {"python": platform.python_version(), "torch": torch.__version__},
           "seed": args.seed, "batch_size": args.batch_size, "batches": args.batches,
           "repeats": args.repeats, "results": {}}
    for name, (size, tf, target) in chains().items():
        if args.only and name != args.only:
            continue
        wall, cpu = time_chain(tf, size, args.batch_size, args.batches, args.repeats, args.seed)
        (wm, ws), (cm, cs) = spread(wall), spread(cpu)
        threads = torch.get_num_threads()
        # one chain per core (loader workers): per-CPU-second rate x 2 cores, if single-threaded
        est = cm * 2 if threads == 1 else None
        out["results"][name] = {
            "chain": repr(tf), "input": f"uint8 {args.batch_size}x3x{size}x{size}",
            "wall_img_per_s": wm, "wall_std": ws, "img_per_cpu_s": cm, "cpu_std": cs,
            "two_core_estimate": est, "target": target,
            "meets_target_wall": wm >= target,
            "meets_target_estimate": None if est is None else est >= target}
    out["load_average"] = os.getloadavg()
    print(json.dumps(out, indent=2))
    parts = []
    for k, r in out["results"].items():
        est = r["two_core_estimate"]
        parts.append(f"{k}: wall {r['wall_img_per_s']:,} ± {r['wall_std']:,} img/s, "
                     f"{r['img_per_cpu_s']:,} ± {r['cpu_std']:,} img/CPU-s"
                     + (f" (2-core est. {est:,})" if est else "") + f", target {r['target']:,}")
    print("; ".join(parts) + f"; {args.repeats} runs, {torch.get_num_threads()} thread(s), "
          f"load avg {out['load_average'][0]:.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
