"""Find a learning rate with the range test (Smith 2017, "Cyclical Learning Rates"; fastai lr_find).

Trains a fresh model for up to --steps mini-batches while the learning rate grows exponentially
from --start-lr to --end-lr, and stops once the smoothed loss is 4x its best (divergence). It
suggests the rate where the loss falls fastest (steepest descent), and also shows the rate of the
lowest loss divided by 10; -o writes the loss-vs-LR curve as a PNG. Nothing is saved to runs/:
use the suggestion as `cnnlab train --lr`.

examples:
  cnnlab lr-find                                   # LeNet-5 on the embedded digits
  cnnlab lr-find --model resnet20 --data shapes/ -o lr.png
  cnnlab lr-find --optimizer adam --start-lr 1e-6 --end-lr 1 --json
"""

from __future__ import annotations

VERB = "lr-find"
HELP = "learning-rate range test: a loss-vs-LR plot and a suggested learning rate"


def add_arguments(parser) -> None:
    from cnnlab.cli.common import add_model_data_arguments

    add_model_data_arguments(parser)
    a = parser.add_argument
    a("--optimizer", default="momentum", metavar="NAME",
      help="update rule, as for `cnnlab train` (default momentum)")
    a("--batch-size", type=int, default=64, help="images per step (default 64)")
    a("--start-lr", type=float, default=1e-7, help="first learning rate (default 1e-7)")
    a("--end-lr", type=float, default=10.0, help="last learning rate (default 10)")
    a("--steps", type=int, default=100, help="most steps of the sweep (default 100)")
    a("--loss", choices=("ce", "svm"), default="ce", help="training loss (default ce)")
    a("--seed", type=int, default=0, help="seed for the weights and data order (default 0)")
    a("-o", "--output", metavar="PNG", help="write the loss-vs-LR plot here")
    a("--json", action="store_true", help="print the sweep and suggestions as JSON")


def run(args) -> int:
    import json

    from cnnlab.diagnose.lrfind import run_lr_find
    from cnnlab.errors import ConfigError

    if args.batch_size < 1:
        raise ConfigError(f"--batch-size must be >= 1; got {args.batch_size}")
    result = run_lr_find(args.model, args.data, optimizer=args.optimizer,
                         batch_size=args.batch_size, start_lr=args.start_lr, end_lr=args.end_lr,
                         num_steps=args.steps, loss=args.loss, image_size=args.image_size,
                         seed=args.seed, plot=args.output)
    if args.json:
        print(json.dumps(result.to_dict(), indent=2))
        return 0
    stop = {"diverged": "the loss diverged (over 4x its best)",
            "nonfinite": "the loss became NaN/inf", "end_lr": "it reached --end-lr"}
    stop = stop[result.stop_reason]
    print(f"swept {len(result.lrs)} steps from {args.start_lr:g}; stopped because {stop} "
          f"at lr {result.lrs[-1]:.3g}" if result.lrs else f"stopped at once: {stop}")
    if result.suggested_lr is not None:
        how = ("steepest descent of the loss" if result.suggested_lr == result.steepest_lr
               else "lowest loss / 10; the steepest fall is too far left to trust")
        print(f"suggested lr: {result.suggested_lr:.3g} ({how})")
    else:
        print("no clear steepest descent: widen --start-lr/--end-lr or raise --steps")
    if result.min_lr_div10 is not None:
        print(f"lowest-loss lr / 10: {result.min_lr_div10:.3g}")
    if args.output:
        print(f"plot written to {result.extra['plot']}")
    return 0
