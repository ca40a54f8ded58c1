"""Pictures of what an augmentation chain does: sample images from a data set, tile the results.

Used by ``cnnlab augment-preview``; both functions are public so notebooks can call them.
"""

from __future__ import annotations

import numpy as np

from cnnlab.errors import DataError


def sample_images(source=None, n: int = 16, image_size: int = 32, split: str = "train",
                  seed: int = 0):
    """(uint8 (n, C, S, S) images, labels (n,), class names) drawn at random from one split.

    `source` None (or "digits") is the embedded digits; otherwise a folder or archive, of which
    only the drawn files are decoded (files that fail are skipped, so fewer may come back).
    """
    import torch

    rng = np.random.default_rng(seed)
    if source is None or str(source) == "digits":
        from cnnlab.data.digits import CLASSES, load_digits

        x, y, xt, yt = load_digits(image_size=image_size)
        if split != "train":
            x, y = xt, yt
        pick = rng.choice(len(y), size=min(n, len(y)), replace=False)
        images = torch.from_numpy(np.round(x[pick] * 255).astype(np.uint8))
        return images, torch.from_numpy(y[pick]), list(CLASSES)

    from cnnlab.data.dataset import DataConfig, plan
    from cnnlab.data.decode import decode_with_info, fit_image
    from cnnlab.data.folder import resolve_split
    from cnnlab.data.sources import Unreadable
    from cnnlab.errors import InvalidImageError

    cfg = DataConfig(image_size=image_size)
    src, _, spec, _ = plan(source, cfg)
    chosen = resolve_split(spec, split)
    rels, labels = spec.files[chosen], spec.labels[chosen]
    # draw extra candidates so a few bad files still leave n images
    order = rng.permutation(len(rels))[:2 * n + 8]
    wanted = {rels[i]: int(labels[i]) for i in order}
    got: dict[str, np.ndarray] = {}
    for rel, payload in src.payloads(list(wanted)):
        if isinstance(payload, Unreadable):
            continue
        try:
            pixels = decode_with_info(payload, name=src.display(rel)).pixels
        except InvalidImageError:
            continue
        got[rel] = fit_image(pixels, image_size).transpose(2, 0, 1)   # (C, S, S)
    keep = [rels[i] for i in order if rels[i] in got][:n]
    if not keep:
        raise DataError(f"no image of the {chosen} split of {source} could be decoded for the "
                        f"preview; run `cnnlab data info {source}` to see what is wrong")
    images = torch.from_numpy(np.stack([got[r] for r in keep]))
    return images, torch.tensor([wanted[r] for r in keep]), list(spec.classes)


def tile(images, columns: int | None = None, min_cell: int = 64, gap: int = 2):
    """(H, W, 3) uint8 grid of uint8 images (N, C, h, w), each enlarged (nearest) to >= min_cell."""
    images = np.asarray(images)
    n, c, h, w = images.shape
    if c == 1:
        images = np.repeat(images, 3, axis=1)
    k = max(1, -(-min_cell // max(h, w)))                       # integer zoom keeps pixels square
    images = images.repeat(k, axis=2).repeat(k, axis=3)
    h, w = h * k, w * k
    cols = columns or int(np.ceil(np.sqrt(n)))
    rows = -(-n // cols)
    grid = np.full((rows * (h + gap) + gap, cols * (w + gap) + gap, 3), 255, np.uint8)
    for i in range(n):
        r, q = divmod(i, cols)
        y, x = gap + r * (h + gap), gap + q * (w + gap)
        grid[y:y + h, x:x + w] = images[i].transpose(1, 2, 0)
    return grid


def preview(images, labels, spec: str, seed: int = 0, originals: bool = False):
    """(augmented uint8 batch, grid array) for a chain given as a spec ("flip,crop,jitter").

    The chain's output side equals the input's; PCA lighting is fitted on the sampled images.
    With `originals`, each augmented image is shown right after its source image.
    """
    import torch

    from cnnlab.augment.compose import parse_spec

    size = tuple(images.shape[-2:])
    tf, mixer = parse_spec(spec, size, data=images)
    g = torch.Generator().manual_seed(seed)
    out = tf(images, generator=g)
    if mixer is not None:
        out = mixer(out, labels, generator=g).x
    if out.dtype != torch.uint8:
        out = (out.clamp(0, 1) * 255).round().to(torch.uint8)
    if originals:
        both = torch.stack([images, out], dim=1).reshape(-1, *out.shape[1:])
        cols = 2 * max(1, int(np.ceil(np.sqrt(len(out)) / 1.5)))
        return out, tile(both.numpy(), columns=cols)
    return out, tile(out.numpy())
