"""Classify images with a trained run; prints each image's top-k classes with probabilities.

RUN is a directory written by `cnnlab train` (its best checkpoint, else last) or one
TAG.safetensors file. Each IMAGE is a file or a folder (every image file under it, sorted).
Images are preprocessed exactly as the run's evaluation data: decoded, shorter side resized and
centre-cropped to the run's input size, normalised with the run's mean and std.

Output, one header line per image, then one line per class, most likely first:

  cat.jpg
    tabby cat (0.71)
    tiger cat (0.20)

An image that cannot be read gets one error line on stderr and the others still run. Exit code:
0 if at least one image was classified, 1 if every image failed, 2 if the run cannot be loaded.

examples:
  cnnlab predict runs/lenet5-20250101-120000 three.png
  cnnlab predict runs/pets photos/ --topk 3
  cnnlab predict runs/pets cat.jpg dog.jpg --tta flip --json
"""

from __future__ import annotations

import argparse

VERB = "predict"
HELP = "classify image files with a trained run (top-k classes and probabilities)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from cnnlab.cli.common import add_inference_arguments

    a = parser.add_argument
    a("run", metavar="RUN", help="run directory written by `cnnlab train` (or a .safetensors)")
    a("images", nargs="+", metavar="IMAGE", help="image files or folders of images")
    a("--topk", type=int, default=5, help="classes shown per image (default 5)")
    a("--tta", choices=("none", "flip", "tencrop"), default="none",
      help="test-time augmentation, as in `cnnlab evaluate` (default none)")
    add_inference_arguments(parser)
    a("--json", action="store_true", help="print a JSON list: image, top (class, probability) "
      "or error")


def run(args) -> int:
    import json
    import sys

    from cnnlab.errors import ConfigError
    from cnnlab.evaluate.predictor import expand_inputs, load, predict_files

    if args.topk < 1:
        raise ConfigError(f"--topk must be >= 1; got {args.topk}")
    predictor = load(args.run, args.device, fast=args.fast)
    results = predict_files(predictor, expand_inputs(args.images), args.topk, args.tta)
    for r in results:   # in input order, so a terminal shows each error where it happened
        if "error" in r:
            print(f"cnnlab predict: error: {r['image']}: {r['error']}", file=sys.stderr)
        elif not args.json:
            print(r["image"])
            for t in r["top"]:
                print(f"  {t['class']} ({t['probability']:.2f})")
    if args.json:
        print(json.dumps(results, indent=2))
    return 0 if any("top" in r for r in results) else 1
