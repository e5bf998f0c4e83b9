"""Shared pieces of the CLI: model options, image arguments, output locations checked
before any work starts, progress, channel lists, and the one-line error handling every
command gets.

Conventions every command follows:

* **Outputs** go into one folder, ``tfviz-out`` in the current folder unless ``-o/--out``
  names another; commands that write one picture also take ``-o NAME.png``. ``--logdir``
  is where TensorBoard data goes. Every output location is checked before the model is
  loaded, so a bad one fails at once and writes nothing.
* **Images** are file paths or the names of the photos bundled with tfviz (``chelsea``,
  ``coffee``, ``rocket``, ``astronaut``, with or without ``.jpg``).
* **Errors** are one line on stderr (``error: ...``), never a traceback unless ``--debug``
  (before or after the command name) asks for it, and no output file is left behind.
  Exit codes follow click's convention:

  - **2, a usage error**: the command cannot run as given -- click's own (a missing or
    unknown option, a value out of range, a missing image file, an output location that
    cannot be written) and every :class:`tfviz.TfvizError` whose ``exit_code`` is 2:
    ``UnknownLayerError``, ``LayerKindError``, ``UnknownClassError``, ``ChannelError``
    (``UnitChannelError``), ``ImageError`` (an unreadable or unusable image),
    ``ModelError`` (a model file that is missing or not a model, an unknown model name, a
    model the method cannot handle: ``UnsupportedModelError``, ``NoSpatialLayerError``,
    ``NoReLUError``, ``TorchFormatError``), ``OptionError`` and the per-module option
    errors (``CallbackError``, ``SummaryError``, ``AttributionError``, ``TargetError``,
    ``PatchSizeError``, ``StrideError``, ``ParamError``, ``TransformError``,
    ``ObjectiveError``, ``RegularizerError``, ``SynthesisError``, ``ReduceError``,
    ``StylizeError``, ``StrategyError``), ``DataError`` (a data set that is missing,
    unreadable or too small for the request), and the setup problems found before any
    work: ``MissingExtraError`` (an optional package such as umap-learn is not
    installed) and ``BackendError``.
  - **1, a failure while running**: ``OfflineError``, ``NonFiniteGradientError``,
    ``DataLoadError`` (a download the server refused, a broken cache), ``BoardError``
    (TensorBoard cannot start), ``WorkerLostError`` (another worker of a multi-worker run
    went away), an ``OSError`` while writing, and anything unexpected.
  - **130** after Ctrl-C, once the command saved what it promised to keep.
"""
from __future__ import annotations

import collections
import contextlib
import errno
import functools
import os
import re
import sys
import tempfile
import time
import warnings

import click

from .. import quiet

DEFAULT_MODEL = "efficientnet_lite0"
DEFAULT_OUT = "tfviz-out"


# ---------------------------------------------------------------------------- models
def model_options(default=DEFAULT_MODEL):
    """--model/--weights/--preprocess/--classes, turned into a ``bundle`` argument."""
    def deco(f):
        @click.option("--model", "-m", "model_spec", default=default, show_default=True,
                      help="Model: efficientnet_lite0, digits_cnn, shapes_segmenter, random_multiscale, a keras.applications name "
                           "(vgg16, resnet50, ...) or a path to a .keras/.h5 file.")
        @click.option("--weights", default="imagenet", show_default=True,
                      help="For keras.applications models: imagenet, a local weights file, or none.")
        @click.option("--preprocess", type=click.Choice(["0-1", "-1-1", "caffe", "torch", "raw"]),
                      help="Input range of your model when tfviz cannot infer it.")
        @click.option("--classes", type=click.Path(dir_okay=False, exists=True),
                      help="Text file with one class name per line.")
        @click.option("--output", "output", metavar="NAME",
                      help="For a model with several outputs: the one to explain (its name or index) [the first].")
        @click.option("--inputs", "held", type=click.Path(dir_okay=False, exists=True), metavar="FILE.npz",
                      help="For a model with several inputs: the values of its other inputs (one array per input "
                           "name, one row), held for every image while the image is explained [zeros].")
        @functools.wraps(f)
        def wrapper(*args, model_spec, weights, preprocess, classes, output, held, **kwargs):
            kwargs["bundle"] = load_bundle(model_spec, weights, preprocess, classes, output)
            if held:
                hold_inputs(kwargs["bundle"], held)
            return f(*args, **kwargs)
        return wrapper
    return deco


