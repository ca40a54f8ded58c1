"""Full run of the NumPy reference LeNet-5 on the embedded digits: test accuracy and time over seeds.

The target (issue 7): >= 95% test accuracy in under 2 minutes on 2 CPU cores, with every layer,
gradient and update in plain NumPy. Prints one JSON document (hardware, load, versions, config,
per-seed results, mean and standard deviation) and then a one-line summary.

    python benchmarks/reference_lenet.py                    # 3 seeds, the CLI's defaults
    python benchmarks/reference_lenet.py --seeds 5 --optimizer momentum --lr 0.03
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time

import numpy as np


def main(argv=None) -> int:
    from cnnlab.reference.train import ReferenceTrainConfig

    d = ReferenceTrainConfig()
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", type=int, default=3, help="runs, with seeds 0..N-1 (default 3)")
    ap.add_argument("--epochs", type=int, default=d.epochs)
    ap.add_argument("--optimizer", default=d.optimizer)
    ap.add_argument("--lr", type=float, default=None)
    ap.add_argument("--batch-size", type=int, default=d.batch_size)
    ap.add_argument("--schedule", default=d.schedule)
    ap.add_argument("--blas-threads", type=int, default=1)
    args = ap.parse_args(argv)

    from threadpoolctl import threadpool_limits

    from cnnlab.data.digits import load_digits
    from cnnlab.reference.train import fit_lenet

    data = load_digits(image_size=32)
    load_before = os.getloadavg()
    runs = []
    for seed in range(args.seeds):
        cfg = ReferenceTrainConfig(epochs=args.epochs, lr=args.lr, batch_size=args.batch_size,
                                   optimizer=args.optimizer, seed=seed, schedule=args.schedule)
        with threadpool_limits(limits=args.blas_threads, user_api="blas"):
            _, report = fit_lenet(cfg, data=data)
        runs.append({"seed": seed, "test_accuracy": report["test_accuracy"], "seconds": report["seconds"],
                     "per_epoch_test_accuracy": [h["test_accuracy"] for h in report["history"]]})
        print(f"seed {seed}: {100 * report['test_accuracy']:.1f}% in {report['seconds']:.1f} s",
              file=sys.stderr, flush=True)

    acc = np.array([r["test_accuracy"] for r in runs]) * 100
    sec = np.array([r["seconds"] for r in runs])
    result = {
        "benchmark": "reference_lenet",
        "hardware": {"machine": platform.machine(), "processor": platform.processor() or "unknown",
                     "cpu_count": os.cpu_count(), "load_average_1_5_15_before": load_before,
                     "load_average_1_5_15_after": os.getloadavg()},
        "versions": {"python": platform.python_version(), "numpy": np.__version__},
        "config": {**report["config"], "seed": list(range(args.seeds)), "blas_threads": args.blas_threads},
        "n_train": report["n_train"], "n_test": report["n_test"], "params": report["params"],
        "runs": runs,
        "test_accuracy_percent": {"mean": float(acc.mean()), "std": float(acc.std(ddof=1)) if len(acc) > 1 else 0.0,
                                  "min": float(acc.min())},
        "train_seconds": {"mean": float(sec.mean()), "max": float(sec.max())},
    }
    print(json.dumps(result, indent=2))
    print(f"NumPy LeNet-5 on digits ({report['config']['optimizer']}, {args.epochs} epochs): "
          f"{acc.mean():.1f} ± {result['test_accuracy_percent']['std']:.1f}% test accuracy over {args.seeds} seeds "
          f"(min {acc.min():.1f}%), {sec.mean():.0f} s per run (max {sec.max():.0f} s) on {os.cpu_count()} CPUs, "
          f"load {load_before[0]:.1f}")
    return 0


if __name__ == "__main__":
    t0 = time.perf_counter()
    rc = main()
    print(f"total {time.perf_counter() - t0:.0f} s", file=sys.stderr)
    sys.exit(rc)
