"""Does torch.compile pay off for training on this machine? Eager vs `model.compile()` training
steps (forward, backward, momentum SGD) on random data, channels_last fp32, the same process.

Prints one JSON object, then a one-line summary. The answer decides TrainConfig.compile's
default (off unless a model gains here); see benchmarks/README.md.

    python benchmarks/compile_bench.py [--threads 2] [--steps 15]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time


def measure(name: str, size: int, batch: int, compiled: bool, steps: int) -> dict:
    import torch
    import torch.nn.functional as F

    from cnnlab import create_model

    torch.manual_seed(0)
    model = create_model(name, num_classes=10).to(memory_format=torch.channels_last)
    if compiled:
        model.compile()
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    chans = getattr(model, "in_chans", 1 if name.startswith("lenet") else 3)
    x = torch.randn(batch, chans, size, size).to(memory_format=torch.channels_last)
    y = torch.randint(0, 10, (batch,))

    def step():
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    t0 = time.perf_counter()
    step(), step()                       # compilation (or eager warm-up) happens here
    warmup = time.perf_counter() - t0
    times = []
    for _ in range(steps):
        t = time.perf_counter()
        step()
        times.append(time.perf_counter() - t)
    return {"warmup_s": round(warmup, 2), "img_per_s": round(batch / statistics.median(times), 1)}


def main(argv=None) -> int:
    import torch

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--steps", type=int, default=15)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    out = {"threads": args.threads, "torch": torch.__version__, "models": {}}
    for name, size, batch in [("resnet20", 32, 128), ("lenet5", 32, 64)]:
        eager = measure(name, size, batch, False, args.steps)
        comp = measure(name, size, batch, True, args.steps)
        out["models"][name] = {"eager": eager, "compile": comp,
                               "speedup": round(comp["img_per_s"] / eager["img_per_s"], 2)}
    print(json.dumps(out, indent=2))
    print("torch.compile speedup: " + ", ".join(
        f"{n} {m['speedup']}x (compile {m['compile']['warmup_s']} s)"
        for n, m in out["models"].items()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
