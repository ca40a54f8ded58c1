"""Inspect an image data set before training: a folder, an archive, a CSV, CIFAR or MNIST files.

PATH is one of:
  - a folder with one sub-folder per class, either directly (cnnlab then splits it, stratified and
    seeded) or inside train/ and val/ (or test/) folders; images in nested sub-folders of a class
    belong to that class; hidden folders (.git, __MACOSX, ...) are never classes;
  - a .tar/.tar.gz/.zip archive of such a folder (the top folder is found automatically);
  - a .csv of path,label[,split] rows (header optional, paths relative to the CSV's folder);
  - the CIFAR-10/100 "python version" batches (folder or .tar.gz), read with a safe unpickler;
  - MNIST / Fashion-MNIST IDX files (train-images-idx3-ubyte[.gz], ...), in a folder.

  info   classes, images per class and split, image sizes (min/median/max), modes, per-channel
         mean/std (over a seeded sample of training images; --sample 0 decodes all), and every
         problem found. Every file's header is checked.
  scan   decodes every file and lists each one that cannot be used (zero-byte, truncated,
         corrupt, not an image, decompression bomb, unsafe archive member) with the reason.
         Exit status 1 when it finds any, 0 when all is well.
  split  writes the train/val/test split cnnlab would use as JSON, to reuse with split_file.
  manifest  prints the data set's manifest hash: SHA-256 over the classes and every file's path,
         size and content hash; a folder and its archive agree; record it with a run's results.

info also lists exact duplicate files (same bytes) across classes and across train/val splits.

With --strict, the first bad file stops the command with an error. Source files are only read.

examples:
  cnnlab data info ../shared/data/imagenette2-160.tar.gz
  cnnlab data info ~/photos/pets --json > pets.json
  cnnlab data scan ~/photos/pets
  cnnlab data split ~/photos/pets --val-fraction 0.1 --seed 1 -o pets-split.json
  cnnlab data info labels.csv
  cnnlab data manifest ~/data/cifar-10-python.tar.gz
"""

from __future__ import annotations

VERB = "data"
HELP = "inspect a data set: classes, counts, sizes, mean/std, duplicates, bad files"


def add_arguments(parser) -> None:
    import argparse

    sub = parser.add_subparsers(dest="data_command", metavar="COMMAND", required=True)

    def command(name, text, example):
        return sub.add_parser(name, help=text, description=f"{text}.",
                              epilog=f"example:\n  {example}",
                              formatter_class=argparse.RawDescriptionHelpFormatter)

    info = command("info", "classes, counts, image sizes, mean/std and problems",
                   "cnnlab data info ../shared/data/cifar10-jpg.tar.gz --json")
    scan = command("scan", "decode every file and list the bad ones with reasons",
                   "cnnlab data scan ~/photos/pets --json > problems.json")
    split = command("split", "write the train/val/test split as JSON",
                    "cnnlab data split ~/photos/pets --val-fraction 0.1 -o pets-split.json")
    manifest = command("manifest", "print the data set's manifest hash",
                       "cnnlab data manifest ~/photos/pets --json")
    for p in (info, scan, split, manifest):
        p.add_argument("path", help="image folder or .tar/.tar.gz/.zip of one, a path,label CSV, "
                                    "CIFAR python batches or MNIST IDX files")
        if p is not manifest:          # the manifest hashes bytes; it decodes nothing
            p.add_argument("--strict", action="store_true",
                           help="stop with an error at the first bad file instead of reporting it")
        p.add_argument("--debug", action="store_true", help="show full tracebacks on errors")
    for p in (info, scan):
        p.add_argument("--json", action="store_true", help="print JSON instead of text")
        p.add_argument("--workers", type=int, default=None,
                       help="decoding processes (default: one per core for large sets; 0: none)")
        p.add_argument("--max-pixels", type=int, default=None,
                       help="reject images with more pixels than this (default 40,000,000)")
    info.add_argument("--sample", type=int, default=500,
                      help="training images decoded for mean/std (default 500; 0: all)")
    info.add_argument("--seed", type=int, default=0, help="seed of the mean/std sample (default 0)")
    scan.add_argument("--quick", action="store_true",
                      help="check headers only (fast, but misses truncated pixel data)")
    manifest.add_argument("--json", action="store_true", help="print JSON instead of text")
    split.add_argument("-o", "--output", required=True, help="JSON file to write")
    split.add_argument("--val-fraction", type=float, default=None,
                       help="single tree: share of each class held out for val (default 0.2)")
    split.add_argument("--test-fraction", type=float, default=0.0,
                       help="single tree: share of each class held out for test (default 0)")
    split.add_argument("--seed", type=int, default=0, help="single tree: split seed (default 0)")
    split.add_argument("--allow-empty", action="store_true",
                       help="accept class folders that hold no images")


def run(args) -> int:
    import json

    from cnnlab.data.decode import DEFAULT_MAX_PIXELS
    from cnnlab.errors import ConfigError

    if args.data_command == "split":
        from cnnlab.data.folder import make_split, read_layout

        _, layout, report = read_layout(args.path, args.strict, args.allow_empty)
        spec = make_split(layout, args.val_fraction, args.test_fraction, args.seed)
        spec.save(args.output)
        counts = ", ".join(f"{s} {len(f):,}" for s, f in spec.files.items())
        print(f"wrote {args.output}: {len(spec.classes)} classes, {counts} ({spec.method})")
        if report.skipped:
            print(f"note: {len(report.skipped)} non-image file(s) left out; "
                  f"`cnnlab data scan {args.path}` lists them")
        return 0

    if args.data_command == "manifest":
        from cnnlab.data.hygiene import manifest_hash

        digest = manifest_hash(args.path)
        print(json.dumps({"path": str(args.path), "manifest_hash": digest}, ensure_ascii=False)
              if args.json else digest)
        return 0

    max_pixels = DEFAULT_MAX_PIXELS if args.max_pixels is None else args.max_pixels
    if max_pixels < 1:
        raise ConfigError(f"--max-pixels must be a positive pixel count; got {max_pixels}")
    if args.data_command == "info":
        from cnnlab.data.info import dataset_info, info_text

        if args.sample < 0:
            raise ConfigError(f"--sample must be >= 0 (0: all); got {args.sample}")
        info = dataset_info(args.path, sample=args.sample or None, seed=args.seed,
                            strict=args.strict, max_pixels=max_pixels, num_workers=args.workers,
                            progress=None if not args.json else False)
        print(json.dumps(info, indent=2, ensure_ascii=False) if args.json else info_text(info))
        return 0

    from cnnlab.data.info import scan

    report = scan(args.path, quick=args.quick, strict=args.strict, max_pixels=max_pixels,
                  num_workers=args.workers, progress=None if not args.json else False)
    print(report.to_json() if args.json else report.to_text())
    return 1 if report.skipped else 0
