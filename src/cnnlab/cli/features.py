"""Extract CNN features at a named layer into an .npz (x_train, y_train, x_test, y_test, classes).

Off-the-shelf features (Razavian et al. 2014; the CS231n notes single out VGG's fc7): run a
pretrained network up to one layer and keep its activations, then fit a linear classifier on
them with `cnnlab baseline --features FILE.npz`.

--weights is a run directory or .safetensors written by `cnnlab train` (model, input size and
normalisation come from it), or any other state dict (torchvision, timm; then --model is needed,
timm's VGG/DenseNet key names are mapped automatically and --map-rule adds REGEX=>REPLACEMENT
renames). Without --weights the model is randomly initialised (a baseline for comparison).

--layer: pre_logits (the classifier's input), fc7 (VGG/AlexNet), avgpool (the pooled last conv
map), logits, stem, stage1..stageK (a layer group; `stage3` for mid-level features), or any
module name such as layer3.1.conv2. Conv maps are global-average-pooled (--pool max|flatten).
--data is an image folder or archive (train split, and test/ else val/); omit it for the
embedded digits.

examples:
  cnnlab features --model lenet5 --layer fc7 -o digits-fc7.npz
  cnnlab features --weights runs/pets-resnet18 --layer stage3 --data pets/ -o pets-s3.npz
  cnnlab features --model vgg16 --weights vgg16_timm.safetensors --layer fc7 --data pets/ -o f.npz
  cnnlab baseline --features pets-s3.npz --classifier logistic
"""

from __future__ import annotations

import argparse

VERB = "features"
HELP = "extract CNN features at a named layer (fc7, avgpool, stage3, ...) into an .npz"


def add_source_arguments(parser: argparse.ArgumentParser) -> None:
    """The flags that pick the source network (shared with `cnnlab neighbors`)."""
    a = parser.add_argument
    a("--model", help="zoo model name (needed unless --weights is a cnnlab run)")
    a("--weights", metavar="FILE_OR_RUN",
      help="cnnlab run directory / .safetensors, or a torchvision/timm/other weights file")
    a("--key-map", default="auto", metavar="LAYOUT",
      help="key layout of --weights: auto, none, timm-resnet, timm-vgg, timm-densenet, "
      "torchvision-densenet-legacy (default auto)")
    a("--map-rule", action="append", default=[], metavar="REGEX=>REPL",
      help="extra key rename applied to --weights (repeatable), e.g. '^backbone\\.=>'")
    a("--partial", action="store_true",
      help="load the tensors that fit and leave the rest initialised (strict=False)")
    a("--layer", default="pre_logits", help="where to read the features (default pre_logits)")
    a("--data", help="image folder or archive (default: the embedded digits)")
    a("--image-size", type=int, help="input side (default: the model's or the run's)")
    a("--pool", choices=("avg", "max", "flatten"), default="avg",
      help="how conv maps become vectors (default avg)")
    a("--batch-size", type=int, default=64, help="images per forward pass (default 64)")
    a("--device", default="cpu", help="cpu, cuda, cuda:N or auto (default cpu)")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_source_arguments(parser)
    parser.add_argument("-o", "--output", required=True, metavar="FILE.npz",
                        help="where to write the features")
    parser.add_argument("--limit", type=int, help="keep the first N images of each split")
    parser.add_argument("--json", action="store_true", help="print a JSON summary")


def load_source_from_args(args):
    """The :class:`cnnlab.transfer.source.Source` the flags describe."""
    from cnnlab.transfer.source import load_source

    return load_source(args.weights, args.model, layout=args.key_map,
                       rules=args.map_rule or None, strict=not args.partial,
                       image_size=args.image_size, device=args.device)


def run(args) -> int:
    import json
    import sys

    from cnnlab.errors import ConfigError
    from cnnlab.transfer.features import feature_set, save_features

    if args.limit is not None and args.limit < 1:
        raise ConfigError(f"--limit must be >= 1; got {args.limit}")
    src = load_source_from_args(args)
    for note in src.notes:
        print(f"cnnlab features: {note}", file=sys.stderr)
    arrays = feature_set(src.model, args.data, args.layer, image_size=src.image_size,
                         mean=src.mean, std=src.std, batch_size=args.batch_size, pool=args.pool,
                         mode=src.mode, limit=args.limit)
    path = save_features(args.output, arrays, model=src.model_name, layer=args.layer,
                         weights=src.weights, data=args.data or "digits")
    summary = {"output": str(path), "model": src.model_name, "layer": args.layer,
               "weights": src.weights, "data": args.data or "digits (embedded)",
               "image_size": src.image_size, "dims": int(arrays["x_train"].shape[1]),
               "train": int(len(arrays["y_train"])), "test": int(len(arrays["y_test"])),
               "classes": [str(c) for c in arrays["classes"]]}
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        print(f"wrote {path}: {summary['train']} train + {summary['test']} test images, "
              f"{summary['dims']} features each from {src.model_name} {args.layer}")
        print(f"next: cnnlab baseline --features {path} --classifier logistic")
    return 0
