"""Per-layer table of a zoo model: output shape, parameters, activation memory, MACs, receptive field.

One row per layer call (and per functional op such as a residual add or a concatenation), then
totals: parameters, MACs per image, forward activation memory per image (all outputs, and the
CS231n convention of input + conv/pool/FC outputs), a forward+backward memory estimate for the
batch, and the receptive field of the last feature map (Araujo et al. 2019). Rows marked * reuse
their input's memory (in-place ReLU, flatten) and are not counted twice.

By default the forward runs on the meta device: shapes only, no arithmetic, no memory, so even
VGG-16 at batch 256 is instant. --device cpu runs a real forward instead.

With --compare, models are shown side by side (parameters, MACs, activation memory and measured
CPU latency per image, the median of --repeats eval-mode runs) and -o writes a PNG chart.

examples:
  cnnlab summary vgg16                              # the CS231n VGG-16 table, and more
  cnnlab summary inception_v3 --input-size 299 --dtype bfloat16
  cnnlab summary resnet50 --batch-size 64 --json > resnet50.json
  cnnlab summary lenet5 --csv
  cnnlab summary --compare alexnet vgg16 googlenet resnet50 densenet121 -o chart.png
"""

from __future__ import annotations

VERB = "summary"
HELP = "per-layer shapes, params, memory, MACs and receptive field of a model (or --compare several)"

DTYPES = ("float32", "bfloat16", "float16", "float64")


def add_arguments(parser) -> None:
    parser.add_argument("model", nargs="?", help="zoo model name (`cnnlab models` lists them)")
    parser.add_argument("--input-size", default=None, metavar="SIZE",
                        help="input side (224), HxW (224x192) or CxHxW (1x32x32); "
                        "default: the model's own")
    parser.add_argument("--batch-size", type=int, default=1, help="batch size N (default 1)")
    parser.add_argument("--dtype", choices=DTYPES, default="float32",
                        help="dtype of the forward: sets the memory columns (default float32)")
    parser.add_argument("--num-classes", type=int, default=None,
                        help="classifier outputs (default: the model's own, 1000 for ImageNet)")
    parser.add_argument("--in-chans", type=int, default=None, help="input channels (default: the model's)")
    parser.add_argument("--device", default="meta",
                        help="where the forward runs: meta (default, shapes only), cpu or cuda")
    fmt = parser.add_mutually_exclusive_group()
    fmt.add_argument("--json", action="store_true", help="print JSON (rows and totals) instead of a table")
    fmt.add_argument("--csv", action="store_true", help="print the rows as CSV instead of a table")
    parser.add_argument("--compare", nargs="+", metavar="MODEL",
                        help="compare these models side by side, with measured CPU latency")
    parser.add_argument("--repeats", type=int, default=5,
                        help="timed runs per model for --compare; the median is shown (default 5)")
    parser.add_argument("-o", "--output", default=None, metavar="PNG",
                        help="with --compare: write a chart of params, MACs and latency here")


def parse_input_size(text: str | None):
    """'224' -> 224, '224x192' -> (224, 192), '1x32x32' or '1,32,32' -> (1, 32, 32)."""
    from cnnlab.errors import ConfigError

    if text is None:
        return None
    parts = text.replace(",", "x").lower().split("x")
    try:
        dims = [int(p) for p in parts]
    except ValueError:
        dims = []
    if len(dims) not in (1, 2, 3) or any(d <= 0 for d in dims):
        raise ConfigError(f"--input-size takes a side (224), HxW (224x192) or CxHxW (3x224x224); "
                          f"got {text!r}")
    return dims[0] if len(dims) == 1 else tuple(dims)


def run(args) -> int:
    from cnnlab.errors import ConfigError

    size = parse_input_size(args.input_size)
    if args.batch_size < 1:
        raise ConfigError(f"--batch-size must be >= 1; got {args.batch_size}")
    if args.compare:
        if args.model:
            raise ConfigError(f"give either a model or --compare, not both; got {args.model!r} and "
                              f"--compare {' '.join(args.compare)}")
        return _compare(args, size)
    if args.output:
        raise ConfigError("-o/--output writes the --compare chart; add --compare MODEL MODEL ...")
    if not args.model:
        raise ConfigError("name a model, e.g. `cnnlab summary vgg16`, or compare several with "
                          "`cnnlab summary --compare alexnet vgg16`; `cnnlab models` lists them")
    return _single(args, size)


def _single(args, size) -> int:
    import torch

    from cnnlab.analyze import summary
    from cnnlab.models import create_model

    device = torch.device(args.device)
    with device:
        model = create_model(args.model, num_classes=args.num_classes, in_chans=args.in_chans)
    s = summary(model, size, batch_size=args.batch_size, dtype=getattr(torch, args.dtype),
                device=device, in_chans=args.in_chans)
    if args.json:
        print(s.to_json())
    elif args.csv:
        print(s.to_csv(), end="")
    else:
        print(s.to_table())
    return 0


def _compare(args, size) -> int:
    import json

    from cnnlab.analyze.compare import compare, comparison_dict, comparison_table, plot_comparison
    from cnnlab.errors import ConfigError

    if args.csv:
        raise ConfigError("--compare prints a table or --json; --csv is for one model's rows")
    if args.repeats < 1:
        raise ConfigError(f"--repeats must be >= 1; got {args.repeats}")
    models = compare(args.compare, input_size=size, repeats=args.repeats, num_classes=args.num_classes)
    if args.json:
        print(json.dumps(comparison_dict(models), indent=2))
    else:
        print(comparison_table(models))
    if args.output:
        path = plot_comparison(models, args.output)
        if not args.json:
            print(f"chart written to {path}")
    return 0
