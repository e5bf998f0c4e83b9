"""``tfviz demo``: every method of the lecture on the offline defaults, with a gallery."""
from __future__ import annotations

import os
import sys

import click

from ...utils import OptionError
from ..common import DEFAULT_OUT, Interrupted, _check_logdir, _check_out
from . import tour
from .tour import select, steps


def _check_only(ctx, param, value):
    if value:
        try:
            select(steps("out", "logs"), value)
        except OptionError as exc:
            raise click.BadParameter(str(exc).removeprefix("--only: "), ctx, param) from None
    return value


@click.command("demo")
@click.option("-o", "--out", default=os.path.join(DEFAULT_OUT, "demo"), show_default=True, type=click.Path(),
              callback=_check_out(single=False), help="Folder for the pictures and the gallery index.html.")
@click.option("--logdir", type=click.Path(), callback=_check_logdir,
              help="TensorBoard data for the tfviz tab (default: OUT/logs).")
@click.option("--quick", is_flag=True, help="Reduced steps and sizes: under 2 minutes on 2 CPU cores instead "
                                            "of about 12.")
@click.option("--only", metavar="SECTION,...", callback=_check_only,
              help="Run only these sections (inside, attribution, synthesis, style, fast-style) or methods "
                   "(filters, saliency, classviz, ...).")
@click.option("--stylizer", type=click.Path(exists=True, dir_okay=False),
              help="A network from tfviz train-stylizer to show instead of training one.")
def demo_cmd(out, logdir, quick, only, stylizer):
    """Run every method of the lecture on the built-in offline defaults --
    efficientnet_lite0 on the bundled photos, digits_cnn on scikit-learn's digits,
    shapes_segmenter (trained on first use, about 20 s) on a generated scene -- and
    write the pictures, a gallery page (OUT/index.html: one section per method with its
    picture, what it shows, the paper, and the command line and Python call that remake
    it) and TensorBoard logs for the tfviz tab.

    A method that fails is reported in its section and in the summary; the others still
    run, and the exit status is 1. Ctrl-C keeps what was made so far (the gallery shows
    it). The full run trains a small two-style stylizer (kept in the tfviz cache and
    reused next time) unless --stylizer names one or tfviz train-stylizer --style
    strokes --style mosaic saved one at its default path.

    \b
    Examples:
      tfviz demo --quick                      # under 2 minutes on 2 CPU cores
      tfviz demo                              # every method at full settings, about 12 minutes
      tfviz demo --only attribution,style     # some sections
      tfviz demo --only saliency,grad_cam --quick
    """
    logdir = logdir or os.path.join(out, "logs")
    real_err = sys.stderr
    tty = real_err.isatty()
    state = {"bar": None}

    def on_step(i, n, step, phase):
        if tty:
            if state["bar"] is None:
                state["bar"] = click.progressbar(length=n, label="tfviz demo", file=real_err,
                                                 show_pos=True, show_eta=False,
                                                 item_show_func=lambda s: s.title if s else "")
                state["bar"].__enter__()
            if phase == "start":
                state["bar"].current_item = step
                state["bar"].render_progress()
            else:
                state["bar"].update(1, step)
        elif phase == "start":
            click.echo(f"[{i + 1}/{n}] {step.title} ...", err=True)
        if phase == "end" and (step.status != "ok" or not tty):
            msg = f"ok, {step.seconds:.1f} s" if step.status == "ok" else f"FAILED: {step.error}"
            (click.echo(f"\n{step.title}: {msg}", err=True) if tty else
             click.echo(f"      {msg}", err=True))

    try:
        done = tour.run_demo(out, logdir, quick=quick, only=only, stylizer=stylizer, on_step=on_step)
    except KeyboardInterrupt:
        raise Interrupted() from None
    finally:
        if state["bar"] is not None:
            state["bar"].__exit__(None, None, None)
    code = tour.main_summary(done, out, logdir)
    if code:
        sys.exit(code)


COMMANDS = [demo_cmd]
