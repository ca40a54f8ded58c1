"""`cnnlab augment-preview`: writes the grid, JSON summary, clear errors."""

import json

from PIL import Image

from cnnlab.cli import augment_preview
from cnnlab.cli.main import main


def test_writes_a_grid_of_digits(tmp_path, capsys):
    out = tmp_path / "grid.png"
    assert main(["augment-preview", "--aug", "flip,crop,jitter", "-n", "9", "-o", str(out)]) == 0
    assert "wrote" in capsys.readouterr().out
    with Image.open(out) as im:
        assert im.mode == "RGB" and im.size == (3 * 66 + 2, 3 * 66 + 2)   # 32 px zoomed to 64


def test_json_summary_and_seed_reproducibility(tmp_path, capsys):
    a, b = tmp_path / "a.png", tmp_path / "b.png"
    for path in (a, b):
        assert main(["augment-preview", "--aug", "trivial,mixup", "-n", "4", "--seed", "3",
                     "-o", str(path), "--json"]) == 0
    s = json.loads(capsys.readouterr().out.split("\n}\n")[0] + "}")
    assert s["images"] == 4 and s["aug"] == "trivial,mixup" and len(s["labels"]) == 4
    assert a.read_bytes() == b.read_bytes()


def test_unknown_augmentation_is_one_line_error(tmp_path, capsys):
    assert main(["augment-preview", "--aug", "flp", "-o", str(tmp_path / "g.png")]) == 2
    err = capsys.readouterr().err
    assert "flip" in err and "Traceback" not in err and err.count("\n") == 1


def test_missing_output_folder_is_reported(tmp_path, capsys):
    assert main(["augment-preview", "-o", str(tmp_path / "no" / "g.png")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_docstring_teaches_usage():
    assert "cnnlab augment-preview" in augment_preview.__doc__
    assert augment_preview.VERB == "augment-preview"
