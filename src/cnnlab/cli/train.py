"""Train a classifier; with no arguments, LeNet-5 on the embedded digits (98-99% test accuracy).

--data PATH trains on an image folder (one sub-folder per class, or train/ val/ test/ folders of
them) or a .tar/.tar.gz/.zip of one. Images are decoded once into memory at --image-size (default:
the model's input size), standardised with the training split's per-channel mean/std and
augmented per batch (random shift; left-right flips unless --no-hflip). Grey data trains a
one-channel model where the model's default is one channel (LeNet-5), else becomes RGB. Without
val/ or test/ folders, --set val_fraction=... / test_fraction=... hold images out per class; the
split is saved as RUN/split.json, unusable files are listed in RUN/skipped.txt.

--resume runs/NAME continues a stopped run from its `last` checkpoint with the settings saved in
it (model, optimiser and schedule state, epoch and step, random-generator states, data order). A
flag that changes the run (e.g. --epochs) is an error showing the difference, unless --force,
which records non_exact_resume: true; the same holds for data whose manifest hash (class
list, file paths and contents; "digits" for the embedded set) differs from the run's. With
--deterministic, a resumed run ends with the same weights, bit for bit, as one that was never
stopped, also after a kill -9 (resumed from the latest of the epoch-end saves and, with
--checkpoint-every N, the saves every N steps; early-stopping state included). A NaN/inf loss
stops the run with exit status 1 and keeps the last good checkpoint.

Regularisation and steps: --weight-decay is L2 on conv/linear weights, --l1 adds an L1 penalty
on the same weights (both: the elastic net), --dropout sets the rate of models that have one,
--init re-draws the weights (xavier: Glorot uniform; kaiming: He normal, fan_in), --accumulate K
steps once per K batches, --clip-grad-norm caps the gradient norm, --ema-decay validates and
keeps an exponential moving average of the weights, --compile uses torch.compile.

Settings come from the TrainConfig defaults, then --recipe NAME (a built-in recipe, listed at
--recipe below), then --config FILE (YAML, see configs/), then the flags below; --set KEY=VALUE
reaches any other TrainConfig field (e.g. lr_step_epochs, tta). Each run writes runs/NAME/:
config.yaml (the resolved settings), environment.json (versions, device, seed), metrics.csv/
.jsonl (one row per epoch), last/best checkpoints (.safetensors weights plus a .state.pt
training state), summary.json (test accuracy, confusion matrix, the data's manifest
hash, and "diagnostics": training-monitor flags plus learning-curve hints), curves.png (loss,
accuracy and learning rate per epoch, train vs val), diagnostics.jsonl (per-layer norms and
update ratios every --monitor-every steps) and tensorboard/ (the per-epoch metrics, and the
monitor's per-layer stats and weight/grad histograms; --no-tensorboard: none).

Ctrl-C (or SIGTERM) stops after the current batch and saves the `last` checkpoint; a second
Ctrl-C aborts at once.

optimizers: sgd momentum nesterov adagrad rmsprop adadelta adam adamw
schedules:  constant step plateau cosine onecycle (each with optional --warmup-epochs)

examples:
  cnnlab train                                         # LeNet-5 on digits, default recipe
  cnnlab train --epochs 5 --optimizer adam --lr 1e-3 --name adam-test
  cnnlab train --config configs/digits-lenet5.yaml --loss svm --set lr_step_epochs=5
  cnnlab train --quiet --json > summary.json
  cnnlab train --model alexnet --data shapes/ --dropout 0.3 --init kaiming --l1 1e-5
  cnnlab train --batch-size 32 --accumulate 4 --clip-grad-norm 1.0   # steps on 128 images
  cnnlab train --ema-decay 0.999 --monitor-every 0    # EMA weights; no diagnostics
  cnnlab train --data shapes/ --model resnet20 --epochs 30 --name shapes
  cnnlab train --data cifar10-jpg.tar.gz --model resnet20 --image-size 32
  cnnlab train --recipe cifar10-fast --data cifar10-jpg.tar.gz   # airbench94, ~10 epochs
  cnnlab train --recipe resnet-cifar-paper --model resnet56 --data cifar10-jpg.tar.gz
  cnnlab train --resume runs/shapes                    # after Ctrl-C or a crash
  cnnlab train --resume runs/shapes --epochs 40 --force
"""

from __future__ import annotations

import argparse

VERB = "train"
HELP = "train a model (default: LeNet-5 on the embedded digits) and report test accuracy"

