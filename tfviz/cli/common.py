"""Shared pieces of the CLI: model options, image arguments, progress bars, and the
one-line error handling every command gets."""
from __future__ import annotations

import functools
import os
import sys

import click

DEFAULT_MODEL = "efficientnet_lite0"


def quiet_tensorflow():
    """Import TensorFlow with its C++ start-up messages (written to stderr before any
    log level applies) silenced."""
    if "tensorflow" in sys.modules:
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    try:
        fd = sys.stderr.fileno()
    except (AttributeError, OSError, ValueError):
        import tensorflow  # noqa: F401
        return
    saved = os.dup(fd)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        sys.stderr.flush()
        os.dup2(devnull, fd)
        import tensorflow  # noqa: F401
        import keras  # noqa: F401
    finally:
        os.dup2(saved, fd)
        os.close(saved)
        os.close(devnull)


def model_options(default=DEFAULT_MODEL):
    """--model/--weights/--preprocess/--classes, turned into a ``bundle`` argument."""
    def deco(f):
        @click.option("--model", "-m", "model_spec", default=default, show_default=True,
                      help="Model: efficientnet_lite0, digits_cnn, a keras.applications name "
                           "(vgg16, resnet50, ...) or a path to a .keras/.h5 file.")
        @click.option("--weights", default="imagenet", show_default=True,
                      help="For keras.applications models: imagenet, a local weights file, or none.")
        @click.option("--preprocess", type=click.Choice(["0-1", "-1-1", "caffe", "torch", "raw"]),
                      help="Input range of your model when tfviz cannot infer it.")
        @click.option("--classes", type=click.Path(dir_okay=False),
                      help="Text file with one class name per line.")
        @functools.wraps(f)
        def wrapper(*args, model_spec, weights, preprocess, classes, **kwargs):
            kwargs["bundle"] = load_bundle(model_spec, weights, preprocess, classes)
            return f(*args, **kwargs)
        return wrapper
    return deco


def load_bundle(spec, weights="imagenet", preprocess=None, classes=None):
    quiet_tensorflow()
    from ..models import load_model
    w = None if str(weights).lower() in ("none", "random") else weights
    return load_model(spec, weights=w, preprocess=preprocess, class_names=classes)


def default_images(paths):
    """The given image paths, or the bundled sample photos when none are given."""
    if paths:
        return list(paths)
    from ..images import sample_photos
    return [sample_photos()["chelsea"], sample_photos()["coffee"]]


def progress(iterable=None, length=None, label=""):
    """A click progress bar on stderr (hidden when stderr is not a terminal)."""
    return click.progressbar(iterable, length=length, label=label, file=sys.stderr,
                             show_pos=True, show_eta=True)


def run_main(cli, argv=None):
    """Run the click group; a TfvizError (or any error) becomes one line on stderr."""
    from ..utils import TfvizError
    debug = "--debug" in (argv if argv is not None else sys.argv[1:])
    try:
        return cli.main(args=argv, prog_name="tfviz", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("interrupted", err=True)
        sys.exit(130)
    except KeyboardInterrupt:
        click.echo("interrupted; outputs written so far are kept", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except TfvizError as exc:
        if debug:
            raise
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)
    except Exception as exc:  # last resort: never a bare traceback
        if debug:
            raise
        msg = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        click.echo(f"error: {type(exc).__name__}: {msg} (run with --debug for the traceback)", err=True)
        sys.exit(1)
