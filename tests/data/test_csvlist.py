import json

import pytest

from cnnlab.data import load_image_dataset
from cnnlab.data.csvlist import is_csv, read_csv_layout
from cnnlab.data.info import dataset_info
from cnnlab.errors import DataError


def make_images(tmp_path, imgs):
    imgs.write_tree(tmp_path, {f"img/r{i}.png": imgs.solid(imgs.RED) for i in range(4)}
                    | {f"img/b{i}.png": imgs.solid(imgs.BLUE) for i in range(4)})


def test_csv_with_header_split_column_and_bad_rows(tmp_path, imgs):
    make_images(tmp_path, imgs)
    (tmp_path / "img" / "notes.txt").write_text("x")
    rows = ["split,label,filepath,extra",
            "train,red,img/r0.png,1", "train,red,img/r1.png,", "val,red,img/r2.png,",
            "train,blue,img/b0.png,", "train,blue,img\\b1.png,", "val,blue,img/b2.png,",
            "train,blue,img/missing.png,", "train,blue,img/notes.txt,", "train,,img/r3.png,",
            "holdout,red,img/r3.png,", "train,blue,img/b0.png,", "train,red,img/b0.png,",
            "train"]
    (tmp_path / "list.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    assert is_csv(tmp_path / "list.csv") and not is_csv(tmp_path / "img")
    tr = load_image_dataset(tmp_path / "list.csv", 8, "train", max_bad_fraction=None)
    va = load_image_dataset(tmp_path / "list.csv", 8, "val", max_bad_fraction=None)
    assert tr.classes == va.classes == ["blue", "red"]
    assert tr.class_counts() == {"blue": 2, "red": 2} and va.class_counts() == {"blue": 1, "red": 1}
    assert tr.paths == ["img/b0.png", "img/b1.png", "img/r0.png", "img/r1.png"]
    # the pixels follow the label: blue images are labelled blue
    for x, y in zip(tr.images, tr.labels):
        assert int(x[2].float().mean()) == (220 if tr.classes[y] == "blue" else 20)
    reasons = " | ".join(f"{s.path}: {s.reason}" for s in tr.skipped.skipped)
    assert "row 8" in reasons and "does not exist" in reasons
    assert "not an image" in reasons and "empty path or label" in reasons
    assert "'holdout' is not train" in reasons and "listed again with label 'red'" in reasons
    assert "row 14" in reasons and "1 cell" in reasons
    assert len(tr.skipped.skipped) == 6
    assert any("repeats row 5" in n for n in tr.skipped.notes)


def test_headerless_csv_is_split_stratified_and_integer_labels_sort_numerically(tmp_path, imgs):
    imgs.write_tree(tmp_path, {f"a/{i}.png": imgs.solid((i * 20, 0, 0)) for i in range(12)})
    labels = [2, 10, 2, 10, 2, 10, 2, 10, 0, 0, 0, 0]
    (tmp_path / "l.csv").write_text("".join(f"a/{i}.png,{y}\n" for i, y in enumerate(labels)))
    _, layout, report = read_csv_layout(tmp_path / "l.csv")
    assert layout.classes == ["0", "2", "10"] and not layout.presplit
    tr = load_image_dataset(tmp_path / "l.csv", 4, "train", val_fraction=0.25, seed=3)
    va = load_image_dataset(tmp_path / "l.csv", 4, "val", val_fraction=0.25, seed=3)
    assert len(tr) == 9 and len(va) == 3 and sorted(va.labels.tolist()) == [0, 1, 2]
    assert not set(tr.paths) & set(va.paths)
    # the split is saved like a folder's, so a run can reproduce it
    assert va.spec.method == "stratified" and va.spec.counts()["val"] == {"0": 1, "2": 1, "10": 1}


def test_csv_labels_and_paths_keep_unicode_and_quotes_exactly(tmp_path, imgs):
    names = ["猫 cat.png", "ёж, \"quoted\".png", "50% off\nnew.png"]
    labels = ["кот", "狗 🐶"]
    imgs.write_tree(tmp_path, {n: imgs.solid(imgs.RED) for n in names})
    import csv
    with open(tmp_path / "d.csv", "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["path", "label"])
        for i, n in enumerate(names):
            w.writerow([n, labels[i % 2]])
    info = dataset_info(tmp_path / "d.csv", sample=None)
    back = json.loads(json.dumps(info, ensure_ascii=False))
    assert back["classes"] == sorted(labels)
    assert back["counts"] == {"all": {"кот": 2, "狗 🐶": 1}}
    assert back["problems"]["skipped"] == []


def test_csv_errors(tmp_path, imgs):
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(DataError, match="no rows"):
        read_csv_layout(tmp_path / "empty.csv")
    imgs.write_tree(tmp_path, {"a.png": imgs.solid(imgs.RED)})
    (tmp_path / "one.csv").write_text("a.png,cat\n")
    with pytest.raises(DataError, match="at least two"):
        read_csv_layout(tmp_path / "one.csv")
    imgs.write_tree(tmp_path, {"b.png": imgs.solid(imgs.BLUE)})
    (tmp_path / "notrain.csv").write_text("a.png,cat,val\nb.png,dog,test\n")
    with pytest.raises(DataError, match="no 'train' rows"):
        read_csv_layout(tmp_path / "notrain.csv")


def test_nfc_nfd_labels_and_names_are_noted(tmp_path, imgs):
    import unicodedata

    nfc, nfd = (unicodedata.normalize(f, "é") for f in ("NFC", "NFD"))
    imgs.write_tree(tmp_path, {f"{nfc}.png": imgs.solid(imgs.RED),
                               f"{nfd}.png": imgs.solid(imgs.BLUE)})
    (tmp_path / "l.csv").write_text(f"{nfc}.png,{nfc}\n{nfd}.png,{nfd}\n", encoding="utf-8")
    _, layout, report = read_csv_layout(tmp_path / "l.csv")
    assert layout.classes == sorted([nfc, nfd])                 # kept apart, exactly as written
    assert any("differ only by case or Unicode form" in n for n in report.notes)
    assert any("different Unicode forms" in n for n in report.notes)
