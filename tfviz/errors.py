"""Every error and warning tfviz raises on purpose, in one family.

Each error is a :class:`TfvizError` (the command line prints it as one line and exits with
its ``exit_code``) and, where it fits, also a standard Python exception, so a caller can
catch ``tfviz.errors.PatchSizeError``, ``tfviz.TfvizError`` or plain ``ValueError``.

Exit codes follow click's convention: 2 for a usage error (an argument, file, image, data
set or model the command cannot work with; fix the command line or the install and run it
again), 1 for a failure while running (no network, a NaN gradient, a server that cannot
start).

The classes are also importable from where they were defined before this module existed
(``tfviz.utils``, ``tfviz.attribution``, ``tfviz.synthesis``, ``tfviz.data`` ...): those
names are the same class objects.
"""
from __future__ import annotations

__all__ = [
    "TfvizError", "UnknownLayerError", "LayerKindError", "UnknownClassError", "ChannelError", "ImageError",
    "ModelError", "UnsupportedModelError", "OfflineError", "OptionError", "BackendError",
    "AttributionError", "TargetError", "PatchSizeError", "StrideError", "NoSpatialLayerError", "NoReLUError",
    "NonFiniteGradientError", "UnitChannelError",
    "SynthesisError", "ParamError", "TransformError", "ObjectiveError", "RegularizerError", "StylizeError",
    "DataError", "UnknownLengthError", "DataLoadError", "ReduceError", "MissingExtraError", "StrategyError",
    "WorkerLostError", "SummaryError", "CallbackError", "BoardError", "TorchFormatError",
    "TfvizWarning", "UpscaleWarning", "UnreadableImagesWarning",
]


# --------------------------------------------------------------------------- the base and shared errors
class TfvizError(Exception):
    """Base class of every error tfviz raises on purpose; the CLI prints it as one line and
    exits with its ``exit_code``, following click's convention: 2 for a usage error (an
    argument, file, image, data set or model the command cannot work with; fix the command
    line or the install and run it again), 1 for a failure while running (no network, a NaN
    gradient, a server that cannot start). ``tfviz.cli.common`` has the table."""
    exit_code = 1


class UnknownLayerError(TfvizError, KeyError):
    """No layer of that name; the message suggests the closest ones."""
    exit_code = 2

    def __str__(self):  # KeyError would repr() the message
        return str(self.args[0]) if self.args else ""


class LayerKindError(TfvizError, ValueError):
    """The layer exists but is the wrong kind for the method (e.g. not a convolution, or
    without a spatial output); the message lists the layers that would do."""
    exit_code = 2


class UnknownClassError(TfvizError, KeyError):
    """A class name or index the model does not have; the message suggests the closest."""
    exit_code = 2

    def __str__(self):
        return str(self.args[0]) if self.args else ""


class ChannelError(TfvizError, IndexError, ValueError):
    """A channel (or a unit's ``y, x`` position) outside a layer's output: an IndexError,
    and a ValueError like the other bad arguments. The one class behind
    ``tfviz.inspect.ChannelError`` and ``tfviz.attribution.UnitChannelError``."""
    exit_code = 2


class ImageError(TfvizError, ValueError):
    """An image could not be read or is not usable."""
    exit_code = 2


class ModelError(TfvizError, ValueError):
    """The model cannot be loaded (a missing file, not a model, an unknown name), or the
    method cannot handle it."""
    exit_code = 2


class UnsupportedModelError(ModelError):
    """The method needs a Functional or Sequential Keras model (a graph of layers to
    follow). The one class behind ``tfviz.graph.UnsupportedModelError`` and
    ``tfviz.attribution.UnsupportedModelError``."""


class OfflineError(TfvizError, RuntimeError):
    """Something needed a download and the network is unreachable."""
    exit_code = 1


class OptionError(TfvizError, ValueError):
    """An argument has a value the function does not accept (the message lists the valid ones)."""
    exit_code = 2


class BackendError(TfvizError, ImportError):
    """Keras runs on another backend than TensorFlow; tfviz needs TensorFlow's GradientTape.
    A setup problem found before anything runs: exit 2, like a usage error."""
    exit_code = 2


# --------------------------------------------------------------------------- attribution
UnitChannelError = ChannelError  # a unit's channel or (y, x) position outside the layer's output


class AttributionError(TfvizError, ValueError):
    """Bad arguments to an attribution method (base class of the attribution errors)."""
    exit_code = 2


