"""`cnnlab predict`: the course's output format, JSON, folders, broken files and exit codes."""

import json
import re

import numpy as np
import pytest
from PIL import Image

from cnnlab.cli.main import main
from toys import digits_run


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    return digits_run(tmp_path_factory.mktemp("runs"))


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    from cnnlab.data.digits import load_digits

    x = load_digits(32)[2]
    d = tmp_path_factory.mktemp("imgs")
    paths = []
    for i in range(2):
        f = d / f"d{i}.png"
        Image.fromarray((x[i, 0] * 255).round().astype(np.uint8)).save(f)
        paths.append(str(f))
    return paths


LINE = re.compile(r"^  (\d) \((\d\.\d\d)\)$")   # "  7 (0.71)": class name, probability


def test_course_format(run_dir, images, capsys):
    assert main(["predict", str(run_dir), *images, "--topk", "3"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2 * (1 + 3)
    assert lines[0] == images[0] and lines[4] == images[1]
    probs = [float(LINE.match(ln).group(2)) for ln in lines[1:4]]
    assert probs == sorted(probs, reverse=True)


def test_json_probabilities_sum_to_one(run_dir, images, capsys):
    assert main(["predict", str(run_dir), images[0], "--topk", "10", "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert res[0]["image"] == images[0] and len(res[0]["top"]) == 10
    assert sum(t["probability"] for t in res[0]["top"]) == pytest.approx(1.0, abs=1e-5)
    assert sorted(t["class"] for t in res[0]["top"]) == [str(d) for d in range(10)]


def test_broken_image_in_the_middle(run_dir, images, tmp_path, capsys):
    bad = tmp_path / "broken.jpg"
    bad.write_text("<html>not a picture</html>")
    assert main(["predict", str(run_dir), images[0], str(bad), images[1], "--topk", "1"]) == 0
    cap = capsys.readouterr()
    assert cap.out.splitlines()[0::2] == images                # both good images still run
    assert cap.err.count("\n") == 1 and str(bad) in cap.err and "HTML" in cap.err
    assert main(["predict", str(run_dir), str(bad), "--json"]) == 1   # all failed: exit 1
    cap = capsys.readouterr()
    assert json.loads(cap.out)[0]["error"] and "error" in cap.err


def test_folder_input(run_dir, images, capsys):
    folder = str(__import__("pathlib").Path(images[0]).parent)
    assert main(["predict", str(run_dir), folder, "--topk", "2"]) == 0
    headers = [ln for ln in capsys.readouterr().out.splitlines() if not ln.startswith("  ")]
    assert headers == sorted(images)


def test_no_fast_predicts_with_the_plain_model(run_dir, images, capsys, monkeypatch):
    import cnnlab.evaluate.predictor as predictor

    seen, real = [], predictor.load
    monkeypatch.setattr(predictor, "load", lambda *a, **kw: seen.append(kw) or real(*a, **kw))
    outs = []
    for flags in ([], ["--no-fast"]):
        assert main(["predict", str(run_dir), images[0], "--json", *flags]) == 0
        outs.append(json.loads(capsys.readouterr().out)[0]["top"])
    assert [kw["fast"] for kw in seen] == [True, False]
    assert [t["class"] for t in outs[0]] == [t["class"] for t in outs[1]]
    for a, b in zip(*outs):
        assert a["probability"] == pytest.approx(b["probability"], abs=1e-5)
