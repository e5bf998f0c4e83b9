"""The built-in models trained on first use: kept in tfviz's cache folder, trained (and
announced in one line) when missing."""
from __future__ import annotations

import os

import keras

from ..utils import atomic_path, cache_dir, notice


def cached_model(filename: str, train, training: str, seconds: int, cache: bool = True):
    """The Keras model saved as ``filename`` in tfviz's cache folder; when it is not there
    (or not readable), ``train()`` makes it now -- announced by one notice, ``tfviz:
    training <training> (once; about <seconds> s on 2 cores; cached in <folder>)`` -- and
    it is saved there atomically. ``cache=False``: always train, save nothing."""
    path = os.path.join(cache_dir(), filename)
    folder = os.path.dirname(path)
    if cache and os.path.exists(path):
        try:
            return keras.models.load_model(path, compile=False)
        except Exception:  # a corrupt cache file: train again
            os.remove(path)
    notice(f"training {training} (once; about {seconds} s on 2 cores" + (f"; cached in {folder})" if cache else ")"))
    model = train()
    if cache:
        try:
            with atomic_path(path) as tmp:
                model.save(tmp)
        except OSError as exc:
            notice(f"could not cache {filename} in {folder} ({exc.strerror}); training again next time")
    return model