# flag -> TrainConfig field, for the flags that map one to one
_FIELDS = ("model", "data", "image_size", "epochs", "batch_size", "lr", "optimizer", "momentum",
           "nesterov", "weight_decay", "schedule", "warmup_epochs", "label_smoothing", "loss",
           "precision", "channels_last", "device", "threads", "seed", "deterministic", "out_dir",
           "name", "quiet", "hflip", "l1", "dropout", "init", "clip_grad_norm", "accumulate",
           "ema_decay", "monitor_every", "compile", "tensorboard", "early_stopping_patience",
           "checkpoint_every", "step_log")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from cnnlab.recipes import list_recipes

    parser.add_argument("--recipe", metavar="NAME",
                        help=f"built-in recipe: {', '.join(list_recipes())}; --config and flags "
                        "override it")
    add_train_arguments(parser)


def add_train_arguments(parser: argparse.ArgumentParser,
                        model_help: str = "zoo model name (default lenet5; `cnnlab models` lists "
                        "them)") -> None:
    """Every TrainConfig flag plus --resume/--force/--set/--json (shared with `cnnlab finetune`)."""
    a = parser.add_argument
    a("--config", metavar="FILE", help="YAML file of TrainConfig settings; flags override it")
    a("--model", help=model_help)
    a("--data", metavar="PATH",
      help="image folder or .tar/.tar.gz/.zip archive (default: the embedded digits)")
    a("--image-size", type=int, help="input side in pixels (default: the model's)")
    a("--epochs", type=int, help="passes over the training set (default 20)")
    a("--batch-size", type=int, help="images per step (default 64)")
    a("--lr", type=float, help="base learning rate (default 0.02)")
    a("--optimizer", metavar="NAME", help="update rule (default momentum; see above)")
    a("--momentum", type=float, help="momentum coefficient (default 0.9 for momentum/nesterov)")
    a("--nesterov", action="store_true", default=None, help="Nesterov momentum with sgd/momentum")
    a("--weight-decay", type=float, help="L2 decay on weights, not biases/norms (default 5e-4)")
    a("--l1", type=float, help="L1 penalty on the same weights, added to the loss (default 0; "
      "with --weight-decay: elastic net)")
    a("--dropout", type=float, help="dropout rate for models that have one (default: the model's)")
    a("--init", metavar="default|xavier|kaiming",
      help="weight init: the paper's own, Glorot uniform or He normal (default default)")
    a("--clip-grad-norm", type=float, metavar="MAX",
      help="rescale gradients to at most this global L2 norm (default: off)")
    a("--accumulate", type=int, metavar="K",
      help="sum gradients over K batches per optimiser step (default 1)")
    a("--ema-decay", type=float, metavar="D",
      help="validate, test and keep as best an EMA of the weights, e.g. 0.999 (default: off)")
    a("--monitor-every", type=int, metavar="N",
      help="diagnostics (norms, update ratios, dead ReLUs) every N steps; 0: off (default 50)")
    a("--tensorboard", action=argparse.BooleanOptionalAction, default=None,
      help="write RUN/tensorboard/ event files (default on; --no-tensorboard: off)")
    a("--early-stopping", dest="early_stopping_patience", type=int, metavar="N",
      help="stop after N epochs without a val accuracy gain (default 0: off)")
    a("--checkpoint-every", type=int, metavar="N",
      help="also save `last` every N steps mid-epoch, for an exact resume after a crash "
      "(default 0: at epoch ends only)")
    a("--step-log", action="store_true", default=None,
      help="write RUN/steps.jsonl: each step's loss, lr and sample indices")
    a("--compile", action=argparse.BooleanOptionalAction, default=None,
      help="torch.compile the model (default off: 0.94x on ResNet-20 and 0.55x on LeNet-5 on a "
      "2-core CPU, benchmarks/compile_bench.py; add --monitor-every 0, whose sampling hooks "
      "cause graph breaks)")
    a("--schedule", metavar="NAME", help="learning-rate schedule (default cosine; see above)")
    a("--warmup-epochs", type=float, help="linear warm-up length in epochs (default 0)")
    a("--label-smoothing", type=float, help="cross-entropy label smoothing (default 0; 0.1 usual)")
    a("--loss", metavar="ce|svm", help="softmax cross-entropy or multiclass hinge (default ce)")
    a("--precision", metavar="auto|bf16|32",
      help="auto: bf16 autocast where the hardware is fast at it, else fp32 (default auto)")
    a("--channels-last", action=argparse.BooleanOptionalAction, default=None,
      help="NHWC memory layout (default: on for conv nets)")
    a("--device", help="auto, cpu, cuda, cuda:N (default auto)")
    a("--threads", type=int, help="CPU threads (default: 1 for tiny models, else torch's)")
    a("--seed", type=int, help="seed for weights, shuffling and augmentation (default 0)")
    a("--deterministic", action="store_true", default=None,
      help="use only deterministic algorithms (slower; bitwise repeatable runs)")
    a("--out-dir", help="parent of the run directory (default runs)")
    a("--name", help="run directory name (default MODEL-DATE-TIME)")
    a("--hflip", action=argparse.BooleanOptionalAction, default=None,
      help="random left-right flips (default: on for --data, off for digits)")
    a("--resume", metavar="RUN", help="continue the run in directory RUN from its last checkpoint")
    a("--force", action="store_true",
      help="with --resume: accept flags or data that change the run (recorded as "
      "non_exact_resume)")
    a("--set", action="append", default=[], metavar="KEY=VALUE",
      help="any other TrainConfig field, e.g. --set lr_step_epochs=10 (repeatable)")
    a("--quiet", action="store_true", default=None, help="no progress bar or per-epoch lines")
    a("--json", action="store_true", help="print the run summary as JSON")


