"""A Keras model plus everything a visualization method needs to use it.

* :mod:`.preprocessing` -- uint8 RGB pixels <-> model input (:class:`Preprocessing`);
* :mod:`.programs` -- :class:`Programs`, the one cache of what methods build per model;
* :mod:`.layers` -- walking layers (nested models too) and what each layer is;
* :mod:`.views` -- the logits view (a final softmax bypassed) and feature taps;
* :mod:`.bundle` -- :class:`ModelBundle`;
* :mod:`.loading` -- :func:`load_model` by name, file or object.
"""
from __future__ import annotations

from .. import backend  # noqa: F401  (before Keras: a clear error on another Keras backend)
from .bundle import ModelBundle
from .layers import describe_layers, is_conv, is_softmax, iter_layers, output_shape
from .loading import APPLICATIONS, ZOO, imagenet_class_names, load_model, looks_offline
from .preprocessing import (CAFFE_MEAN_BGR, IMAGENET_MEAN, IMAGENET_STD, PREPROCESSINGS, Preprocessing,
                            get_preprocessing)
from .programs import Programs
from .views import feature_model, final_softmax, logit_model

# Deprecated private names of the single-module tfviz.models (kept for old imports).
_is_conv = is_conv
_output_shape = output_shape
_looks_offline = looks_offline

__all__ = [
    "ModelBundle", "Programs", "Preprocessing", "PREPROCESSINGS", "get_preprocessing", "IMAGENET_MEAN",
    "IMAGENET_STD", "CAFFE_MEAN_BGR", "load_model", "APPLICATIONS", "ZOO", "imagenet_class_names",
    "describe_layers", "iter_layers", "output_shape", "is_conv", "is_softmax", "final_softmax", "logit_model",
    "feature_model", "looks_offline",
]
