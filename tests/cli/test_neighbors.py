"""`cnnlab neighbors`: nearest training images in feature space, drawn as a grid."""

import json

import numpy as np
import pytest
from PIL import Image

from cnnlab.cli import neighbors as neighbors_cli
from cnnlab.cli.main import main
from cnnlab.errors import ConfigError
from cnnlab.transfer.neighbors import MIN_TILE, nearest


def test_digits_test_index_queries_json_and_grid(tmp_path, capsys):
    out = tmp_path / "nn.png"
    assert main(["neighbors", "--model", "lenet5", "--layer", "fc7", "--test-index", "0",
                 "--test-index", "3", "-k", "4", "--limit", "300", "-o", str(out),
                 "--json"]) == 0
    r = json.loads(capsys.readouterr().out)
    assert [q["query"].split(" (")[0] for q in r["queries"]] == ["test 0", "test 3"]
    for q in r["queries"]:
        d = [n["distance"] for n in q["neighbors"]]
        assert len(d) == 4 and d == sorted(d)
        assert all(0 <= n["index"] < 300 for n in q["neighbors"])
    grid = Image.open(out)
    assert grid.width >= 5 * MIN_TILE and grid.height >= 2 * MIN_TILE   # 2 rows, 1 + 4 columns


def test_image_file_query_on_a_folder(tmp_path, capsys):
    rng = np.random.default_rng(0)
    root = tmp_path / "data"
    for cls, value in (("dark", 30), ("light", 220)):
        (root / cls).mkdir(parents=True)
        for i in range(4):
            px = np.clip(value + rng.integers(-10, 10, (16, 16, 3)), 0, 255).astype(np.uint8)
            Image.fromarray(px).save(root / cls / f"{i}.png")
    query = tmp_path / "q.png"
    Image.fromarray(np.full((20, 20, 3), 225, np.uint8)).save(query)
    out = tmp_path / "nn.png"
    assert main(["neighbors", str(query), "--model", "resnet20", "--layer", "stem",
                 "--data", str(root), "--metric", "euclidean", "-k", "2", "-o", str(out)]) == 0
    text = capsys.readouterr().out
    assert text.startswith("q.png: light") and out.is_file()


def test_user_errors(tmp_path, capsys):
    assert main(["neighbors", "--model", "lenet5", "-o", str(tmp_path / "x.png")]) == 2
    assert "--test-index" in capsys.readouterr().err
    assert main(["neighbors", "--model", "lenet5", "--test-index", "99999", "-o",
                 str(tmp_path / "x.png")]) == 2
    assert "out of range" in capsys.readouterr().err
    with pytest.raises(ConfigError, match="k must be"):
        nearest(np.zeros((2, 3)), np.zeros((1, 3)), k=5)


def test_docstring_teaches_usage():
    assert "cnnlab neighbors --" in neighbors_cli.__doc__ and neighbors_cli.VERB == "neighbors"
