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


def ctrl_c_on_third_step(monkeypatch):
    """Make the synthesis commands' progress callback raise KeyboardInterrupt at its third
    call, as Ctrl-C would."""
    from tfviz.cli import synthesis
    calls = []

    def ctrl_c(self, step, images, losses):
        calls.append(step)
        if len(calls) == 3:
            raise KeyboardInterrupt
    monkeypatch.setattr(synthesis._Session, "callback", ctrl_c)
