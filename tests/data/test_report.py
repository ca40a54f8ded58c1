import json

import pytest

from cnnlab.data.report import Skip, SkipReport
from cnnlab.errors import DataError, InvalidImageError


def filled() -> SkipReport:
    r = SkipReport(source="pets/", checked=10)
    r.skip("pets/cat/a.jpg", "truncated image data")
    r.skip("pets/cat/b.txt", "not an image file")
    r.ignore("pets/.git", "hidden folder; never a class")
    r.note("pets/cat/anim.gif: 3 frames; used frame 0")
    return r


def test_counts_fraction_and_round_trip():
    r = filled()
    assert len(r) == 2 and r.bad_fraction == pytest.approx(0.2)
    d = r.to_dict()
    assert d["skipped_count"] == 2 and d["skipped"][0] == {"path": "pets/cat/a.jpg",
                                                           "reason": "truncated image data"}
    assert SkipReport.from_dict(json.loads(r.to_json())).to_dict() == d


def test_text_lists_every_entry():
    text = filled().to_text()
    assert text.splitlines()[0] == "skipped 2 of 10 files (20.0%) in pets/"
    for needle in ["pets/cat/a.jpg: truncated image data", "pets/cat/b.txt: not an image file",
                   "pets/.git: hidden folder", "3 frames; used frame 0"]:
        assert needle in text


def test_strict_raises_the_given_error_class():
    r = SkipReport(strict=True)
    with pytest.raises(DataError, match="x.txt: not an image.*Strict mode"):
        r.skip("x.txt", "not an image")
    with pytest.raises(InvalidImageError):
        r.skip("x.jpg", "truncated", InvalidImageError)
    r.ignore("README", "outside")          # ignoring is never an error
    assert r.skipped == [] and r.ignored == [Skip("README", "outside")]


def test_check_fraction():
    r = filled()
    r.check_fraction(0.2)
    r.check_fraction(None)
    with pytest.raises(DataError, match="2 of 10 files in pets/ are unusable.*cnnlab data scan"):
        r.check_fraction(0.1)
    assert SkipReport().bad_fraction == 0.0


def test_extend_adds_everything():
    a, b = filled(), filled()
    a.extend(b)
    assert a.checked == 20 and len(a) == 4 and len(a.ignored) == 2 and len(a.notes) == 2
