import json

import pytest

from cnnlab.cli import reference_train
from cnnlab.cli.main import main


def test_json_report_of_a_short_run(capsys):
    rc = main(["reference-train", "--max-steps", "4", "--batch-size", "8", "--optimizer", "sgd", "--json"])
    report = json.loads(capsys.readouterr().out)       # nothing but JSON on stdout
    assert rc == 0
    assert report["steps"] == 4 and len(report["history"]) == 1
    assert report["config"]["optimizer"] == "sgd" and report["config"]["lr"] == 0.1
    assert report["params"] == 61_706 and report["n_test"] == 360
    assert 0.0 <= report["test_accuracy"] <= 1.0


def test_text_output_shows_epochs_and_final_accuracy(capsys):
    rc = main(["reference-train", "--epochs", "2", "--max-steps", "3", "--batch-size", "4"])
    out = capsys.readouterr().out
    assert rc == 0
    assert "epoch  1/2" in out and "final test accuracy" in out
    assert "epoch  2/2" not in out                     # --max-steps ended the run in epoch 1


@pytest.mark.parametrize("argv, message", [
    (["--optimizer", "adamm"], "did you mean 'adam'"),
    (["--lr", "0"], "lr must be positive"),
    (["--blas-threads", "0"], "--blas-threads"),
])
def test_bad_flags_print_one_line_and_exit_2(capsys, argv, message):
    assert main(["reference-train", *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and "\n" not in err and "Traceback" not in err


def test_help_teaches_with_an_example():
    assert reference_train.VERB == "reference-train"
    assert "cnnlab reference-train" in reference_train.__doc__
