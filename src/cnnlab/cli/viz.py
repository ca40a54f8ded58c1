"""Seeing inside a network: filters, feature maps, saliency, occlusion, Grad-CAM, maximally
activating patches, class models and t-SNE, each written as a PNG.

Sub-commands (each takes --model NAME and/or --weights FILE_OR_RUN; a cnnlab checkpoint or a run
directory of `cnnlab train` also supplies the model name, classes, channels and mean/std):

  filters      first-layer kernels as a tile grid (Krizhevsky et al. 2012, Fig. 3)
  features     one image's feature maps at --layer (Zeiler & Fergus 2014)
  saliency     |d score / d pixel|, max over channels (Simonyan et al. 2014)
  guided       guided backpropagation (Springenberg et al. 2015)
  deconv       deconvnet projection (Zeiler & Fergus 2014)
  occlusion    class probability as a grey square slides over the image (Zeiler & Fergus 2014)
  gradcam      class activation map of a conv layer (Selvaraju et al. 2017)
  max-patches  data-set patches that excite one channel most (Zeiler & Fergus 2014)
  class-model  an input that maximises a class score (Simonyan et al. 2014)
  tsne         t-SNE of penultimate features, coloured by class (van der Maaten & Hinton 2008)

--class defaults to the predicted class; --layer to the last convolution for Grad-CAM and the
first for filters and feature maps (`cnnlab summary MODEL` lists layer names). --json prints what
was computed (class, scores, boxes, output path) as JSON.

examples:
  cnnlab viz filters --weights runs/lenet5-20260101-120000 -o filters.png
  cnnlab viz gradcam --model resnet18 --weights resnet18.safetensors cat.jpg --class 281 -o cam.png
  cnnlab viz occlusion --model resnet18 cat.jpg --patch 32 --stride 16 -o occ.png
  cnnlab viz max-patches --weights runs/lenet5-xyz --layer features.c3 --channel 4 -o patches.png
  cnnlab viz tsne --weights runs/lenet5-xyz --data digits --limit 500 -o tsne.png
"""

from __future__ import annotations

import argparse

VERB = "viz"
HELP = "visualise a network: filters, saliency, guided/deconv, occlusion, Grad-CAM, t-SNE, ..."

IMAGE_CMDS = {
    "features": "feature maps of one image at --layer",
    "saliency": "vanilla gradient saliency (Simonyan et al. 2014)",
    "guided": "guided backpropagation (Springenberg et al. 2015)",
    "deconv": "deconvnet projection (Zeiler & Fergus 2014)",
    "occlusion": "occlusion sensitivity (Zeiler & Fergus 2014)",
    "gradcam": "Grad-CAM heat-map (Selvaraju et al. 2017)",
}
DATA_CMDS = {
    "max-patches": "patches that excite one channel most (Zeiler & Fergus 2014)",
    "tsne": "t-SNE of penultimate-layer features (van der Maaten & Hinton 2008)",
}


def add_arguments(parser) -> None:
    sub = parser.add_subparsers(dest="viz_cmd", metavar="METHOD")
    cmds = {"filters": "first-layer kernels as a tile grid (Krizhevsky et al. 2012)",
            **IMAGE_CMDS, **DATA_CMDS,
            "class-model": "an input maximising a class score (Simonyan et al. 2014)"}
    for name, help_ in cmds.items():
        p = sub.add_parser(name, help=help_, description=help_)
        p.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                       help="show full tracebacks on errors")
        p.add_argument("--model", help="zoo model name (optional with a cnnlab checkpoint)")
        p.add_argument("--weights", metavar="FILE_OR_RUN",
                       help=".safetensors/.pth state dict, or a run directory (runs/NAME)")
        p.add_argument("--num-classes", type=int, help="classifier outputs (default: the "
                       "checkpoint's, else the model's)")
        p.add_argument("--in-chans", type=int, help="input channels (default: the checkpoint's)")
        p.add_argument("--image-size", type=int, help="input side S (default: the checkpoint's, "
                       "else the model's)")
        p.add_argument("-o", "--output", required=True, metavar="PNG", help="where the PNG goes")
        p.add_argument("--json", action="store_true", help="print what was computed as JSON")
        if name in IMAGE_CMDS:
            p.add_argument("image", help="image file (JPEG, PNG, ...)")
        if name in IMAGE_CMDS or name == "class-model":
            p.add_argument("--class", dest="target", type=int, required=name == "class-model",
                           help="class index (default: the predicted class)")
        if name in ("filters", "features", "gradcam", "max-patches"):
            p.add_argument("--layer", help="layer name from `cnnlab summary MODEL`")
        if name in DATA_CMDS:
            p.add_argument("--data", default="digits",
                           help="image folder or archive, or 'digits' (default)")
            p.add_argument("--split", default="test", help="split to use (default test)")
            p.add_argument("--limit", type=int, default=500, help="use the first N images (500)")
        if name == "occlusion":
            p.add_argument("--patch", type=int, default=None, help="occluder side (default S/8)")
            p.add_argument("--stride", type=int, default=None, help="step (default patch/2)")
            p.add_argument("--fill", type=float, default=0.0,
                           help="occluder value after standardisation (0: the mean, grey)")
        if name == "max-patches":
            p.add_argument("--channel", type=int, default=0, help="channel of --layer (0)")
            p.add_argument("-k", type=int, default=16, help="how many patches (16)")
        if name == "class-model":
            p.add_argument("--steps", type=int, default=200, help="ascent steps (200)")
            p.add_argument("--lr", type=float, default=0.1, help="step size in input units (0.1)")
            p.add_argument("--l2", type=float, default=0.01, help="L2 decay per step (0.01)")
            p.add_argument("--jitter", type=int, default=2, help="random shift in pixels (2)")
            p.add_argument("--blur-every", type=int, default=4,
                           help="blur every N steps (4; 0: off)")
            p.add_argument("--seed", type=int, default=0)
        if name == "tsne":
            p.add_argument("--perplexity", type=float, default=30.0, help="t-SNE perplexity (30)")
            p.add_argument("--seed", type=int, default=0)
        if name in ("filters", "features"):
            p.add_argument("--scale", type=int, default=8, help="enlarge tiles N times (8)")