def strategy_option(f):
    """``--strategy none|mirrored|multiworker``, turned into a ``strategy`` argument (a
    ``tf.distribute`` strategy or None) made before the model loads -- a multi-worker
    strategy must come before TensorFlow runs anything. With a strategy, one line says
    what it runs on (for ``multiworker``: which task of ``TF_CONFIG`` this is). Put it
    above ``@model_options``."""
    @click.option("--strategy", "strategy_name", type=click.Choice(["none", "mirrored", "multiworker"]),
                  default="none", show_default=True,
                  help="tf.distribute strategy: mirrored = every local GPU (else the CPU); multiworker = the "
                       "cluster in the TF_CONFIG environment variable (run the same command on every worker; "
                       "the chief, worker 0, writes the outputs).")
    @functools.wraps(f)
    def wrapper(*args, strategy_name, **kwargs):
        from ..distribute import describe, strategy_from_name
        strategy = strategy_from_name(strategy_name)
        if strategy is not None:
            stage(describe(strategy))
        return f(*args, strategy=strategy, **kwargs)
    return wrapper


def not_the_chief(strategy) -> bool:
    """True (after saying so in one line) on a worker other than the chief: the command
    computed its part and writes nothing; the chief writes the outputs."""
    if strategy is None:
        return False
    from ..distribute import task
    who = task(strategy)
    if who.chief:
        return False
    stage(f"{who}: done; the chief (worker 0) writes the outputs")
    return True


_BUNDLES: "collections.OrderedDict" = collections.OrderedDict()
_MAX_BUNDLES = 4


def _file_key(path):
    """A file's identity for the bundle memo: where it is and which version of it."""
    if path is None or not os.path.isfile(os.fspath(path)):
        return path
    st = os.stat(path)
    return os.path.abspath(os.fspath(path)), st.st_mtime_ns, st.st_size


def load_bundle(spec, weights="imagenet", preprocess=None, classes=None, output=None):
    """The model bundle for ``--model/--weights/--preprocess/--classes/--output``.

    Bundles are kept for the life of the process (the last four), keyed by the options,
    the files they name (path, modification time, size) and the cache folder, so several
    commands run in one process (``tfviz demo``, notebooks, the test-suite) load a model
    once and reuse its traced programs. A command-line run is one process and one command,
    so nothing changes there. Methods never change a bundle's model (the trust checks work
    on a clone)."""
    from ..models import load_model
    from ..utils import cache_dir
    w = None if str(weights).lower() in ("none", "random") else weights
    key = (_file_key(spec), _file_key(w), preprocess, _file_key(classes), cache_dir())
    if key in _BUNDLES:
        _BUNDLES.move_to_end(key)
        return _BUNDLES[key] if output is None else _BUNDLES[key].with_output(_output_arg(output))
    bundle = load_model(spec, weights=w, preprocess=preprocess, class_names=classes)
    _BUNDLES[key] = bundle
    while len(_BUNDLES) > _MAX_BUNDLES:
        _BUNDLES.popitem(last=False)
    return bundle if output is None else bundle.with_output(_output_arg(output))


def hold_inputs(bundle, path):
    """``--inputs FILE.npz``: hold the model's other inputs at the file's arrays."""
    import numpy as np

    from ..errors import OptionError
    try:
        with np.load(path) as npz:
            values = {k: npz[k] for k in npz.files}
    except (OSError, ValueError) as exc:
        raise OptionError(f"--inputs {path}: not a readable .npz file ({exc})") from None
    rows = bundle.input_rows(values, 1)
    bundle.hold(rows if isinstance(rows, dict) else rows[0])


