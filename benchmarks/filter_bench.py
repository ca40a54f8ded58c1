"""Speed of cnnlab.classic.filter2d against scipy.ndimage (and OpenCV when importable).

A 1024x1024 random image, kernels box 3/7/15, Gaussian sigma 2 (13 taps, 2*ceil(3 sigma)+1) and
Sobel-x, border 'reflect' everywhere. For each kernel it times:

  filter2d           our NumPy path, float64 (the separable path: two 1-D passes)
  filter2d f32       the same on a float32 image
  filter2d torch     a float32 CPU tensor through filter2d (it takes the NumPy route)
  conv2d             torch.nn.functional.conv2d with the full 2-D kernel (float32, zero border)
  scipy 2-D          scipy.ndimage.correlate with the full 2-D kernel
  scipy sep          scipy.ndimage.correlate1d twice with the same 1-D taps (scipy's best here)
  scipy special      uniform_filter for the box, sobel for Sobel (when scipy has one)
  opencv             cv2.sepFilter2D with the same taps, if cv2 imports

Prints one JSON document (hardware, load, versions, repeats, median and quartiles in ms,
max |difference| from scipy) and then a one-line summary: our time over the fastest SciPy time.
The target is a ratio of at most 2.

    python benchmarks/filter_bench.py                # 7 repeats
    python benchmarks/filter_bench.py --repeats 15 --size 2048
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time

import numpy as np


def _time(fn, repeats: int) -> dict:
    fn()                                                   # warm-up (allocations, imports)
    ts = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    q1, med, q3 = np.percentile(np.array(ts) * 1e3, [25, 50, 75])
    return {"median_ms": round(med, 2), "q1_ms": round(q1, 2), "q3_ms": round(q3, 2)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", type=int, default=1024, help="image side (default 1024)")
    ap.add_argument("--repeats", type=int, default=7, help="timed runs per case (default 7)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)

    import scipy
    import scipy.ndimage as ndi
    import torch
    import torch.nn.functional as F

    from cnnlab.classic import filter2d
    from cnnlab.classic import kernels as K

    try:
        import cv2
    except ImportError:
        cv2 = None

    rng = np.random.default_rng(args.seed)
    img = rng.random((args.size, args.size))
    img32 = img.astype(np.float32)
    t32 = torch.from_numpy(img32.copy())
    cases = {
        "box3": (K.box(3), lambda: ndi.uniform_filter(img, 3, mode="reflect")),
        "box7": (K.box(7), lambda: ndi.uniform_filter(img, 7, mode="reflect")),
        "box15": (K.box(15), lambda: ndi.uniform_filter(img, 15, mode="reflect")),
        "gaussian_sigma2": (K.gaussian(2.0), None),
        "sobel_x": (K.sobel_x(), lambda: ndi.sobel(img, axis=1, mode="reflect")),
    }
    load_before = os.getloadavg()
    results = {}
    for name, (k, special) in cases.items():
        col, row = k.factors
        ours = filter2d(img, k, border="reflect")
        scipy_2d = ndi.correlate(img, k.weights, mode="reflect")
        row_ = {
            "kernel": list(k.shape),
            "max_abs_diff_vs_scipy": float(np.abs(ours - scipy_2d).max()),
            "filter2d": _time(lambda: filter2d(img, k, border="reflect"), args.repeats),
            "filter2d_f32": _time(lambda: filter2d(img32, k, border="reflect"), args.repeats),
            "filter2d_torch": _time(lambda: filter2d(t32, k, border="reflect"), args.repeats),
            "conv2d": _time(lambda: F.conv2d(t32[None, None], torch.as_tensor(
                k.weights, dtype=torch.float32)[None, None], padding="same"), args.repeats),
            "scipy_2d": _time(lambda: ndi.correlate(img, k.weights, mode="reflect"), args.repeats),
            "scipy_sep": _time(lambda: ndi.correlate1d(ndi.correlate1d(
                img, row, axis=1, mode="reflect"), col, axis=0, mode="reflect"), args.repeats),
        }
        if special is not None:
            row_["scipy_special"] = _time(special, args.repeats)
        if cv2 is not None:
            row_["opencv"] = _time(lambda: cv2.sepFilter2D(
                img, -1, row, col, borderType=cv2.BORDER_REFLECT), args.repeats)
        fastest = min(v["median_ms"] for key, v in row_.items() if key.startswith("scipy"))
        row_["ratio_vs_fastest_scipy"] = round(row_["filter2d"]["median_ms"] / fastest, 2)
        results[name] = row_

    report = {
        "benchmark": "filter_bench",
        "hardware": {"machine": platform.machine(), "processor": platform.processor() or "unknown",
                     "cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(),
                     "load_average_1_5_15_before": load_before,
                     "load_average_1_5_15_after": os.getloadavg()},
        "versions": {"python": platform.python_version(), "numpy": np.__version__,
                     "scipy": scipy.__version__, "torch": torch.__version__,
                     "opencv": None if cv2 is None else cv2.__version__},
        "image": f"{args.size}x{args.size} float64, uniform [0, 1), seed {args.seed}",
        "border": "reflect",
        "repeats": args.repeats,
        "results": results,
    }
    print(json.dumps(report, indent=2))
    worst = max(r["ratio_vs_fastest_scipy"] for r in results.values())
    print(f"filter2d / fastest scipy on {args.size}x{args.size} (median of {args.repeats}): "
          + ", ".join(f"{n} {r['ratio_vs_fastest_scipy']}x" for n, r in results.items())
          + f"; worst {worst}x (target <= 2): {'OK' if worst <= 2 else 'MISSED'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
