"""`cnnlab` entry point: finds the verb modules in this package and dispatches to them.

A verb module defines ``VERB`` (the sub-command name), ``HELP`` (one line), and
``add_arguments(parser)`` and ``run(args) -> int``. It imports heavy libraries inside ``run`` so
that ``cnnlab --help`` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys

import cnnlab
from cnnlab.errors import CnnlabError

EPILOG = """\
examples:
  cnnlab train                          # LeNet-5 on the digits that ship with scikit-learn
  cnnlab train --data cifar10.tar.gz --model resnet20   # any image folder or archive
  cnnlab evaluate runs/NAME             # top-k accuracy, confusion matrix, worst mistakes
  cnnlab predict runs/NAME cat.jpg      # `tabby cat (0.71)` lines
  cnnlab models 'resnet*'               # list models with their parameter counts
  cnnlab summary vgg16 --input-size 224 # per-layer shapes, params, memory, MACs, receptive field

`cnnlab VERB --help` explains each verb with an example."""


def _verb_modules():
    import cnnlab.cli as pkg

    for info in sorted(pkgutil.iter_modules(pkg.__path__), key=lambda m: m.name):
        if info.name.startswith("_") or info.name in {"main", "common"}:
            continue
        mod = importlib.import_module(f"cnnlab.cli.{info.name}")
        if hasattr(mod, "VERB"):
            yield mod


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cnnlab",
        description="Classic convolutional networks for image classification: build, analyse, "
        "train, evaluate and explain CNNs from a folder of labelled images.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"cnnlab {cnnlab.__version__}")
    sub = parser.add_subparsers(dest="verb", metavar="VERB")
    for mod in _verb_modules():
        p = sub.add_parser(
            mod.VERB,
            help=mod.HELP,
            description=(mod.__doc__ or mod.HELP).strip(),
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        p.add_argument("--debug", action="store_true", help="show full tracebacks on errors")
        mod.add_arguments(p)
        p.set_defaults(_run=mod.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.verb is None:
        parser.print_help()
        return 0
    try:
        return int(args._run(args) or 0)
    except CnnlabError as e:
        if getattr(args, "debug", False):
            raise
        print(f"cnnlab {args.verb}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"cnnlab {args.verb}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
