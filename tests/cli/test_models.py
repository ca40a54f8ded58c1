"""`cnnlab models`: the zoo with parameter counts from meta-device builds."""

import json

from cnnlab.cli.main import main


def test_json_lists_matching_models_with_published_counts(capsys):
    assert main(["models", "vgg1*", "--json"]) == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    assert {"vgg11", "vgg13", "vgg16", "vgg19"} <= set(rows)
    assert all(name.startswith("vgg1") for name in rows)
    assert rows["vgg16"]["params"] == 138_357_544            # Simonyan & Zisserman 2015
    assert rows["vgg16"]["input_size"] == 224 and rows["vgg16"]["paper"]


def test_table_and_substring_pattern(capsys):
    assert main(["models", "lenet"]) == 0
    out = capsys.readouterr().out
    assert "lenet5" in out and "61,706" in out and "1x32x32" in out and "vgg16" not in out


def test_no_match_is_an_error(capsys):
    assert main(["models", "nosuchnet*"]) == 2
    assert "no model matches" in capsys.readouterr().err
