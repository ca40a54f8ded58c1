"""Score trained runs on held-out images: accuracy, loss, per-class precision/recall, confusions.

Each RUN is a directory written by `cnnlab train` (its best checkpoint, else last) or one
TAG.safetensors file. Without --data, a run is scored on its own data: the digits' fixed test
split for digits runs (--split val: the images the run held out for model selection).

Several RUNs form an ensemble: their softmax outputs are averaged, as Krizhevsky et al. 2012
averaged five CNNs; each member is reported too. The runs must share their classes.

Test-time augmentation (--tta) averages the softmax over views of each image:
  flip     the image and its mirror image
  tencrop  AlexNet's ten patches: the four corners and the centre, plus their mirror images. A
           crop needs a larger image, so each S x S input is first resized to round(S*256/224)
           (256 for 224, 37 for 32) and the crops are S x S. Mirroring hurts on digits and text.

Files written to OUTDIR (default: RUN/eval-SPLIT[-TTA] for one run, ./ensemble-eval-SPLIT[-TTA]
for several): metrics.json, confusion_matrix.csv/.png, per_class.csv and confident_errors.csv/.png
(the most confidently wrong images).

examples:
  cnnlab evaluate runs/lenet5-20250101-120000
  cnnlab evaluate runs/a runs/b runs/c --tta flip -o ensemble-report
  cnnlab evaluate runs/pets --data ~/data/pets --split val --topk 3 --json
"""

from __future__ import annotations

import argparse

VERB = "evaluate"
HELP = "score runs (or an ensemble) on held-out data: accuracy, per-class metrics, confusions"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from cnnlab.cli.common import add_inference_arguments

    a = parser.add_argument
    a("runs", nargs="+", metavar="RUN", help="run directory (or .safetensors); several: ensemble")
    a("--data", metavar="PATH", help="image folder or archive (default: the run's own data)")
    a("--split", choices=("val", "test"), default="test", help="which split (default test)")
    a("--topk", type=int, default=5, help="k of the top-k accuracy (default 5; capped at the "
      "number of classes)")
    a("--tta", choices=("none", "flip", "tencrop"), default="none",
      help="test-time augmentation (default none; see above)")
    add_inference_arguments(parser)
    a("-o", "--out-dir", metavar="OUTDIR", help="where the report files go (see above)")
    a("--json", action="store_true", help="print the metrics as JSON (files are still written)")


def _pct(v: float) -> str:
    return f"{100 * v:.2f}%"


def _line(label: str, m: dict, k: int) -> str:
    topk = f", top-{k} accuracy {_pct(m[f'acc{k}'])} (error {_pct(m[f'error{k}'])})" if k > 1 \
        else ""
    return (f"{label}: top-1 accuracy {_pct(m['acc1'])} (error {_pct(m['error1'])}){topk}, "
            f"loss {m['loss']:.4f} on {m['images']} images")


def default_out_dir(runs: list[str], split: str, tta: str):
    """RUN/eval-SPLIT[-TTA] for one run directory, else ./ensemble-eval-SPLIT[-TTA]."""
    from pathlib import Path

    suffix = f"eval-{split}" + (f"-{tta}" if tta != "none" else "")
    if len(runs) == 1:
        run = Path(runs[0])
        return (run if run.is_dir() else run.parent) / suffix
    return Path(f"ensemble-{suffix}")


def run(args) -> int:
    import json

    from cnnlab.evaluate.evaluation import evaluate_runs, public, write_report

    result = evaluate_runs(args.runs, data=args.data, split=args.split, topk=args.topk,
                           tta=args.tta, device=args.device, fast=args.fast)
    out_dir = args.out_dir or default_out_dir(args.runs, args.split, args.tta)
    written = write_report(result, out_dir)
    if args.json:
        print(json.dumps({**public(result), "files": [str(f) for f in written]}, indent=2))
        return 0
    k = result["topk"]
    tta = f", tta {result['tta']}" if result["tta"] != "none" else ""
    print(f"{result['split']} split of {result['data']}{tta}")
    for m in result["members"]:
        print(_line(f"{m['run']} ({m['model']})", m, k))
    if result["ensemble"]:
        print(_line(f"ensemble of {len(result['members'])}", result["ensemble"], k))
    pc = result["combined"]["per_class"]
    width = max(5, *(len(c) for c in pc["classes"]))
    print(f"\n{'class':<{width}}  precision  recall  support")
    for c, p, r, n in zip(pc["classes"], pc["precision"], pc["recall"], pc["support"]):
        print(f"{c:<{width}}  {p:9.3f}  {r:6.3f}  {n:7d}")
    errors = result["confident_errors"][:5]
    if errors:
        print("\nmost confidently wrong:")
        for e in errors:
            where = e["path"] or f"#{e['index']}"
            print(f"  {where}: {e['label_name']} predicted as {e['predicted_name']} "
                  f"({e['probability']:.2f})")
    print(f"\nreport files in {out_dir}")
    return 0