def overrides_from_args(args) -> dict:
    """The TrainConfig keys set by --set and by explicit flags (flags win)."""
    import yaml

    from cnnlab.errors import ConfigError

    overrides = {}
    for item in args.set:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--set expects KEY=VALUE; got {item!r}")
        overrides[key.strip()] = yaml.safe_load(value) if value.strip() else None
    overrides.update({f: getattr(args, f) for f in _FIELDS if getattr(args, f, None) is not None})
    return overrides


def config_from_args(args):
    """The TrainConfig that the flags (over --config, over --recipe, over the defaults) describe."""
    from cnnlab.config import check_values, load_yaml, resolve
    from cnnlab.train.config import TrainConfig

    if not getattr(args, "recipe", None):
        return resolve(TrainConfig, args.config, overrides_from_args(args))
    from cnnlab.recipes import load_recipe

    values = load_recipe(args.recipe)
    if args.config:  # its nulls count (e.g. `ema_decay: null` turns the recipe's EMA off)
        values.update(check_values(TrainConfig, load_yaml(args.config), source=args.config))
    flags = {k: v for k, v in overrides_from_args(args).items() if v is not None}
    values.update(check_values(TrainConfig, flags, source="overrides"))
    return TrainConfig(**values)


def _pct(v) -> str:
    return f"{100 * v:.2f}%"


def run(args) -> int:
    from pathlib import Path

    from cnnlab.errors import ConfigError
    from cnnlab.train.run import resume_config, train

    if args.resume:
        if (Path(args.resume) / "finetune.json").is_file():
            # its frozen groups and discriminative rates live in finetune.json, not config.yaml
            raise ConfigError(f"{args.resume} is a fine-tuning run; resume it with "
                              f"`cnnlab finetune --resume {args.resume}`")
        if args.config or args.recipe:
            raise ConfigError("--resume takes its settings from RUN/config.yaml; drop --config "
                              "and --recipe (or start a new run with them and --name)")
        cfg, changes = resume_config(args.resume, overrides_from_args(args), args.force)
        result = train(cfg, resume=args.resume, resume_changes=changes, force=args.force)
    else:
        if args.force:
            raise ConfigError("--force only applies with --resume RUN")
        # progress and per-epoch lines go to stderr, so --json stdout stays clean
        result = train(config_from_args(args))
    return report(result, args.json)


def report(result, as_json: bool = False, verb: str = "train") -> int:
    """Print a run's summary (JSON, or accuracy lines) and return the verb's exit status."""
    import json
    import sys

    s = result.summary
    if as_json:
        print(json.dumps(s, indent=2))
    else:
        test = s["test"]
        if test:
            top5 = f", top-5 accuracy {_pct(test['acc5'])}" if "acc5" in test else ""
            print(f"test accuracy {_pct(test['acc1'])} (top-1 error {_pct(test['error1'])}{top5}) "
                  f"on {test['images']} images")
        if s["best"] and s["best"]["val_acc1"] is not None:
            print(f"best val accuracy {_pct(s['best']['val_acc1'])} at epoch {s['best']['epoch']}; "
                  f"{s['epochs_completed']} epoch{'s' * (s['epochs_completed'] != 1)} in "
                  f"{s['seconds']:.1f} s")
        print(f"run directory: {s['run_dir']}")
    if s["stop_reason"] == "nonfinite_loss":
        ckpt = result.run_dir / "last.safetensors"
        kept = (f"the last good checkpoint is {ckpt} (epoch {s['final']['epoch']})"
                if s["final"] and ckpt.exists()
                else "no epoch finished, so no checkpoint was saved")
        print(f"cnnlab {verb}: stopped, {s['stop_detail']}; {kept}. Try a lower --lr, "
              f"--warmup-epochs 1, or --precision 32.", file=sys.stderr)
        return 1
    if s["stop_reason"] in ("interrupted", "terminated"):
        final = s["final"]["epoch"] if s["final"] else 0
        print(f"cnnlab {verb}: {s['stop_reason']} after {final} complete epoch(s); checkpoint "
              f"saved to {result.run_dir / 'last.safetensors'}", file=sys.stderr)
        return 128 + s["signal"]  # the shell's convention: 130 for SIGINT, 143 for SIGTERM
    return 0
