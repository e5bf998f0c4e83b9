"""tfviz: see what a Keras convolutional network has learned and why it decides.

Quick start::

    import tfviz
    bundle = tfviz.load_model()                     # efficientnet_lite0, offline
    img = tfviz.images.sample_photo("chelsea")
    print(bundle.top_k(img[None], k=5))
"""
import os as _os

from . import _quiet

_os.environ.setdefault("KERAS_BACKEND", "tensorflow")


def _check_backend():
    """One clear error at import when Keras is set to run on JAX or PyTorch: every tfviz
    method differentiates with ``tf.GradientTape`` and traces ``tf.function`` programs."""
    import sys
    keras = sys.modules.get("keras")
    if keras is not None and hasattr(keras, "backend") and hasattr(keras.backend, "backend"):
        backend = keras.backend.backend()  # Keras already imported: its backend is fixed
    else:
        backend = _os.environ["KERAS_BACKEND"]
    if backend == "tensorflow":
        return
    from .utils import BackendError
    msg = (f"tfviz needs Keras on the TensorFlow backend (it differentiates with tf.GradientTape), "
           f"but KERAS_BACKEND is {backend!r}: unset it or set KERAS_BACKEND=tensorflow")
    argv = getattr(sys, "orig_argv", sys.argv)
    if _os.path.basename(sys.argv[0]) == "tfviz" or argv[1:3] == ["-m", "tfviz"]:
        sys.stderr.write(f"error: {msg}\n")  # the command line: one line, exit 2, no traceback
        raise SystemExit(2)
    raise BackendError(msg)


_check_backend()
_quiet.install()  # TensorFlow's import-time C++ messages stay out of tfviz's output

__version__ = "0.1.0"

from . import images  # noqa: E402  (numpy/Pillow only, cheap)
from .utils import TfvizError  # noqa: E402


def load_model(spec="efficientnet_lite0", **options):
    """Load a model as a :class:`tfviz.models.ModelBundle`; see :func:`tfviz.models.load_model`."""
    from .models import load_model as _load
    return _load(spec, **options)


__all__ = ["load_model", "images", "TfvizError", "__version__"]
