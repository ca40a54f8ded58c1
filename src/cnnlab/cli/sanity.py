"""Sanity-check a model before a long run, as CS231n recommends ("babysitting the learning").

Two checks on a freshly initialised model:

1. initial loss: with small random weights the loss should be chance level, ln(C) for softmax
   cross-entropy (2.303 for 10 classes) and C - 1 for the multiclass SVM (--loss svm). A value
   far off is explained (wrong class count, last layer too large, inputs not standardised).
2. overfit a tiny subset: --images (20) training images, taken across the classes, full batch,
   Adam without weight decay, until 100% training accuracy or --steps. A model that cannot
   memorise 20 images has a bug in the data, the loss or the model.

Prints a PASS/WARN verdict; exit status 0 when both checks pass, 1 when one fails.

examples:
  cnnlab sanity                                  # LeNet-5 on the embedded digits
  cnnlab sanity --model resnet20 --data shapes/  # any image folder or archive
  cnnlab sanity --loss svm --json
"""

from __future__ import annotations

VERB = "sanity"
HELP = "check the initial loss against chance and that the model overfits 20 images"


def add_arguments(parser) -> None:
    from cnnlab.cli.common import add_model_data_arguments

    add_model_data_arguments(parser)
    a = parser.add_argument
    a("--loss", choices=("ce", "svm"), default="ce",
      help="softmax cross-entropy (expect ln C) or multiclass SVM (expect C - 1); default ce")
    a("--images", type=int, default=20, help="images to overfit (default 20)")
    a("--steps", type=int, default=300, help="most full-batch steps for the overfit (default 300)")
    a("--lr", type=float, default=1e-3, help="Adam learning rate for the overfit (default 1e-3)")
    a("--seed", type=int, default=0, help="seed for the weights and the sample (default 0)")
    a("--json", action="store_true", help="print the results as JSON")


def run(args) -> int:
    import json

    from cnnlab.diagnose.sanity import run_sanity
    from cnnlab.errors import ConfigError

    if args.images < 1 or args.steps < 1:
        raise ConfigError(f"--images and --steps must be >= 1; got {args.images} and "
                          f"{args.steps}")
    out = run_sanity(args.model, args.data, loss=args.loss, images=args.images,
                     max_steps=args.steps, lr=args.lr, image_size=args.image_size,
                     seed=args.seed)
    if args.json:
        print(json.dumps(out, indent=2))
    else:
        init, fit = out["initial_loss"], out["overfit"]
        print(f"{out['model']} on {out['data']} ({out['classes']} classes)")
        print(f"  initial loss: {'ok  ' if init['ok'] else 'WARN'}  {init['message']}")
        print(f"  overfit:      {'ok  ' if fit['reached'] else 'WARN'}  {fit['message']}")
        print(out["verdict"])
    return 0 if out["ok"] else 1
