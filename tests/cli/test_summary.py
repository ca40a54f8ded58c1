"""`cnnlab summary`: table, JSON, CSV, --compare with a chart, and one-line errors."""

import csv
import io
import json

import pytest

from cnnlab.cli.main import main
from cnnlab.cli.summary import parse_input_size
from cnnlab.errors import ConfigError


def test_table(capsys):
    assert main(["summary", "lenet5"]) == 0
    out = capsys.readouterr().out
    assert "features.c1" in out and "1x6x28x28" in out and "Params: 61,706" in out


def test_json_vgg16_course_numbers(capsys):
    assert main(["summary", "vgg16", "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["totals"]["params"] == 138_357_544
    assert d["totals"]["conv_pool_fc_activations_per_image"] == 15_237_608
    assert d["rows"][0]["output_shape"] == [1, 64, 224, 224]


def test_csv_with_options(capsys):
    assert main(["summary", "resnet20", "--csv", "--num-classes", "7", "--batch-size", "2",
                 "--dtype", "bfloat16", "--input-size", "40"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert rows[0]["output_shape"] == "2x16x40x40"
    assert rows[-1]["output_shape"] == "2x7"
    assert int(rows[0]["activation_bytes"]) == 2 * 16 * 40 * 40    # bfloat16, per image


def test_real_cpu_forward_matches_meta(capsys):
    assert main(["summary", "lenet5", "--json", "--device", "cpu"]) == 0
    cpu = json.loads(capsys.readouterr().out)
    assert main(["summary", "lenet5", "--json"]) == 0
    meta = json.loads(capsys.readouterr().out)
    assert cpu["rows"] == meta["rows"] and cpu["device"] == "cpu"


def test_compare_writes_chart(capsys, tmp_path):
    chart = tmp_path / "chart.png"
    assert main(["summary", "--compare", "lenet5", "resnet20", "--repeats", "1", "-o", str(chart)]) == 0
    out = capsys.readouterr().out
    assert "lenet5" in out and "resnet20" in out and "chart written" in out
    assert chart.read_bytes()[:4] == b"\x89PNG"


def test_compare_json(capsys):
    assert main(["summary", "--compare", "lenet5", "--repeats", "1", "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["models"][0]["params"] == 61_706 and d["models"][0]["latency_ms"] > 0


@pytest.mark.parametrize("argv, message", [
    (["summary"], "name a model"),
    (["summary", "vgg17"], "unknown model 'vgg17'"),
    (["summary", "vgg16", "--input-size", "2x2x2x2"], "--input-size"),
    (["summary", "vgg16", "--input-size", "16"], "32x32"),
    (["summary", "vgg16", "--compare", "alexnet"], "not both"),
    (["summary", "vgg16", "-o", "x.png"], "--compare"),
    (["summary", "vgg16", "--batch-size", "0"], "--batch-size"),
])
def test_errors_are_one_line(capsys, argv, message):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and "Traceback" not in err


def test_parse_input_size():
    assert parse_input_size("224") == 224
    assert parse_input_size("224x192") == (224, 192)
    assert parse_input_size("1,32,32") == (1, 32, 32)
    assert parse_input_size(None) is None
    with pytest.raises(ConfigError):
        parse_input_size("0")
