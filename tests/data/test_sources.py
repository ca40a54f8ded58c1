import os
import threading

import pytest

from cnnlab.data.archive import ArchiveSource
from cnnlab.data.sources import FolderSource, non_image_reason, open_source
from cnnlab.errors import DataError


def test_folder_listing_has_files_dirs_and_ignores_hidden_folders(tmp_path, imgs):
    imgs.write_tree(tmp_path, {"cat/a.png": b"x", "cat/deep/b.png": b"yy", ".git/HEAD": b"ref",
                               "cat/.ipynb_checkpoints/a-checkpoint.png": b"z", "dog": None,
                               "__MACOSX/._cat": b"", "cat/.DS_Store": b"\0"})
    listing = FolderSource(tmp_path).list()
    assert [f.relpath for f in listing.files] == ["cat/.DS_Store", "cat/a.png", "cat/deep/b.png"]
    assert listing.dirs == {"cat", "cat/deep", "dog"}
    assert {f.relpath: f.size for f in listing.files}["cat/deep/b.png"] == 2
    ignored = {os.path.relpath(s.path, tmp_path) for s in listing.report.ignored}
    assert ignored == {".git", "__MACOSX", os.path.join("cat", ".ipynb_checkpoints")}


def test_symlink_loop_does_not_hang(tmp_path, imgs):
    imgs.write_tree(tmp_path, {"cat/a.png": b"x", "dog/b.png": b"y"})
    os.symlink(tmp_path / "cat", tmp_path / "cat" / "loop")          # cat/loop -> cat
    os.symlink(tmp_path, tmp_path / "dog" / "up")                     # dog/up -> root
    result = {}
    t = threading.Thread(target=lambda: result.setdefault("l", FolderSource(tmp_path).list()))
    t.start()
    t.join(timeout=10)
    assert not t.is_alive(), "listing a tree with symlink loops did not finish"
    listing = result["l"]
    assert sorted(f.relpath for f in listing.files) == ["cat/a.png", "dog/b.png"]
    assert any("visited" in s.reason for s in listing.report.ignored)


def test_broken_symlink_is_reported_not_fatal(tmp_path, imgs):
    imgs.write_tree(tmp_path, {"cat/a.png": b"x"})
    os.symlink(tmp_path / "nowhere.png", tmp_path / "cat" / "dangling.png")
    listing = FolderSource(tmp_path).list()
    assert [f.relpath for f in listing.files] == ["cat/a.png"]
    assert [os.path.basename(s.path) for s in listing.report.skipped] == ["dangling.png"]


def test_open_source_dispatches_and_explains_bad_paths(tmp_path, imgs):
    assert isinstance(open_source(tmp_path), FolderSource)
    import tarfile
    import zipfile

    with zipfile.ZipFile(tmp_path / "d.zip", "w") as z:
        z.writestr("a/x.png", b"1")
    with tarfile.open(tmp_path / "d.tgz", "w:gz"):
        pass
    assert open_source(tmp_path / "d.zip").kind == "zip"
    assert open_source(tmp_path / "d.tgz").kind == "tar"
    (tmp_path / "renamed.bin").write_bytes((tmp_path / "d.zip").read_bytes())
    assert isinstance(open_source(tmp_path / "renamed.bin"), ArchiveSource)   # by magic bytes
    with pytest.raises(DataError, match="does not exist"):
        open_source(tmp_path / "nope")
    with pytest.raises(DataError, match="does not exist.*d.zip"):
        open_source(tmp_path / "d.zi")                                     # suggests near names
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(DataError, match="not a .tar"):
        open_source(tmp_path / "notes.txt")
    with pytest.raises(DataError, match="no data path"):
        open_source(None)


@pytest.mark.parametrize("name,word", [
    ("cat/Thumbs.db", "system file"), ("cat/.DS_Store", "hidden"), ("cat/._a.jpg", "resource-fork"),
    ("cat/notes.txt", ".txt"), ("cat/inner.zip", "nested"), ("cat/x.tar.gz", "nested"),
    ("cat/noext", "none")])
def test_non_image_reasons(name, word):
    assert word in non_image_reason(name)


@pytest.mark.parametrize("name", ["cat/a.JPG", "cat/b.jpeg", "cat/c.png", "cat/d.webp",
                                  "cat/e.TIFF"])
def test_image_extensions_are_tried(name):
    assert non_image_reason(name) is None


def test_folder_fingerprint_changes_when_a_file_changes(tmp_path, imgs):
    imgs.write_tree(tmp_path, {"cat/a.png": b"x"})
    src = FolderSource(tmp_path)
    before = src.fingerprint(["cat/a.png"])
    assert src.fingerprint(["cat/a.png"]) == before
    (tmp_path / "cat" / "a.png").write_bytes(b"xy")
    assert src.fingerprint(["cat/a.png"]) != before
