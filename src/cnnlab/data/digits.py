"""The embedded default data set: scikit-learn's 8x8 handwritten digits (1,797 images, 10 classes).

It ships inside scikit-learn, so a newcomer can train with no download. Upsampled to 32x32, the
input size of LeNet-5 (LeCun et al. 1998).
"""

from __future__ import annotations

import numpy as np

CLASSES = [str(d) for d in range(10)]


def load_digits(image_size: int = 32, test_fraction: float = 0.2, seed: int = 0):
    """Return ``(x_train, y_train, x_test, y_test)``: float32 images in [0, 1], shape (N, 1, S, S).

    The split is stratified and seeded, so every run and every tool sees the same test set.
    """
    import torch
    import torch.nn.functional as F
    from sklearn.datasets import load_digits as sk_digits
    from sklearn.model_selection import train_test_split

    bunch = sk_digits()
    x = bunch.images.astype(np.float32) / 16.0          # pixel values are 0..16
    y = bunch.target.astype(np.int64)
    x = torch.from_numpy(x)[:, None]                      # (N, 1, 8, 8)
    if image_size != 8:
        x = F.interpolate(x, size=(image_size, image_size), mode="bilinear", align_corners=False)
    x = x.clamp_(0.0, 1.0).numpy()
    idx_train, idx_test = train_test_split(
        np.arange(len(y)), test_size=test_fraction, stratify=y, random_state=seed
    )
    return x[idx_train], y[idx_train], x[idx_test], y[idx_test]