class TargetError(AttributionError):
    """A target that cannot be parsed, or one target list of the wrong length."""


class PatchSizeError(AttributionError):
    """An occlusion patch that is empty or larger than the image."""


class StrideError(AttributionError):
    """An occlusion stride that is not a positive integer."""


class NoSpatialLayerError(AttributionError, ModelError):
    """Grad-CAM needs a convolutional layer with a spatial ``[N, H, W, C]`` output."""


class NoReLUError(AttributionError, ModelError):
    """Guided backprop and deconvnet change the backward pass of ReLUs; the model has none."""


class NonFiniteGradientError(AttributionError, FloatingPointError):
    """A gradient (or score) came out NaN or infinite: a failure while running (exit 1)."""
    exit_code = 1


# --------------------------------------------------------------------------- synthesis and stylization
class SynthesisError(TfvizError, ValueError):
    """Bad arguments to a synthesis method, or an input it refuses (raised before the
    first step: a usage error, exit 2 on the command line)."""
    exit_code = 2


class ParamError(TfvizError, ValueError):
    """A parameterization does not fit (bad size, init, generator)."""
    exit_code = 2


class TransformError(TfvizError, ValueError):
    """A transformation with a bad parameter (a negative shift or pad, no angles, ...)."""
    exit_code = 2


class ObjectiveError(TfvizError, ValueError):
    """An objective does not fit the model (bad channel, no spatial output, ...)."""
    exit_code = 2


class RegularizerError(TfvizError, ValueError):
    """A regularizer with a bad parameter (a percentile outside 0..100, ...)."""
    exit_code = 2


class StylizeError(TfvizError, ValueError):
    """Bad arguments to a stylization network or layer (style index, mixing weights,
    sizes, style counts), unreadable content images or a checkpoint of another network."""
    exit_code = 2


# --------------------------------------------------------------------------- data, scans, summaries
class DataError(TfvizError, ValueError):
    """A data set is missing, empty, unreadable or does not fit the request (e.g. ``k``
    larger than it): a usage error, exit 2 on the command line."""
    exit_code = 2


class UnknownLengthError(DataError, TypeError):
    """``len()`` of a one-pass stream whose length is not known (yet): a TypeError, as
    ``len()`` of any object without a length is (use :attr:`tfviz.data.ImageSet.length`)."""


class DataLoadError(DataError):
    """A data set that fails while it is being loaded for another reason than the user's
    input (a download the server refused, a broken cached copy): exit 1."""
    exit_code = 1


class ReduceError(TfvizError, ValueError):
    """An unknown dimensionality-reduction method (or bad parameters)."""
    exit_code = 2


class MissingExtraError(TfvizError, ImportError):
    """A method needs an optional dependency that is not installed; the message says
    which extra to install. Found before the work starts; on the command line it exits 2,
    like a usage error: install the extra or pick another method, then run it again."""
    exit_code = 2


class StrategyError(TfvizError, TypeError):
    """``strategy=`` is not a ``tf.distribute.Strategy``, or the strategy cannot be made
    or used as asked: ``--strategy multiworker`` without a valid ``TF_CONFIG``, workers that
    resumed from different checkpoints."""
    exit_code = 2


class WorkerLostError(TfvizError, RuntimeError):
    """Another worker of a multi-worker run stopped answering (killed, crashed, its
    machine gone) while this one waited for it; start every worker again and the run
    resumes from its last checkpoint."""
    exit_code = 1


class SummaryError(OptionError):
    """A summary was asked for with an unknown kind or mismatched images, maps or names."""


class CallbackError(OptionError):
    """A tfviz callback was given images, names, targets or options it cannot use."""


class BoardError(TfvizError, RuntimeError):
    """TensorBoard could not start (say, the port is taken): a failure while running, exit 1."""
    exit_code = 1


class TorchFormatError(ModelError):
    """The file is not a PyTorch legacy checkpoint we can read."""


# --------------------------------------------------------------------------- warnings
class TfvizWarning(UserWarning):
    """Base class of the warnings tfviz gives (the CLI prints each as one line)."""


class UpscaleWarning(TfvizWarning):
    """An image was enlarged more than ``MAX_UPSCALE`` times to the model's input size."""


class UnreadableImagesWarning(UserWarning):
    """Some files of a folder could not be read and were skipped."""
