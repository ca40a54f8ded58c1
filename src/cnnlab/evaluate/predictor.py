"""Load a trained run and classify images with it: ``cnnlab.evaluate.load(RUN).predict(images)``.

:func:`load` takes a run directory (``runs/NAME``, as written by ``cnnlab train``; its ``best``
checkpoint, else ``last``) or one ``TAG.safetensors`` file, and rebuilds the model with what the
run recorded: model name, classes, input size, channels and normalisation. Runs that predate a
field fall back on the run's config.yaml: digits runs get the classes "0".."9" and their mean/std
recomputed from the training split exactly as training computed them.

Prediction runs through :func:`cnnlab.models.fuse.prepare_for_inference` (BatchNorm folded into
the convs, channels_last, inference mode, bf16 only where the hardware runs it natively), made
once on first use and remade if the model's weights change; ``fast=False`` calls the model as it
is (and saves the copy's memory). In fp32 the two agree to float rounding (~1e-5 in the logits).

Preprocessing is training's evaluation transform, so a file gives the same prediction here as
in ``cnnlab evaluate``: :func:`cnnlab.data.decode_image` (EXIF orientation, alpha on white,
grey or RGB by the model's input channels), :func:`cnnlab.data.fit_image` to S x S (shorter side
+ centre crop, unless the run used "resize"), pixels / 255, then (x - mean) / std per channel.
"""

from __future__ import annotations

import io
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from cnnlab.errors import (CheckpointMismatchError, ConfigError, DataError, InputShapeError,
                           InvalidCheckpointError)
from cnnlab.evaluate.tta import check_mode, tta_probs

DIGITS = (None, "digits")
BATCH = 256   # images per forward pass; small enough for 224 x 224 VGG on a laptop


@dataclass
class Predictor:
    """A trained classifier plus the preprocessing its run used."""

    model: nn.Module
    classes: list[str]
    image_size: int
    in_chans: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    fit: str = "crop"
    model_name: str = ""
    checkpoint: str = ""             # the weights file that was loaded
    run_dir: str = ""
    data: str | None = None          # the run's training data (None: the embedded digits)
    config: dict = field(default_factory=dict, repr=False)
    fast: bool = True                # predict through prepare_for_inference's copy of the model
    _fast: tuple = field(default=(None, None), init=False, repr=False, compare=False)

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def mode(self) -> str:
        """The decoder's colour mode: "L" for one input channel, "RGB" for three."""
        return "L" if self.in_chans == 1 else "RGB"

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    # -- preprocessing -------------------------------------------------------------------------
    def pixels(self, image) -> torch.Tensor:
        """One image (path, PIL image, uint8 array or tensor) -> float (C, S, S) in [0, 1]."""
        from cnnlab.data import decode_image, fit_image

        s, c = self.image_size, self.in_chans
        if isinstance(image, torch.Tensor):
            if image.dtype == torch.uint8:
                if image.dim() != 3:
                    raise InputShapeError(f"a uint8 image tensor must be (C, H, W); got "
                                          f"{tuple(image.shape)}")
                image = image.permute(1, 2, 0).cpu().numpy()           # (H, W, C)
            else:
                if tuple(image.shape) != (c, s, s):
                    raise InputShapeError(
                        f"a float image tensor must already be ({c}, {s}, {s}) with values in "
                        f"[0, 1]; got {tuple(image.shape)}. Pass a path, a PIL image or uint8 "
                        "pixels to have it resized the way training did.")
                return image.float().cpu()
        if isinstance(image, (str, os.PathLike, bytes)):
            arr = decode_image(image, self.mode)
        else:
            arr = decode_image(_pil_bytes(image), self.mode)
        arr = fit_image(arr, s, self.fit)                               # (S, S, C) uint8
        return torch.from_numpy(arr.transpose(2, 0, 1).astype(np.float32)) / 255.0

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        """(x - mean) / std per channel for a float batch (N, C, S, S) in [0, 1]."""
        mean = torch.tensor(self.mean, dtype=x.dtype).view(1, -1, 1, 1)
        std = torch.tensor(self.std, dtype=x.dtype).view(1, -1, 1, 1)
        return (x - mean) / std

    def preprocess(self, images) -> torch.Tensor:
        """Images (one or a list) -> the normalised batch (N, C, S, S) the model takes."""
        if isinstance(images, torch.Tensor) and images.dim() == 4:
            images = list(images)
        elif not isinstance(images, (list, tuple)):
            images = [images]
        if not images:
            raise InputShapeError("no images to predict")
        return self.normalize(torch.stack([self.pixels(im) for im in images]))

    # -- prediction ----------------------------------------------------------------------------
    def runner(self) -> nn.Module:
        """The module predictions come from: `model` in eval mode, or with `fast` its fast copy."""
        self.model.eval()
        if not self.fast:
            return self.model
        from cnnlab.models.fuse import prepare_for_inference

        # Tensor._version counts in-place writes (load_state_dict, optimiser steps) and data_ptr
        # changes with .to(): a model changed after the copy was made gets a fresh copy
        state = tuple((t.data_ptr(), t._version)
                      for t in (*self.model.parameters(), *self.model.buffers()))
        key = (id(self.model), state)
        if self._fast[0] != key:
            self._fast = (key, prepare_for_inference(self.model))
        return self._fast[1]

    @torch.no_grad()
    def probabilities(self, x: torch.Tensor, tta: str | None = None) -> torch.Tensor:
        """Softmax (N, K) of a normalised batch, averaged over test-time views if `tta` is set."""
        tta = check_mode(tta)
        model = self.runner()
        parts = [tta_probs(model, x[i:i + BATCH].to(self.device), tta).cpu()
                 for i in range(0, len(x), BATCH)]
        return torch.cat(parts) if parts else torch.empty(0, self.num_classes)

    def top(self, probs: torch.Tensor, topk: int = 5) -> list[list[tuple[str, float]]]:
        """Per row of `probs`, the `topk` (class name, probability) pairs, most likely first."""
        if topk < 1:
            raise ConfigError(f"topk must be >= 1; got {topk}")
        k = min(topk, self.num_classes)
        values, idx = probs.topk(k, dim=1)
        return [[(self.classes[j], float(p)) for p, j in zip(vs.tolist(), ix.tolist())]
                for vs, ix in zip(values, idx)]

    def predict(self, images, topk: int = 5, tta: str | None = None
                ) -> list[list[tuple[str, float]]]:
        """Per image, its top-k (class name, probability), as a classifier is read out."""
        return self.top(self.probabilities(self.preprocess(images), tta), topk)


