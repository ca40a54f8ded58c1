import os

import numpy as np
import torch

from cnnlab.data.cache import cache_key
from cnnlab.data.dataset import DataConfig, load_image_dataset
from cnnlab.data.sources import FolderSource


def test_second_load_comes_from_the_cache_and_matches(tmp_path, imgs):
    imgs.write_tree(tmp_path / "d", imgs.class_tree(4) | {"cat/bad.jpg": imgs.truncated_jpeg()})
    kw = dict(cache_dir=str(tmp_path / "cache"), val_fraction=0, max_bad_fraction=None)
    first = load_image_dataset(tmp_path / "d", 8, "train", **kw)
    entries = os.listdir(tmp_path / "cache")
    assert len(entries) == 1 and not entries[0].startswith(".tmp")
    second = load_image_dataset(tmp_path / "d", 8, "train", **kw)
    assert torch.equal(first.images, second.images) and first.paths == second.paths
    assert [s.path for s in second.skipped.skipped] == [s.path for s in first.skipped.skipped]
    assert any("from cache" in n for n in second.skipped.notes)
    second.images[0] += 1                                  # copy-on-write: the file is untouched
    third = load_image_dataset(tmp_path / "d", 8, "train", **kw)
    assert torch.equal(third.images, first.images)


def test_key_changes_with_settings_and_content(tmp_path, imgs):
    imgs.write_tree(tmp_path, imgs.class_tree(2))
    src, rels = FolderSource(tmp_path), ["cat/00.png", "dog/00.png"]
    base = cache_key(src, rels, DataConfig(image_size=8))
    assert cache_key(src, rels, DataConfig(image_size=8)) == base
    for cfg in [DataConfig(image_size=9), DataConfig(image_size=8, fit="resize"),
                DataConfig(image_size=8, mode="L"), DataConfig(image_size=8, background=(0, 0, 0))]:
        assert cache_key(src, rels, cfg) != base
    assert cache_key(src, rels[:1], DataConfig(image_size=8)) != base
    (tmp_path / "cat" / "00.png").write_bytes(imgs.solid(imgs.GREEN, (30, 30)))
    assert cache_key(src, rels, DataConfig(image_size=8)) != base


def test_a_damaged_entry_is_decoded_again(tmp_path, imgs):
    imgs.write_tree(tmp_path / "d", imgs.class_tree(3))
    kw = dict(cache_dir=str(tmp_path / "cache"), val_fraction=0)
    first = load_image_dataset(tmp_path / "d", 8, "train", **kw)
    (entry,) = (tmp_path / "cache").iterdir()
    np.save(entry / "ok.npy", np.ones(2, bool))            # wrong length
    again = load_image_dataset(tmp_path / "d", 8, "train", **kw)
    assert torch.equal(again.images, first.images)
    assert any("unreadable" in n for n in again.skipped.notes)
    third = load_image_dataset(tmp_path / "d", 8, "train", **kw)     # the entry was rewritten
    assert any("from cache" in n for n in third.skipped.notes)