def run(args) -> int:
    import json

    from cnnlab.errors import ConfigError
    from cnnlab.visualize.hooks import load_model

    if not getattr(args, "viz_cmd", None):
        raise ConfigError("name a method, e.g. `cnnlab viz gradcam --model resnet18 IMG -o "
                          "cam.png`; `cnnlab viz --help` lists them")
    model, meta = load_model(args.model, args.weights, args.num_classes, args.in_chans)
    size = args.image_size or meta.get("input_size") or getattr(model, "default_input_size", None)
    stats = {}
    if meta.get("mean") and meta.get("std"):
        stats = {"mean": tuple(meta["mean"]), "std": tuple(meta["std"])}
    result = _METHODS[args.viz_cmd](args, model, int(size), stats, meta)
    result = {"method": args.viz_cmd, "model": getattr(model, "model_name", None), **result,
              "output": str(args.output)}
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(f"{args.viz_cmd} written to {args.output}")
    return 0


def _filters(args, model, size, stats, meta) -> dict:
    from cnnlab.visualize import default_layer, filter_tiles, save_png, tile_grid

    layer = args.layer or default_layer(model, "first")
    tiles = filter_tiles(model, layer)
    save_png(args.output, tile_grid(tiles, pad=1), scale=args.scale)
    return {"layer": layer, "tiles": int(len(tiles)), "tile_shape": list(tiles.shape[1:3])}


