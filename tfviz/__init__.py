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
_quiet.install()  # TensorFlow's import-time C++ messages stay out of tfviz's output

__version__ = "0.1.0"

from . import images  # noqa: E402  (numpy/Pillow only, cheap)
from .utils import TfvizError  # noqa: E402


def load_model(spec="efficientnet_lite0", **options):
    """Load a model as a :class:`tfviz.models.ModelBundle`; see :func:`tfviz.models.load_model`."""
    from .models import load_model as _load
    return _load(spec, **options)


__all__ = ["load_model", "images", "TfvizError", "__version__"]
