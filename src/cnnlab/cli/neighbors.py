"""Show the nearest training images of query images in a CNN's feature space, as a PNG grid.

Krizhevsky et al. 2012 (Fig. 4) judged their features this way: the training images nearest a
test image in the last hidden layer share its class while looking different pixel by pixel.
Each grid row is one query (framed in blue) followed by its K nearest training images, captioned
with class and distance. The source network is chosen as in `cnnlab features` (--model,
--weights, --key-map, --map-rule, --layer, --data). Queries are image files, or test images of
the data set by index (--test-index, e.g. for the embedded digits).

examples:
  cnnlab neighbors --model lenet5 --layer fc7 --test-index 0 --test-index 5 -o nn.png
  cnnlab neighbors cat.jpg --weights runs/pets-resnet18 --data pets/ -k 10 -o cat-nn.png
  cnnlab neighbors q.png --weights runs/pets-resnet18 --data pets/ --metric euclidean --json
"""

from __future__ import annotations

import argparse

VERB = "neighbors"
HELP = "nearest training images of a query image in feature space, as an image grid"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from cnnlab.cli.features import add_source_arguments

    parser.add_argument("queries", nargs="*", metavar="IMAGE", help="query image files")
    add_source_arguments(parser)
    a = parser.add_argument
    a("--test-index", type=int, action="append", default=[], metavar="N",
      help="use test image N of --data as a query (repeatable)")
    a("-k", type=int, default=8, help="neighbours per query (default 8)")
    a("--metric", choices=("cosine", "euclidean"), default="cosine",
      help="feature distance (default cosine)")
    a("--limit", type=int, help="search only the first N training images")
    a("-o", "--output", default="neighbors.png", metavar="FILE.png",
      help="grid image to write (default neighbors.png)")
    a("--json", action="store_true", help="print the neighbours as JSON")


def run(args) -> int:
    import json
    import sys
    from pathlib import Path

    import numpy as np

    from cnnlab.cli.features import load_source_from_args
    from cnnlab.data import decode_image, fit_image
    from cnnlab.errors import ConfigError
    from cnnlab.transfer.features import load_split_images, resolve_layer
    from cnnlab.transfer.neighbors import find_neighbors, neighbor_grid

    if not args.queries and not args.test_index:
        raise ConfigError("give query images (paths) or --test-index N")
    if args.limit is not None and args.limit < 1:
        raise ConfigError(f"--limit must be >= 1; got {args.limit}")
    src = load_source_from_args(args)
    for note in src.notes:
        print(f"cnnlab neighbors: {note}", file=sys.stderr)
    resolve_layer(src.model, args.layer)
    side, chans = src.image_size, src.in_chans
    x_tr, y_tr, classes = load_split_images(args.data, "train", side, chans, src.mode)
    if args.limit:
        x_tr, y_tr = x_tr[:args.limit], y_tr[:args.limit]
    queries, names = [], []
    for path in args.queries:
        pixels = fit_image(decode_image(path, src.mode), side)           # (S, S, C) uint8
        queries.append(pixels.transpose(2, 0, 1).astype(np.float32) / 255.0)
        names.append(Path(path).name)
    if args.test_index:
        x_te, y_te, _ = load_split_images(args.data, "test", side, chans, src.mode)
        for i in args.test_index:
            if not 0 <= i < len(x_te):
                raise ConfigError(f"--test-index {i} is out of range: the test split has "
                                  f"{len(x_te)} images (0..{len(x_te) - 1})")
            queries.append(x_te[i])
            names.append(f"test {i} ({classes[y_te[i]]})")
    q = np.stack(queries)
    results = find_neighbors(src.model, x_tr, y_tr, classes, q, k=args.k, layer=args.layer,
                             metric=args.metric, mean=src.mean, std=src.std,
                             batch_size=args.batch_size, pool=args.pool)
    rows = [(q[j], [x_tr[n["index"]] for n in r["neighbors"]],
             [f"{n['class']} {n['distance']:.2f}" for n in r["neighbors"]])
            for j, r in enumerate(results)]
    out = Path(args.output)
    out.parent.mkdir(parents=True, exist_ok=True)
    neighbor_grid(rows, names).save(out)
    if args.json:
        print(json.dumps({"output": str(out), "model": src.model_name, "layer": args.layer,
                          "metric": args.metric,
                          "queries": [{"query": nm, **r} for nm, r in zip(names, results)]},
                         indent=2))
    else:
        for nm, r in zip(names, results):
            top = ", ".join(f"{n['class']} ({n['distance']:.3f})" for n in r["neighbors"][:5])
            print(f"{nm}: {top}{' ...' if len(r['neighbors']) > 5 else ''}")
        print(f"wrote {out}")
    return 0
