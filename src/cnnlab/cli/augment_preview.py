"""Write a grid of augmented images, to see what the network sees during training.

Draws -n images at random from a data set (the embedded digits when --data is left out), runs
them through the augmentation chain named by --aug and tiles the results into one PNG (small
images are enlarged, pixels kept square). --originals puts each source image before its
augmented copy. The same --seed gives the same picture.

Chain names (comma-separated, in order; NAME=VALUE sets the main parameter):
  flip, crop (pad + random crop, CIFAR), rrc (random-resized crop), scale (VGG scale
  jittering), jitter, hue, pca (AlexNet lighting, fitted on the drawn images), elastic, rotate,
  affine, cutout, erase, trivial (TrivialAugment), and last mixup or cutmix.

examples:
  cnnlab augment-preview --aug flip,crop,jitter -n 16 -o grid.png
  cnnlab augment-preview --data ../shared/data/imagenette2-160.tar.gz --image-size 128 \\
      --aug rrc,flip,jitter=0.4 -o imagenette.png --originals
  cnnlab augment-preview --aug elastic=34,rotate=10 -o digits.png --json
"""

from __future__ import annotations

VERB = "augment-preview"
HELP = "write a grid of augmented samples (what the network sees)"


def add_arguments(parser) -> None:
    parser.add_argument("--data", metavar="PATH", default=None,
                        help="image folder, archive, or 'digits' (default: the embedded digits)")
    parser.add_argument("--aug", default="flip,crop,jitter",
                        help="comma-separated chain, e.g. flip,crop=4,jitter "
                        "(default: %(default)s)")
    parser.add_argument("-n", "--num", type=int, default=16, help="images to show (default 16)")
    parser.add_argument("-o", "--output", metavar="PNG", required=True, help="grid to write")
    parser.add_argument("--image-size", type=int, default=32,
                        help="side the images are decoded to before augmenting (default 32)")
    parser.add_argument("--split", default="train", help="which split to draw from (default train)")
    parser.add_argument("--seed", type=int, default=0, help="draws images and augmentations")
    parser.add_argument("--originals", action="store_true",
                        help="show each source image next to its augmented copy")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")


def run(args) -> int:
    import json
    from pathlib import Path

    from PIL import Image

    from cnnlab.augment.preview import preview, sample_images
    from cnnlab.errors import ConfigError

    if args.num < 1:
        raise ConfigError(f"-n must be at least 1; got {args.num}")
    if args.image_size < 1:
        raise ConfigError(f"--image-size must be at least 1; got {args.image_size}")
    out_path = Path(args.output)
    if not out_path.parent.is_dir():
        raise ConfigError(f"cannot write {out_path}: folder {out_path.parent} does not exist")
    images, labels, classes = sample_images(args.data, args.num, args.image_size, args.split,
                                            args.seed)
    augmented, grid = preview(images, labels, args.aug, args.seed, args.originals)
    Image.fromarray(grid).save(out_path)
    summary = {"output": str(out_path), "data": args.data or "digits", "aug": args.aug,
               "images": int(len(images)), "image_size": args.image_size, "seed": args.seed,
               "grid_size": [int(grid.shape[1]), int(grid.shape[0])],
               "labels": [classes[int(i)] for i in labels]}
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        print(f"wrote {out_path} ({len(images)} images, {grid.shape[1]}x{grid.shape[0]} px, "
              f"aug {args.aug})")
    return 0
