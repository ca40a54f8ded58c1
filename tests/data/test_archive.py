import io
import os
import tarfile
import zipfile

import pytest

from cnnlab.data.archive import ArchiveSource, archive_kind, safe_member_name
from cnnlab.data.sources import Unreadable
from cnnlab.errors import DataError


def add_bytes(tf: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tf.addfile(info, io.BytesIO(data))


def add_special(tf: tarfile.TarFile, name: str, kind: bytes, target: str = "") -> None:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, target
    tf.addfile(info)


@pytest.mark.parametrize("name,expect", [
    ("a/b.png", "a/b.png"), ("./a//b.png", "a/b.png"), ("a\\b.png", "a/b.png"),
    ("../x.png", None), ("a/../../x.png", None), ("/etc/passwd", None), ("C:\\x.png", None),
    ("C:/x.png", None)])
def test_safe_member_name(name, expect):
    assert safe_member_name(name) == expect


def test_tar_gz_and_zip_list_the_same_tree(tmp_path, imgs):
    files = {f"data/{k}": v for k, v in imgs.class_tree(2).items()}
    with tarfile.open(tmp_path / "d.tar.gz", "w:gz") as tf:
        for name, data in files.items():
            add_bytes(tf, name, data)
    with zipfile.ZipFile(tmp_path / "d.zip", "w") as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    for path, kind in [(tmp_path / "d.tar.gz", "tar"), (tmp_path / "d.zip", "zip")]:
        assert archive_kind(path) == kind
        src = ArchiveSource(path, kind)
        listing = src.list()
        assert sorted(f.relpath for f in listing.files) == sorted(files)
        assert {"data", "data/cat", "data/dog"} <= listing.dirs   # parents, with no dir members
        got = dict(src.payloads(sorted(files)))
        assert got == files
        assert src.display("data/cat/00.png") == f"{path}:data/cat/00.png"


def test_hostile_tar_members_are_skipped_and_nothing_is_written(tmp_path, imgs, monkeypatch):
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)                 # a relative "../evil" would land in tmp_path
    png = imgs.solid(imgs.RED)
    path = tmp_path / "evil.tar.gz"
    with tarfile.open(path, "w:gz") as tf:
        add_bytes(tf, "d/cat/ok.png", png)
        add_bytes(tf, "../evil.png", png)
        add_bytes(tf, "/tmp/abs-evil.png", png)
        add_bytes(tf, "d/cat/../../../evil2.png", png)
        add_special(tf, "d/cat/link.png", tarfile.SYMTYPE, "/etc/passwd")
        add_special(tf, "d/cat/hard.png", tarfile.LNKTYPE, "d/cat/ok.png")
        add_special(tf, "d/cat/fifo.png", tarfile.FIFOTYPE)
        add_special(tf, "d/cat/dev.png", tarfile.CHRTYPE)
    before = sorted(os.listdir(tmp_path)), sorted(os.listdir(work))
    src = ArchiveSource(path, "tar")
    listing = src.list()
    assert [f.relpath for f in listing.files] == ["d/cat/ok.png"]
    reasons = {s.path.split(":", 1)[1]: s.reason for s in listing.report.skipped}
    assert "unsafe" in reasons["../evil.png"] and "unsafe" in reasons["/tmp/abs-evil.png"]
    assert "unsafe" in reasons["d/cat/../../../evil2.png"]
    assert "symbolic link" in reasons["d/cat/link.png"] and "hard link" in reasons["d/cat/hard.png"]
    assert "FIFO" in reasons["d/cat/fifo.png"] and "device" in reasons["d/cat/dev.png"]
    # even when asked for them by name, unsafe members are never read
    got = dict(src.payloads(["d/cat/ok.png", "../evil.png", "d/cat/link.png"]))
    assert got["d/cat/ok.png"] == png
    assert isinstance(got["../evil.png"], Unreadable)
    assert isinstance(got["d/cat/link.png"], Unreadable)
    assert (sorted(os.listdir(tmp_path)), sorted(os.listdir(work))) == before
    assert not os.path.exists("/tmp/abs-evil.png")


