"""The pre-CNN baseline: hand-made features plus a linear classifier, scored on the test split.

Features: hog (Dalal & Triggs 2005: 9 unsigned bins, 4x4-pixel cells on small images, 2x2-cell
blocks, L2-Hys), gist (Oliva & Torralba 2001: 4 scales x 8 orientations x 4x4 grid) or pixels
(the raw image). Features are standardised on the training set, then a linear SVM (LinearSVC)
or logistic regression is fitted. The data is the embedded digits set (scikit-learn's 1,797
8x8 digits upsampled to 32x32, the same stratified split `cnnlab train` uses), or with --data
any image folder or archive cnnlab reads (scored on its val/ split, or test/ where there is no
val/), decoded at --image-size.

--features also takes an .npz file holding x_train, y_train, x_test, y_test (precomputed features,
e.g. CNN activations), to compare a CNN's features with the classic ones under the same classifier.

examples:
  cnnlab baseline                                    # HoG + linear SVM on the digits
  cnnlab baseline --features gist --classifier logistic --json
  cnnlab baseline --features feats.npz               # your own features
  cnnlab baseline --data cifar10-jpg.tar.gz --features hog --classifier linear-svm
"""

from __future__ import annotations

VERB = "baseline"
HELP = "pre-CNN baseline: HoG / GIST / pixel features with a linear SVM or logistic regression"


def add_arguments(parser) -> None:
    parser.add_argument("--features", default="hog", metavar="hog|gist|pixels|FILE.npz",
                        help="feature kind, or an .npz of precomputed features (default: hog)")
    parser.add_argument("--classifier", default="linear-svm", choices=("linear-svm", "logistic"),
                        help="linear classifier on standardised features (default: linear-svm)")
    parser.add_argument("--C", type=float, default=None, dest="C",
                        help="inverse regularisation strength (default: 0.01 SVM, 1.0 logistic)")
    parser.add_argument("--data", default=None, metavar="PATH",
                        help="image folder or archive (default: the embedded digits)")
    parser.add_argument("--image-size", type=int, default=32,
                        help="side the images are resized to (default: 32)")
    parser.add_argument("--seed", type=int, default=0, help="split and classifier seed")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")


def run(args) -> int:
    import json
    from pathlib import Path

    from cnnlab.classic.baseline import load_feature_file, run_baseline
    from cnnlab.errors import ConfigError

    if args.features in ("hog", "gist", "pixels"):
        from cnnlab.data.digits import load_digits

        if args.image_size < 8:
            raise ConfigError(f"--image-size must be >= 8 (HoG needs two 4x4 cells per side); "
                              f"got {args.image_size}")
        if args.data is None:
            data = load_digits(image_size=args.image_size, seed=args.seed)
            source = f"digits (embedded), {args.image_size}x{args.image_size}"
        else:
            from cnnlab.data import load_arrays

            x_train, y_train, _ = load_arrays(args.data, "train", args.image_size)
            x_test, y_test, _ = load_arrays(args.data, "val", args.image_size)
            data = (x_train, y_train, x_test, y_test)
            source = f"{args.data}, {args.image_size}x{args.image_size}"
        kind = args.features
    elif args.data is not None:
        raise ConfigError("--data goes with --features hog|gist|pixels; an .npz file already "
                          "holds its own train/test split")
    elif args.features.endswith(".npz") or Path(args.features).exists():
        if not Path(args.features).is_file():
            raise ConfigError(f"feature file {args.features} does not exist")
        data = load_feature_file(args.features)
        kind, source = "precomputed", args.features
    else:
        raise ConfigError(f"--features must be hog, gist, pixels or an .npz file; got "
                          f"{args.features!r}")
    result = run_baseline(*data, features=kind, classifier=args.classifier, C=args.C,
                          seed=args.seed)
    if args.json:
        print(json.dumps({"data": source, **result.as_dict()}, indent=2))
        return 0
    print(f"data        {source}: {result.n_train} train / {result.n_test} test")
    print(f"features    {kind} ({result.n_features} dims, {result.feature_seconds:.2f} s)")
    print(f"classifier  {args.classifier} on standardised features ({result.fit_seconds:.2f} s)")
    print(f"accuracy    {result.accuracy:.4f}")
    return 0
