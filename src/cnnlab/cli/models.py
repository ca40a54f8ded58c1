"""List the model zoo: name, parameter count, default input size and the paper.

Parameter counts are at each model's default number of classes (1000 for the ImageNet models).
Models are built on the meta device, which allocates no weights, so listing even VGG-19 is
instant. PATTERN is a shell glob ('resnet*'); a plain word matches any name that contains it.

examples:
  cnnlab models                   # the whole zoo
  cnnlab models 'resnet*'         # the ResNets
  cnnlab models dense --json      # machine-readable
"""

from __future__ import annotations

VERB = "models"
HELP = "list zoo models with parameter counts, default input size and paper"


def add_arguments(parser) -> None:
    parser.add_argument("pattern", nargs="?", default=None,
                        help="shell glob such as 'resnet*', or a word the name contains")
    parser.add_argument("--json", action="store_true", help="print a JSON list instead of a table")


def run(args) -> int:
    import json

    from cnnlab.analyze.zoo import describe_models
    from cnnlab.errors import ConfigError

    rows = describe_models(args.pattern)
    if not rows:
        raise ConfigError(f"no model matches {args.pattern!r}; `cnnlab models` lists them all")
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    head = ["Model", "Params", "Input", "Paper"]
    lines = [[r["name"], f"{r['params']:,}", f"{r['in_chans']}x{r['input_size']}x{r['input_size']}",
              r["paper"]] for r in rows]
    widths = [max(len(h), *(len(line[j]) for line in lines)) for j, h in enumerate(head)]

    def fmt(cells):
        return "  ".join(c.rjust(w) if j == 1 else c.ljust(w)
                         for j, (c, w) in enumerate(zip(cells, widths))).rstrip()

    print(fmt(head))
    print("-" * len(fmt(head)))
    for line in lines:
        print(fmt(line))
    print(f"{len(rows)} model(s); params at the default number of classes")
    return 0
