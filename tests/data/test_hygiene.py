import os
import pickle
import tarfile

import numpy as np

from cnnlab.data.hygiene import (FileRecord, find_duplicates, manifest_digest, manifest_hash)
from cnnlab.data.info import dataset_info, info_text


def test_duplicates_across_classes_and_splits_are_listed_and_noted(tmp_path, imgs):
    a, b, c = (imgs.encode(imgs.noise(8, 8, seed=s)) for s in range(3))
    imgs.write_tree(tmp_path, {"train/cat/a.png": a, "train/dog/a-copy.png": a,
                               "train/cat/b.png": b, "val/cat/b.png": b,
                               "train/dog/c.png": c, "train/dog/c2.png": c,
                               "val/dog/d.png": imgs.encode(imgs.noise(8, 8, seed=9))})
    info = dataset_info(tmp_path, sample=None)
    d = info["duplicates"]
    assert (d["groups"], d["files"], d["across_classes"], d["across_splits"]) == (3, 6, 1, 1)
    by_class = {tuple(g["classes"]): g for g in d["list"]}
    assert by_class[("cat", "dog")]["splits"] == ["train"]
    dog = by_class[("dog",)]
    assert dog["across_classes"] is False and dog["splits"] == ["train"]
    leak = [g for g in d["list"] if g["across_splits"]][0]
    assert leak["splits"] == ["train", "val"] and len(leak["paths"]) == 2
    notes = info["problems"]["notes"]
    assert sum("identical files" in n for n in notes) == 2         # within-class copies: no note
    text = info_text(info)
    assert "3 group(s)" in text and "1 across classes" in text and info["manifest_hash"] in text


def test_single_tree_duplicates_judged_against_default_split(tmp_path, imgs):
    same = imgs.solid(imgs.RED)
    imgs.write_tree(tmp_path, {f"cat/{i}.png": same for i in range(5)}
                    | {f"dog/{i}.png": imgs.solid(imgs.BLUE, (5 + i, 5)) for i in range(5)})
    d = dataset_info(tmp_path, sample=None)["duplicates"]
    assert d["groups"] == 1 and d["list"][0]["splits"] == ["train", "val"]


def test_manifest_hash_is_stable_and_sensitive(tmp_path, imgs):
    files = imgs.class_tree(3)
    imgs.write_tree(tmp_path / "d" / "data", files)
    first = manifest_hash(tmp_path / "d")
    assert first == manifest_hash(tmp_path / "d") == dataset_info(tmp_path / "d")["manifest_hash"]
    # an archive of the same tree hashes the same (paths are relative to the data root) ...
    with tarfile.open(tmp_path / "d.tar.gz", "w:gz") as tf:
        tf.add(tmp_path / "d" / "data", arcname="wrapper/data")
    assert manifest_hash(tmp_path / "d.tar.gz") == first
    # ... and so does a copy with other modification times
    os.utime(tmp_path / "d" / "data" / "cat" / "00.png", (1, 1))
    assert manifest_hash(tmp_path / "d") == first
    changed = []
    p = tmp_path / "d" / "data" / "cat" / "00.png"
    p.write_bytes(imgs.solid(imgs.GREEN))                        # content
    changed.append(manifest_hash(tmp_path / "d"))
    p.rename(p.with_name("zz.png"))                              # name
    changed.append(manifest_hash(tmp_path / "d"))
    p.with_name("zz.png").rename(tmp_path / "d" / "data" / "dog" / "zz.png")   # label
    changed.append(manifest_hash(tmp_path / "d"))
    assert len({first, *changed}) == 4


def test_manifest_digest_is_order_free_and_includes_classes():
    recs = [FileRecord("all", "a", "a/1.png", 3, "x"), FileRecord("all", "b", "b/1.png", 3, "y")]
    assert manifest_digest(["a", "b"], recs) == manifest_digest(["a", "b"], recs[::-1])
    assert manifest_digest(["a", "b"], recs) != manifest_digest(["a", "b", "c"], recs)
    assert find_duplicates(recs) == []


def test_array_formats_info_and_manifest(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (3, 3072), dtype=np.uint8)
    x[2] = x[0]                                                     # an in-set duplicate
    for i in range(1, 6):
        (tmp_path / f"data_batch_{i}").write_bytes(pickle.dumps(
            {b"data": x, b"labels": [0, 1, i % 2]}))
    (tmp_path / "test_batch").write_bytes(pickle.dumps({b"data": x[:1], b"labels": [1]}))
    (tmp_path / "batches.meta").write_bytes(pickle.dumps({b"label_names": [b"a", b"b"]}))
    info = dataset_info(tmp_path)
    assert info["kind"] == "cifar" and info["totals"] == {"train": 15, "test": 1}
    assert info["counts"]["train"] == {"a": 7, "b": 8}
    assert info["duplicates"]["across_splits"] == 1 and info["duplicates"]["across_classes"] == 1
    assert info["manifest_hash"] == manifest_hash(tmp_path)
    planes = x.reshape(3, 3, 1024) / 255                          # (image, channel, pixel)
    assert info["mean"] == [round(float(planes[:, c].mean()), 4) for c in range(3)]
    assert np.allclose(info["std"], [planes[:, c].std() for c in range(3)], atol=1e-4)
    assert "cifar files" in info_text(info)
    (tmp_path / "test_batch").write_bytes(pickle.dumps({b"data": x[1:2], b"labels": [1]}))
    assert manifest_hash(tmp_path) != info["manifest_hash"]


def test_info_on_a_class_too_small_to_split_still_reports_duplicates(tmp_path, imgs):
    same = imgs.solid(imgs.RED)
    imgs.write_tree(tmp_path, {"cat/a.png": same, "dog/a.png": same})
    d = dataset_info(tmp_path)["duplicates"]
    assert d["across_classes"] == 1 and d["list"][0]["splits"] == ["all"]
