"""Data sets: what users have on disk, decoded once, plus the embedded default (digits).

- :func:`decode_image` (decode.py): bytes or path -> uint8 (H, W, C), the one decoder for training
  and serving; :func:`fit_image` resizes to S x S.
- :func:`load_image_dataset` / :func:`load_arrays` (dataset.py): an image folder or archive, a
  (path, label) CSV (csvlist.py), CIFAR python batches (cifar.py) or MNIST IDX files (idx.py) ->
  tensors, with a skip report of every unusable file.
- :func:`dataset_info` / :func:`scan` (info.py): what `cnnlab data info` / `scan` print.
- :func:`manifest_hash` (hygiene.py): a stable hash naming the exact data a run used; duplicate
  files across classes and splits are listed by `dataset_info`.
"""

from cnnlab.data.dataset import DataConfig, ImageDataset, load_arrays, load_image_dataset
from cnnlab.data.decode import decode_image, fit_image
from cnnlab.data.folder import SplitSpec
from cnnlab.data.hygiene import manifest_hash
from cnnlab.data.info import dataset_info, scan
from cnnlab.data.report import SkipReport

__all__ = ["DataConfig", "ImageDataset", "SkipReport", "SplitSpec", "dataset_info",
           "decode_image", "fit_image", "load_arrays", "load_image_dataset", "manifest_hash",
           "scan"]
