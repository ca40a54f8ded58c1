"""Data sets: what users have on disk, decoded once, plus the embedded default (digits).

- :func:`decode_image` (decode.py): bytes or path -> uint8 (H, W, C), the one decoder for training
  and serving; :func:`fit_image` resizes to S x S.
- :func:`load_image_dataset` / :func:`load_arrays` (dataset.py): an image folder or archive ->
  tensors, with a skip report of every unusable file.
- :func:`dataset_info` / :func:`scan` (info.py): what `cnnlab data info` / `scan` print.
"""

from cnnlab.data.dataset import DataConfig, ImageDataset, load_arrays, load_image_dataset
from cnnlab.data.decode import decode_image, fit_image
from cnnlab.data.folder import SplitSpec
from cnnlab.data.info import dataset_info, scan
from cnnlab.data.report import SkipReport

__all__ = ["DataConfig", "ImageDataset", "SkipReport", "SplitSpec", "dataset_info",
           "decode_image", "fit_image", "load_arrays", "load_image_dataset", "scan"]
