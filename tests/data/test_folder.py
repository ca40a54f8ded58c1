import json
import unicodedata

import numpy as np
import pytest

from cnnlab.data.folder import SplitSpec, make_split, read_layout, resolve_split
from cnnlab.errors import DataError


def tree(tmp_path, imgs, files):
    imgs.write_tree(tmp_path, {k: (b"x" if v is True else v) for k, v in files.items()})
    return tmp_path


def test_single_tree_classes_sorted_and_nested_images_collected(tmp_path, imgs):
    tree(tmp_path, imgs, {"dog/a.jpg": True, "cat/b.png": True, "cat/2019/jan/c.png": True,
                          "README.md": True, ".git/config": True})
    _, layout, report = read_layout(tmp_path)
    assert not layout.presplit and layout.root == ""
    assert layout.classes == ["cat", "dog"]
    assert layout.groups["all"]["cat"] == ["cat/2019/jan/c.png", "cat/b.png"]
    assert [s.reason for s in report.ignored] == ["hidden folder; never a class",
                                                  "file outside any class folder"]


def test_split_folders_and_val_falls_back_to_test(tmp_path, imgs):
    tree(tmp_path, imgs, {f"{s}/{c}/{i}.png": True for s in ("train", "test") for c in ("a", "b")
                          for i in range(2)} | {"extra/a/x.png": True})
    _, layout, report = read_layout(tmp_path)
    assert layout.presplit and set(layout.groups) == {"train", "test"}
    assert any("not a split folder" in s.reason for s in report.ignored)
    spec = make_split(layout)
    assert spec.method == "folders" and resolve_split(spec, "val") == "test"
    assert spec.labels["train"] == [0, 0, 1, 1]
    with pytest.raises(DataError, match="no val split"):
        resolve_split(SplitSpec(["a", "b"], {"train": []}, {"train": []}, "folders"), "val")
    with pytest.raises(DataError, match="split must be one of"):
        resolve_split(spec, "holdout")


def test_train_test_layout_holds_val_out_of_train_not_test(tmp_path, imgs):
    tree(tmp_path, imgs, {f"{s}/{c}/{i}.png": True for s in ("train", "test") for c in ("a", "b")
                          for i in range(10)})
    _, layout, _ = read_layout(tmp_path)
    spec = make_split(layout, val_fraction=0.2, seed=3)
    assert spec.method == "folders+val" and resolve_split(spec, "val") == "val"
    assert spec.counts() == {"train": {"a": 8, "b": 8}, "test": {"a": 10, "b": 10},
                             "val": {"a": 2, "b": 2}}
    train, val, test = (set(spec.files[s]) for s in ("train", "val", "test"))
    assert not train & val and all(p.startswith("train/") for p in val)
    assert test == set(layout.groups["test"]["a"] + layout.groups["test"]["b"])
    assert make_split(layout, val_fraction=0.2, seed=3).files == spec.files   # seeded
    assert make_split(layout, val_fraction=0.2, seed=4).files["val"] != spec.files["val"]
    assert SplitSpec.load(spec.save(tmp_path / "split.json")).files["val"] == spec.files["val"]


def test_root_is_found_below_wrapper_folders(tmp_path, imgs):
    tree(tmp_path, imgs, {"wrap/cifar/Train/a/1.png": True, "wrap/cifar/Val/a/1.png": True,
                          "wrap/cifar/Train/b/1.png": True, "wrap/cifar/Val/b/1.png": True})
    _, layout, _ = read_layout(tmp_path)
    assert layout.root == "wrap/cifar" and layout.split_dirs == {"train": "Train", "val": "Val"}


def test_lone_train_folder_is_a_split_not_a_wrapper(tmp_path, imgs):
    tree(tmp_path, imgs, {"train/a/1.png": True, "train/b/1.png": True})
    _, layout, _ = read_layout(tmp_path)
    assert layout.presplit and layout.classes == ["a", "b"]


@pytest.mark.parametrize("files,match", [
    ({}, "no class folders"),
    ({"README": True}, "no class folders"),
    ({"cat/a.png": True}, "only one class folder"),
    ({"pets/cat/a.png": True}, "only one class folder"),
    ({"cat/a.png": True, "dog": None}, "dog holds no image files"),
    ({"cat/a.png": True, "dog/notes.txt": True}, "dog holds no image files"),
    ({"train/a/1.png": True, "train/b/1.png": True, "val/a/1.png": True}, "missing \\['b'\\]"),
    ({"train/a/1.png": True, "train/b/1.png": True, "val/a/1.png": True, "valid/b/1.png": True},
     "both"),
])
def test_structure_errors(tmp_path, imgs, files, match):
    tree(tmp_path, imgs, files)
    with pytest.raises(DataError, match=match):
        read_layout(tmp_path)


