"""Small shared helpers: the cache directory, atomic writes, name suggestions, notices.

The error classes live in :mod:`tfviz.errors`; the names below are kept for old imports."""
from __future__ import annotations

import contextlib
import difflib
import os
import sys
import uuid

from .errors import (BackendError, ChannelError, ImageError, LayerKindError, ModelError,  # noqa: F401 (old homes)
                     OfflineError, OptionError, TfvizError, TfvizWarning, UnknownClassError, UnknownLayerError,
                     UnsupportedModelError)


def cache_dir() -> str:
    """Where converted weights and trained zoo models are cached: ``$TFVIZ_CACHE``, else
    ``$XDG_CACHE_HOME/tfviz``, else ``~/.cache/tfviz``."""
    env = os.environ.get("TFVIZ_CACHE")
    if env:
        return os.path.abspath(os.path.expanduser(env))
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "tfviz")


@contextlib.contextmanager
def atomic_path(path: str):
    """Yield a temporary path beside ``path``; on success rename it over ``path``.

    The temporary name ends with the final file name so that writers that check the
    suffix (Keras' ``.weights.h5``, PIL's format guess) behave the same. On error the
    temporary file is removed and ``path`` is left untouched."""
    path = os.fspath(path)
    d, base = os.path.split(os.path.abspath(path))
    os.makedirs(d, exist_ok=True)
    tmp = os.path.join(d, f".tmp-{uuid.uuid4().hex[:8]}-{base}")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def suggest(name: str, choices, n: int = 5) -> list[str]:
    """Closest valid names to ``name`` (case-insensitive), best first."""
    choices = list(choices)
    lower = {c.lower(): c for c in choices}
    close = difflib.get_close_matches(str(name).lower(), list(lower), n=n, cutoff=0.4)
    subs = [c for c in choices if str(name).lower() in c.lower() and c not in close]
    return ([lower[c] for c in close] + subs)[:n]


def names_hint(name, choices, list_hint: str | None = None, noun: str = "names", limit: int = 8) -> str:
    """The valid names to show after an unknown ``name``: all of them when there are at
    most ``limit``, else the closest few, and how to list them all (``list_hint``)."""
    choices = [str(c) for c in choices]
    if len(choices) <= limit:
        return ", ".join(choices) if choices else "(none)"
    close = suggest(str(name), choices, n=limit)
    shown = close or [choices[int(i)] for i in _spread(len(choices), limit)]
    more = f"; all {len(choices)}: {list_hint}" if list_hint else f"; {len(choices)} in all"
    return ", ".join(shown) + f", ... ({'closest' if close else 'some'} of the {noun}{more})"


def _spread(n, k):
    return sorted({round(i * (n - 1) / (k - 1)) for i in range(k)})


def did_you_mean(kind: str, name, choices, list_hint: str | None = None) -> str:
    """One message for every unknown name: what was wrong, the closest valid names (at
    most 8; all of them when there are few) and how to list all (``list_hint``)."""
    choices = [str(c) for c in choices]
    msg = f"unknown {kind} {name!r}"
    close = suggest(str(name), choices, n=8)
    all_of = f" ({len(choices)} in all: {list_hint})" if list_hint else ""
    if len(choices) <= 8:
        guess = "; did you mean " + ", ".join(repr(c) for c in close) + "?" if close else ""
        return msg + guess + "; valid: " + ", ".join(choices)
    if close:
        return msg + "; did you mean " + ", ".join(repr(c) for c in close) + "?" + all_of
    return msg + "; no name is close" + (all_of or f" ({len(choices)} valid names)")


def notice(msg: str) -> None:
    """One line on stderr about slow one-time work (training, converting, downloading)."""
    print(f"tfviz: {msg}", file=sys.stderr, flush=True)
