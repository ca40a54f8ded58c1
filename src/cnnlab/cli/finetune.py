"""Fine-tune a pretrained network on your images (CS231n "Transfer Learning").

--weights is the network to start from: a run directory or .safetensors written by `cnnlab
train` (its model, input size and normalisation come with it), or any other state dict
(torchvision, timm or your own; then --model names the architecture). timm's VGG/DenseNet key
names are mapped automatically; --key-map adds a 'REGEX=>REPLACEMENT' rename (repeatable), a file
of such rules, or names a layout (auto, none, timm-vgg, timm-densenet, ...). A file whose
architecture does not fit is an error listing its missing, unexpected and mis-shaped keys.

The classifier is replaced for the classes of --data; the rest follows --strategy:
  linear-probe   only the new classifier trains (BatchNorm statistics frozen too)
  top-k-layers   the top --top-k layer groups train (2: the last stage and the classifier)
  full           everything trains; --lr-mult backbone=0.1 gives the pretrained layers a tenth
  gradual        the classifier first, then one more group from the top every --unfreeze-every
                 epochs, each group at 1/2.6 of the rate of the one above (Howard & Ruder 2018)
  auto           (default) the course's table (cnnlab.transfer.recommend) from the number of
                 training images and --similarity to the source data: little data ->
                 linear-probe, a fair amount from a similar domain -> top layers, a lot or a
                 different domain -> full
Layer groups are stem, stage1..stageK, head (VGG's fc6/fc7) and classifier; --lr-mult takes those
names or backbone (stem + stages), stages, default. --freeze-bn holds every BatchNorm layer's
statistics and scale/shift fixed. Images are normalised with the source network's mean/std
(--data-stats: the target training split's instead).

Every `cnnlab train` flag works here too (epochs, lr, optimizer, schedule, batch size, out-dir,
name, --set KEY=VALUE, ...), and the run directory is a `cnnlab train` one (evaluate, predict and
features read it) plus finetune.json: the strategy chosen and why, the groups trained and frozen,
each optimiser group's rate, the source weights and the normalisation used. The strategy and
the reason are also printed before training starts.

Resume a stopped fine-tuning run with `cnnlab finetune --resume runs/NAME` (not `cnnlab train
--resume`): the strategy, freezing and rates come back from finetune.json, the weights, optimiser
and schedule from the last checkpoint, so the source weights file is not read again. As with
`cnnlab train`, a changed flag needs --force.

examples:
  cnnlab train --model resnet20 --data cifar10.tar.gz --name cifar-r20
  cnnlab finetune --weights runs/cifar-r20 --data pets/ --strategy linear-probe --epochs 10
  cnnlab finetune --weights runs/cifar-r20 --data pets/ --strategy full --lr-mult backbone=0.1
  cnnlab finetune --weights resnet50_timm.safetensors --model resnet50 --data flowers/ \\
      --strategy top-k-layers --top-k 3 --freeze-bn --lr 0.01 --name flowers-r50
  cnnlab finetune --weights mine.pt --model resnet18 --key-map '^backbone\\.=>' --data birds/
  cnnlab finetune --resume runs/flowers-r50
"""


from __future__ import annotations

import argparse

from cnnlab.transfer.finetune import (  # noqa: F401  (re-exported for scripts)
    _FINETUNE_FLAGS, RECORD, STRATEGY_CHOICES, Plan, _similarity, finetune, plan, plan_resume,
)

VERB = "finetune"
HELP = "fine-tune pretrained weights on an image folder (linear probe, top layers, full, gradual)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from cnnlab.cli.train import add_train_arguments

    a = parser.add_argument
    a("--weights", metavar="FILE_OR_RUN",
      help="cnnlab run directory / .safetensors, or a torchvision/timm/other weights file")
    a("--strategy", choices=STRATEGY_CHOICES, default=None,
      help="what trains (default auto; see above)")
    a("--top-k", type=int, default=None,
      help="top-k-layers: how many layer groups from the top train (default 2)")
    a("--freeze-bn", action="store_true", default=None,
      help="hold BatchNorm statistics and scale/shift fixed")
    a("--lr-mult", action="append", default=None, metavar="GROUP=FACTOR",
      help="learning-rate multiplier of a layer group, e.g. backbone=0.1 (repeatable)")
    a("--unfreeze-every", type=int, default=None,
      help="gradual: epochs between unfreezing one more group (default 1)")
    a("--similarity", default=None,
      help="auto: similar, different, or 0..1, how close the data is to the source's "
      "(default similar)")
    a("--key-map", action="append", default=None, metavar="RULE",
      help="'REGEX=>REPL' rename of --weights keys, a file of them, or a layout name "
      "(default auto; repeatable)")
    a("--partial", action="store_true", default=None,
      help="load the tensors that fit and leave the rest initialised (strict=False)")
    a("--data-stats", action="store_true", default=None,
      help="normalise with the target training split's mean/std instead of the source's")
    add_train_arguments(parser, model_help="architecture of --weights (needed unless it is a "
                        "cnnlab run; `cnnlab models` lists them)")


def run(args) -> int:
    import sys

    from cnnlab.cli.train import config_from_args, overrides_from_args, report
    from cnnlab.config import load_yaml
    from cnnlab.errors import ConfigError
    from cnnlab.transfer.lr import parse_lr_mults

    out = sys.stderr if args.json else sys.stdout  # --json: stdout is the summary only
    if args.resume:
        given = [f"--{f.replace('_', '-')}" for f in _FINETUNE_FLAGS
                 if getattr(args, f) is not None]
        if given or args.config:
            raise ConfigError(f"--resume takes the fine-tuning settings from "
                              f"{args.resume}/{RECORD} and config.yaml; drop "
                              f"{', '.join(given + ['--config'] * bool(args.config))}")
        p, changes = plan_resume(args.resume, overrides_from_args(args), args.force)
        print(f"cnnlab finetune: resuming {args.resume}: {p.describe()[0]}", file=out)
        result = finetune(p, resume=args.resume, resume_changes=changes, force=args.force)
    else:
        if args.force:
            raise ConfigError("--force only applies with --resume RUN")
        cfg = config_from_args(args)
        model = args.model or (load_yaml(args.config).get("model") if args.config else None)
        p = plan(cfg, args.weights, args.strategy or "auto", model=model,
                 top_k=2 if args.top_k is None else args.top_k,
                 freeze_bn=bool(args.freeze_bn), lr_mult=parse_lr_mults(args.lr_mult) or None,
                 unfreeze_every=1 if args.unfreeze_every is None else args.unfreeze_every,
                 similarity=_similarity(args.similarity), key_map=args.key_map or (),
                 partial=bool(args.partial), data_stats=bool(args.data_stats))
        for line in p.describe():
            print(f"cnnlab finetune: {line}", file=out)
        result = finetune(p)
    return report(result, args.json, verb=VERB)