def _output_arg(value):
    """``--output``: a name, or a whole number (an index)."""
    return int(value) if str(value).lstrip("-").isdigit() else value


# ---------------------------------------------------------------------------- images
def bundled_photo(name):
    """The path of the bundled picture called ``name`` (``chelsea`` or ``chelsea.jpg``,
    ``gravel``), or None."""
    from ..images import bundled_images
    stem, ext = os.path.splitext(os.path.basename(str(name)))
    if os.path.dirname(str(name)) or ext.lower() not in ("", ".jpg"):
        return None
    return bundled_images().get(stem)


class ImagePath(click.ParamType):
    """An image file that exists and decodes, or a bundled photo's name. Checked when the
    command line is parsed, before any model is loaded, so a broken file fails at once
    (``ImageError``, exit 2) instead of after a model was loaded or converted."""
    name = "image"

    def convert(self, value, param, ctx):
        value = os.fspath(value)
        if os.path.isfile(value):
            from ..images import load_image
            load_image(value)  # unreadable, truncated, too large: ImageError naming the file
            return value
        photo = bundled_photo(value)
        if photo is not None:
            return photo
        from ..images import bundled_images
        names = ", ".join(bundled_images())
        if os.path.isdir(value):
            self.fail(f"{value}: is a folder, not an image", param, ctx)
        self.fail(f"{value}: no such file (bundled pictures you can name instead: {names})", param, ctx)


IMAGE = ImagePath()


def default_images(paths):
    """The given image paths, or the bundled cat and coffee photos when none are given."""
    if paths:
        return list(paths)
    from ..images import sample_photos
    return [sample_photos()["chelsea"], sample_photos()["coffee"]]


# ---------------------------------------------------------------------------- outputs
def check_writable(path, what, folder, attempts: int = 20):
    """Raise ``click.BadParameter`` unless ``path`` can be written, as a folder
    (``folder=True``) or a file: missing folders are made and a file is written in the
    deepest one as a probe, then everything the probe made is removed again. Workers of one
    cluster check the same shared folder at once: a folder another process makes or removes
    meanwhile is not an error (the check runs again, ``attempts`` times at most)."""
    for attempt in range(attempts):
        try:
            return _check_writable(path, what, folder)
        except _Raced:
            time.sleep(0.01 * (attempt + 1))   # let the other process's check finish
            if attempt == attempts - 1:
                raise click.BadParameter(f"cannot write {path}: another process keeps making and removing it",
                                         param_hint=what) from None


class _Raced(Exception):
    """A folder on the way was made or removed by another process during the check."""


def _check_writable(path, what, folder):
    p = os.path.abspath(os.path.expanduser(os.fspath(path)))
    if os.path.exists(p):
        if folder and not os.path.isdir(p):
            raise click.BadParameter(f"{path} is a file, not a folder", param_hint=what)
        if not folder and os.path.isdir(p):
            raise click.BadParameter(f"{path} is a folder, not a file", param_hint=what)
    target = p if folder else os.path.dirname(p)
    missing, d = [], target
    while not os.path.exists(d):
        missing.append(d)
        d = os.path.dirname(d)
    if not os.path.isdir(d):
        raise click.BadParameter(f"cannot write {path}: {d} is a file, not a folder", param_hint=what)
    made = []
    try:
        for m in reversed(missing):
            try:
                os.mkdir(m)
            except FileExistsError:
                if os.path.isdir(m):   # made by another process meanwhile: not ours to remove
                    continue
                raise
            except FileNotFoundError:   # its parent, made by another process's check, removed again
                raise _Raced() from None
            made.append(m)
        try:
            fd, probe = tempfile.mkstemp(dir=target, prefix=".tfviz-probe-")
        except FileNotFoundError:   # another process's check removed the folder it had made
            raise _Raced() from None
        os.close(fd)
        os.remove(probe)
        if os.path.exists(p) and not folder and not os.access(p, os.W_OK):
            raise PermissionError(errno.EACCES, "permission denied", p)
    except OSError as exc:
        reason = (exc.strerror or type(exc).__name__).lower()
        raise click.BadParameter(f"cannot write {path}: {reason}", param_hint=what) from None
    finally:
        for m in reversed(made):
            with contextlib.suppress(OSError):
                os.rmdir(m)


