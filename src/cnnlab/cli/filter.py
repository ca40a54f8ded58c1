"""Filter an image with a named kernel (correlation by default), or draw it under every kernel.

Kernels: box (alias mean; --size), gaussian (--sigma, side 2*ceil(3 sigma)+1, or --size),
sobel-x, sobel-y, prewitt-x, prewitt-y, scharr-x, scharr-y, laplacian, sharpen.
Derivative kernels are written for correlation: sobel-x is positive where the image gets brighter
to the right. --mode convolve flips the kernel first (a derivative kernel then changes sign).

Borders (what the filter sees beyond the image): zero (default, as in CNN layers), reflect
(scipy 'reflect': the edge pixel repeats), mirror (scipy 'mirror'), replicate, wrap.

Written images are 8-bit: blurs and sharpening are clipped to 0..255; derivative responses are
shown as |response| scaled so that the strongest is white. Without -o, prints the statistics of
the raw (unclipped) output.

examples:
  cnnlab filter photo.jpg --kernel sobel-x -o edges.png
  cnnlab filter photo.jpg --kernel gaussian --sigma 2 --border reflect -o blur.png
  cnnlab filter photo.jpg --kernel laplacian --json
  cnnlab filter photo.jpg --all -o gallery.png        # every kernel in one figure
"""

from __future__ import annotations

VERB = "filter"
HELP = "filter an image with a named kernel (box, gaussian, sobel, ...) or draw them all"

KERNEL_NAMES = ("box", "mean", "gaussian", "sobel-x", "sobel-y", "prewitt-x", "prewitt-y",
                "scharr-x", "scharr-y", "laplacian", "sharpen")
BORDER_NAMES = ("zero", "reflect", "mirror", "replicate", "wrap")


def add_arguments(parser) -> None:
    parser.add_argument("image", help="image file (PNG, JPEG, ...)")
    what = parser.add_mutually_exclusive_group(required=True)
    what.add_argument("--kernel", "-k", metavar="NAME",
                      help="one of: " + ", ".join(KERNEL_NAMES))
    what.add_argument("--all", action="store_true",
                      help="figure of the image under every kernel (needs -o)")
    parser.add_argument("-o", "--output", metavar="PATH",
                        help="write the filtered image (or the --all figure) here")
    parser.add_argument("--border", default="zero", choices=BORDER_NAMES,
                        help="how to extend the image past its edges (default: zero)")
    parser.add_argument("--mode", default="correlate", choices=("correlate", "convolve"),
                        help="correlation (default) or convolution (kernel flipped)")
    parser.add_argument("--sigma", type=float, default=None,
                        help="Gaussian standard deviation in pixels (default 1)")
    parser.add_argument("--size", type=int, default=None,
                        help="kernel side for box (default 3) and gaussian (default from sigma)")
    parser.add_argument("--grey", action="store_true",
                        help="convert a colour image to grey first (--all always does)")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")


def run(args) -> int:
    import json
    from pathlib import Path

    import numpy as np

    from cnnlab.classic.figures import is_response, save_gallery, to_display
    from cnnlab.classic.filters import filter2d
    from cnnlab.classic.kernels import get_kernel
    from cnnlab.data.decode import decode_image
    from cnnlab.errors import ConfigError

    if args.output is not None and not Path(args.output).parent.is_dir():
        raise ConfigError(f"cannot write {args.output}: folder {Path(args.output).parent} "
                          "does not exist")
    if args.all:
        if args.output is None:
            raise ConfigError("--all draws a figure and needs -o FILE.png")
        grey = decode_image(args.image, mode="L")[..., 0].astype(np.float64)
        panels = save_gallery(grey, args.output, size=3 if args.size is None else args.size,
                              sigma=1.0 if args.sigma is None else args.sigma, border=args.border,
                              title=f"{Path(args.image).name}: correlation, border={args.border}")
        summary = {"image": args.image, "output": args.output, "panels": panels,
                   "border": args.border}
        print(json.dumps(summary, indent=2) if args.json
              else f"wrote {args.output} ({len(panels)} panels: {', '.join(panels)})")
        return 0

    name = args.kernel.lower()
    if args.sigma is not None and name != "gaussian":
        raise ConfigError(f"--sigma applies to the gaussian kernel, not {args.kernel!r}")
    if args.size is not None and name not in ("box", "mean", "gaussian"):
        raise ConfigError(f"--size applies to box and gaussian, not {args.kernel!r}")
    kernel = get_kernel(name, size=args.size, sigma=args.sigma)
    pixels = decode_image(args.image, mode="L" if args.grey else "RGB")
    if not args.grey and (pixels == pixels[..., :1]).all():
        pixels = pixels[..., :1]                    # a grey picture stored as RGB: filter once
    image = pixels.astype(np.float64)               # (H, W, C)
    out = filter2d(image, kernel, args.mode, args.border)
    if args.output is not None:
        from PIL import Image

        shown = to_display(out, is_response(kernel))
        Image.fromarray(shown[..., 0] if shown.shape[2] == 1 else shown).save(args.output)
    summary = {
        "image": args.image,
        "kernel": kernel.name,
        "kernel_shape": list(kernel.shape),
        "separable": kernel.separable,
        "mode": args.mode,
        "border": args.border,
        "shape": list(out.shape),
        "min": float(out.min()),
        "max": float(out.max()),
        "mean": float(out.mean()),
        "output": args.output,
    }
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        print(f"{kernel.name} {kernel.shape[0]}x{kernel.shape[1]} ({args.mode}, border="
              f"{args.border}) on {out.shape[1]}x{out.shape[0]}x{out.shape[2]}: min "
              f"{summary['min']:.4g}, max {summary['max']:.4g}, mean {summary['mean']:.4g}"
              + (f"; wrote {args.output}" if args.output else ""))
    return 0
