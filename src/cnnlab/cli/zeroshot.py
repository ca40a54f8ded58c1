"""Zero-shot classification from text (Ba, Swersky, Fidler & Salakhutdinov, ICCV 2015): a text
network predicts a classifier from a class's description, so a class never seen in training is
recognised from its description alone ("add a class by describing it").

Sub-commands:
  train     fit on the seen classes of a CUB-like folder/archive (images/<NNN.Name>/*.jpg,
            wikipedia/<NNN.Name>.txt, splits.json); writes a run folder with metrics
  evaluate  ROC-AUC on unseen / seen / mean, top-1/top-5 among unseen and generalized; optionally
            word-sensitivity bar charts and text-to-image retrieval grids (--explain)
  predict   classify images among classes given only as description files

Image features come from any zoo backbone (--backbone) with any weights file (--weights); with
ImageNet-trained VGG weights this is the paper's setting. Without weights the backbone is random.

examples:
  cnnlab zeroshot train --data cub200-2010-zeroshot.tar.gz --split hard --backbone vgg16 \\
      --weights vgg16.pth --model fc --out runs/zs
  cnnlab zeroshot evaluate runs/zs --json
  cnnlab zeroshot evaluate runs/zs --explain 3
  cnnlab zeroshot predict runs/zs bird.jpg --describe "cardinal=cardinal.txt" \\
      --describe "blue jay=jay.txt"
"""

from __future__ import annotations

VERB = "zeroshot"
HELP = "zero-shot classification: classifiers for unseen classes predicted from their descriptions"


def add_arguments(parser) -> None:
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    t = sub.add_parser("train", help="fit on seen classes; write a run folder")
    t.add_argument("--data", required=True, help="CUB-like folder or archive")
    t.add_argument("--split", default="hard",
                   help="split name in splits.json (hard, easy) or a JSON file with "
                        "seen_class_ids / unseen_class_ids (default: hard)")
    t.add_argument("--backbone", default="resnet18", help="zoo model giving the image features")
    t.add_argument("--weights", default=None,
                   help="backbone weights: a file (.safetensors/.pth) or a `cnnlab train` run "
                        "directory (default: random init)")
    t.add_argument("--image-size", type=int, default=None,
                   help="input side (default: the run's training size, else the model's)")
    add_feature_arguments(t)
    t.add_argument("--model", default="fc", choices=("fc", "conv", "fc+conv"),
                   help="which of the paper's models (default: fc)")
    t.add_argument("--epochs", type=int, default=20,
                   help="epochs of the zero-shot model (default: 20, chosen on held-out seen "
                        "classes; the text network overfits the articles when trained longer)")
    t.add_argument("--lr", type=float, default=1e-3)
    t.add_argument("--weight-decay", type=float, default=1e-4,
                   help="on the text network (default: 1e-4)")
    t.add_argument("--loss", default="bce", choices=("bce", "hinge"))
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--no-baselines", action="store_true", help="skip the ridge and CCA baselines")
    t.add_argument("--out", required=True, help="run folder to write")
    t.add_argument("--json", action="store_true", help="print the metrics as JSON")

    e = sub.add_parser("evaluate", help="metrics of a run; --explain writes PNGs")
    e.add_argument("run", help="run folder written by `cnnlab zeroshot train`")
    e.add_argument("--explain", type=int, default=0, metavar="N",
                   help="word sensitivities and retrieval grids for the first N unseen classes")
    e.add_argument("--json", action="store_true", help="print the metrics as JSON")

    p = sub.add_parser("predict", help="classify images among classes given as text files")
    p.add_argument("run", help="run folder written by `cnnlab zeroshot train`")
    p.add_argument("images", nargs="+", help="image file(s)")
    p.add_argument("--describe", action="append", required=True, metavar="NAME=FILE",
                   help="a class and its description file; repeat for each class")
    p.add_argument("--top", type=int, default=5, help="classes printed per image (default: 5)")
    p.add_argument("--json", action="store_true", help="print the probabilities as JSON")


