import pickle
import tarfile

import numpy as np
import pytest

from cnnlab.data import load_arrays, load_image_dataset
from cnnlab.data.cifar import find_cifar, load_cifar, safe_load
from cnnlab.errors import DataError


def batch(seed: int, n: int = 3, n_classes: int = 10, fine: bool = False) -> dict:
    rng = np.random.default_rng(seed)
    key = b"fine_labels" if fine else b"labels"
    return {b"batch_label": b"batch", key: [int(v) for v in rng.integers(0, n_classes, n)],
            b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
            b"filenames": [b"x.png"] * n}


def write_cifar10(folder, protocol: int = 2) -> dict:
    folder.mkdir(parents=True, exist_ok=True)
    batches = {f"data_batch_{i}": batch(i) for i in range(1, 6)} | {"test_batch": batch(9, 2)}
    for name, b in batches.items():
        (folder / name).write_bytes(pickle.dumps(b, protocol=protocol))
    meta = {b"label_names": [f"class{i}".encode() for i in range(10)], b"num_vis": 3072}
    (folder / "batches.meta").write_bytes(pickle.dumps(meta, protocol=protocol))
    return batches


@pytest.mark.parametrize("protocol", [2, pickle.HIGHEST_PROTOCOL])
def test_cifar10_folder_counts_labels_and_pixel_layout(tmp_path, protocol):
    batches = write_cifar10(tmp_path / "cifar-10-batches-py", protocol)
    x, y, classes, files = load_cifar(tmp_path, "train")
    assert x.shape == (15, 32, 32, 3) and classes[3] == "class3" and len(classes) == 10
    assert y.tolist() == sum((batches[f"data_batch_{i}"][b"labels"] for i in range(1, 6)), [])
    # row layout: 1024 red, then green, then blue values, each row-major
    row = batches["data_batch_1"][b"data"][0]
    assert x[0, 0, 1, 0] == row[1] and x[0, 1, 0, 1] == row[1024 + 32]
    assert x[0, 31, 31, 2] == row[-1]
    ds = load_image_dataset(tmp_path, 32, "val")
    assert ds.split == "test" and len(ds) == 2 and ds.images.shape == (2, 3, 32, 32)
    assert ds.labels.tolist() == batches["test_batch"][b"labels"]
    xs, ys, cs = load_arrays(tmp_path, "train", image_size=16)
    assert xs.shape == (15, 3, 16, 16) and xs.dtype == np.float32 and 0 <= xs.min() <= xs.max() <= 1


def test_cifar10_tar_gz_and_grey_mode(tmp_path):
    from PIL import Image

    write_cifar10(tmp_path / "src" / "cifar-10-batches-py")
    path = tmp_path / "cifar-10-python.tar.gz"
    with tarfile.open(path, "w:gz") as tf:
        tf.add(tmp_path / "src" / "cifar-10-batches-py", arcname="cifar-10-batches-py")
    assert find_cifar(path).archive == path
    rgb = load_image_dataset(path, 32, "train")
    grey = load_image_dataset(path, 32, "train", mode="L")
    assert grey.images.shape == (15, 1, 32, 32)
    img = Image.fromarray(rgb.images[4].permute(1, 2, 0).numpy())
    assert np.array_equal(np.asarray(img.convert("L")), grey.images[4, 0].numpy())


def test_cifar100_uses_fine_labels(tmp_path):
    d = tmp_path / "cifar-100-python"
    d.mkdir()
    for name, n in [("train", 4), ("test", 2)]:
        b = batch(n, n, 100, fine=True) | {b"coarse_labels": [0] * n}
        (d / name).write_bytes(pickle.dumps(b))
    (d / "meta").write_bytes(pickle.dumps({"fine_label_names": [f"f{i}" for i in range(100)],
                                           "coarse_label_names": ["c"] * 20}))
    x, y, classes, _ = load_cifar(tmp_path, "test")
    assert len(classes) == 100 and x.shape == (2, 32, 32, 3)
    assert y.tolist() == batch(2, 2, 100, fine=True)[b"fine_labels"]


class Hostile:
    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_hostile_pickle_raises_and_never_runs_code(tmp_path):
    marker = tmp_path / "pwned"
    write_cifar10(tmp_path / "c")
    evil = pickle.dumps({b"data": Hostile(marker), b"labels": [0]}, protocol=2)
    assert b"open" in evil
    (tmp_path / "c" / "data_batch_3").write_bytes(evil)
    with pytest.raises(DataError, match="data_batch_3.*not allowed"):
        load_cifar(tmp_path / "c", "train")
    assert not marker.exists()
    import os
    for payload in [pickle.dumps(os.system), pickle.dumps(type(marker)), b"garbage"]:
        with pytest.raises(DataError, match="not a safe CIFAR batch"):
            safe_load(payload, "x")


def test_wrong_shapes_and_labels_are_data_errors(tmp_path):
    write_cifar10(tmp_path)
    (tmp_path / "data_batch_2").write_bytes(pickle.dumps(
        {b"data": np.zeros((2, 100), np.uint8), b"labels": [0, 1]}))
    with pytest.raises(DataError, match="data_batch_2.*3072"):
        load_cifar(tmp_path, "train")
    write_cifar10(tmp_path)
    (tmp_path / "test_batch").write_bytes(pickle.dumps(
        {b"data": np.zeros((1, 3072), np.uint8), b"labels": [12]}))
    with pytest.raises(DataError, match="outside 0..9"):
        load_cifar(tmp_path, "test")
    (tmp_path / "test_batch").write_bytes(pickle.dumps([1, 2]))
    with pytest.raises(DataError, match="expected a dict"):
        load_cifar(tmp_path, "test")
