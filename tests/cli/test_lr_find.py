"""`cnnlab lr-find`: suggestion lines, the plot, JSON, one-line errors."""

import json

from cnnlab.cli.main import main


def test_text_and_plot(capsys, tmp_path):
    png = tmp_path / "lr.png"
    assert main(["lr-find", "--batch-size", "32", "--start-lr", "1e-3", "--end-lr", "1000",
                 "--steps", "30", "-o", str(png)]) == 0
    out = capsys.readouterr().out
    assert "swept" in out and "stopped because the loss" in out
    assert "suggested lr:" in out and f"plot written to {png}" in out
    assert png.read_bytes()[:4] == b"\x89PNG"


def test_json_short_sweep(capsys):
    # 10 steps at tiny rates: nothing diverges, the sweep ends at --end-lr
    assert main(["lr-find", "--start-lr", "1e-6", "--end-lr", "1e-5", "--steps", "10",
                 "--batch-size", "16", "--optimizer", "sgd", "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["stop_reason"] == "end_lr" and d["steps"] == 10 and len(d["losses"]) == 10
    assert abs(d["lrs"][-1] - 1e-5) < 1e-12 and d["optimizer"] == "sgd" and d["model"] == "lenet5"


def test_user_errors_are_one_line(capsys):
    assert main(["lr-find", "--start-lr", "1", "--end-lr", "0.1"]) == 2
    assert "start_lr < end_lr" in capsys.readouterr().err
    assert main(["lr-find", "--optimizer", "adamm", "--steps", "5"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("cnnlab lr-find: error:") and "adam" in err
