"""The HTML run report: self-contained, every section, escaped text, graceful without data."""

import base64
import io
import json
import re
import shutil
from html.parser import HTMLParser

import pytest
from PIL import Image

from cnnlab.cli.main import main
from cnnlab.errors import ConfigError
from cnnlab.report import build_report

SECTIONS = ["config", "curves", "diagnostics", "per-class", "confusion", "mistakes", "filters",
            "gradcam", "bad-files", "environment"]
HOSTILE = '<img src=x onerror="alert(1)">&.png'


class Links(HTMLParser):
    """Every src/href attribute value, and the src of each <img>."""

    def __init__(self, html):
        super().__init__()
        self.urls, self.imgs = [], []
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        for k, v in attrs:
            if k in ("src", "href"):
                self.urls.append(v)
                if tag == "img":
                    self.imgs.append(v)


def section(html: str, sid: str) -> str:
    m = re.search(rf'<section id="{sid}">(.*?)</section>', html, re.S)
    assert m, f"section {sid!r} missing"
    return m.group(1)


def assert_images_are_pngs(html: str) -> int:
    links = Links(html)
    assert not [u for u in links.urls if re.match(r"\s*(https?:)?//", u)]
    for src in links.imgs:
        head, _, b64 = src.partition(",")
        assert head == "data:image/png;base64"
        img = Image.open(io.BytesIO(base64.b64decode(b64, validate=True)))
        img.verify()
        assert img.format == "PNG" and img.width > 0 and img.height > 0
    return len(links.imgs)


@pytest.fixture(scope="module")
def html(report_path):
    return report_path.read_text(encoding="utf-8")


@pytest.fixture
def moved(run_dir, tmp_path):
    """A copy of the run whose data can no longer be found."""
    dst = tmp_path / "run"
    shutil.copytree(run_dir, dst)
    return dst, str(tmp_path / "moved-away")


def test_page_is_self_contained(html):
    # one image each for curves, confusion matrix, worst mistakes and filters; one per Grad-CAM
    assert assert_images_are_pngs(html) == 4 + 4
    assert "http://" not in html and "https://" not in html and "<script" not in html


def test_every_section_is_there_and_drawn(html, run_dir):
    for sid in SECTIONS:
        section(html, sid)
        assert f'href="#{sid}"' in html
    assert 'class="note"' not in html     # notes only say why a section is empty
    summary = json.loads((run_dir / "summary.json").read_text())
    assert f"{100 * summary['test']['acc1']:.2f}%" in html
    assert "lenet5" in html and "digits" in html


def test_per_class_table_matches_the_confusion_matrix(html, run_dir):
    cm = json.loads((run_dir / "summary.json").read_text())["test"]["confusion_matrix"]
    rows = re.findall(r"<tr><td>(\d)</td><td class=\"num\">(\d+)</td><td class=\"num\">"
                      r"([\d.]+)%", section(html, "per-class"))
    assert [int(c) for c, _, _ in rows] == list(range(10))
    assert [int(n) for _, n, _ in rows] == [sum(r) for r in cm]
    assert [float(a) for _, _, a in rows] == [round(100 * r[i] / sum(r), 1)
                                              for i, r in enumerate(cm)]


def test_examples_count_worst_mistakes_and_gradcam(html):
    assert section(html, "mistakes").count("<tr>") == 1 + 4     # header + n_examples rows
    captions = re.findall(r"<figcaption>true (\d) · predicted (\d) \((\d\.\d\d)\)",
                          section(html, "gradcam"))
    assert [t for t, _, _ in captions] == ["0", "1", "2", "3"]    # one class after another


def test_diagnostics_show_the_runs_findings(html, run_dir):
    from html import escape

    diag = json.loads((run_dir / "summary.json").read_text())["diagnostics"]
    part = section(html, "diagnostics")
    for f in diag["findings"]:
        assert escape(f["message"]) in part
    for f in diag["monitor_flags"]:
        assert escape(f["message"]) in part


