"""`cnnlab evaluate`: text and JSON reports, ensembles, report files, one-line errors."""

import json
import shutil

import pytest

from cnnlab.cli.main import main
from toys import digits_run


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    return digits_run(tmp_path_factory.mktemp("runs"))


def test_text_report_and_default_out_dir(run_dir, capsys):
    assert main(["evaluate", str(run_dir)]) == 0
    out = capsys.readouterr().out
    summary = json.loads((run_dir / "summary.json").read_text())
    assert out.startswith("test split of digits")
    assert f"top-1 accuracy {100 * summary['test']['acc1']:.2f}%" in out
    assert "top-5 accuracy" in out and "on 360 images" in out
    assert "precision  recall" in out and "most confidently wrong" in out
    assert (run_dir / "eval-test" / "confusion_matrix.png").is_file()
    assert (run_dir / "eval-test" / "metrics.json").is_file()


def test_json_ensemble_with_tta(run_dir, tmp_path, capsys):
    twin = tmp_path / "twin"
    shutil.copytree(run_dir, twin)
    rc = main(["evaluate", str(run_dir), str(twin), "--tta", "flip", "--topk", "3", "--json",
               "-o", str(tmp_path / "rep")])
    assert rc == 0
    res = json.loads(capsys.readouterr().out)               # stdout is the JSON only
    assert res["tta"] == "flip" and res["topk"] == 3 and len(res["members"]) == 2
    ens, member = res["ensemble"], res["members"][0]
    assert ens["acc1"] == pytest.approx(member["acc1"]) and "acc3" in ens and "acc5" not in ens
    assert len(res["confident_errors"]) <= 16
    assert {f.split("/")[-1] for f in res["files"]} >= {"confusion_matrix.csv",
                                                        "confident_errors.png"}
    assert (tmp_path / "rep" / "per_class.csv").is_file()


def test_ensemble_text_names_each_member(run_dir, tmp_path, capsys, monkeypatch):
    twin = tmp_path / "twin"
    shutil.copytree(run_dir, twin)
    monkeypatch.chdir(tmp_path)
    assert main(["evaluate", str(run_dir), str(twin), "--split", "val"]) == 0
    out = capsys.readouterr().out
    assert "ensemble of 2: top-1 accuracy" in out and str(twin) in out and "on 144 images" in out
    assert (tmp_path / "ensemble-eval-val" / "metrics.json").is_file()


def test_errors_are_one_line(tmp_path, capsys):
    assert main(["evaluate", str(tmp_path / "missing")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("cnnlab evaluate: error:") and "does not exist" in err
    assert err.count("\n") == 1
    with pytest.raises(SystemExit):
        main(["evaluate", str(tmp_path), "--tta", "mirror"])


def test_no_fast_reaches_the_loader(run_dir, tmp_path, capsys, monkeypatch):
    import cnnlab.evaluate.evaluation as evaluation

    seen, real = [], evaluation.load
    monkeypatch.setattr(evaluation, "load", lambda run, device, fast: seen.append(fast)
                        or real(run, device, fast))
    accs = []
    for flags in ([], ["--no-fast"]):
        assert main(["evaluate", str(run_dir), "--json", "-o", str(tmp_path), *flags]) == 0
        accs.append(json.loads(capsys.readouterr().out)["combined"]["acc1"])
    assert seen == [True, False] and accs[0] == accs[1]
