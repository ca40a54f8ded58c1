"""`cnnlab sanity`: PASS with exit 0, a failed check with exit 1, JSON, one-line errors."""

import json

from cnnlab.cli.main import main


def test_pass_json(capsys):
    assert main(["sanity", "--model", "lenet5_paper", "--images", "10", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["ok"] and out["verdict"].startswith("PASS")
    assert out["overfit"]["accuracy"] == 1.0 and out["overfit"]["images"] == 10
    assert abs(out["initial_loss"]["loss"] - out["initial_loss"]["expected"]) < 0.25 * 2.303


def test_failed_check_text_and_exit_1(capsys):
    assert main(["sanity", "--model", "lenet5_paper", "--steps", "1", "--images", "10"]) == 1
    out = capsys.readouterr().out
    assert "lenet5_paper on digits (10 classes)" in out
    assert "initial loss: ok" in out and "overfit:      WARN  could not overfit 10 images" in out
    assert out.strip().splitlines()[-1].startswith("WARN: overfit check failed")


def test_user_errors_are_one_line(capsys):
    assert main(["sanity", "--model", "lenet6"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("cnnlab sanity: error:") and "lenet5" in err
    assert len(err.splitlines()) == 1
    assert main(["sanity", "--images", "0"]) == 2
    assert "--images" in capsys.readouterr().err


def test_image_folder(capsys, tmp_path):
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    for k, name in enumerate(["red", "green", "blue"]):
        (tmp_path / "imgs" / name).mkdir(parents=True)
        for i in range(8):
            a = rng.integers(0, 40, (16, 16, 3), dtype=np.uint8)
            a[4:12, 4:12, k] = 220                           # a square in the class's colour
            Image.fromarray(a).save(tmp_path / "imgs" / name / f"{i}.png")
    assert main(["sanity", "--data", str(tmp_path / "imgs"), "--image-size", "32",
                 "--images", "12", "--json"]) in (0, 1)
    out = json.loads(capsys.readouterr().out)
    assert out["classes"] == 3 and out["initial_loss"]["num_classes"] == 3
    assert out["overfit"]["reached"] and out["overfit"]["images"] == 12