def test_allow_empty_keeps_the_empty_class(tmp_path, imgs):
    tree(tmp_path, imgs, {"cat/a.png": True, "dog": None})
    _, layout, _ = read_layout(tmp_path, allow_empty=True)
    assert layout.classes == ["cat", "dog"] and layout.groups["all"]["dog"] == []


def test_case_and_unicode_clashes_are_noted(tmp_path, imgs):
    nfc = unicodedata.normalize("NFC", "café")
    nfd = unicodedata.normalize("NFD", "café")
    tree(tmp_path, imgs, {"Cat/a.png": True, "cat/b.png": True, f"{nfc}/c.png": True,
                          f"{nfd}/d.png": True})
    _, layout, report = read_layout(tmp_path)
    assert len(layout.classes) == 4
    assert len([n for n in report.notes if "differ only by case" in n]) == 2


def test_strict_listing_raises_on_the_first_non_image(tmp_path, imgs):
    tree(tmp_path, imgs, {"cat/a.png": True, "cat/notes.txt": True, "dog/b.png": True})
    with pytest.raises(DataError, match="notes.txt.*Strict mode"):
        read_layout(tmp_path, strict=True)


def test_stratified_split_is_seeded_per_class_and_complete(tmp_path, imgs):
    tree(tmp_path, imgs, {f"{c}/{i:02d}.png": True for c, n in [("a", 10), ("b", 5), ("c", 3)]
                          for i in range(n)})
    _, layout, _ = read_layout(tmp_path)
    spec = make_split(layout, val_fraction=0.2, test_fraction=0.2, seed=3)
    counts = spec.counts()
    # round(n * 0.2), at least one per class in each held-out split
    assert counts["val"] == counts["test"] == {"a": 2, "b": 1, "c": 1}
    assert counts["train"] == {"a": 6, "b": 3, "c": 1}
    all_files = sorted(p for s in spec.files.values() for p in s)
    # the splits are disjoint and together hold every file
    assert all_files == sorted(p for g in layout.groups["all"].values() for p in g)
    assert len(set(all_files)) == len(all_files)
    assert make_split(layout, 0.2, 0.2, seed=3).files == spec.files
    assert make_split(layout, 0.2, 0.2, seed=4).files != spec.files
    for s in spec.files:                          # labels follow the folder names
        for p, y in zip(spec.files[s], spec.labels[s]):
            assert p.split("/")[0] == spec.classes[y]


def test_too_small_class_for_the_fractions_is_an_error(tmp_path, imgs):
    tree(tmp_path, imgs, {"a/1.png": True, "a/2.png": True, "b/1.png": True, "b/2.png": True})
    _, layout, _ = read_layout(tmp_path)
    assert make_split(layout, 0.2).counts()["val"] == {"a": 1, "b": 1}
    with pytest.raises(DataError, match="too few"):
        make_split(layout, 0.2, 0.2)


def test_adding_a_class_leaves_the_other_classes_split_unchanged(tmp_path, imgs):
    tree(tmp_path, imgs, {f"{c}/{i:02d}.png": True for c in "ab" for i in range(10)})
    before = make_split(read_layout(tmp_path)[1], 0.3, seed=1)
    tree(tmp_path, imgs, {f"c/{i:02d}.png": True for i in range(10)})
    after = make_split(read_layout(tmp_path)[1], 0.3, seed=1)
    assert [p for p in after.files["val"] if not p.startswith("c/")] == before.files["val"]


def test_split_spec_round_trips_through_json(tmp_path, imgs):
    tree(tmp_path, imgs, {f"{c}/{i}.png": True for c in "ab" for i in range(5)})
    spec = make_split(read_layout(tmp_path)[1], 0.4, seed=0)
    path = spec.save(tmp_path / "split.json")
    again = SplitSpec.load(path)
    assert again == spec                      # root "" here: paths are the same either way
    tree(tmp_path / "wrap", imgs, {f"inner/{c}/{i}.png": True for c in "ab" for i in range(5)})
    wrapped = make_split(read_layout(tmp_path / "wrap")[1], 0.4, seed=0)
    assert wrapped.root == "inner" and wrapped.files["val"][0].startswith("inner/")
    saved = json.loads(wrapped.save(tmp_path / "w.json").read_text())
    assert list(saved["splits"]["val"]) == spec.files["val"]
    assert json.loads(path.read_text())["format"] == "cnnlab-split/1"
    (tmp_path / "bad.json").write_text('{"format": "other"}')
    with pytest.raises(DataError, match="cannot read split file"):
        SplitSpec.load(tmp_path / "bad.json")


def test_bad_fractions_are_rejected(tmp_path, imgs):
    tree(tmp_path, imgs, {"a/1.png": True, "b/1.png": True})
    layout = read_layout(tmp_path)[1]
    for v, t in [(1.0, 0.0), (-0.1, 0.0), (0.6, 0.5)]:
        with pytest.raises(DataError, match="fraction"):
            make_split(layout, v, t)
    assert np.all(np.array(make_split(layout, 0.0).labels["train"]) == [0, 1])
