"""The one requirement on Keras: the TensorFlow backend (every tfviz method
differentiates with ``tf.GradientTape`` and traces ``tf.function`` programs).

Imported before Keras by the base modules that use it (:mod:`tfviz.keras_internals`,
:mod:`tfviz.models`): importing any of them with Keras on JAX or PyTorch raises
:class:`~tfviz.errors.BackendError` with the fix, and the command line prints it as one
line (exit 2)."""
from __future__ import annotations

import os
import sys

from .errors import BackendError


def keras_backend() -> str:
    """The backend Keras runs on (or will, once imported)."""
    keras = sys.modules.get("keras")
    if keras is not None and hasattr(keras, "backend") and hasattr(keras.backend, "backend"):
        return keras.backend.backend()  # Keras already imported: its backend is fixed
    return os.environ.get("KERAS_BACKEND", "tensorflow")


def require_tensorflow_backend() -> None:
    backend = keras_backend()
    if backend != "tensorflow":
        raise BackendError(f"tfviz needs Keras on the TensorFlow backend (it differentiates with tf.GradientTape), "
                           f"but KERAS_BACKEND is {backend!r}: unset it or set KERAS_BACKEND=tensorflow")


require_tensorflow_backend()
