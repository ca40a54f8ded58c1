import subprocess
import sys

import pytest

import cnnlab
from cnnlab.cli.main import build_parser, main


def test_version_flag(capsys):
    with pytest.raises(SystemExit) as e:
        main(["--version"])
    assert e.value.code == 0
    assert capsys.readouterr().out.strip() == f"cnnlab {cnnlab.__version__}"


def test_no_verb_prints_help(capsys):
    assert main([]) == 0
    assert "usage: cnnlab" in capsys.readouterr().out


def test_every_verb_has_help_with_an_example():
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "verb")
    assert sub.choices, "no verbs registered"
    for verb, p in sub.choices.items():
        text = p.format_help()
        assert f"cnnlab {verb}" in text, f"`cnnlab {verb} --help` shows no example command"


def test_console_script_runs_as_module():
    out = subprocess.run([sys.executable, "-m", "cnnlab", "--version"], capture_output=True, text=True)
    assert out.returncode == 0 and "cnnlab" in out.stdout
