import os
import tarfile
import zipfile

import numpy as np
import pytest
import torch

from cnnlab.data.dataset import DataConfig, load_arrays, load_image_dataset
from cnnlab.data.decode import decode_image, fit_image
from cnnlab.data.digits import CLASSES
from cnnlab.errors import ConfigError, DataError, InvalidImageError


def dirty_tree(tmp_path, imgs):
    """train/val with 4 good images per class and split, plus every C1 bad file in train/cat."""
    files = {}
    for split in ("train", "val"):
        for name, colour in [("cat", imgs.RED), ("dog", imgs.BLUE)]:
            for i in range(4):
                files[f"pets/{split}/{name}/{i}.png"] = imgs.solid(colour, (10 + i, 8))
    for bad, data in imgs.BAD_FILES.items():
        files[f"pets/train/cat/{bad}"] = data
    imgs.write_tree(tmp_path, files)
    return tmp_path / "pets"


def assert_labels_match_colours(ds):
    """Cats are red, dogs blue: a label that points at the wrong image (a neighbour) shows."""
    red = ds.images[:, 0].float().mean((1, 2)) > ds.images[:, 2].float().mean((1, 2))
    assert torch.equal(red, ds.labels == ds.classes.index("cat"))


def test_every_bad_file_is_skipped_listed_and_the_source_untouched(tmp_path, imgs):
    root = dirty_tree(tmp_path, imgs)
    before = imgs.tree_hash(tmp_path)
    ds = load_image_dataset(root, 16, "train", max_bad_fraction=None)
    assert imgs.tree_hash(tmp_path) == before
    assert ds.images.dtype == torch.uint8 and ds.images.shape == (8, 3, 16, 16)
    assert ds.labels.dtype == torch.int64 and ds.class_counts() == {"cat": 4, "dog": 4}
    assert_labels_match_colours(ds)
    skipped = {os.path.basename(s.path): s.reason for s in ds.skipped.skipped}
    assert set(skipped) == set(imgs.BAD_FILES)
    assert all(str(root) in s.path for s in ds.skipped.skipped)      # full paths in the report
    assert "truncated" in skipped["truncated.jpg"] and "empty" in skipped["empty.jpg"]
    assert "HTML" in skipped["page.jpg"] and "PDF" in skipped["doc.jpg"]
    assert "system file" in skipped["Thumbs.db"] and "hidden" in skipped[".DS_Store"]
    text = ds.skipped.to_text()
    assert all(bad in text for bad in imgs.BAD_FILES)
    assert ds.skipped.to_dict()["skipped_count"] == len(imgs.BAD_FILES)


def test_strict_stops_at_the_first_bad_file(tmp_path, imgs):
    root = dirty_tree(tmp_path, imgs)
    with pytest.raises((DataError, InvalidImageError), match="Strict mode"):
        load_image_dataset(root, 16, "train", strict=True)
    for bad in imgs.BAD_FILES:                              # leave a failure only decoding finds
        if bad != "truncated.jpg":
            (root / "train" / "cat" / bad).unlink()
    with pytest.raises(InvalidImageError, match="truncated.*Strict mode"):
        load_image_dataset(root, 16, "train", strict=True)
    assert len(load_image_dataset(root, 16, "val", strict=True)) == 8   # val/ is clean


def test_too_many_bad_files_stop_the_run(tmp_path, imgs):
    root = dirty_tree(tmp_path, imgs)
    with pytest.raises(DataError, match="unusable"):
        load_image_dataset(root, 16, "train")            # 8 of 24 files bad > the default 10%
    assert len(load_image_dataset(root, 16, "train", max_bad_fraction=0.5)) == 8


def test_class_left_without_usable_images_is_an_error(tmp_path, imgs):
    imgs.write_tree(tmp_path, {"cat/a.png": imgs.solid(imgs.RED), "dog/a.jpg": b"",
                               "dog/b.jpg": imgs.truncated_jpeg()})
    with pytest.raises(DataError, match="'dog' has no usable image"):
        load_image_dataset(tmp_path, 8, "train", val_fraction=0, max_bad_fraction=None)
    ds = load_image_dataset(tmp_path, 8, "train", val_fraction=0, max_bad_fraction=None,
                            allow_empty=True)
    assert ds.class_counts() == {"cat": 1, "dog": 0}


