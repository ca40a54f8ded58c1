import json
import tarfile

import numpy as np
import pytest

from cnnlab.errors import ConfigError, DataError
from cnnlab.zeroshot.data import (hold_out, iter_image_batches, pretty_name, read_cub,
                                  read_description)


def test_reads_folder_and_archive_alike(tiny_cub, tmp_path):
    d = read_cub(tiny_cub.parent)
    assert d.classes[0] == "001.Red_Bird" and len(d.classes) == 6
    assert d.class_ids["006.White_Bird"] == 6
    assert "red all over" in d.texts["001.Red_Bird"]
    assert all(len(v) == 4 for v in d.images.values())
    seen, unseen = d.split("hard")
    assert seen[-1] == "004.Yellow_Bird" and unseen == ["005.Black_Bird", "006.White_Bird"]
    tgz = tmp_path / "cub.tar.gz"
    with tarfile.open(tgz, "w:gz") as tf:
        tf.add(tiny_cub, arcname="cub200-2010")
    a = read_cub(tgz)
    assert a.classes == d.classes and a.texts == d.texts and a.split("hard") == (seen, unseen)
    batches = list(iter_image_batches(a, a.images["002.Blue_Bird"], 8, batch_size=3))
    assert [b.shape for b, _ in batches] == [(3, 3, 8, 8), (1, 3, 8, 8)]
    first = batches[0][0][0].reshape(3, -1).mean(1)
    assert first[2] > first[0] + 100                     # the blue bird is blue


def test_custom_splits_and_their_errors(tiny_cub, tmp_path):
    d = read_cub(tiny_cub.parent)
    assert d.split({"seen_class_ids": [1, 2], "unseen_class_ids": [3]}) == (
        ["001.Red_Bird", "002.Blue_Bird"], ["003.Green_Bird"])
    f = tmp_path / "split.json"
    f.write_text(json.dumps({"seen_class_ids": [1, 2, 3], "unseen_class_ids": [3, 4]}))
    with pytest.raises(ConfigError, match=r"\[3\].*both seen and unseen"):
        d.split(str(f))
    with pytest.raises(DataError, match="99"):
        d.split({"seen_class_ids": [1], "unseen_class_ids": [99]})
    with pytest.raises(ConfigError, match="unknown split"):
        d.split("medium")


def test_class_without_text_is_named(tiny_cub):
    (tiny_cub / "wikipedia" / "005.Black_Bird.txt").write_text("  \n")
    (tiny_cub / "wikipedia" / "006.White_Bird.txt").unlink()
    d = read_cub(tiny_cub.parent)
    with pytest.raises(DataError, match="005.Black_Bird.*006.White_Bird"):
        d.split("hard")
    assert any("empty article" in s.reason for s in d.report.skipped)


def test_not_a_cub_layout(tmp_path):
    (tmp_path / "cats").mkdir()
    with pytest.raises(DataError, match="CUB zero-shot layout"):
        read_cub(tmp_path)


def test_read_description(tmp_path):
    with pytest.raises(DataError, match="'jay'.*does not exist"):
        read_description(tmp_path / "nope.txt", "jay")
    (tmp_path / "e.txt").write_text("\n\n")
    with pytest.raises(DataError, match="'jay'.*empty"):
        read_description(tmp_path / "e.txt", "jay")
    (tmp_path / "ok.txt").write_text("blue crest")
    assert read_description(tmp_path / "ok.txt") == "blue crest"


def test_hold_out_is_per_class_and_seeded():
    labels = np.repeat([0, 1, 2], [10, 5, 1])
    m = hold_out(labels, 0.2, seed=3)
    assert [int(m[labels == c].sum()) for c in range(3)] == [2, 1, 0]
    assert (hold_out(labels, 0.2, seed=3) == m).all()


def test_pretty_name():
    assert pretty_name("017.Cardinal") == "Cardinal"
    assert pretty_name("001.Black_footed_Albatross") == "Black footed Albatross"
