"""tfviz: see what a Keras convolutional network has learned and why it decides.

Quick start::

    import tfviz
    bundle = tfviz.load_model()                     # efficientnet_lite0, offline
    img = tfviz.images.sample_photo("chelsea")
    print(bundle.top_k(img[None], k=5))

``import tfviz`` is light (numpy and Pillow): TensorFlow and Keras load with the first
module that needs them (``tfviz.load_model``, ``tfviz.attribution``, ...). It changes
nothing global but one default: Keras runs on TensorFlow (``KERAS_BACKEND`` is set to
``tensorflow`` when it is unset), since every tfviz method differentiates with
``tf.GradientTape``. :func:`quiet` keeps TensorFlow's start-up messages off the terminal
(the ``tfviz`` command calls it; call it yourself in a notebook).
"""
import os as _os

_os.environ.setdefault("KERAS_BACKEND", "tensorflow")

__version__ = "0.1.0"

from . import images  # noqa: E402  (numpy/Pillow only, cheap)
from .errors import TfvizError  # noqa: E402


def load_model(spec="efficientnet_lite0", **options):
    """Load a model as a :class:`tfviz.models.ModelBundle`; see :func:`tfviz.models.load_model`."""
    from .models import load_model as _load  # lazy: keeps `import tfviz` (and `tfviz --help`) light
    return _load(spec, **options)


def quiet():
    """Keep TensorFlow's start-up lines ("Could not find cuda drivers", CPU feature notes,
    absl's log lines) and its retracing notes about tfviz's own programs off the
    terminal. Call it before TensorFlow is imported; ``TFVIZ_TF_LOGS=1`` turns it off."""
    from ._quiet import install
    install()


__all__ = ["load_model", "quiet", "images", "TfvizError", "__version__"]