def test_archives_give_the_same_dataset_as_the_folder(tmp_path, imgs):
    files = {f"set/{k}": v for k, v in imgs.class_tree(5).items()}
    files["set/dog/bad.jpg"] = imgs.truncated_jpeg()
    imgs.write_tree(tmp_path / "tree", files)
    with tarfile.open(tmp_path / "set.tar.gz", "w:gz") as tf:
        tf.add(tmp_path / "tree" / "set", arcname="set")
    with zipfile.ZipFile(tmp_path / "set.zip", "w") as zf:
        for rel, data in files.items():
            zf.writestr(rel, data)
    kw = dict(val_fraction=0.4, seed=1, max_bad_fraction=None)   # 2 of 6 dog files: one is good
    ref = load_image_dataset(tmp_path / "tree", 8, "val", **kw)
    for archive in ("set.tar.gz", "set.zip"):
        ds = load_image_dataset(tmp_path / archive, 8, "val", **kw)
        assert torch.equal(ds.images, ref.images) and torch.equal(ds.labels, ref.labels)
        assert ds.paths == ref.paths
        assert len(ds.skipped) == len(ref.skipped)
        assert all(archive in s.path for s in ds.skipped.skipped)


def test_training_pixels_equal_the_public_decode_path(tmp_path, imgs):
    """Serving calls decode_image + fit_image; training must produce the very same pixels."""
    samples = {"a/cmyk.jpg": imgs.encode(imgs.noise(20, 30, seed=1).convert("CMYK"), "JPEG"),
               "a/rgba.png": imgs.encode(imgs.noise(9, 13, seed=2, mode="RGBA")),
               "b/grey.png": imgs.encode(imgs.noise(31, 17, seed=3, mode="L")),
               "b/pal.gif": imgs.encode(imgs.noise(12, 12, seed=4).convert("P"), "GIF")}
    imgs.write_tree(tmp_path, samples)
    ds = load_image_dataset(tmp_path, 11, "train", val_fraction=0)
    for path, img in zip(ds.paths, ds.images):
        ref = fit_image(decode_image(samples[path]), 11)
        assert np.array_equal(img.permute(1, 2, 0).numpy(), ref), path


def test_grey_mode_and_plain_resize(tmp_path, imgs):
    imgs.write_tree(tmp_path, imgs.class_tree(3))
    ds = load_image_dataset(tmp_path, 6, "train", mode="L", fit="resize", val_fraction=0)
    assert ds.images.shape == (6, 1, 6, 6)


def test_split_file_reproduces_a_split(tmp_path, imgs):
    imgs.write_tree(tmp_path / "d", imgs.class_tree(6))
    first = load_image_dataset(tmp_path / "d", 8, "val", val_fraction=0.5, seed=7)
    first.spec.save(tmp_path / "split.json")
    again = load_image_dataset(tmp_path / "d", 8, "val", split_file=str(tmp_path / "split.json"))
    assert again.paths == first.paths and torch.equal(again.images, first.images)
    other = load_image_dataset(tmp_path / "d", 8, "val", val_fraction=0.5, seed=8)
    assert other.paths != first.paths
    with tarfile.open(tmp_path / "d.tar", "w") as tf:            # the same split fits an archive
        tf.add(tmp_path / "d", arcname="wrapped")
    packed = load_image_dataset(tmp_path / "d.tar", 8, "val",
                                split_file=str(tmp_path / "split.json"))
    assert packed.paths == [f"wrapped/{p}" for p in first.paths]
    (tmp_path / "d" / first.paths[0]).unlink()
    with pytest.raises(DataError, match="does not hold"):
        load_image_dataset(tmp_path / "d", 8, "val", split_file=str(tmp_path / "split.json"))