def add_feature_arguments(parser, feature_layers: str = "") -> None:
    """How images are described and ranked, and where settings are tuned: shared by
    `cnnlab zeroshot train` and benchmarks/zeroshot_cub.py (see :func:`feature_options`)."""
    parser.add_argument("--validate", type=int, default=0, metavar="N",
                        help="tune without touching the unseen classes: train on the split's "
                             "seen classes except the last N, which play unseen (default: off)")
    parser.add_argument("--feature-layers", default=feature_layers, metavar="NAMES",
                        help="comma-separated backbone modules (layer2,layer3 on a ResNet) or "
                             "stages of any zoo model (stage2,stage3) whose averaged outputs "
                             "join the penultimate features: earlier stages keep colour and "
                             "texture ('' for the penultimate only; "
                             f"default: {feature_layers or 'penultimate only'})")
    parser.add_argument("--no-mirror", action="store_true",
                        help="describe each image by itself only (default: its mirror image is "
                             "a second training row, and test features average the two)")
    parser.add_argument("--raw-scores", action="store_true",
                        help="rank images per class by raw scores (default: each image's scores "
                             "minus their mean over the candidate classes, for every method; "
                             "the raw AUCs are reported too)")


def feature_options(args) -> dict:
    """ZeroShotRunConfig fields from :func:`add_feature_arguments`'s flags (``center_scores`` is
    a field of the model's config)."""
    layers = tuple(n.strip() for n in args.feature_layers.split(",") if n.strip())
    return {"validate": args.validate, "feature_layers": layers,
            "mirror_views": not args.no_mirror}


def _print_metrics(metrics: dict) -> None:
    cols = {"auc_unseen": "AUC unseen", "auc_seen": "AUC seen", "auc_mean": "AUC mean",
            "top1_unseen": "top-1 u", "top5_unseen": "top-5 u", "generalized_harmonic": "gen. H"}
    print(f"{'method':<16}" + "".join(f"{h:>11}" for h in cols.values()))
    for name, m in metrics.items():
        print(f"{name:<16}" + "".join(f"{m[c]:>11.3f}" for c in cols))


def _train(args) -> int:
    import json

    from cnnlab.zeroshot.models import ZeroShotConfig
    from cnnlab.zeroshot.run import ZeroShotRunConfig, train_zeroshot

    model = ZeroShotConfig(kind=args.model, epochs=args.epochs, lr=args.lr,
                           weight_decay=args.weight_decay, loss=args.loss, seed=args.seed,
                           center_scores=not args.raw_scores)
    cfg = ZeroShotRunConfig(data=args.data, split=args.split, backbone=args.backbone,
                            weights=args.weights, image_size=args.image_size, model=model,
                            **feature_options(args),
                            baselines=() if args.no_baselines else ("ridge", "cca"))
    say = None if args.json else print
    record = train_zeroshot(cfg, args.out, progress=say)
    if args.json:
        print(json.dumps(record["metrics"], indent=2))
        return 0
    print(f"{len(record['seen'])} seen / {len(record['unseen'])} unseen classes, "
          f"{record['n_train_images']} training images, {record['text_dim']:,} words, "
          f"{record['wall_seconds']:.1f} s; run written to {args.out}")
    _print_metrics(record["metrics"])
    return 0


def _evaluate(args) -> int:
    import json

    from cnnlab.zeroshot.run import evaluate_run, explain_run, load_run

    run = load_run(args.run)
    metrics = {run.net.config.kind: evaluate_run(run)}
    metrics.update({k: v for k, v in run.record["metrics"].items() if k.startswith("baseline_")})
    written = explain_run(run, args.explain) if args.explain > 0 else []
    if args.json:
        print(json.dumps({"metrics": metrics, "written": written}, indent=2))
        return 0
    _print_metrics(metrics)
    for w in written:
        print(f"wrote {w}")
    return 0


def _predict(args) -> int:
    import json

    from cnnlab.errors import ConfigError
    from cnnlab.zeroshot.data import read_description
    from cnnlab.zeroshot.run import load_run, predict_described

    descriptions = {}
    for item in args.describe:
        name, sep, path = item.partition("=")
        if not sep or not name.strip() or not path.strip():
            raise ConfigError(f"--describe takes NAME=FILE (e.g. \"blue jay=jay.txt\"); "
                              f"got {item!r}")
        if name.strip() in descriptions:
            raise ConfigError(f"class {name.strip()!r} is described twice")
        descriptions[name.strip()] = read_description(path.strip(), name.strip())
    run = load_run(args.run)
    probs = predict_described(run, args.images, descriptions)
    names = list(descriptions)
    if args.json:
        print(json.dumps({str(img): dict(zip(names, map(float, p)))
                          for img, p in zip(args.images, probs)}, indent=2))
        return 0
    for img, p in zip(args.images, probs):
        if len(args.images) > 1:
            print(f"{img}:")
        for k in p.argsort()[::-1][:args.top]:
            print(f"{names[k]} ({p[k]:.2f})")
    return 0


def run(args) -> int:
    return {"train": _train, "evaluate": _evaluate, "predict": _predict}[args.action](args)
