"""The model and data a diagnostic verb runs on: a zoo model sized to the data's classes."""

from __future__ import annotations

import torch

import cnnlab
from cnnlab.train.batches import Loaders


def model_and_loaders(model: str = "lenet5", data=None, image_size: int | None = None,
                      batch_size: int = 64, seed: int = 0) -> tuple[torch.nn.Module, Loaders]:
    """A freshly initialised `model` (seeded) and the digits or an image folder as batches.

    The data come as `cnnlab train` reads them (:func:`cnnlab.train.run.build_loaders`), without
    the random shift: the checks want the plain images.
    """
    from cnnlab.train.config import TrainConfig
    from cnnlab.train.run import build_loaders

    info = cnnlab.model_info(model)  # an unknown name fails here, with close matches
    cfg = TrainConfig(model=model, data=data, batch_size=batch_size, seed=seed, random_shift=0)
    loaders = build_loaders(cfg, image_size or info.input_size,
                            one_channel_if_grey=info.in_chans == 1)
    chans = int(loaders.train.x.shape[1])
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        net = cnnlab.create_model(model, num_classes=len(loaders.classes), in_chans=chans)
    return net, loaders


def training_tensors(loaders: Loaders, index: torch.Tensor | None = None
                     ) -> tuple[torch.Tensor, torch.Tensor]:
    """Training images (those at `index`, default all) as float, standardised, with labels."""
    x, y = loaders.train.x, loaders.train.y
    if index is not None:  # convert only what is asked: image folders stay uint8 in memory
        x, y = x[index], y[index]
    return loaders.train.to_float(x), y
