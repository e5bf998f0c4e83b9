"""Exceptions raised by :mod:`tfviz.attribution`. Each is a :class:`tfviz.TfvizError`
(the CLI prints it as one line) and also a standard Python exception type, so callers
can catch either ``tfviz.attribution.PatchSizeError`` or plain ``ValueError``.

``UnitChannelError`` and ``UnsupportedModelError`` are the library-wide
:class:`tfviz.utils.ChannelError` and :class:`tfviz.utils.UnsupportedModelError` (one
class each, the same as ``tfviz.inspect.ChannelError`` and
``tfviz.graph.UnsupportedModelError``). On the command line every one of them is a usage
error (exit 2) except ``NonFiniteGradientError``, a failure while running (exit 1)."""
from __future__ import annotations

from ..utils import ChannelError, ModelError, TfvizError, UnknownClassError, UnknownLayerError  # noqa: F401
from ..utils import UnsupportedModelError  # noqa: F401  (re-exported)

UnitChannelError = ChannelError  # a unit's channel or (y, x) position outside the layer's output


class AttributionError(TfvizError, ValueError):
    """Base class of the attribution errors below."""
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


__all__ = ["AttributionError", "TargetError", "UnitChannelError", "PatchSizeError", "StrideError",
           "NoSpatialLayerError", "NoReLUError", "NonFiniteGradientError", "UnsupportedModelError",
           "UnknownClassError", "UnknownLayerError", "ModelError", "TfvizError"]
