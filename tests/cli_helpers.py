"""Run the tfviz CLI in-process the way the console script does."""
from tfviz.cli import main


def run_cli(argv, capsys):
    """``tfviz ARGV`` -> (exit code, stdout, stderr); errors go through the CLI's own
    one-line handling, exactly as from the shell."""
    code = 0
    try:
        main(argv)
    except SystemExit as e:
        code = e.code
    out, err = capsys.readouterr()
    return code or 0, out, err
