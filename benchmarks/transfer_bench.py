"""Transfer learning on a small target task (issue 8): from scratch vs linear probe vs top-layer
fine-tune vs full fine-tune, on the same split, epochs, optimiser and augmentation.

The source network is a separate `cnnlab train` run; the issue's pretraining is ResNet-18 (ImageNet
stem) at 128 px on Imagenette train:

    cnnlab train --data ../shared/data/imagenette2-160.tar.gz --model resnet18 --image-size 128 \\
        --epochs 5 --batch-size 64 --lr 0.1 --schedule onecycle --label-smoothing 0.1 \\
        --name r18-imagenette-128

The target task is CIFAR-10 with `--per-class` training images per class (seeded, stratified,
from train/), `--val-per-class` more from train/ for the per-epoch validation (never test/), and
`--test-per-class` test/ images per class (0: all 10,000), resized to `--image-size`. Only the
chosen files are decoded. Every strategy gets the same epochs, optimiser, schedule and
augmentation; the new classifier (and every layer from scratch) trains at `--lr`, pretrained
layers that train at `--backbone-lr-mult` times it. Fine-tuning goes through
:func:`cnnlab.transfer.finetune.plan` and :func:`~cnnlab.transfer.finetune.finetune` (what
`cnnlab finetune` runs), with the source's normalisation; "scratch" is
:func:`cnnlab.train.run.train` on the same architecture, randomly initialised, with the target's
statistics. Reported accuracy is the final epoch's on the test
images (no checkpoint selection). Each run also records which layer groups changed their weights
and which their BatchNorm statistics, so a linear probe that moved a backbone weight shows up. Prints one JSON object, a summary line and a table.

    python benchmarks/transfer_bench.py --source runs/r18-imagenette-128 --threads 1
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import json
import shutil
import statistics
import tempfile
import time
from pathlib import Path

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "cifar10-jpg.tar.gz"
STRATEGIES = ("scratch", "linear-probe", "top-k-layers", "full")


def select_split(data, per_class: int, val_per_class: int, test_per_class: int, seed: int = 0):
    """A cnnlab.data.SplitSpec of `per_class` train and `val_per_class` val images per class drawn
    from train/, and `test_per_class` (0: all) from test/, seeded; nothing is decoded."""
    import numpy as np

    from cnnlab.data.folder import SplitSpec, read_layout
    from cnnlab.errors import DataError

    _, layout, _ = read_layout(data)
    if not {"train", "test"} <= set(layout.groups):
        raise DataError(f"{data} needs train/ and test/ class folders (as cifar10-jpg.tar.gz); "
                        f"it has {sorted(layout.groups)}")
    files = {s: [] for s in ("train", "val", "test")}
    labels = {s: [] for s in files}
    rng = np.random.default_rng(seed)
    for y, c in enumerate(layout.classes):
        pool, test = sorted(layout.groups["train"][c]), sorted(layout.groups["test"][c])
        need = per_class + val_per_class
        if len(pool) < need or not test:
            raise DataError(f"class {c!r} has {len(pool)} train/ and {len(test)} test/ images; "
                            f"need {need} in train/ (--per-class {per_class} + --val-per-class "
                            f"{val_per_class}) and at least one in test/")
        order = rng.permutation(len(pool))
        picks = {"train": [pool[i] for i in order[:per_class]],
                 "val": [pool[i] for i in order[per_class:need]],
                 "test": test if not test_per_class else
                 [test[i] for i in rng.permutation(len(test))[:test_per_class]]}
        for s, ps in picks.items():
            files[s] += sorted(ps)
            labels[s] += [y] * len(ps)
    return SplitSpec(layout.classes, files, labels, "subset", seed, root=layout.root)


def copy_loaders(loaders, seed: int):
    """Loaders sharing the decoded tensors, with their own normalisation and shuffle seed."""
    out = copy.copy(loaders)
    out.train, out.val, out.test = (copy.copy(b) if b is not None else None
                                    for b in (loaders.train, loaders.val, loaders.test))
    out.train.seed = seed
    return out


def changed_groups(before: dict, model, groups) -> tuple[list[str], list[str]]:
    """(groups whose weights differ from `before`, groups whose buffers, i.e. BatchNorm running
    statistics, differ): a frozen group can keep its weights and still adapt its statistics."""
    import torch

    owner = {m: g.name for g in groups.values() for m in g.modules}
    owner.update({p: g.name for g in groups.values() for p in g.params})
    params = {n for n, _ in model.named_parameters()}
    changed = {True: set(), False: set()}
    for key, value in model.state_dict().items():
        if key in before and not torch.equal(before[key], value.detach().cpu()):
            parts = key.split(".")
            # the longest module path that a group owns: layer4.0.bn1.running_mean -> layer4.0.bn1
            name = next((owner[".".join(parts[:i])] for i in range(len(parts), 0, -1)
                         if ".".join(parts[:i]) in owner), key)
            changed[key in params].add(name)
    return [g for g in groups if g in changed[True]], [g for g in groups if g in changed[False]]


def run_one(strategy: str, cfg, source, loaders, top_k: int, backbone_mult: float) -> dict:
    """Train one strategy on copies of `loaders`; test accuracy, seconds, parameter counts.
    Pretrained layers that train run at `backbone_mult` x the rate of the new classifier."""
    from cnnlab.train.run import train
    from cnnlab.transfer.finetune import finetune, plan

    t0 = time.perf_counter()
    before = None
    if strategy == "scratch":
        result = train(cfg, loaders=copy_loaders(loaders, cfg.seed))
    else:
        p = plan(cfg, source, strategy, top_k=top_k, lr_mult={"backbone": backbone_mult},
                 loaders=copy_loaders(loaders, cfg.seed))
        groups = p.prepared.groups
        before = {k: v.detach().clone() for k, v in p.prepared.model.state_dict().items()}
        result = finetune(p)
    model = result.model
    trainable = sum(q.numel() for q in model.parameters() if q.requires_grad)
    shutil.rmtree(result.run_dir, ignore_errors=True)   # checkpoints: 45 MB a run for ResNet-18
    return {"strategy": strategy, "seed": cfg.seed, "test_acc": result.test.get("acc1"),
            "final_val_acc": result.history[-1].get("val_acc1"),
            "train_seconds": result.summary["seconds"],
            "wall_seconds": time.perf_counter() - t0, "trainable_params": trainable,
            "total_params": sum(q.numel() for q in model.parameters()),
            **dict(zip(("changed_weights", "changed_bn_stats"),
                       (None, None) if before is None else changed_groups(before, model, groups))),
            "environment": result.summary["environment"]}   # versions, threads, CPU, device


def summarise(runs: list[dict]) -> dict:
    """Per strategy: mean and std of test accuracy, mean seconds, parameters."""
    out = {}
    for s in dict.fromkeys(r["strategy"] for r in runs):
        rs = [r for r in runs if r["strategy"] == s]
        acc = [r["test_acc"] for r in rs]
        out[s] = {"test_acc_mean": statistics.fmean(acc), "test_acc_std": statistics.pstdev(acc),
                  "runs": len(rs), "train_seconds_mean": statistics.fmean(
                      r["train_seconds"] for r in rs),
                  "trainable_params": rs[0]["trainable_params"],
                  "total_params": rs[0]["total_params"]}
    return out


def table(summary: dict) -> str:
    """The summary as a markdown table."""
    rows = ["| strategy | test accuracy | train s / run | trainable params |",
            "|---|---|---|---|"]
    for s, v in summary.items():
        rows.append(f"| {s} | {100 * v['test_acc_mean']:.1f} ± {100 * v['test_acc_std']:.1f}% "
                    f"({v['runs']} seed{'s' * (v['runs'] > 1)}) | {v['train_seconds_mean']:.0f} | "
                    f"{v['trainable_params']:,} of {v['total_params']:,} |")
    return "\n".join(rows)


def main(argv=None) -> int:
    import torch

    from cnnlab.train.config import TrainConfig
    from cnnlab.train.run import folder_loaders
    from cnnlab.transfer.source import load_source

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--source", required=True, metavar="RUN_OR_WEIGHTS",
                    help="the pretrained `cnnlab train` run (or its .safetensors)")
    ap.add_argument("--data", default=str(DEFAULT_DATA),
                    help="target: a folder or archive with train/ and test/ class folders")
    ap.add_argument("--per-class", type=int, default=50)
    ap.add_argument("--val-per-class", type=int, default=10)
    ap.add_argument("--test-per-class", type=int, default=100, help="0: all of test/")
    ap.add_argument("--data-seed", type=int, default=0, help="seeds the image selection")
    ap.add_argument("--image-size", type=int, default=64)
    ap.add_argument("--strategies", default=",".join(STRATEGIES))
    ap.add_argument("--top-k", type=int, default=2, help="top-k-layers: groups that train")
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--lr", type=float, default=0.05,
                    help="rate of every layer from scratch and of the new classifier")
    ap.add_argument("--backbone-lr-mult", type=float, default=0.1,
                    help="pretrained layers that train run at this fraction of --lr")
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--seeds", type=int, default=2)
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    ap.add_argument("--out", default=None, help="also write the JSON here")
    args = ap.parse_args(argv)
    strategies = [s.strip() for s in args.strategies.split(",") if s.strip()]
    unknown = [s for s in strategies if s not in STRATEGIES]
    if unknown:
        ap.error(f"unknown strategies {unknown}; choose from {', '.join(STRATEGIES)}")
    if args.threads:
        torch.set_num_threads(args.threads)

    t0 = time.perf_counter()
    src = load_source(args.source)
    spec = select_split(args.data, args.per_class, args.val_per_class, args.test_per_class,
                        args.data_seed)
    runs = []
    with tempfile.TemporaryDirectory(prefix="transfer_bench-") as tmp:
        split_file = spec.save(Path(tmp) / "split.json")
        # random_shift 4 and flips: the CIFAR recipe's augmentation, the same for every strategy
        base = TrainConfig(model=src.model_name, data=str(args.data), image_size=args.image_size,
                           epochs=args.epochs, lr=args.lr, batch_size=args.batch_size,
                           random_shift=4, monitor_every=0, out_dir=tmp, quiet=True)
        loaders = folder_loaders(args.data, args.image_size, args.batch_size,
                                 one_channel_if_grey=src.in_chans == 1, shift=4,
                                 split_file=split_file)
        t_data = time.perf_counter() - t0
        for seed in range(args.seeds):
            for s in strategies:
                cfg = dataclasses.replace(base, seed=seed)
                runs.append(run_one(s, cfg, args.source, loaders, args.top_k,
                                    args.backbone_lr_mult))
                r = runs[-1]
                print(f"{s} seed {seed}: test {100 * r['test_acc']:.1f}% in "
                      f"{r['train_seconds']:.0f} s", flush=True)
    summary = summarise(runs)
    result = {
        "source": {"weights": str(args.source), "model": src.model_name,
                   "image_size": src.image_size, "pretrained_on": src.data},
        "target": {"data": str(args.data), "image_size": args.image_size,
                   "per_class": args.per_class, "val_per_class": args.val_per_class,
                   "test_per_class": args.test_per_class or "all", "data_seed": args.data_seed,
                   "classes": loaders.classes, **{k: len(v) for k, v in spec.files.items()}},
        "budget": {"epochs": args.epochs, "lr": args.lr, "batch_size": args.batch_size,
                   "backbone_lr_mult": args.backbone_lr_mult,
                   "optimizer": base.optimizer, "schedule": base.schedule,
                   "weight_decay": base.weight_decay, "augmentation": "pad-crop 4 + hflip",
                   "top_k": args.top_k},
        "seeds": args.seeds, "data_seconds": t_data, "wall_seconds": time.perf_counter() - t0,
        "summary": summary, "runs": runs,
    }
    print(json.dumps(result, indent=2))
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=2))
    print("\n" + ", ".join(f"{s} {100 * v['test_acc_mean']:.1f}±{100 * v['test_acc_std']:.1f}%"
                           for s, v in summary.items())
          + f" ({args.seeds} seeds, {args.epochs} epochs, {result['wall_seconds']:.0f} s)")
    print(table(summary))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