def _pil_bytes(image) -> bytes:
    """A PIL image or uint8 array as TIFF bytes, so it takes decode_image's path like a file."""
    from PIL import Image, ImageOps

    if isinstance(image, np.ndarray):
        if image.dtype != np.uint8:
            raise InputShapeError(f"image arrays must be uint8 (H, W) or (H, W, C); got "
                                  f"{image.dtype}. Scale floats by 255 and round first.")
        if image.ndim == 3 and image.shape[2] == 1:
            image = image[..., 0]
        if image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] not in (3, 4)):
            raise InputShapeError(f"image arrays must be (H, W), (H, W, 1), (H, W, 3) or "
                                  f"(H, W, 4); got {image.shape}")
        image = Image.fromarray(image)
    if not isinstance(image, Image.Image):
        raise InputShapeError(f"expected a path, PIL image, uint8 array or tensor; got "
                              f"{type(image).__name__}")
    image = ImageOps.exif_transpose(image)   # a PIL image may still carry its EXIF orientation
    buf = io.BytesIO()
    # TIFF keeps every mode decode_image handles (alpha, 16-bit, float, CMYK) losslessly
    image.save(buf, format="TIFF")
    return buf.getvalue()


# -- loading -----------------------------------------------------------------------------------
def find_checkpoint(path: str | os.PathLike) -> tuple[Path, str]:
    """(directory, tag) of a run's best (else last) checkpoint, or of a TAG.safetensors file."""
    p = Path(path)
    if p.is_file():
        if p.name.endswith(".safetensors"):
            return p.parent, p.name[:-len(".safetensors")]
        raise InvalidCheckpointError(f"{str(p)!r} is not a .safetensors weights file; pass a run "
                                     "directory (runs/NAME) or its best.safetensors")
    if not p.is_dir():
        raise ConfigError(f"run {str(p)!r} does not exist; pass a directory written by "
                          "`cnnlab train` (e.g. runs/lenet5-20250101-120000)")
    for d in (p, p / "checkpoints"):
        for tag in ("best", "last"):
            if (d / f"{tag}.safetensors").is_file():
                return d, tag
    raise InvalidCheckpointError(f"{str(p)!r} holds no best.safetensors or last.safetensors; is it "
                                 "a run directory written by `cnnlab train`?")


def _run_config(directory: Path) -> tuple[dict, Path]:
    import yaml

    for d in (directory, directory.parent):
        f = d / "config.yaml"
        if f.is_file():
            try:
                cfg = yaml.safe_load(f.read_text())
            except yaml.YAMLError as e:
                raise ConfigError(f"{f}: not valid YAML ({e})") from None
            return (cfg if isinstance(cfg, dict) else {}), d
    return {}, directory


