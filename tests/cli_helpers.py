"""Run the tfviz CLI in-process the way the console script does; stop child processes."""
import subprocess

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


def stop_process(proc, log=None):
    """Terminate a child process (kill it after 10 s) and close its log."""
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
    if log is not None:
        log.close()