def test_worker_pool_gives_the_same_result_as_in_process(tmp_path, imgs):
    files = {f"{c}/{i:03d}.png": imgs.encode(imgs.noise(9, 7, seed=i + 100 * k))
             for k, c in enumerate("ab") for i in range(40)}
    files["a/zero.png"] = b""
    imgs.write_tree(tmp_path, files)
    kw = dict(val_fraction=0, max_bad_fraction=None)
    serial = load_image_dataset(tmp_path, 5, "train", num_workers=0, **kw)
    pooled = load_image_dataset(tmp_path, 5, "train", num_workers=2, **kw)
    assert torch.equal(serial.images, pooled.images) and serial.paths == pooled.paths
    assert [s.path for s in pooled.skipped.skipped] == [str(tmp_path / "a" / "zero.png")]


def test_multi_frame_input_is_noted(tmp_path, imgs):
    from PIL import Image

    frames = [Image.new("RGB", (4, 4), c) for c in [(255, 0, 0), (0, 0, 255)]]
    imgs.write_tree(tmp_path, {"a/anim.gif": imgs.encode(frames[0], "GIF", save_all=True,
                                                         append_images=frames[1:]),
                               "b/x.png": imgs.solid(imgs.BLUE)})
    ds = load_image_dataset(tmp_path, 4, "train", val_fraction=0)
    assert any("anim.gif: 2 frames; used frame 0" in n for n in ds.skipped.notes)


def test_config_is_checked(tmp_path, imgs):
    with pytest.raises(ConfigError, match="fit"):
        DataConfig(fit="squash")
    with pytest.raises(ConfigError, match="max_pixels"):
        DataConfig(max_pixels=None)
    with pytest.raises(ConfigError, match="DataConfig fields"):
        load_image_dataset(tmp_path, 8, colour=True)
    with pytest.raises(DataError, match="does not exist"):
        load_image_dataset(tmp_path / "missing", 8)


def test_load_arrays_digits_and_folders(tmp_path, imgs):
    x, y, classes = load_arrays(None, "test", 16)
    assert x.dtype == np.float32 and x.shape[1:] == (1, 16, 16) and classes == CLASSES
    assert y.dtype == np.int64 and 0 <= x.min() and x.max() <= 1
    xv, _, _ = load_arrays("digits", "val", 16)
    assert np.array_equal(xv, x)                         # val is the fixed test split
    imgs.write_tree(tmp_path, imgs.class_tree(4))
    x, y, classes = load_arrays(tmp_path, "train", 8, val_fraction=0.25)
    assert x.shape == (6, 3, 8, 8) and x.dtype == np.float32 and classes == ["cat", "dog"]
    assert abs(float(x[y == 0][:, 0].mean()) - 220 / 255) < 1e-6
    with pytest.raises(DataError, match="no test split"):
        load_arrays(tmp_path, "test", 8)


def test_unicode_and_odd_names_round_trip(tmp_path, imgs):
    import json
    import unicodedata

    names = ["猫", "собака", "🐶 dog"]
    odd = ['a "quoted" name.png', "new\nline.png", "100% done.png",
           unicodedata.normalize("NFC", "é.png"), unicodedata.normalize("NFD", "é.png")]
    files = {f"{c}/{n}": imgs.solid((10 * k, 0, 0)) for k, c in enumerate(names) for n in odd}
    imgs.write_tree(tmp_path / "d", files)
    with tarfile.open(tmp_path / "d.tar.gz", "w:gz") as tf:
        tf.add(tmp_path / "d", arcname="d")
    for src in (tmp_path / "d", tmp_path / "d.tar.gz"):
        ds = load_image_dataset(src, 4, "train", val_fraction=0)
        assert ds.classes == sorted(names) and len(ds) == len(files)
        assert json.loads(json.dumps(ds.classes)) == ds.classes
        assert sorted(p.split("/")[-1] for p in ds.paths) == sorted(odd * len(names))
        assert sum("Unicode forms" in n for n in ds.skipped.notes) == len(names)
        spec_path = ds.spec.save(tmp_path / "split.json")
        again = load_image_dataset(src, 4, "train", split_file=str(spec_path))
        assert again.paths == ds.paths
