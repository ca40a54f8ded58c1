"""Image features for the zero-shot models from any zoo backbone with any weights: penultimate
features (N, D) via ``forward_head(forward_features(x), pre_logits=True)`` for the fc model, and the
last conv map (N, C, H, W) of ``forward_features`` for the conv model (Ba et al. 2015 use VGG-19's
fc7 and conv5_3; an ImageNet-trained torchvision VGG file gives that setting).

Weights are a state dict file or a `cnnlab train` run (directory or .safetensors), whose input
size and normalisation then come with it. No ImageNet weights can be downloaded here, so
:func:`finetune_backbone` can adapt a backbone to the seen classes' training images first (with
:func:`cnnlab.transfer.finetune.plan`), never to a held-out or unseen-class image.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np

from cnnlab.errors import ConfigError


def first_conv_channels(model) -> int:
    """Input channels the model expects (its first Conv2d), 3 if it has none."""
    from torch import nn

    conv = next((m for m in model.modules() if isinstance(m, nn.Conv2d)), None)
    return conv.in_channels if conv is not None else 3


def load_backbone(name: str, weights: str | None = None):
    """A zoo model in eval mode plus its normalisation (mean, std) and input channels."""
    from cnnlab.models import create_model, model_info
    from cnnlab.transfer.source import is_cnnlab_run, load_source

    if weights is not None and is_cnnlab_run(weights):
        src = load_source(weights, name)     # a run knows its channels and normalisation
        return (src.model.eval(), np.asarray(src.mean, np.float32),
                np.asarray(src.std, np.float32), src.in_chans)
    model = create_model(name, weights=weights).eval()
    info = model_info(name)
    chans = first_conv_channels(model)
    mean, std = np.asarray(info.mean, np.float32), np.asarray(info.std, np.float32)
    if chans == 1 and len(mean) != 1:
        mean, std = mean.mean(keepdims=True), std.mean(keepdims=True)
    return model, mean, std, chans


def tap_modules(model, layers) -> list[str]:
    """Module names for `layers`: module names or layer groups ("stage2"), resolved by
    :func:`cnnlab.transfer.features.resolve_layer`, which names the choices when one is unknown."""
    from cnnlab.transfer.features import resolve_layer

    specs = [resolve_layer(model, name) for name in layers]
    heads = [sp.name for sp in specs if sp.kind != "module"]
    if heads:
        raise ConfigError(f"feature layers {heads} are already the penultimate features or the "
                          f"logits; name earlier modules or stages (e.g. stage2, stage3)")
    return [sp.module for sp in specs]


def extract_features(model, images: np.ndarray, mean, std, conv_maps: bool = False,
                     map_size: int | None = None, layers=(), mirror: bool = False):
    """(feats (B, D) float32, maps (B, C, h, w) float32 or None) of uint8 images (B, C, S, S).

    RGB images go to a one-channel model as their channel mean; `map_size` average-pools the conv
    map to map_size x map_size to keep it small. `layers` names modules whose globally averaged
    outputs are put before the penultimate features: earlier stages keep the colour and texture
    that fine-grained descriptions name ("yellow throat", "streaked breast"), which the last stage
    of a backbone trained on other classes partly pools away. `mirror` describes the left-right
    mirror images instead (their maps are those of the mirrored image, not flipped back).
    """
    import torch
    import torch.nn.functional as F

    chans = first_conv_channels(model)
    x = torch.from_numpy(np.ascontiguousarray(images)).float() / 255.0      # (B, C, S, S)
    if mirror:
        x = x.flip(3)
    if x.shape[1] != chans:
        if chans == 1:
            x = x.mean(1, keepdim=True)
        elif x.shape[1] == 1:
            x = x.expand(-1, chans, -1, -1)
        else:
            raise ConfigError(f"images have {x.shape[1]} channels, the backbone takes {chans}")
    m = torch.as_tensor(np.asarray(mean, np.float32)).view(1, -1, 1, 1)
    s = torch.as_tensor(np.asarray(std, np.float32)).view(1, -1, 1, 1)
    taps: dict = {}
    modules, names = dict(model.named_modules()), tap_modules(model, layers)
    hooks = [modules[n].register_forward_hook(lambda mod, i, o, n=n: taps.__setitem__(n, o))
             for n in names]
    try:
        with torch.inference_mode():
            fmap = model.forward_features((x - m) / s)
            feats = model.forward_head(fmap, pre_logits=True).flatten(1)     # (B, D)
            if hooks:
                pooled = [taps[n].mean((2, 3)) if taps[n].ndim == 4 else taps[n].flatten(1)
                          for n in names]                         # in the order asked for
                feats = torch.cat([*pooled, feats], 1)
            maps = None
            if conv_maps:
                if fmap.ndim != 4:
                    raise ConfigError(f"{type(model).__name__}.forward_features gives shape "
                                      f"{tuple(fmap.shape)}, not a conv map (N, C, H, W)")
                if map_size is not None and fmap.shape[-1] > map_size:
                    fmap = F.adaptive_avg_pool2d(fmap, map_size)
                maps = fmap.numpy().astype(np.float32)
    finally:
        for h in hooks:
            h.remove()
    return feats.numpy().astype(np.float32), maps


def extract_dataset(data, rels: list[str], model, mean, std, image_size: int,
                    conv_maps: bool = False, map_size: int | None = 7, batch_size: int = 64,
                    layers=(), mirrors=(False,)):
    """Features of the images `rels` of a :class:`cnnlab.zeroshot.data.CubData`, streamed in
    batches and decoded once for every view in `mirrors` (False: the image, True: its mirror
    image). Returns (kept positions (M,) into `rels`, [(feats (M, D), maps or None) a view])."""
    from cnnlab.zeroshot.data import iter_image_batches

    feats, maps, kept = [[] for _ in mirrors], [[] for _ in mirrors], []
    for batch, idx in iter_image_batches(data, rels, image_size, batch_size):
        kept += idx
        for v, mirror in enumerate(mirrors):
            f, m = extract_features(model, batch, mean, std, conv_maps, map_size, layers, mirror)
            feats[v].append(f)
            if m is not None:
                maps[v].append(m)
    if not kept:
        raise ConfigError("no image could be decoded; see the skip report")
    order = np.argsort(kept, kind="stable")               # back to the order of `rels`
    views = [(np.concatenate(f)[order], np.concatenate(m)[order] if m else None)
             for f, m in zip(feats, maps)]
    return np.asarray(kept)[order], views


def finetune_backbone(data, rels: list[str], labels, classes: list[str], name: str,
                      weights: str | None, image_size: int, epochs: int, seed: int = 0,
                      lr: float = 0.01, strategy: str = "full", batch_size: int = 64,
                      progress=None):
    """Fine-tune the backbone on the images `rels` (the seen classes' training images only: the
    caller's split discipline) for `epochs` with a :func:`cnnlab.transfer.prepare` strategy
    ("full", or "top-k-layers": the last stage and the classifier), starting from `weights`
    (None: a seeded random init). Returns (model in eval mode, mean, std, record)."""
    import tempfile

    import torch
    from safetensors.torch import save_file

    from cnnlab.augment import Compose, HorizontalFlip, RandomCrop
    from cnnlab.train.batches import Loaders, TensorBatches, channel_stats
    from cnnlab.train.config import TrainConfig
    from cnnlab.transfer.finetune import finetune, plan
    from cnnlab.transfer.source import load_source
    from cnnlab.zeroshot.data import iter_image_batches

    torch.manual_seed(seed)                  # the random init, when there are no weights
    src = load_source(weights, name)
    x = torch.zeros((len(rels), src.in_chans, image_size, image_size), dtype=torch.uint8)
    kept = []
    for batch, idx in iter_image_batches(data, rels, image_size, 256, src.mode):
        x[idx] = torch.from_numpy(batch)
        kept += idx
    kept = sorted(kept)                       # undecodable files are in data.report
    x, y = x[kept], torch.as_tensor(np.asarray(labels)[kept], dtype=torch.int64)
    mean, std = channel_stats(x)              # replaced by the source's when it records its own
    # the CIFAR-style pad-and-crop (1/8 of the side) and mirror of `cnnlab train`
    aug = Compose([RandomCrop(image_size, padding=image_size // 8), HorizontalFlip()])
    train = TensorBatches(x, y, batch_size, shuffle=True, seed=seed, mean=mean, std=std,
                          transform=aug)
    loaders = Loaders(train, None, None, list(classes), mean, std,
                      {"name": "seen-class training images", "train": len(y)})
    cfg = TrainConfig(model=src.model_name, image_size=image_size, epochs=epochs, lr=lr,
                      batch_size=batch_size, seed=seed, monitor_every=0, quiet=True)
    with tempfile.TemporaryDirectory(prefix="zeroshot-finetune-") as tmp:
        if weights is None:                   # plan() starts from a file: save the init as one
            weights = Path(tmp) / "init.safetensors"
            save_file({k: v.contiguous() for k, v in src.model.state_dict().items()},
                      str(weights))
        cfg = replace(cfg, out_dir=tmp, name="finetune")
        p = plan(cfg, str(weights), strategy, model=src.model_name, loaders=loaders)
        if progress:
            progress(f"fine-tuning {name} ({strategy}) on {len(y)} seen-class training "
                     f"images for {epochs} epoch(s)")
        result = finetune(p)
    last = result.history[-1] if result.history else {}
    record = {"images": len(y), "classes": len(classes), "epochs": epochs, "lr": lr,
              "strategy": p.record["strategy"], "train_acc1": last.get("train_acc1"),
              "seconds": result.summary["seconds"]}
    return (result.model.eval(), np.asarray(p.loaders.mean, np.float32),
            np.asarray(p.loaders.std, np.float32), record)