def _features(args, model, size, stats, meta) -> dict:
    from cnnlab.visualize import default_layer, feature_maps, save_png, tile_grid

    layer = args.layer or default_layer(model, "first")
    maps = feature_maps(model, args.image, layer, image_size=size, **stats)
    save_png(args.output, tile_grid(maps, pad=1), scale=max(1, args.scale // 4))
    return {"layer": layer, "maps": int(len(maps)), "map_shape": list(maps.shape[1:])}


def _gradients(args, model, size, stats, meta) -> dict:
    import torch

    from cnnlab.visualize import gradient_image, input_gradient, overlay, prepare, save_panels
    from cnnlab.visualize.saliency import saliency_from_gradient

    x, pixels = prepare(args.image, model, image_size=size, **stats)
    method = {"saliency": "vanilla"}.get(args.viz_cmd, args.viz_cmd)
    grad, target = input_gradient(model, x, args.target, method)
    heat = saliency_from_gradient(grad)
    label = _label(meta, target)
    second = gradient_image(grad) if method != "vanilla" else heat
    save_panels(args.output, [pixels, second, overlay(pixels, heat)],
                ["input", _TITLES[method], f"overlay, class {label}"],
                cmap="gray" if method == "vanilla" else "jet")
    return {"class": target, "label": label, **_score(model, x, target, torch)}


def _occlusion(args, model, size, stats, meta) -> dict:
    from cnnlab.visualize import occlusion, overlay, save_panels

    patch = args.patch or max(1, size // 8)
    stride = args.stride or max(1, patch // 2)
    occ = occlusion(model, args.image, args.target, patch=patch, stride=stride, fill=args.fill,
                    image_size=size, **stats)
    from cnnlab.visualize.hooks import prepare

    _, pixels = prepare(args.image, model, image_size=size, **stats)
    label = _label(meta, occ.target)
    save_panels(args.output, [pixels, occ.scores, overlay(pixels, occ.heatmap)],
                ["input", f"p(class {label}) with the patch here", "probability drop"])
    worst = divmod(int(occ.scores.argmin()), occ.scores.shape[1])
    return {"class": occ.target, "label": label, "probability": occ.baseline,
            "patch": patch, "stride": stride, "min_probability": float(occ.scores.min()),
            "most_sensitive_box": list(occ.boxes[worst[0] * occ.scores.shape[1] + worst[1]])}


def _gradcam(args, model, size, stats, meta) -> dict:
    import torch

    from cnnlab.visualize import default_layer, gradcam, overlay, prepare, save_panels

    layer = args.layer or default_layer(model, "last")
    x, pixels = prepare(args.image, model, image_size=size, **stats)
    with torch.no_grad():
        target = args.target if args.target is not None else int(model(x)[0].argmax())
    heat = gradcam(model, x, target, layer)
    label = _label(meta, target)
    save_panels(args.output, [pixels, heat, overlay(pixels, heat)],
                ["input", f"Grad-CAM at {layer}", f"overlay, class {label}"])
    return {"class": target, "label": label, "layer": layer, **_score(model, x, target, torch)}


def _dataset(args, model, size, stats):
    import numpy as np
    import torch

    from cnnlab.data import load_arrays
    from cnnlab.errors import ConfigError
    from cnnlab.visualize.hooks import model_in_chans, model_stats

    if args.limit < 1:
        raise ConfigError(f"--limit must be >= 1; got {args.limit}")
    data = None if args.data == "digits" else args.data
    x, y, classes = load_arrays(data, split=args.split, image_size=size)
    x, y = torch.from_numpy(np.asarray(x[:args.limit])), np.asarray(y[:args.limit])
    c = model_in_chans(model)
    if x.shape[1] != c:   # grey digits into a colour model, or the reverse
        x = x.mean(1, keepdim=True).repeat(1, c, 1, 1) if c in (1, 3) else x
    mean, std = (stats["mean"], stats["std"]) if stats else model_stats(model, c)
    xin = (x - torch.tensor(mean).view(1, -1, 1, 1)) / torch.tensor(std).view(1, -1, 1, 1)
    return xin.float(), x, y, classes


def _max_patches(args, model, size, stats, meta) -> dict:
    import numpy as np

    from cnnlab.visualize import default_layer, max_activating_patches, save_png, tile_grid
    from cnnlab.visualize.overlay import resize_map

    layer = args.layer or default_layer(model, "last")
    xin, shown, _, _ = _dataset(args, model, size, stats)
    patches = max_activating_patches(model, xin, layer, args.channel, k=args.k, display=shown)
    side = max(max(p.pixels.shape[:2]) for p in patches)
    tiles = np.stack([np.stack([resize_map(p.pixels[..., i], (side, side))
                                for i in range(p.pixels.shape[-1])], -1) for p in patches])
    save_png(args.output, tile_grid(np.clip(tiles, 0, 1), pad=1), scale=max(1, 64 // side))
    return {"layer": layer, "channel": args.channel,
            "patches": [{"index": p.index, "score": p.score, "box": list(p.box)} for p in patches]}


def _class_model(args, model, size, stats, meta) -> dict:
    from cnnlab.visualize import class_model, save_panels

    x, scores = class_model(model, args.target, image_size=size, steps=args.steps, lr=args.lr,
                            l2=args.l2, jitter=args.jitter, blur_every=args.blur_every,
                            seed=args.seed)
    img = x[0].permute(1, 2, 0).numpy()
    img = (img - img.min()) / max(float(img.max() - img.min()), 1e-12)
    label = _label(meta, args.target)
    save_panels(args.output, [img if img.shape[-1] == 3 else img[..., 0]],
                [f"class model: {label}"], cmap="gray")
    return {"class": args.target, "label": label, "score_start": scores[0], "score_end": scores[-1]}


def _tsne(args, model, size, stats, meta) -> dict:
    from cnnlab.visualize import penultimate_features, save_tsne, tsne

    xin, _, y, classes = _dataset(args, model, size, stats)
    feats = penultimate_features(model, xin)
    points = tsne(feats, perplexity=args.perplexity, seed=args.seed)
    save_tsne(args.output, points, y, classes,
              title=f"t-SNE of {getattr(model, 'model_name', 'model')} penultimate features")
    return {"images": int(len(y)), "feature_dim": int(feats.shape[1])}


def _label(meta: dict, target: int) -> str:
    classes = meta.get("classes") or []
    name = classes[target] if 0 <= target < len(classes) else str(target)
    return str(target) if name == str(target) else f"{target} ({name})"


def _score(model, x, target, torch) -> dict:
    with torch.no_grad():
        logits = model(x)
    return {"logit": float(logits[0, target]), "probability": float(logits.softmax(-1)[0, target])}


_TITLES = {"vanilla": "|gradient|, max over channels", "guided": "guided backpropagation",
           "deconv": "deconvnet projection"}
_METHODS = {"filters": _filters, "features": _features, "saliency": _gradients,
            "guided": _gradients, "deconv": _gradients, "occlusion": _occlusion,
            "gradcam": _gradcam, "max-patches": _max_patches, "class-model": _class_model,
            "tsne": _tsne}