def _digits_stats(image_size: int, val_fraction: float) -> tuple[tuple[float], tuple[float]]:
    """The digits mean/std training used (batches.digits_loaders: the train-minus-val split)."""
    from cnnlab.train.batches import digits_loaders

    loaders = digits_loaders(image_size=image_size, val_fraction=val_fraction)
    return tuple(loaders.mean), tuple(loaders.std)


def load(run_or_weights: str | os.PathLike, device: str = "cpu", fast: bool = True
         ) -> Predictor:
    """A :class:`Predictor` for a run directory (best, else last checkpoint) or a weights file.

    `fast` False predicts with the plain eval-mode model (see the module docstring).
    """
    import cnnlab
    from cnnlab.data.digits import CLASSES as DIGIT_CLASSES
    from cnnlab.train.checkpoint import load_checkpoint, load_weights_file

    directory, tag = find_checkpoint(run_or_weights)
    wpath = directory / f"{tag}.safetensors"
    if (directory / f"{tag}.state.pt").is_file():
        weights, state = load_checkpoint(directory, tag)   # also checks the pair's sha256
        _, header = load_weights_file(wpath)
    else:                                                   # a bare weights file
        weights, header = load_weights_file(wpath)
        state = {}
    meta = {**header, **(state.get("meta") or {})}
    cfg, run_dir = _run_config(directory)

    name = meta.get("model") or cfg.get("model")
    if not name:
        raise InvalidCheckpointError(f"{str(wpath)!r} does not say which model it holds (no "
                                     "'model' in its header and no config.yaml beside it)")
    info = cnnlab.model_info(name)
    # no config.yaml and nothing in the header: the data is unknown ("") rather than the digits
    data = cfg.get("data") if cfg else meta.get("data", "")
    image_size = int(meta.get("input_size") or cfg.get("image_size") or info.input_size)
    in_chans = meta.get("in_chans")
    if in_chans is None:   # the first conv's weight (out, in, kh, kw) tells the input channels
        first = next((t for t in weights.values() if t.dim() == 4), None)
        in_chans = first.shape[1] if first is not None else info.in_chans
    in_chans = int(in_chans)
    if in_chans not in (1, 3):
        raise InvalidCheckpointError(f"{name} takes {in_chans} input channels; prediction from "
                                     "images supports 1 (grey) or 3 (RGB)")
    classes = list(state.get("classes") or header.get("classes") or [])
    if not classes and data in DIGITS:
        classes = list(DIGIT_CLASSES)
    if not classes:
        raise InvalidCheckpointError(f"{str(wpath)!r} records no class names; retrain with a "
                                     "current cnnlab, or use create_model(weights=...) directly")
    mean, std = meta.get("mean"), meta.get("std")
    if mean is None or std is None:
        if data in DIGITS:
            mean, std = _digits_stats(image_size, float(cfg.get("val_fraction", 0.1)))
        elif len(info.mean) == in_chans:
            mean, std = info.mean, info.std        # the statistics the model's paper used
        else:
            raise InvalidCheckpointError(f"{str(wpath)!r} records no normalisation mean/std")
    mean, std = tuple(float(v) for v in mean), tuple(float(v) for v in std)
    if len(mean) not in (1, in_chans) or len(std) != len(mean):
        raise InvalidCheckpointError(f"{str(wpath)!r}: mean/std of {len(mean)}/{len(std)} values "
                                     f"for a {in_chans}-channel model")

    model = cnnlab.create_model(name, num_classes=len(classes), in_chans=in_chans)
    try:
        model.load_state_dict(weights, strict=True)
    except RuntimeError as e:
        first = str(e).splitlines()[1:2] or [str(e)[:200]]
        raise CheckpointMismatchError(
            f"{str(wpath)!r} does not fit {name} with {len(classes)} classes and {in_chans} input "
            f"channels ({first[0].strip()}); was the run's config.yaml edited?") from None
    if device != "cpu":
        from cnnlab.train.run import resolve_device

        model.to(resolve_device(device))
    model.eval()
    fit = meta.get("fit") or cfg.get("fit") or "crop"
    return Predictor(model, classes, image_size, in_chans, mean, std, fit, name, str(wpath),
                     str(run_dir), data, cfg, fast)