def test_hostile_zip_members_are_skipped(tmp_path, imgs):
    png = imgs.solid(imgs.BLUE)
    path = tmp_path / "evil.zip"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("d/dog/ok.png", png)
        zf.writestr("../evil.png", png)
        zf.writestr("/abs.png", png)
        link = zipfile.ZipInfo("d/dog/link.png")
        link.external_attr = (0o120777 << 16)
        zf.writestr(link, "/etc/passwd")
        zf.writestr("d/dog/inner.zip", b"PK\x03\x04")
    listing = ArchiveSource(path, "zip").list()
    assert sorted(f.relpath for f in listing.files) == ["d/dog/inner.zip", "d/dog/ok.png"]
    reasons = sorted(s.reason.split(" ")[0] for s in listing.report.skipped)
    assert reasons == ["symbolic", "unsafe", "unsafe"]


def test_zip_bomb_member_and_member_count_caps(tmp_path):
    path = tmp_path / "bomb.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("d/cat/zeros.bmp", bytes(20 * 2**20))      # 20 MiB of zeros: ~1000x ratio
        for i in range(6):
            zf.writestr(f"d/dog/{i}.png", b"x")
    listing = ArchiveSource(path, "zip").list()
    assert "zip-bomb" in listing.report.skipped[0].reason
    assert "d/cat/zeros.bmp" not in {f.relpath for f in listing.files}
    with pytest.raises(DataError, match="over 5 members"):
        ArchiveSource(path, "zip", max_members=5).list()
    small = ArchiveSource(path, "zip", max_member_bytes=10 * 2**20).list()
    assert "cap per file" in small.report.skipped[0].reason


def test_member_count_cap_for_tar(tmp_path):
    with tarfile.open(tmp_path / "many.tar", "w") as tf:
        for i in range(8):
            add_bytes(tf, f"d/c/{i}.png", b"x")
    with pytest.raises(DataError, match="over 5 members"):
        ArchiveSource(tmp_path / "many.tar", "tar", max_members=5).list()


def test_corrupt_and_truncated_archives_are_clear_errors(tmp_path, imgs):
    with tarfile.open(tmp_path / "d.tar.gz", "w:gz") as tf:
        for name, data in imgs.class_tree(20).items():
            add_bytes(tf, name, imgs.encode(imgs.noise(16, 16, seed=len(name))))
    data = (tmp_path / "d.tar.gz").read_bytes()
    (tmp_path / "cut.tar.gz").write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError, match="cannot read archive .*cut.tar.gz"):
        ArchiveSource(tmp_path / "cut.tar.gz", "tar").list()
    (tmp_path / "junk.zip").write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(DataError, match="cannot read archive"):
        ArchiveSource(tmp_path / "junk.zip", "zip").list()


def test_archive_changed_between_listing_and_reading_reports_members(tmp_path, imgs):
    path = tmp_path / "d.tar"
    with tarfile.open(path, "w") as tf:
        add_bytes(tf, "d/cat/a.png", b"1")
    src = ArchiveSource(path, "tar")
    got = dict(src.payloads(["d/cat/a.png", "d/cat/gone.png"]))
    assert got["d/cat/a.png"] == b"1" and isinstance(got["d/cat/gone.png"], Unreadable)


def test_duplicate_member_names_use_the_first_copy(tmp_path):
    path = tmp_path / "dup.tar"
    with tarfile.open(path, "w") as tf:
        add_bytes(tf, "d/cat/a.png", b"first")
        add_bytes(tf, "d/cat/a.png", b"second")
    src = ArchiveSource(path, "tar")
    listing = src.list()
    assert [f.relpath for f in listing.files] == ["d/cat/a.png"]
    assert any("twice" in n for n in listing.report.notes)
    assert dict(src.payloads(["d/cat/a.png"])) == {"d/cat/a.png": b"first"}


