"""The report in a real browser: headless Chromium loads it with no console error, every image
decodes, and a screenshot is taken; the checker itself fails a page that is broken."""

import json
import os

import pytest
from PIL import Image

from cnnlab.cli.main import main
from cnnlab.report.browser import check_page, find_chromium


@pytest.fixture(scope="module")
def chromium():
    path = find_chromium()
    if path is None:
        reason = "chromium is not installed (Debian/Ubuntu: apt-get install chromium)"
        if os.environ.get("CI"):
            pytest.fail(f"{reason}; CI must run the browser checks")
        pytest.skip(reason)
    return path


def test_report_renders_cleanly_with_a_screenshot(chromium, report_path, tmp_path):
    check = check_page(report_path, tmp_path / "shot.png", chromium)
    assert check.errors == []
    assert len(check.images) == report_path.read_text().count("<img ") == 8
    assert all(im["complete"] and im["width"] > 0 and im["height"] > 0 for im in check.images)
    shot = Image.open(check.screenshot)
    # the full page, not just the first screen: taller than the 800-pixel viewport
    assert shot.format == "PNG" and shot.width == 1200 and shot.height > 2000


def test_checker_fails_a_broken_page(chromium, tmp_path):
    page = tmp_path / "bad.html"
    page.write_text('<!DOCTYPE html><html><body><p>broken</p>'
                    '<img src="data:image/png;base64,iVBORw0KGgoAAAA=">'   # truncated PNG
                    '<img src="missing.png">'
                    '<img src="http://127.0.0.1:9/remote.png">'
                    '<script>console.error("boom"); undefinedFunction();</script>'
                    "</body></html>")
    check = check_page(page, chromium=chromium)
    assert not check.ok
    text = "\n".join(check.errors)
    assert "console.error: boom" in text
    assert "undefinedFunction" in text                      # the uncaught exception
    assert "the page asked the network for http://127.0.0.1:9/remote.png" in text
    assert [im["width"] for im in check.images] == [0, 0, 0]
    assert all(f"image {i} did not load" in text for i in range(3))


def test_cli_screenshot_of_a_report_without_its_data(chromium, run_dir, tmp_path, capsys):
    out, shot = tmp_path / "page.html", tmp_path / "page.png"
    rc = main(["report", str(run_dir), "-o", str(out), "--data", str(tmp_path / "gone"),
               "--screenshot", str(shot), "--json"])
    info = json.loads(capsys.readouterr().out)
    assert rc == 0 and info["browser_errors"] == [] and set(info["missing"]) == {"mistakes",
                                                                                 "gradcam"}
    assert Image.open(shot).format == "PNG"

