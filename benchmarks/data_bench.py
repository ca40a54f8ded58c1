"""Images per second of loading real data: first-epoch decode, then cached epochs; RSS; cache size.

Data sets (issue 4): CIFAR-10 (../shared/data/cifar10-jpg.tar.gz, 32 px JPEGs, loaded at 32) and
Imagenette (../shared/data/imagenette2-160.tar.gz, shorter side 160, cached at 160: the augment
chain then takes its 128 px random-resized crops from the full 160 px image. At 160 px the whole
train + val cache is (9,469 + 3,925) x 3 x 160 x 160 bytes = 1.03 GB, under the 1.2 GB target;
--imagenette-size 144 gives 0.83 GB). Read straight from the archives, as a user's
`--data x.tar.gz` would be.

Per data set and repeat, with a fresh cache folder (a temp dir, never inside the repository):

- list: reading the archive's member table (a full pass over a .tar.gz), once per run.
- decode: `load_image_dataset(..., cache_dir=...)` on a cold cache (listing memoised): hash the
  archive (cache key), read the members, decode + fit in worker processes, write the
  memory-mapped cache. Images/s.
- cache load: the same call again: the entry is found and memory-mapped (no decoding).
- cached epoch: a pass of shuffled batches gathered from the cached tensor and converted to
  float32 in [0, 1] (what a training loop's loader does each epoch). Images/s, twice: the first
  pass maps the cache's pages in (the file was just written, so they mostly come from the OS page
  cache, not the disk), the second finds them mapped.
- cached + augmented epoch: the same with the train-time chain of cnnlab.augment applied per
  batch (CIFAR: pad-4 crop + flip; Imagenette: 128 px random-resized crop + flip + colour
  jitter). Targets: >= 20,000 and >= 2,000 images/s.

Also: the cache's size on disk (and, with --limit, that size scaled to the full split), peak RSS
of this process and of its worker processes. Prints one JSON object, then a summary line per data
set. `--limit N` decodes an N-image stratified subset of the training split (a quick run; a
.tar.gz is still decompressed up to the last chosen member, so the decode rate of a subset is a
lower bound). Rates are mean +- standard deviation over --repeats; on a shared machine they
mostly measure the neighbours, so the load average is recorded too.

    python benchmarks/data_bench.py --limit 2000 --repeats 2
    python benchmarks/data_bench.py                     # full training splits (minutes)
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import statistics
import tempfile
import time
from pathlib import Path

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
SETS = {"cifar10": ("cifar10-jpg.tar.gz", 32), "imagenette": ("imagenette2-160.tar.gz", 160)}


def subset_split(path, limit: int | None, out: Path) -> tuple[str, int, int]:
    """Write a split file holding a stratified `limit`-image subset of the training split."""
    from cnnlab.data import DataConfig
    from cnnlab.data.dataset import plan
    from cnnlab.data.folder import SplitSpec

    _, _, spec, _ = plan(path, DataConfig())
    files, labels = spec.files["train"], spec.labels["train"]
    full = len(files)
    if limit is not None and limit < full:
        step = full / limit               # evenly spaced over a class-sorted list: stratified
        keep = [int(i * step) for i in range(limit)]
        files, labels = [files[i] for i in keep], [labels[i] for i in keep]
    sub = SplitSpec(spec.classes, {"train": files}, {"train": labels}, "folders", root=spec.root)
    sub.save(out)
    return str(out), len(files), full


def dir_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def cached_epoch(images, batch_size: int, seed: int) -> float:
    import torch

    g = torch.Generator().manual_seed(seed)
    order = torch.randperm(len(images), generator=g)
    t0 = time.perf_counter()
    for i in range(0, len(order), batch_size):
        x = images[order[i:i + batch_size]].float().div_(255)     # (B, C, S, S) float32
        assert x.shape[0] > 0
    return len(order) / (time.perf_counter() - t0)


def augmented_epoch(images, chain, batch_size: int, seed: int) -> float:
    """A cached epoch through the train-time augmentation chain (issue 4's speed target)."""
    import torch

    g = torch.Generator().manual_seed(seed)
    order = torch.randperm(len(images), generator=g)
    t0 = time.perf_counter()
    for i in range(0, len(order), batch_size):
        x = chain(images[order[i:i + batch_size]], generator=g).float().div_(255)
        assert x.shape[0] > 0
    return len(order) / (time.perf_counter() - t0)


def train_chain(name: str):
    """CIFAR: pad-4 crop + flip at 32 px; Imagenette: 128 px random-resized crop + flip + jitter."""
    from cnnlab.augment.compose import cifar_train, imagenet_train

    return cifar_train(32) if name == "cifar10" else imagenet_train(128)


def bench_set(name: str, path: Path, size: int, args, work: Path) -> dict:
    from cnnlab.data import DataConfig, archive, load_image_dataset
    from cnnlab.data.dataset import plan

    split_file, n, full = subset_split(path, args.limit, work / f"{name}-split.json")
    listing, decode, load, first_epoch, epoch, cache_bytes = [], [], [], [], [], 0
    augmented, chain = [], train_chain(name)
    for r in range(args.repeats):
        cache = work / f"{name}-cache-{r}"
        opts = dict(split_file=split_file, cache_dir=str(cache), num_workers=args.workers,
                    progress=False)
        archive._LISTINGS.clear()        # every repeat lists the archive again, like a new run
        t0 = time.perf_counter()
        plan(path, DataConfig(image_size=size, split_file=split_file))
        listing.append(time.perf_counter() - t0)       # the listing is now memoised: the
        t0 = time.perf_counter()                        # decode time below excludes it
        ds = load_image_dataset(path, size, "train", **opts)
        decode.append(len(ds) / (time.perf_counter() - t0))
        t0 = time.perf_counter()
        ds = load_image_dataset(path, size, "train", **opts)
        load.append(time.perf_counter() - t0)
        assert any("read from cache" in note for note in ds.skipped.notes)
        first_epoch.append(cached_epoch(ds.images, args.batch_size, r))   # maps pages in
        epoch.append(cached_epoch(ds.images, args.batch_size, r + 1))     # pages mapped
        augmented.append(augmented_epoch(ds.images, chain, args.batch_size, r + 2))
        cache_bytes = dir_bytes(cache)
        del ds
        shutil.rmtree(cache, ignore_errors=True)
    return {"archive": str(path), "image_size": size, "images": n, "train_split_images": full,
            "partial": n < full, "list_archive_s": spread(listing, 2),
            "decode_img_s": spread(decode), "cache_load_s": spread(load, 2),
            "cached_first_epoch_img_s": spread(first_epoch),
            "cached_epoch_img_s": spread(epoch),
            "cached_augmented_epoch_img_s": spread(augmented), "cache_bytes": cache_bytes,
            "cache_bytes_full_split_est": round(cache_bytes * full / max(n, 1))}


def spread(values, digits: int = 0) -> dict:
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return {"mean": round(statistics.mean(values), digits), "sd": round(sd, digits),
            "runs": len(values)}


def main(argv=None) -> int:
    import numpy as np
    import PIL
    import torch

    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--sets", nargs="+", default=list(SETS), choices=list(SETS))
    p.add_argument("--data-dir", default=str(DATA), help="folder holding the archives")
    p.add_argument("--limit", type=int, default=None, help="training images per set (default all)")
    p.add_argument("--repeats", type=int, default=1)
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--workers", type=int, default=None, help="decode processes (default: auto)")
    p.add_argument("--imagenette-size", type=int, default=160, choices=(128, 144, 160))
    p.add_argument("--cache-root", default=None,
                   help="where cache folders go (default: a temp dir, removed afterwards)")
    args = p.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="cnnlab-data-bench-", dir=args.cache_root))
    out = {"python": platform.python_version(), "torch": torch.__version__,
           "numpy": np.__version__, "pillow": PIL.__version__, "machine": platform.machine(),
           "cpus": len(os.sched_getaffinity(0)), "load_avg_before": os.getloadavg(),
           "limit": args.limit, "repeats": args.repeats, "batch_size": args.batch_size,
           "sets": {}}
    try:
        for name in args.sets:
            archive_name, size = SETS[name]
            if name == "imagenette":
                size = args.imagenette_size
            out["sets"][name] = bench_set(name, Path(args.data_dir) / archive_name, size, args,
                                          work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    kib = 1024   # ru_maxrss is in KiB on Linux
    out["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * kib / 1e6)
    out["peak_rss_workers_mb"] = round(
        resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * kib / 1e6)
    out["load_avg_after"] = os.getloadavg()
    print(json.dumps(out, indent=1))
    for name, r in out["sets"].items():
        d, e, f = r["decode_img_s"], r["cached_epoch_img_s"], r["cached_first_epoch_img_s"]
        a = r["cached_augmented_epoch_img_s"]
        part = " (partial)" if r["partial"] else ""
        print(f"{name} {r['image_size']}px, {r['images']:,} of {r['train_split_images']:,} train "
              f"images{part}: list {r['list_archive_s']['mean']:.1f} s; decode {d['mean']:,.0f} "
              f"± {d['sd']:,.0f} img/s; cached epoch {f['mean']:,.0f} ± {f['sd']:,.0f} img/s "
              f"first pass, {e['mean']:,.0f} ± {e['sd']:,.0f} second; augmented "
              f"{a['mean']:,.0f} ± {a['sd']:,.0f} img/s; cache "
              f"{r['cache_bytes'] / 1e6:,.0f} MB (full split est. "
              f"{r['cache_bytes_full_split_est'] / 1e6:,.0f} MB); peak RSS {out['peak_rss_mb']:,} "
              f"MB (+ workers {out['peak_rss_workers_mb']:,} MB); {d['runs']} run(s), "
              f"{out['cpus']} CPUs")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