def load_split(predictor: Predictor, data: str | None = None, split: str = "test"
               ) -> tuple[torch.Tensor, torch.Tensor, list[str], list[str]]:
    """(pixels float (N, C, S, S) in [0, 1], labels (N,), classes, paths) for evaluation.

    `data` None: the run's own data. The digits' test split is their fixed stratified 20%; their
    val split is the run's held-out slice of the training split, chosen as training chose it.
    Labels of an image folder are mapped onto the run's classes by name.
    """
    if split not in ("val", "test"):
        raise ConfigError(f"split must be 'val' or 'test'; got {split!r}")
    source = predictor.data if data is None else data
    if source == "":
        raise DataError(f"{predictor.checkpoint!r} does not say what data it was trained on (no "
                        "config.yaml beside it); pass --data PATH")
    s = predictor.image_size
    if source in DIGITS:
        if predictor.in_chans != 1:
            raise DataError(f"the digits are grey (1 channel); {predictor.model_name} takes "
                            f"{predictor.in_chans}. Pass --data with the run's image folder.")
        from sklearn.model_selection import train_test_split

        from cnnlab.data.digits import CLASSES, load_digits

        xtr, ytr, xte, yte = load_digits(image_size=s)
        if split == "test":
            x, y = xte, yte
        else:
            vf = float(predictor.config.get("val_fraction", 0.1))
            if vf <= 0:
                raise DataError("this run held out no validation images (val_fraction 0); "
                                "use --split test")
            # the same fixed split as cnnlab.train.batches.digits_loaders (random_state=0)
            _, iva = train_test_split(np.arange(len(ytr)), test_size=vf, stratify=ytr,
                                      random_state=0)
            x, y = xtr[iva], ytr[iva]
        x, y, classes, paths = torch.from_numpy(x), torch.from_numpy(y), list(CLASSES), []
    else:
        from cnnlab.data import load_image_dataset

        cfg = predictor.config
        # the run's own data: the split it saved (split.json), else the one its config implies
        # (train.batches.folder_loaders splits with seed 0 whatever the run's seed)
        opts = {"val_fraction": cfg.get("val_fraction", 0.1),
                "test_fraction": cfg.get("test_fraction", 0.0), "seed": 0}
        split_file = Path(predictor.run_dir) / "split.json"
        if split_file.is_file() and str(source) == str(predictor.data):
            opts["split_file"] = str(split_file)
        try:
            ds = load_image_dataset(source, s, split, mode=predictor.mode, fit=predictor.fit,
                                    **opts)
        except DataError as e:
            if split != "test" or "no test split" not in str(e):
                raise
            raise DataError(f"{e} Or score the validation split: --split val.") from None
        x, y, classes, paths = ds.images.float() / 255.0, ds.labels, ds.classes, ds.paths
    if classes != predictor.classes:
        missing = [c for c in classes if c not in predictor.classes]
        if missing:
            raise DataError(f"the data has classes the run never saw: {missing[:5]}; the run "
                            f"knows {predictor.classes[:10]}")
        remap = torch.tensor([predictor.classes.index(c) for c in classes])
        y = remap[y]
    return x, y.long(), list(predictor.classes), paths


def expand_inputs(items) -> list[str]:
    """Paths as given, with each folder replaced by the image files under it (sorted)."""
    from cnnlab.data.sources import IMAGE_EXTENSIONS

    out = []
    for item in items:
        p = Path(item)
        if p.is_dir():
            found = sorted(str(f) for f in p.rglob("*")
                           if f.is_file() and f.suffix.lower() in IMAGE_EXTENSIONS)
            if not found:
                raise DataError(f"folder {str(p)!r} holds no image files "
                                f"({', '.join(sorted(IMAGE_EXTENSIONS))})")
            out += found
        else:
            out.append(str(item))
    return out


def predict_files(predictor: Predictor, paths, topk: int = 5, tta: str | None = None
                  ) -> list[dict]:
    """Per path: {"image", "top": [{"class", "probability"}, ...]} or {"image", "error"}.

    A file that cannot be read or decoded gets an "error" entry and the others are still
    classified, so one broken file in a folder does not stop the rest.
    """
    from cnnlab.errors import InvalidImageError

    results, good, pixels = [], [], []
    for path in paths:
        try:
            pixels.append(predictor.pixels(path))
        except InvalidImageError as e:
            results.append({"image": str(path), "error": getattr(e, "reason", str(e))})
            continue
        results.append({"image": str(path)})
        good.append(len(results) - 1)
    if pixels:
        probs = predictor.probabilities(predictor.normalize(torch.stack(pixels)), tta)
        for i, top in zip(good, predictor.top(probs, topk)):
            results[i]["top"] = [{"class": c, "probability": p} for c, p in top]
    return results
