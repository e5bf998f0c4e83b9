"""Exceptions raised by :mod:`tfviz.attribution`. Each is a :class:`tfviz.TfvizError`
(the CLI prints it as one line) and also a standard Python exception type, so callers
can catch either ``tfviz.attribution.PatchSizeError`` or plain ``ValueError``."""
from __future__ import annotations

from ..utils import ModelError, TfvizError, UnknownClassError, UnknownLayerError  # noqa: F401  (re-exported)


from ..graph import UnsupportedModelError as _GraphUnsupported

class AttributionError(TfvizError, ValueError):
    """Base class of the attribution errors below."""


class TargetError(AttributionError):
    """A target that cannot be parsed, or one target list of the wrong length."""


class UnitChannelError(TargetError, IndexError):
    """A unit's channel (or its ``y, x`` position) is outside the layer's output."""


class PatchSizeError(AttributionError):
    """An occlusion patch that is empty or larger than the image."""


class StrideError(AttributionError):
    """An occlusion stride that is not a positive integer."""


class NoSpatialLayerError(AttributionError, ModelError):
    """Grad-CAM needs a convolutional layer with a spatial ``[N, H, W, C]`` output."""


class NoReLUError(AttributionError, ModelError):
    """Guided backprop and deconvnet change the backward pass of ReLUs; the model has none."""


class NonFiniteGradientError(AttributionError, FloatingPointError):
    """A gradient (or score) came out NaN or infinite."""


class UnsupportedModelError(AttributionError, _GraphUnsupported):
    """The method needs a Functional or Sequential Keras model (its graph of layers)."""


__all__ = ["AttributionError", "TargetError", "UnitChannelError", "PatchSizeError", "StrideError",
           "NoSpatialLayerError", "NoReLUError", "NonFiniteGradientError", "UnsupportedModelError",
           "UnknownClassError", "UnknownLayerError", "ModelError", "TfvizError"]