def _check_logdir(ctx, param, value):
    if value is not None:
        check_writable(value, "--logdir", folder=True)
    return value


def _check_out(single):
    def callback(ctx, param, value):
        names_file = single and value is not None and value.lower().endswith(".png")
        check_writable(value or DEFAULT_OUT, "--out", folder=not names_file)
        return value
    return callback


def out_option(single: bool = True, name: str | None = None):
    """``-o/--out``: the output folder (default ``tfviz-out``); with ``single``, a path
    ending in ``.png`` names the one picture instead. ``name`` is the default file name,
    for the help text."""
    where = f"; the picture is {name}" if name else ""
    more = ", or the picture's file name ending in .png" if single else ""
    return click.option("-o", "--out", default=None, callback=_check_out(single), type=click.Path(),
                        help=f"Output folder (default: ./{DEFAULT_OUT}{where}){more}.")


logdir_option = click.option("--logdir", type=click.Path(), callback=_check_logdir,
                             help="Also write TensorBoard data for the tfviz tab into this folder "
                                  "(open it with: tfviz board LOGDIR).")


def out_path(out, default_name):
    """Where the main picture goes: ``out`` itself when it names a .png file, else
    ``default_name`` inside the ``out`` folder (default ``tfviz-out``)."""
    if out is not None and out.lower().endswith(".png"):
        return out
    return os.path.join(out or DEFAULT_OUT, default_name)


def slug(s) -> str:
    """A file-name-safe version of ``s``."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", str(s)).strip("_") or "out"


# ---------------------------------------------------------------------------- options
def parse_channels(text, hint="--channels"):
    """``"0,3,5"``, ``"0-7"`` -> a list of ints; ``None`` or ``"all"`` -> None (all).
    A backwards range is refused."""
    if text is None or str(text).strip().lower() == "all":
        return None
    out = []
    for part in str(text).split(","):
        part = part.strip()
        if not part:
            continue
        m = re.fullmatch(r"(\d+)\s*-\s*(\d+)", part)
        if m:
            a, b = int(m.group(1)), int(m.group(2))
            if b < a:
                raise click.BadParameter(f"range {part!r} is backwards (write {b}-{a})", param_hint=hint)
            out.extend(range(a, b + 1))
        elif part.isdigit():
            out.append(int(part))
        else:
            raise click.BadParameter(f"{part!r} is not a channel number or a range like 0-7", param_hint=hint)
    return out


def channels_callback(ctx, param, value):
    """A click callback parsing a channel list when the command line is parsed (before
    any model is loaded)."""
    return parse_channels(value, "/".join(param.opts))


# ---------------------------------------------------------------------------- progress
def progress(iterable=None, length=None, label=""):
    """A click progress bar on stderr; where stderr is not a terminal, the label is
    printed once as a line instead."""
    return click.progressbar(iterable, length=length, label=label, file=sys.stderr,
                             show_pos=True, show_eta=True)


def stage(msg):
    """One line on stderr saying what the command is doing now (terminal or not)."""
    click.echo(msg, err=True)


class LazyProgress:
    """A :func:`progress` bar that starts at its first ``update`` (after the line ``intro``,
    when given), so a command refused before its work starts prints only its error line.
    Use it as ``with LazyProgress(length=n, label="scanning") as bar: work(bar.update)``."""

    def __init__(self, length=None, label="", intro=None):
        self.length, self.label, self.intro, self.bar = length, label, intro, None

    def __enter__(self):
        return self

    def update(self, n_steps, current_item=None):
        if self.bar is None:
            if self.intro:
                stage(self.intro)
            self.bar = progress(length=self.length, label=self.label).__enter__()
        self.bar.update(n_steps, current_item)

    def __exit__(self, *exc):
        if self.bar is not None:
            self.bar.__exit__(*exc)


# ---------------------------------------------------------------------------- errors
class Interrupted(Exception):
    """Raised after a command saved its partial result on Ctrl-C: exit 130."""


def _one_line(msg: str) -> str:
    return " ".join(str(msg).split())


def _os_error_line(exc: OSError) -> str:
    name = exc.filename if exc.filename is not None else ""
    if isinstance(exc, PermissionError):
        return f"permission denied: {name}" if name else "permission denied"
    if isinstance(exc, FileExistsError):
        return f"cannot create {name}: a file of that name is in the way"
    if isinstance(exc, NotADirectoryError):
        return f"cannot use {name}: a part of that path is a file, not a folder"
    reason = exc.strerror or type(exc).__name__
    return f"{name}: {reason}" if name else reason


def _show_warning(message, category, filename, lineno, file=None, line=None):
    click.echo(f"warning: {_one_line(message)}", err=True)


def split_debug(argv):
    """``(argv without --debug, debug?)``: --debug may stand anywhere before ``--``."""
    argv = list(argv)
    end = argv.index("--") if "--" in argv else len(argv)
    debug = "--debug" in argv[:end]
    return [a for i, a in enumerate(argv) if not (i < end and a == "--debug")], debug


def _usage_line(exc) -> str:
    """A click usage error as one line, pointing at the command's help."""
    where = exc.ctx.command_path if exc.ctx is not None else "tfviz"
    return f"error: {_one_line(exc.format_message())} (see: {where} --help)"


