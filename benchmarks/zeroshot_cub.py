"""Zero-shot classification from text on CUB-200-2010 (Ba, Swersky, Fidler & Salakhutdinov,
ICCV 2015): the fc, conv and fc+conv models and the ridge / CCA baselines on one split, ROC-AUC
next to the paper's numbers, with the backbone and the wall time.

The image features come from a zoo backbone and weights you supply (--backbone, --weights: a
weights file, or a `cnnlab train` run directory, whose input size and normalisation are then
used); the paper used ImageNet-trained VGG-19 (fc7 and conv5_3). No ImageNet weights can be
downloaded here: pass a backbone pretrained on data that excludes the unseen classes (Imagenette:
no bird class), and optionally `--finetune-seen EPOCHS` to fine-tune it on the seen classes'
training images first (never on the held-out seen images the seen AUC uses, never on an
unseen-class image or article). The JSON's "backbone" says which images trained it. Features are
extracted once; each model is then fitted with `--seeds` seeds (mean +- std reported). Prints one
JSON object, then a table.

    python benchmarks/zeroshot_cub.py --weights /work/runs/runs/r18-imagenette-128 --finetune-seen 3
    python benchmarks/zeroshot_cub.py --backbone lenet5 --feature-layers "" --image-size 32 \
        --seeds 1 --epochs 5
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from dataclasses import replace
from pathlib import Path

DEFAULT_DATA = (Path(__file__).resolve().parents[2] / "shared" / "data"
                / "cub200-2010-zeroshot.tar.gz")

# Ba et al. 2015, Table 1 (CUB-200-2010, 160 seen / 40 unseen, TF-IDF of Wikipedia articles)
PAPER = {"fc": (0.82, 0.96), "conv": (0.73, 0.96), "fc+conv": (0.80, 0.987),
         "baseline_ridge": (0.59, None)}   # their baseline: Elhoseiny et al. 2013 domain adaptation


def paired(model_runs: list[dict], baseline_runs: list[dict], resamples: int = 10_000) -> dict:
    """Per unseen class, the model's AUC (mean over seeds) minus the baseline's: the mean gap,
    the classes won, a 95% bootstrap interval over classes and a Wilcoxon signed-rank p-value.
    With 40 unseen classes a gap in the mean alone can be a few lucky classes."""
    import numpy as np
    from scipy.stats import wilcoxon

    per_class = lambda rs: np.mean([[r["auc_per_unseen_class"][c] for c in sorted(  # noqa: E731
        rs[0]["auc_per_unseen_class"])] for r in rs], axis=0)
    gap = per_class(model_runs) - per_class(baseline_runs)
    gap = gap[np.isfinite(gap)]
    rng = np.random.default_rng(0)
    boot = gap[rng.integers(0, len(gap), (resamples, len(gap)))].mean(1)
    return {"mean_gap": float(gap.mean()), "wins": int((gap > 0).sum()), "classes": len(gap),
            "ci95": [float(v) for v in np.percentile(boot, [2.5, 97.5])],
            "wilcoxon_p": float(wilcoxon(gap).pvalue) if len(gap) > 1 and gap.any() else 1.0}


def main(argv=None) -> int:
    import numpy as np
    import torch

    from cnnlab.cli.zeroshot import add_feature_arguments, feature_options
    from cnnlab.zeroshot.models import ZeroShotConfig
    from cnnlab.zeroshot.run import ZeroShotRunConfig, fit_and_evaluate, prepare

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", default=str(DEFAULT_DATA))
    ap.add_argument("--split", default="hard")
    ap.add_argument("--backbone", default="resnet18")
    ap.add_argument("--weights", default=None,
                    help="backbone weights file or cnnlab run directory (random init without)")
    ap.add_argument("--image-size", type=int, default=None,
                    help="default: the side the backbone trained at (a run's; else the zoo's)")
    ap.add_argument("--finetune-seen", type=int, default=0, metavar="EPOCHS",
                    help="fine-tune the backbone on the seen classes' training images first")
    ap.add_argument("--finetune-lr", type=float, default=0.01)
    ap.add_argument("--finetune-strategy", choices=("full", "top-k-layers"), default="full",
                    help="top-k-layers: only the last stage and the classifier train")
    add_feature_arguments(ap, feature_layers="layer2,layer3")
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    ap.add_argument("--out", default=None, help="also write the JSON here")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)

    t0 = time.perf_counter()
    cfg = ZeroShotRunConfig(data=args.data, split=args.split, backbone=args.backbone,
                            weights=args.weights, image_size=args.image_size,
                            finetune_epochs=args.finetune_seen, finetune_lr=args.finetune_lr,
                            finetune_strategy=args.finetune_strategy,
                            **feature_options(args),
                            model=ZeroShotConfig(kind="fc+conv", epochs=args.epochs,
                                                 center_scores=not args.raw_scores))
    prep = prepare(cfg, progress=lambda m: print(m, flush=True))
    t_features = time.perf_counter() - t0
    runs: dict[str, list[dict]] = {}
    for seed in range(args.seeds):
        for kind in ("fc", "conv", "fc+conv"):
            model_cfg = replace(cfg.model, kind=kind, seed=seed)
            baselines = ("ridge", "cca") if kind == "fc" and seed == 0 else ()   # deterministic
            _, _, metrics = fit_and_evaluate(prep, model_cfg, baselines)
            for name, m in metrics.items():
                runs.setdefault(name, []).append(m)
    keys = ("auc_unseen", "auc_seen", "auc_mean", "top1_unseen", "top5_unseen",
            "generalized_top1_unseen", "generalized_top1_seen", "generalized_harmonic")
    keys += () if args.raw_scores else ("auc_unseen_raw", "auc_seen_raw")
    summary = {name: {k: {"mean": statistics.fmean(r[k] for r in rs),
                          "std": statistics.pstdev([r[k] for r in rs]), "runs": len(rs)}
                      for k in keys} for name, rs in runs.items()}
    comparisons = {f"{m} vs {b}": paired(runs[m], runs[b]) for m in ("fc", "conv", "fc+conv")
                   for b in ("baseline_ridge", "baseline_cca") if m in runs and b in runs}
    result = {
        "data": args.data, "split": args.split, "validate": args.validate, "seen": prep.n_seen,
        "unseen": len(prep.classes) - prep.n_seen, "backbone": args.backbone,
        "weights": args.weights or "random init (no weights given)", "image_size": prep.image_size,
        "backbone_training": prep.backbone_record,
        "train_images": prep.train["images"], "train_rows": len(prep.train["labels"]),
        "test_images": len(prep.test["labels"]),
        "vocabulary": prep.encoder.dim, "feature_dim": int(prep.train["feats"].shape[1]),
        "seeds": args.seeds, "epochs": args.epochs, "feature_seconds": t_features,
        "wall_seconds": time.perf_counter() - t0, "results": summary,
        "paired_unseen_auc": comparisons, "paper": PAPER,
        "hardware": {"machine": platform.machine(), "processor": platform.processor(),
                     "torch_threads": torch.get_num_threads()},
        "versions": {"torch": torch.__version__, "numpy": np.__version__,
                     "python": platform.python_version()},
    }
    print(json.dumps(result, indent=2))
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=2))
    tuned = (f", fine-tuned {args.finetune_seen} epoch(s) on seen-class training images"
             if args.finetune_seen else "")
    print(f"\n{args.backbone} ({result['weights']}{tuned}), {prep.image_size} px, "
          f"{args.split} split"
          f"{f' (validation: its last {args.validate} seen play unseen)' if args.validate else ''}, "
          f"{result['wall_seconds']:.0f} s, {args.seeds} seed(s)")
    heads = ("AUC unseen", "paper", "AUC seen", "paper", "top-1 u", "raw AUC u")
    print(f"{'method':<16}" + "".join(f"{h:>{w}}" for h, w in zip(heads, (16, 7, 16, 7, 16, 16))))
    for name, s in summary.items():
        pu, ps = PAPER.get(name, (None, None))
        cell = lambda k: f"{s[k]['mean']:.3f} ± {s[k]['std']:.3f}"  # noqa: E731
        pu, ps = (f"{pu:.2f}" if pu else "-"), (f"{ps:.3g}" if ps else "-")
        print(f"{name:<16}{cell('auc_unseen'):>16}{pu:>7}{cell('auc_seen'):>16}{ps:>7}"
              f"{cell('top1_unseen'):>16}"
              f"{cell('auc_unseen_raw') if 'auc_unseen_raw' in s else '-':>16}")
    print("\nper unseen class (AUC gap, classes won, 95% bootstrap interval, Wilcoxon p):")
    for name, c in comparisons.items():
        print(f"  {name:<24} {c['mean_gap']:+.3f}  {c['wins']}/{c['classes']}  "
              f"[{c['ci95'][0]:+.3f}, {c['ci95'][1]:+.3f}]  p={c['wilcoxon_p']:.3g}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
