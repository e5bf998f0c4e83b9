"""Keep TensorFlow's start-up chatter out of tfviz's output -- only when asked
(:func:`tfviz.quiet`; the ``tfviz`` command asks for it).

TensorFlow writes several lines to the stderr file descriptor while it is imported
("All log messages before absl::InitializeLog() ...", "Could not find cuda drivers ...",
CPU feature notes), before any Python log level applies. ``install()`` adds an import
hook so that the next import of ``tensorflow`` runs with file descriptor 2 pointed at
/dev/null, whoever imports it (tfviz itself, Keras, the user), and drops TensorFlow's
"triggered tf.function retracing" note for tfviz's own programs (named ``tfviz_*``: they
trace once per input shape on purpose, and TensorFlow counts programs built from the
same code together). Errors still surface: a failed import raises as usual. Set
``TFVIZ_TF_LOGS=1`` to see the messages anyway.
"""
from __future__ import annotations

import contextlib
import importlib.abc
import importlib.util
import logging
import os
import sys


@contextlib.contextmanager
def silenced_stderr_fd():
    """Point file descriptor 2 at /dev/null for the block (C/C++ writes included)."""
    try:
        fd = sys.stderr.fileno()
    except (AttributeError, OSError, ValueError):  # a captured or replaced stderr
        fd = 2
    try:
        sys.stderr.flush()
        saved = os.dup(fd)
    except OSError:
        yield
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, fd)
        yield
    finally:
        os.dup2(saved, fd)
        os.close(saved)
        os.close(devnull)


class _QuietTensorFlowFinder(importlib.abc.MetaPathFinder):
    """Finds ``tensorflow`` through the normal machinery and wraps its module execution."""

    def find_spec(self, name, path, target=None):
        if name != "tensorflow":
            return None
        uninstall()  # one time only; also keeps find_spec below from recursing
        spec = importlib.util.find_spec(name)
        if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return spec
        run = spec.loader.exec_module

        def exec_module(module):
            with silenced_stderr_fd():
                run(module)

        spec.loader.exec_module = exec_module
        return spec


_FINDER = _QuietTensorFlowFinder()


class OwnRetracingFilter(logging.Filter):
    """Drops TensorFlow's "N out of the last M calls ... triggered tf.function retracing"
    warning for tfviz's own programs (named ``tfviz_*``)."""

    def filter(self, record):
        msg = record.getMessage()
        return not ("triggered tf.function retracing" in msg and "tfviz_" in msg)


def install():
    """Silence TensorFlow's import-time messages and tfviz's retracing notes (unless
    TFVIZ_TF_LOGS=1)."""
    if os.environ.get("TFVIZ_TF_LOGS") == "1":
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # later C++ log lines (cuInit, ...)
    tf_logger = logging.getLogger("tensorflow")
    if not any(isinstance(f, OwnRetracingFilter) for f in tf_logger.filters):
        tf_logger.addFilter(OwnRetracingFilter())
    if "tensorflow" not in sys.modules and _FINDER not in sys.meta_path:
        sys.meta_path.insert(0, _FINDER)


def uninstall():
    with contextlib.suppress(ValueError):
        sys.meta_path.remove(_FINDER)