def test_hostile_file_names_are_escaped(moved):
    run, gone = moved
    (run / "skipped.txt").write_text(f"skipped 1 of 3 files\n  {HOSTILE}: not an image\n")
    page = build_report(run, data=gone).to_html()
    assert HOSTILE not in page and "onerror=\"alert" not in page
    assert "&lt;img src=x onerror=&quot;alert(1)&quot;&gt;&amp;.png" in section(page, "bad-files")

    # skipped.json (written beside skipped.txt by image-folder runs) is preferred: a table
    (run / "skipped.json").write_text(json.dumps(
        {"source": "pets", "checked": 3, "skipped": [{"path": HOSTILE, "reason": "<b>bad</b>"}],
         "ignored": [], "notes": []}))
    part = section(build_report(run, data=gone).to_html(), "bad-files")
    assert "1 of 3 files in pets" in part and "<b>bad</b>" not in part
    assert "&lt;img src=x" in part and "&lt;b&gt;bad&lt;/b&gt;" in part


def test_missing_data_degrades_to_notes(moved):
    run, gone = moved
    report = build_report(run, data=gone)
    assert set(report.missing) == {"mistakes", "gradcam"}
    assert "does not exist" in report.missing["gradcam"]
    page = report.to_html()
    assert "moved-away" in section(page, "gradcam") and "<img" not in section(page, "gradcam")
    # the scores in summary.json still give the per-class table and the confusion matrix
    assert "summary.json" in section(page, "per-class")
    assert "<img" in section(page, "confusion") and "<img" in section(page, "filters")
    assert assert_images_are_pngs(page) == 3


def test_missing_weights_and_summary_still_render(moved):
    run, gone = moved
    for f in [*run.glob("*.safetensors"), *run.glob("*.state.pt"), run / "summary.json",
              run / "curves.png"]:
        f.unlink()
    report = build_report(run)
    assert set(report.missing) >= {"diagnostics", "per-class", "confusion", "mistakes",
                                   "filters", "gradcam"}
    assert "no best.safetensors" in report.missing["filters"]
    # curves.png was deleted: redrawn from metrics.jsonl
    assert "curves" not in report.missing and assert_images_are_pngs(report.to_html()) == 1


def test_bad_arguments_raise_config_errors(tmp_path, run_dir):
    with pytest.raises(ConfigError, match="does not exist"):
        build_report(tmp_path / "nope")
    with pytest.raises(ConfigError, match="neither summary.json nor config.yaml"):
        build_report(tmp_path)
    with pytest.raises(ConfigError, match=">= 1"):
        build_report(run_dir, n_examples=0)


def test_cli_writes_the_page_and_lists_what_is_missing(moved, capsys):
    run, gone = moved
    out = run / "page.html"
    assert main(["report", str(run), "-o", str(out), "--data", gone, "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["report"] == str(out) and out.is_file()
    assert info["sections"] == SECTIONS and set(info["missing"]) == {"mistakes", "gradcam"}
    assert main(["report", str(run / "nope")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_image_folder_run_that_moved(tmp_path):
    """A real folder run: the loader's own skip report (a hostile empty file), a moved folder."""
    import numpy as np
    import torch

    from cnnlab.train.config import TrainConfig
    from cnnlab.train.run import train

    torch.set_num_threads(1)
    data = tmp_path / "shapes"
    rng = np.random.default_rng(0)
    for c in ("bars", "dots", "<b>x&y"):
        (data / c).mkdir(parents=True)
        for i in range(6):
            pixels = (rng.random((12, 12)) * 255).astype(np.uint8)
            Image.fromarray(pixels).save(data / c / f"{i}.png")
    (data / "bars" / f"{HOSTILE}").write_bytes(b"")                     # skipped: empty file
    run = train(TrainConfig(data=str(data), epochs=1, quiet=True, out_dir=str(tmp_path / "runs"),
                            name="f", precision="32", threads=1, val_fraction=0.5)).run_dir
    moved = data.rename(tmp_path / "elsewhere")

    report = build_report(run)
    # no test split: summary.json has no test scores to fall back on
    assert set(report.missing) == {"per-class", "confusion", "mistakes", "gradcam"}
    page = report.to_html()
    bad = section(page, "bad-files")
    assert "empty file" in bad and HOSTILE not in page and "&lt;img src=x" in bad
    assert_images_are_pngs(page)

    found = build_report(run, data=str(moved), n_examples=2)
    assert found.missing == {}
    page = found.to_html()
    per_class = section(page, "per-class")
    assert "the val split" in per_class and "<td>&lt;b&gt;x&amp;y</td>" in per_class
    assert "<b>x" not in page                                      # class names are escaped too
    assert "best val top-1 accuracy" in page
    assert assert_images_are_pngs(page) == 4 + 2
