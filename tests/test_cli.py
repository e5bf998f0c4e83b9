import subprocess
import sys

import pytest

from cli_helpers import run_cli as _run


def test_predict_names_the_cat(lite0, capsys):
    code, out, err = _run(["predict", "-k", "3"], capsys)
    assert code in (0, None), err
    chelsea = out.split("coffee.jpg")[0]
    first = chelsea.splitlines()[1]
    assert any(c in first for c in ("tabby cat", "tiger cat", "Persian cat", "Siamese cat", "Egyptian Mau")), out
    assert "espresso" in out.split("coffee.jpg")[1].splitlines()[1]


@pytest.mark.parametrize("argv, message", [
    (["predict", "--model", "vgg61"], "unknown model 'vgg61'; did you mean"),
    (["predict", "/definitely/missing.png"], "missing.png: no such file"),
    (["predict", "-k", "0"], "Invalid value"),
])
def test_bad_input_is_one_line(argv, message, capsys):
    code, out, err = _run(argv, capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert message in err
    assert "Traceback" not in err


def test_console_entry_point_prints_one_line_error(tmp_path):
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    r = subprocess.run([sys.executable, "-m", "tfviz", "predict", str(bad)], capture_output=True, text=True)
    assert r.returncode == 2
    lines = [l for l in r.stderr.splitlines() if l.strip()]
    assert len(lines) == 1 and lines[0].startswith(f"error: {bad}: cannot read image"), r.stderr


def test_help_teaches():
    from click.testing import CliRunner
    from tfviz.cli import cli
    r = CliRunner().invoke(cli, ["predict", "--help"])
    assert r.exit_code == 0 and "Example" in r.output and "--model" in r.output