def error_line(exc) -> tuple[str, int]:
    """``(one line starting with "error: ", exit code)`` for an exception: click's usage
    errors point at the command's help, a :class:`tfviz.TfvizError` carries its own code,
    an ``OSError`` names the file, anything else names its type (exit 1)."""
    from ..utils import TfvizError
    if isinstance(exc, click.UsageError):
        return _usage_line(exc), exc.exit_code
    if isinstance(exc, click.ClickException):
        return f"error: {_one_line(exc.format_message())}", exc.exit_code
    if isinstance(exc, TfvizError):
        return f"error: {_one_line(exc)}", exc.exit_code
    if isinstance(exc, OSError):
        return f"error: {_os_error_line(exc)}", 1
    msg = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"error: {type(exc).__name__}: {msg} (run with --debug for the traceback)", 1


def run_main(cli, argv=None):
    """Run the click group; every error becomes one line on stderr and exits with the
    code of its kind: 2 for usage errors, 1 for failures while running, 130 for Ctrl-C
    (see the module docstring)."""
    quiet()  # TensorFlow's start-up lines stay off the terminal (TFVIZ_TF_LOGS=1 shows them)
    argv, debug = split_debug(sys.argv[1:] if argv is None else argv)
    if debug:
        argv = ["--debug", *argv]
    saved = warnings.showwarning
    warnings.showwarning = _show_warning
    try:
        return cli.main(args=argv, prog_name="tfviz", standalone_mode=False)
    except (click.exceptions.Abort, KeyboardInterrupt, Interrupted):
        click.echo("interrupted; the outputs written so far are kept", err=True)
        sys.exit(130)
    except click.exceptions.NoArgsIsHelpError as exc:  # bare ``tfviz``: the help text
        exc.show()
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        click.echo(error_line(exc)[0], err=True)
        sys.exit(exc.exit_code)
    except Exception as exc:  # TfvizError, OSError, and the last resort: never a bare traceback
        if debug:
            raise
        line, code = error_line(exc)
        click.echo(line, err=True)
        sys.exit(code)
    finally:
        warnings.showwarning = saved