def test_nested_archives_are_listed_as_skipped_never_expanded(tmp_path, imgs):
    """RELIABILITY.md C9: an archive inside the data set is reported, not opened."""
    from cnnlab.data.folder import read_layout

    inner = tmp_path / "inner.tar.gz"
    with tarfile.open(inner, "w:gz") as tf:
        add_bytes(tf, "cat/hidden.png", imgs.solid(imgs.RED))
    png = imgs.solid(imgs.BLUE)
    nested = {"d/cat/a.png": png, "d/dog/b.png": png, "d/cat/inner.tar.gz": inner.read_bytes(),
              "d/dog/more.zip": b"PK\x05\x06" + bytes(18), "d/dog/x.tgz": inner.read_bytes()}
    with tarfile.open(tmp_path / "outer.tar", "w") as tf:
        for name, data in nested.items():
            add_bytes(tf, name, data)
    with zipfile.ZipFile(tmp_path / "outer.zip", "w") as zf:
        for name, data in nested.items():
            zf.writestr(name, data)
    for path in (tmp_path / "outer.tar", tmp_path / "outer.zip"):
        _, layout, report = read_layout(path)
        used = sorted(p for g in layout.groups["all"].values() for p in g)
        assert used == ["d/cat/a.png", "d/dog/b.png"]
        nested_skips = [s for s in report.skipped if "nested archives are not expanded" in s.reason]
        assert len(nested_skips) == 3
        assert not any("hidden.png" in s.path for s in report.skipped + report.ignored)


def test_links_out_of_the_tree_then_writes_through_them_touch_nothing(tmp_path, imgs, monkeypatch):
    """CVE-2007-4559 pattern: a symlink to outside, then a file 'inside' that link; a hard link to
    /etc/passwd. Nothing is extracted, links are refused, the sentinel outside stays untouched."""
    outside = tmp_path / "outside"
    outside.mkdir()
    sentinel = outside / "sentinel.png"
    sentinel.write_bytes(b"original")
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    png = imgs.solid(imgs.RED)
    path = tmp_path / "links.tar"
    with tarfile.open(path, "w") as tf:
        add_bytes(tf, "d/cat/ok.png", png)
        add_bytes(tf, "d/dog/ok.png", png)
        add_special(tf, "d/cat/escape", tarfile.SYMTYPE, str(outside))
        add_bytes(tf, "d/cat/escape/sentinel.png", b"overwritten")
        add_special(tf, "d/dog/passwd.png", tarfile.LNKTYPE, "/etc/passwd")
        add_special(tf, "d/dog/up.png", tarfile.SYMTYPE, "../../../outside/sentinel.png")
    src = ArchiveSource(path, "tar")
    listing = src.list()
    reasons = {s.path.split(":", 1)[1]: s.reason for s in listing.report.skipped}
    assert "symbolic link" in reasons["d/cat/escape"] and "hard link" in reasons["d/dog/passwd.png"]
    assert "symbolic link" in reasons["d/dog/up.png"]
    # the member behind the link name is just bytes in the archive, read into memory
    got = dict(src.payloads([f.relpath for f in listing.files]))
    assert got["d/cat/escape/sentinel.png"] == b"overwritten"
    assert sentinel.read_bytes() == b"original" and os.listdir(work) == []
    assert sorted(os.listdir(outside)) == ["sentinel.png"]


def test_zip_special_file_modes_are_refused(tmp_path):
    path = tmp_path / "special.zip"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("d/cat/ok.png", b"x")
        for name, mode in [("d/cat/fifo.png", 0o010644), ("d/cat/dev.png", 0o020644)]:
            info = zipfile.ZipInfo(name)
            info.external_attr = mode << 16
            zf.writestr(info, b"")
    listing = ArchiveSource(path, "zip").list()
    assert [f.relpath for f in listing.files] == ["d/cat/ok.png"]
    skipped = listing.report.skipped
    assert len(skipped) == 2 and all("special" in s.reason for s in skipped)
