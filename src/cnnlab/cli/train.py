"""Train a classifier; with no arguments, LeNet-5 on the embedded digits (98-99% test accuracy).

Settings come from the TrainConfig defaults, then --config FILE (YAML, see configs/), then the
flags below; --set KEY=VALUE reaches any other TrainConfig field (e.g. lr_step_epochs). Each run
writes runs/NAME/: config.yaml (the resolved settings), environment.json (versions, device,
seed), metrics.csv/.jsonl (one row per epoch), last/best checkpoints (.safetensors weights plus a
.state.pt training state) and summary.json (test accuracy, confusion matrix).

Ctrl-C (or SIGTERM) stops after the current batch and saves the `last` checkpoint; a second
Ctrl-C aborts at once.

optimizers: sgd momentum nesterov adagrad rmsprop adadelta adam adamw
schedules:  constant step plateau cosine onecycle (each with optional --warmup-epochs)

examples:
  cnnlab train                                         # LeNet-5 on digits, default recipe
  cnnlab train --epochs 5 --optimizer adam --lr 1e-3 --name adam-test
  cnnlab train --config configs/digits-lenet5.yaml --loss svm --set lr_step_epochs=5
  cnnlab train --quiet --json > summary.json
"""

from __future__ import annotations

import argparse

VERB = "train"
HELP = "train a model (default: LeNet-5 on the embedded digits) and report test accuracy"

# flag -> TrainConfig field, for the flags that map one to one
_FIELDS = ("model", "data", "image_size", "epochs", "batch_size", "lr", "optimizer", "momentum",
           "nesterov", "weight_decay", "schedule", "warmup_epochs", "label_smoothing", "loss",
           "precision", "channels_last", "device", "threads", "seed", "deterministic", "out_dir",
           "name", "quiet")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    a = parser.add_argument
    a("--config", metavar="FILE", help="YAML file of TrainConfig settings; flags override it")
    a("--model", help="zoo model name (default lenet5; `cnnlab models` lists them)")
    a("--data", help="data set (default: the embedded digits)")
    a("--image-size", type=int, help="input side in pixels (default: the model's)")
    a("--epochs", type=int, help="passes over the training set (default 20)")
    a("--batch-size", type=int, help="images per step (default 64)")
    a("--lr", type=float, help="base learning rate (default 0.02)")
    a("--optimizer", metavar="NAME", help="update rule (default momentum; see above)")
    a("--momentum", type=float, help="momentum coefficient (default 0.9 for momentum/nesterov)")
    a("--nesterov", action="store_true", default=None, help="Nesterov momentum with sgd/momentum")
    a("--weight-decay", type=float, help="L2 decay on weights, not biases/norms (default 5e-4)")
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
    a("--set", action="append", default=[], metavar="KEY=VALUE",
      help="any other TrainConfig field, e.g. --set lr_step_epochs=10 (repeatable)")
    a("--quiet", action="store_true", default=None, help="no progress bar or per-epoch lines")
    a("--json", action="store_true", help="print the run summary as JSON")


def config_from_args(args):
    """The TrainConfig that the flags (over --config, over the defaults) describe."""
    import yaml

    from cnnlab.config import resolve
    from cnnlab.errors import ConfigError
    from cnnlab.train.config import TrainConfig

    overrides = {}
    for item in args.set:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--set expects KEY=VALUE; got {item!r}")
        overrides[key.strip()] = yaml.safe_load(value) if value.strip() else None
    overrides.update({f: getattr(args, f) for f in _FIELDS if getattr(args, f, None) is not None})
    return resolve(TrainConfig, args.config, overrides)


def _pct(v) -> str:
    return f"{100 * v:.2f}%"


def run(args) -> int:
    import json

    from cnnlab.train.run import train

    cfg = config_from_args(args)
    result = train(cfg)  # progress and per-epoch lines go to stderr, so --json stdout stays clean
    s = result.summary
    if args.json:
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
    if s["stop_reason"] in ("interrupted", "terminated"):
        import sys

        final = s["final"]["epoch"] if s["final"] else 0
        print(f"cnnlab train: {s['stop_reason']} after {final} complete epoch(s); checkpoint "
              f"saved to {result.run_dir / 'last.safetensors'}", file=sys.stderr)
        return 128 + s["signal"]  # the shell's convention: 130 for SIGINT, 143 for SIGTERM
    return 0
