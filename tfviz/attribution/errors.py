"""The attribution errors; they live in :mod:`tfviz.errors` (the same class objects).

On the command line every one of them is a usage error (exit 2) except
``NonFiniteGradientError``, a failure while running (exit 1)."""
from __future__ import annotations

from ..errors import (AttributionError, ChannelError, ModelError, NonFiniteGradientError,  # noqa: F401
                      NoReLUError, NoSpatialLayerError, PatchSizeError, StrideError, TargetError, TfvizError,
                      UnitChannelError, UnknownClassError, UnknownLayerError, UnsupportedModelError)

__all__ = ["AttributionError", "TargetError", "UnitChannelError", "PatchSizeError", "StrideError",
           "NoSpatialLayerError", "NoReLUError", "NonFiniteGradientError", "UnsupportedModelError",
           "UnknownClassError", "UnknownLayerError", "ModelError", "TfvizError"]
