"""Occlusion sensitivity (Zeiler & Fergus 2014, "Visualizing and Understanding Convolutional
Networks", sec. 4.2, Fig. 7): slide a grey square over the image and record the classifier's
probability of the class at each position; where the probability falls most is what it used.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from cnnlab.errors import ConfigError
from cnnlab.visualize.hooks import eval_mode, predicted_or, prepare


@dataclass
class Occlusion:
    """Scores per occluder position and the per-pixel sensitivity they give."""

    scores: np.ndarray        # (gh, gw): class probability with the patch at each position
    baseline: float           # class probability of the unoccluded image
    heatmap: np.ndarray       # (H, W) in [0, 1]: mean probability drop of the patches over a pixel
    target: int
    boxes: list               # (top, left, bottom, right) of each position, row-major like scores


def occlusion(model: nn.Module, image, target: int | None = None, patch: int = 8, stride: int = 4,
              fill: float = 0.0, batch_size: int = 64, **prepare_kw) -> Occlusion:
    """Occlusion sensitivity with a `patch` x `patch` square moved by `stride` pixels
    (Zeiler & Fergus 2014, sec. 4.2); `fill` is the occluder's value in input space (0.0: the
    data mean once standardised, the paper's grey). Positions are scored in batches."""
    x, _ = prepare(image, model, **prepare_kw)
    _, _, h, w = x.shape
    if patch < 1 or stride < 1 or patch > min(h, w) or batch_size < 1:
        raise ConfigError(f"occlusion needs 1 <= patch <= {min(h, w)} (the image side), "
                          f"stride >= 1 and batch_size >= 1; got patch {patch}, stride {stride}, "
                          f"batch_size {batch_size}")
    tops = _positions(h, patch, stride)
    lefts = _positions(w, patch, stride)
    boxes = [(t, l, t + patch, l + patch) for t in tops for l in lefts]
    with eval_mode(model), torch.no_grad():
        logits = model(x)
        target = predicted_or(model, logits, target)
        baseline = float(logits.softmax(-1)[0, target])
        probs = []
        for i in range(0, len(boxes), batch_size):
            chunk = boxes[i:i + batch_size]
            xb = x.repeat(len(chunk), 1, 1, 1)           # (B, C, H, W)
            for j, (t, l, b, r) in enumerate(chunk):
                xb[j, :, t:b, l:r] = fill
            probs.append(model(xb).softmax(-1)[:, target])
    scores = torch.cat(probs).numpy().reshape(len(tops), len(lefts))
    drop = np.zeros((h, w), np.float64)
    count = np.zeros((h, w), np.float64)
    for (t, l, b, r), s in zip(boxes, scores.ravel()):
        drop[t:b, l:r] += baseline - s
        count[t:b, l:r] += 1
    drop = np.where(count > 0, drop / np.maximum(count, 1), 0.0)
    heat = np.clip(drop, 0, None)   # a patch that raises the score is not evidence for the class
    heat = heat / heat.max() if heat.max() > 0 else heat
    return Occlusion(scores.astype(np.float32), baseline, heat.astype(np.float32), target, boxes)


def _positions(side: int, patch: int, stride: int) -> list[int]:
    """Top-left offsets along one side; the last one is pinned to the edge so every pixel is
    covered even when (side - patch) is not a multiple of stride."""
    pos = list(range(0, side - patch + 1, stride))
    if pos[-1] != side - patch:
        pos.append(side - patch)
    return pos
