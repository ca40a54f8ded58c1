import gzip
import struct

import numpy as np
import pytest

from cnnlab.data import load_image_dataset
from cnnlab.data.idx import find_idx, load_idx, read_idx
from cnnlab.errors import DataError


def idx_bytes(arr: np.ndarray) -> bytes:
    return (bytes([0, 0, 0x08, arr.ndim]) + struct.pack(f">{arr.ndim}I", *arr.shape)
            + arr.astype(np.uint8).tobytes())


def write_mnist(folder, n_train=5, n_test=3, gz=True, h=28):
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True, exist_ok=True)
    out = {}
    for prefix, n in [("train", n_train), ("t10k", n_test)]:
        x = rng.integers(0, 256, (n, h, h), dtype=np.uint8)
        y = np.arange(n) % 10
        for part, arr, dims in [("images", x, 3), ("labels", y, 1)]:
            data = idx_bytes(arr)
            name = f"{prefix}-{part}-idx{dims}-ubyte"
            if gz:
                (folder / f"{name}.gz").write_bytes(gzip.compress(data))
            else:
                (folder / name).write_bytes(data)
        out[prefix] = (x, y)
    return out


@pytest.mark.parametrize("gz", [True, False])
def test_mnist_counts_labels_and_pixels(tmp_path, gz):
    arrays = write_mnist(tmp_path / "MNIST" / "raw", gz=gz)
    assert find_idx(tmp_path / "MNIST" / "raw") and not find_idx(tmp_path / "nothing")
    x, y, classes, files = load_idx(tmp_path / "MNIST" / "raw", "train")
    assert x.shape == (5, 28, 28, 1) and np.array_equal(x[..., 0], arrays["train"][0])
    assert y.tolist() == [0, 1, 2, 3, 4] and classes == [str(i) for i in range(5)]
    grey = load_image_dataset(tmp_path / "MNIST" / "raw", 28, "test", mode="L")
    assert grey.split == "test" and grey.images.shape == (3, 1, 28, 28)
    assert np.array_equal(grey.images[:, 0].numpy(), arrays["t10k"][0])
    rgb = load_image_dataset(tmp_path / "MNIST" / "raw", 32, "val")
    assert rgb.images.shape == (3, 3, 32, 32) and rgb.labels.tolist() == [0, 1, 2]
    assert (rgb.images[:, 0] == rgb.images[:, 2]).all()      # grey repeated into RGB


def test_dotted_mirror_names_and_lone_subfolder(tmp_path):
    write_mnist(tmp_path / "fashion", gz=False)
    for p in (tmp_path / "fashion").iterdir():
        p.rename(p.with_name(p.name.replace("-idx", ".idx")))
    x, y, classes, _ = load_idx(tmp_path, "train")
    assert len(x) == 5


def test_truncated_bad_magic_and_mismatched_files(tmp_path):
    write_mnist(tmp_path, gz=False)
    img = tmp_path / "train-images-idx3-ubyte"
    good = img.read_bytes()
    img.write_bytes(good[:-10])
    with pytest.raises(DataError, match="train-images-idx3-ubyte.*truncated"):
        load_idx(tmp_path, "train")
    img.write_bytes(b"\x00\x00\x0d\x03" + good[4:])          # float type
    with pytest.raises(DataError, match="train-images-idx3-ubyte.*magic"):
        load_idx(tmp_path, "train")
    img.write_bytes(good)
    lab = tmp_path / "train-labels-idx1-ubyte"
    lab.write_bytes(idx_bytes(np.zeros(4, np.uint8)))
    with pytest.raises(DataError, match="5 images but .*train-labels-idx1-ubyte has 4 labels"):
        load_idx(tmp_path, "train")
    with pytest.raises(DataError, match="images-idx3-ubyte is not an IDX .* 1 dimension"):
        read_idx(img, 1)                                       # images are not a label file


def test_truncated_gzip_and_missing_part(tmp_path):
    write_mnist(tmp_path)
    gz = tmp_path / "t10k-images-idx3-ubyte.gz"
    gz.write_bytes(gz.read_bytes()[:30])
    with pytest.raises(DataError, match="t10k-images-idx3-ubyte.gz"):
        load_idx(tmp_path, "test")
    (tmp_path / "train-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(DataError, match="no train-labels"):
        load_idx(tmp_path, "train")


def test_fixed_split_spec_lets_callers_find_the_test_split(tmp_path):
    from cnnlab.data.folder import resolve_split

    write_mnist(tmp_path, n_train=6, n_test=4)
    ds = load_image_dataset(tmp_path, 28, "train", val_fraction=0.3)
    assert any("val_fraction/test_fraction ignored" in n for n in ds.skipped.notes)
    assert resolve_split(ds.spec, "val") == "test"
    assert ds.spec.counts()["test"]["3"] == 1 and len(ds.spec.files["train"]) == 6
    assert ds.paths == ds.spec.files["train"]
