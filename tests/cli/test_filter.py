"""`cnnlab filter`: one kernel to a PNG or JSON summary, or the all-kernels figure."""

import json

import numpy as np
import pytest
from PIL import Image

from cnnlab.classic.kernels import NAMED_KERNELS
from cnnlab.cli import filter as filter_cli
from cnnlab.cli.main import main


@pytest.fixture
def edge_png(tmp_path):
    img = np.zeros((20, 30), np.uint8)
    img[:, 15:] = 200                                   # a vertical edge between columns 14, 15
    path = tmp_path / "edge.png"
    Image.fromarray(img).save(path)
    return path


def test_sobel_x_writes_the_edge(edge_png, tmp_path, capsys):
    out = tmp_path / "sobel.png"
    assert main(["filter", str(edge_png), "--kernel", "sobel-x", "--border", "replicate",
                 "-o", str(out)]) == 0
    assert "wrote" in capsys.readouterr().out
    with Image.open(out) as im:
        pic = np.asarray(im)
    assert pic.shape == (20, 30)                        # grey stays grey
    assert set(np.flatnonzero(pic.max(axis=0))) == {14, 15}
    assert pic[:, 14:16].min() == 255


def test_json_summary_of_raw_output(edge_png, capsys):
    assert main(["filter", str(edge_png), "-k", "sobel-x", "--mode", "convolve",
                 "--border", "replicate", "--json"]) == 0
    s = json.loads(capsys.readouterr().out)
    # convolution flips the kernel: the dark-to-bright edge reads negative, -(1 + 2 + 1) * 200
    assert s["min"] == -800 and s["max"] == 0
    assert s["kernel"] == "sobel-x" and s["separable"] and s["shape"] == [20, 30, 1]
    assert main(["filter", str(edge_png), "-k", "gaussian", "--sigma", "2", "--json"]) == 0
    s = json.loads(capsys.readouterr().out)
    assert s["kernel_shape"] == [13, 13] and 0 <= s["min"] and s["max"] <= 200 + 1e-9


def test_all_writes_a_figure(edge_png, tmp_path, capsys):
    out = tmp_path / "all.png"
    assert main(["filter", str(edge_png), "--all", "-o", str(out), "--border", "reflect"]) == 0
    assert "12 panels" in capsys.readouterr().out
    with Image.open(out) as im:
        assert im.size[0] > 300


def test_user_errors_are_one_line(edge_png, tmp_path, capsys):
    assert main(["filter", str(edge_png), "--all"]) == 2
    assert "needs -o" in capsys.readouterr().err
    assert main(["filter", str(edge_png), "-k", "sobel-x", "--sigma", "2"]) == 2
    assert "--sigma applies" in capsys.readouterr().err
    assert main(["filter", str(edge_png), "-k", "sobl-x"]) == 2
    assert "sobel-x" in capsys.readouterr().err
    assert main(["filter", str(tmp_path / "missing.png"), "-k", "box"]) == 2
    assert main(["filter", str(edge_png), "-k", "box", "-o", str(tmp_path / "no" / "x.png")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_help_lists_every_kernel_and_has_an_example():
    assert set(filter_cli.KERNEL_NAMES) == set(NAMED_KERNELS)
    assert "cnnlab filter" in filter_cli.__doc__
