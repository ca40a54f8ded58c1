"""Batch checks, dtype handling and :class:`Compose`, shared by every augmentation.

A transform is any callable ``t(x, generator=None) -> x`` on a batch ``x`` of shape (N, C, H, W),
uint8 (0..255) or floating point (taken to be in [0, 1]). The output has the input's dtype; uint8
results are rounded, not truncated. Random transforms draw every number from ``generator`` (a
``torch.Generator``; None uses torch's global generator), so the same generator state gives the
same output.
"""

from __future__ import annotations

from cnnlab.errors import InputShapeError


def check_batch(x, name: str = "augmentation"):
    """Return `x` if it is a (N, C, H, W) uint8 or float tensor; raise InputShapeError otherwise."""
    import torch

    if not isinstance(x, torch.Tensor):
        raise InputShapeError(f"{name} expects a torch.Tensor batch (N, C, H, W); got "
                              f"{type(x).__name__}. Wrap arrays with torch.from_numpy.")
    if x.dim() != 4:
        raise InputShapeError(f"{name} expects a batch of shape (N, C, H, W); got shape "
                              f"{tuple(x.shape)}. Add a batch axis with x[None] for one image.")
    if x.dtype != torch.uint8 and not x.is_floating_point():
        raise InputShapeError(f"{name} expects uint8 (0..255) or float (0..1) pixels; got "
                              f"{x.dtype}. Convert with x.float() / 255.")
    return x


def to_unit(x):
    """Float32 pixels in [0, 1] from uint8 (divided by 255) or float (cast, not rescaled)."""
    import torch

    return x.float().div_(255.0) if x.dtype == torch.uint8 else x.float()


def from_unit(xf, dtype):
    """Back to `dtype` from unit-scale float: uint8 is clamped and rounded; float is clamped."""
    import torch

    xf = xf.clamp(0.0, 1.0)
    if dtype == torch.uint8:
        return xf.mul_(255.0).round_().to(torch.uint8)
    return xf.to(dtype)


def per_sample(v, x):
    """Reshape a per-sample vector (N,) to broadcast over (N, C, H, W)."""
    return v.reshape(-1, *([1] * (x.dim() - 1)))


