"""Every error reaches the terminal as one line (tfviz.cli.common.run_main), whatever its
message looks like: a tfviz error whose message spans lines, an unexpected exception."""
import click
import pytest

from tfviz.cli.common import run_main
from tfviz.utils import TfvizError


@click.group()
def cli():
    pass


@cli.command()
@click.argument("kind")
def fail(kind):
    if kind == "tfviz":
        raise TfvizError("the first line\n  and its continuation\n\nafter a blank line")
    raise RuntimeError("what went wrong\n  File \"x.py\", line 1, in <module>\n    detail")


def _run(argv, capsys):
    with pytest.raises(SystemExit) as exc:
        run_main(cli, argv)
    return exc.value.code, capsys.readouterr().err


def test_a_multi_line_tfviz_error_is_one_line(capsys):
    code, err = _run(["fail", "tfviz"], capsys)
    assert code in (1, 2)
    assert err == "error: the first line and its continuation after a blank line\n"


def test_an_unexpected_error_is_its_first_line_and_the_debug_hint(capsys):
    code, err = _run(["fail", "other"], capsys)
    assert code == 1
    assert err == "error: RuntimeError: what went wrong (run with --debug for the traceback)\n"
