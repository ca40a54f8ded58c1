"""Batched, seedable data augmentation on tensors (N, C, H, W).

The interface, in full:

* A **transform** is a callable ``t(x, generator=None) -> x``. ``x`` is a batch (N, C, H, W) of
  uint8 (0..255) or float (0..1) pixels; the result has the same dtype (uint8 rounded, floats
  clipped to [0, 1]) and, except for crops, the same shape. Every random number comes from
  ``generator`` (a ``torch.Generator``; None: torch's global one), so the same generator state
  gives the same output. Each image draws its own parameters; the batch is processed at once.
* :class:`Compose` chains transforms and passes the one generator along.
* **Mixers** (:class:`Mixup`, :class:`CutMix`) also take labels: ``m(x, y, generator=None)``
  returns a :class:`MixedBatch` (x, y_a, y_b, lam); train with :func:`mixed_cross_entropy`.
* :class:`Normalize` (statistics from the training set via ``Normalize.fit``) goes last; its
  output is float32, standardised.

Typical use in a training loop::

    from cnnlab.augment import Normalize, cifar_train, eval_transform
    g = torch.Generator().manual_seed(seed)
    train_tf, norm = cifar_train(), Normalize.fit(train_images)
    for x, y in batches:                 # x uint8 (N, 3, 32, 32)
        x = norm(train_tf(x, generator=g))
    x_val = norm(eval_transform(32, resize=32)(x_val))

``parse_spec("flip,crop,jitter", size)`` builds a chain from the names the CLI accepts (see
``SPEC_NAMES``); ``cnnlab augment-preview`` draws what a chain does to real images.
"""

from cnnlab.augment.colour import ColorJitter, PCALighting, pca_lighting_stats
from cnnlab.augment.compose import (SPEC_NAMES, Compose, cifar_train, eval_transform,
                                    imagenet_train, parse_spec)
from cnnlab.augment.elastic import ElasticDistortion
from cnnlab.augment.erase import Cutout, RandomErasing
from cnnlab.augment.geometric import (CenterCrop, HorizontalFlip, RandomAffine, RandomCrop,
                                      RandomResizedCrop, RandomRotation, Resize, ScaleJitter)
from cnnlab.augment.mix import CutMix, MixedBatch, Mixup, mixed_cross_entropy
from cnnlab.augment.normalize import Normalize, channel_stats, mean_image
from cnnlab.augment.policy import TrivialAugment
from cnnlab.augment.tta import five_crop, flip_views, predict_views, ten_crop

__all__ = [
    "CenterCrop", "ColorJitter", "Compose", "CutMix", "Cutout", "ElasticDistortion",
    "HorizontalFlip", "MixedBatch", "Mixup", "Normalize", "PCALighting", "RandomAffine",
    "RandomCrop", "RandomErasing", "RandomResizedCrop", "RandomRotation", "Resize",
    "SPEC_NAMES", "ScaleJitter", "TrivialAugment", "channel_stats", "cifar_train",
    "eval_transform", "five_crop", "flip_views", "imagenet_train", "mean_image",
    "mixed_cross_entropy", "parse_spec", "pca_lighting_stats", "predict_views", "ten_crop",
]
