"""``tfviz board``: TensorBoard on a logdir, with the flags tfviz data needs."""
from __future__ import annotations

import os

import click

from ..errors import BoardError  # noqa: F401  (the classes live in tfviz.errors)
from ..summary_spec import DEFAULT_SAMPLES, DEFAULT_SCALAR_SAMPLES
from ..utils import OptionError, TfvizError


def tensorboard_argv(logdir, host="127.0.0.1", port=None, samples=DEFAULT_SAMPLES,
                     scalar_samples=DEFAULT_SCALAR_SAMPLES, reload_interval=None, extra=()):
    """The TensorBoard command-line flags ``tfviz board`` uses (without the program name)."""
    argv = ["--logdir", os.path.abspath(logdir), "--host", host,
            f"--samples_per_plugin=tfviz={samples},scalars={scalar_samples}"]
    if port is not None:
        argv += ["--port", str(port)]
    if reload_interval is not None:
        argv += ["--reload_interval", str(reload_interval)]
    return argv + list(extra)


@click.command("board", context_settings={"ignore_unknown_options": True})
@click.argument("logdir", type=click.Path(file_okay=False))
@click.option("--port", "-p", type=click.IntRange(0, 65535), default=None,
              help="Port (default: 6006, or the next free one).")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on; 127.0.0.1 keeps it on this machine.")
@click.option("--samples", type=click.IntRange(1, None), default=DEFAULT_SAMPLES, show_default=True,
              help="Images kept per tfviz tag (snapshots of long optimizations).")
@click.option("--reload-interval", type=click.FloatRange(0, None), default=None,
              help="Seconds between reloads of the logdir (TensorBoard's default: 5).")
@click.argument("tensorboard_args", nargs=-1, type=click.UNPROCESSED)
def board_cmd(logdir, port, host, samples, reload_interval, tensorboard_args):
    """Start TensorBoard on LOGDIR and print its URL (the tfviz tab).

    Keeps up to --samples images per tfviz tag instead of TensorBoard's 10, and every
    loss point up to 10,000 per curve. Other TensorBoard flags can follow after `--`.

    \b
    Example:
      tfviz attribute saliency photo.jpg --logdir logs
      tfviz board logs          # then open the printed URL
    """
    if not os.path.isdir(logdir):
        raise OptionError(f"logdir {logdir!r} does not exist (write some data first, e.g. with --logdir)")
    import contextlib
    import io

    from tensorboard import program

    tb = program.TensorBoard()
    said = io.StringIO()
    try:
        with contextlib.redirect_stderr(said):  # argparse's usage text: one line of ours instead
            tb.configure(argv=[None, *tensorboard_argv(logdir, host, port, samples, reload_interval=reload_interval,
                                                       extra=tensorboard_args)])
    except SystemExit:
        why = [line.split("error: ", 1)[1] for line in said.getvalue().splitlines() if "error: " in line]
        raise OptionError(f"bad TensorBoard flags {' '.join(tensorboard_args)!r}"
                          + (f": {why[-1]}" if why else "")) from None
    try:
        url = tb.launch()
    except program.TensorBoardServerException as exc:
        raise BoardError(f"cannot start TensorBoard: {exc.msg}") from None
    click.echo(f"TensorBoard on {os.path.abspath(logdir)}")
    click.echo(f"tfviz tab: {url}#tfviz")
    click.echo("press Ctrl-C to stop", err=True)
    import threading
    threading.Event().wait()


COMMANDS = [board_cmd]