def chunks(n: int, per_image: int, budget: int = 1 << 19):
    """Slices of about `budget` values: float intermediates of a chunk stay in the CPU cache.

    ColorJitter on 256 x 3 x 128 x 128 uint8 ran 3.4x faster (CPU time) in chunks of 8 images
    than on the whole batch, whose float32 copy (50 MB) streams through memory several times.
    """
    step = max(1, budget // max(1, per_image))
    return [slice(i, min(i + step, n)) for i in range(0, n, step)]


def uniform(n: int, low: float, high: float, generator=None, device=None):
    """(n,) float32 draws from U[low, high) using `generator`."""
    import torch

    return torch.rand(n, generator=generator, device=device) * (high - low) + low


def bernoulli(n: int, p: float, generator=None, device=None):
    """(n,) bool draws, True with probability `p`, using `generator`."""
    import torch

    return torch.rand(n, generator=generator, device=device) < p


class Compose:
    """Apply transforms in order, passing one generator along: the chain is seedable as a whole."""

    def __init__(self, transforms):
        self.transforms = list(transforms)

    def __call__(self, x, generator=None):
        for t in self.transforms:
            x = t(x, generator=generator)
        return x

    def __repr__(self) -> str:
        inner = ", ".join(repr(t) for t in self.transforms)
        return f"Compose([{inner}])"


# name -> (what it builds, what "name=VALUE" sets); used by parse_spec and the CLI
SPEC_NAMES = {
    "flip": "HorizontalFlip; =p (default 0.5)",
    "crop": "RandomCrop to the input size after padding; =padding (default size/8: 4 at 32 px)",
    "rrc": "RandomResizedCrop to the input size; =minimum area fraction (default 0.08)",
    "scale": "ScaleJitter (VGG): shorter side S in [size*8/7, size*16/7], crop; =max S",
    "jitter": "ColorJitter brightness/contrast/saturation; =strength (default 0.4)",
    "hue": "ColorJitter hue only; =max shift in turns (default 0.1)",
    "pca": "PCALighting fitted on the data given; =std (default 0.1)",
    "elastic": "ElasticDistortion sigma 4; =alpha (default 34)",
    "rotate": "RandomRotation; =degrees (default 15)",
    "affine": "RandomAffine rotate/translate 10%/scale 0.9-1.1/shear; =degrees (default 15)",
    "cutout": "Cutout; =side (default size/2: 16 at 32 px)",
    "erase": "RandomErasing; =p (default 0.5)",
    "trivial": "TrivialAugment Wide (no value)",
    "mixup": "Mixup (needs labels; applied last); =alpha (default 1.0)",
    "cutmix": "CutMix (needs labels; applied last); =alpha (default 1.0)",
}


def _build_one(name: str, value, size: tuple[int, int], data):
    from cnnlab.augment import colour, elastic, erase, geometric, mix, policy
    from cnnlab.errors import ConfigError

    v = (lambda default: default if value is None else value)
    if name == "flip":
        return geometric.HorizontalFlip(v(0.5))
    if name == "crop":
        return geometric.RandomCrop(size, padding=int(v(max(1, round(min(size) / 8)))))
    if name == "rrc":
        return geometric.RandomResizedCrop(size, scale=(v(0.08), 1.0))
    if name == "scale":
        lo = round(min(size) * 256 / 224)                       # VGG: S in [256, 512] for 224
        return geometric.ScaleJitter(size, lo, int(max(lo, v(2 * lo))))
    if name == "jitter":
        s = v(0.4)
        return colour.ColorJitter(s, s, s)
    if name == "hue":
        return colour.ColorJitter(0, 0, 0, hue=v(0.1))
    if name == "pca":
        if data is None:
            raise ConfigError("pca needs training images to compute its eigenvectors from; "
                              "pass data= (the CLI passes the loaded images)")
        return colour.PCALighting.fit(data, std=v(0.1))
    if name == "elastic":
        return elastic.ElasticDistortion(alpha=v(34.0))
    if name == "rotate":
        return geometric.RandomRotation(v(15.0))
    if name == "affine":
        return geometric.RandomAffine(degrees=v(15.0), translate=(0.1, 0.1), scale=(0.9, 1.1),
                                      shear=10.0)
    if name == "cutout":
        return erase.Cutout(int(v(max(1, min(size) // 2))))
    if name == "erase":
        return erase.RandomErasing(p=v(0.5))
    if name == "trivial":
        return policy.TrivialAugment()
    if name == "mixup":
        return mix.Mixup(v(1.0))
    if name == "cutmix":
        return mix.CutMix(v(1.0))
    raise AssertionError(name)   # parse_spec checked the name


def parse_spec(spec: str, size, data=None):
    """(Compose of image transforms, mixer or None) from a spec such as "flip,crop=4,jitter,mixup".

    `size` is the output side or (H, W) (crops keep it); `data` are training images for "pca".
    Names and what their value sets are in SPEC_NAMES. Mixup/CutMix need labels, so they come back
    apart.
    """
    import difflib

    from cnnlab.errors import ConfigError

    hw = (int(size), int(size)) if isinstance(size, int) else (int(size[0]), int(size[1]))
    transforms, mixer = [], None
    for part in (p.strip() for p in spec.split(",")):
        if not part:
            continue
        name, _, raw = part.partition("=")
        name = name.strip().lower()
        if name not in SPEC_NAMES:
            near = difflib.get_close_matches(name, SPEC_NAMES, n=3)
            raise ConfigError(f"unknown augmentation {name!r} (close: {near}); choose from "
                              f"{', '.join(SPEC_NAMES)}")
        value = None
        if raw:
            try:
                value = float(raw)
            except ValueError:
                raise ConfigError(f"augmentation {name}={raw!r}: the value must be a number "
                                  f"({SPEC_NAMES[name]})") from None
        t = _build_one(name, value, hw, data)
        if name in ("mixup", "cutmix"):
            if mixer is not None:
                raise ConfigError("use one of mixup and cutmix per spec, not both")
            mixer = t
        else:
            transforms.append(t)
    return Compose(transforms), mixer


def cifar_train(size: int = 32, padding: int = 4):
    """CIFAR recipe: pad 4, random 32 x 32 crop, horizontal flip (He et al. 2016, Sec. 4.2)."""
    from cnnlab.augment.geometric import HorizontalFlip, RandomCrop

    return Compose([RandomCrop(size, padding), HorizontalFlip()])


def imagenet_train(size: int = 224, jitter: float = 0.4):
    """ImageNet recipe: random-resized crop (Szegedy et al. 2015), flip, colour jitter."""
    from cnnlab.augment.colour import ColorJitter
    from cnnlab.augment.geometric import HorizontalFlip, RandomResizedCrop

    return Compose([RandomResizedCrop(size), HorizontalFlip(), ColorJitter(jitter, jitter, jitter)])


def eval_transform(size: int = 224, resize: int | None = None):
    """Deterministic evaluation view: shorter side to `resize` (default size * 8/7), centre crop.

    256 -> 224 is the ratio used since AlexNet (Krizhevsky et al. 2012); at 32 px it gives 37 -> 32.
    Pass resize=size for images already the right size (CIFAR).
    """
    from cnnlab.augment.geometric import CenterCrop, Resize

    resize = round(size * 256 / 224) if resize is None else int(resize)
    return Compose([Resize(resize), CenterCrop(size)])
