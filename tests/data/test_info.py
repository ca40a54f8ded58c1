import os

import numpy as np
import pytest

from cnnlab.data.info import dataset_info, info_text, scan
from cnnlab.errors import DataError, InvalidImageError


def test_info_counts_sizes_and_exact_mean_std(tmp_path, imgs):
    files = {}
    for split in ("train", "val"):
        files |= {f"{split}/cat/{i}.png": imgs.solid(imgs.RED, (10, 4 + i)) for i in range(3)}
        files |= {f"{split}/dog/{i}.png": imgs.solid(imgs.BLUE, (10, 4)) for i in range(2)}
    files["val/dog/broken.jpg"] = imgs.truncated_jpeg()
    imgs.write_tree(tmp_path, files)
    info = dataset_info(tmp_path, sample=None)
    assert info["layout"] == "split folders" and info["classes"] == ["cat", "dog"]
    # the truncated JPEG in val/ is only header-checked (it is not in the stats sample), and its
    # header is fine: it counts; `scan` decodes everything and catches it
    assert info["counts"] == {"train": {"cat": 3, "dog": 2}, "val": {"cat": 3, "dog": 3}}
    assert info["totals"] == {"train": 5, "val": 6}
    assert info["width"] == {"min": 10, "median": 10, "max": 64}      # 64: the broken JPEG
    assert info["height"] == {"min": 4, "median": 4, "max": 64}
    assert info["formats"] == {"PNG": 10, "JPEG": 1}
    # training split pixels: cat 3 images of 10x(4,5,6) red, dog 2 of 10x4 blue
    n_red, n_blue = 10 * (4 + 5 + 6), 10 * 4 * 2
    r = np.array([220] * n_red + [20] * n_blue) / 255
    assert info["mean"][0] == pytest.approx(r.mean(), abs=1e-4)
    assert info["std"][0] == pytest.approx(r.std(), abs=1e-4)
    assert info["stats_images"] == 5 and info["stats_split"] == "train"
    text = info_text(info)
    assert "cat" in text and "mean" in text and "skipped 0 of 11" in text


def test_info_samples_for_stats_but_checks_every_header(tmp_path, imgs):
    imgs.write_tree(tmp_path, imgs.class_tree(6) | {"dog/page.jpg": imgs.BAD_FILES["page.jpg"]})
    info = dataset_info(tmp_path, sample=3, seed=1)
    assert info["stats_images"] == 3 and info["layout"] == "single tree"
    assert info["counts"] == {"all": {"cat": 6, "dog": 6}}
    problems = info["problems"]
    assert problems["skipped_count"] == 1 and "HTML" in problems["skipped"][0]["reason"]


def test_scan_decodes_everything_and_quick_only_reads_headers(tmp_path, imgs):
    bad = {f"cat/{k}": v for k, v in imgs.BAD_FILES.items()}
    imgs.write_tree(tmp_path, imgs.class_tree(2) | bad)
    before = imgs.tree_hash(tmp_path)
    full = scan(tmp_path)
    assert {os.path.basename(s.path) for s in full.skipped} == set(imgs.BAD_FILES)
    quick = scan(tmp_path, quick=True)
    quick_names = {os.path.basename(s.path) for s in quick.skipped}
    assert quick_names == set(imgs.BAD_FILES) - {"truncated.jpg"}
    assert imgs.tree_hash(tmp_path) == before
    with pytest.raises((DataError, InvalidImageError), match="Strict mode"):
        scan(tmp_path, strict=True)


def test_scan_notes_empty_classes_instead_of_failing(tmp_path, imgs):
    imgs.write_tree(tmp_path, {"cat/a.png": imgs.solid(imgs.RED), "dog": None})
    report = scan(tmp_path)
    assert len(report) == 0 and any("'dog' has no image files" in n for n in report.notes)


def test_unicode_names_round_trip_into_the_json_report(tmp_path, imgs):
    """RELIABILITY.md C8: class names and bad-file paths come back from JSON exactly."""
    import json
    import unicodedata

    nfc, nfd = (unicodedata.normalize(f, "café") for f in ("NFC", "NFD"))
    classes = ["猫 cat", "собака", "🐶", nfc, nfd, 'say "hi"', "50%"]
    files = {f"{c}/{i}.png": imgs.solid((40 * i, 10, 10)) for c in classes for i in range(2)}
    odd = ["new\nline.jpg", "quote\".jpg", "%s%d.jpg", "пусто.jpg"]
    files |= {f"{classes[0]}/{n}": imgs.truncated_jpeg() if i else b"" for i, n in enumerate(odd)}
    imgs.write_tree(tmp_path, files)
    info = dataset_info(tmp_path, sample=None)
    back = json.loads(json.dumps(info, ensure_ascii=False))
    assert back["classes"] == sorted(classes) and set(back["counts"]["all"]) == set(classes)
    assert back["counts"]["all"][nfc] == back["counts"]["all"][nfd] == 2
    report_paths = {os.path.basename(s["path"]) for s in back["problems"]["skipped"]}
    assert odd[0] in report_paths                    # the empty one, with its newline intact
    assert any("differ only by case or Unicode form" in n for n in back["problems"]["notes"])
    full = scan(tmp_path)
    assert {os.path.basename(s.path) for s in full.skipped} == set(odd)
