"""How uint8 RGB pixels become a model's input and back: an affine map per channel,
optionally to BGR (the ``keras.applications`` conventions by name)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import tensorflow as tf

from ..errors import ModelError
from ..utils import did_you_mean

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)


@dataclass(frozen=True)
class Preprocessing:
    """An affine, per-channel map from uint8 RGB to model input, optionally to BGR:
    ``x_model = (x[..., order] - mean) / std``. ``deprocess`` inverts it exactly."""
    name: str
    mean: tuple = (0.0, 0.0, 0.0)
    std: tuple = (1.0, 1.0, 1.0)
    bgr: bool = False

    def __call__(self, x):
        """uint8 (or float 0..255) RGB NHWC -> float32 model input. numpy in, numpy out;
        a TensorFlow tensor in, a tensor out (differentiable)."""
        if _is_tensor(x):
            x = tf.cast(x, tf.float32)
            if self.bgr:
                x = x[..., ::-1]
            return (x - tf.constant(self.mean, tf.float32)) / tf.constant(self.std, tf.float32)
        x = np.asarray(x, np.float32)
        if self.bgr:
            x = x[..., ::-1]
        return ((x - np.float32(self.mean)) / np.float32(self.std)).astype(np.float32)

    def to_float_rgb(self, x):
        """Model input -> float RGB on the 0..255 scale (unclipped, differentiable)."""
        if _is_tensor(x):
            x = x * tf.constant(self.std, x.dtype) + tf.constant(self.mean, x.dtype)
            return x[..., ::-1] if self.bgr else x
        x = np.asarray(x, np.float32) * np.float32(self.std) + np.float32(self.mean)
        return x[..., ::-1] if self.bgr else x

    def deprocess(self, x) -> np.ndarray:
        """Model input -> uint8 RGB (rounded, clipped)."""
        x = np.asarray(self.to_float_rgb(np.asarray(x, np.float32)))
        return np.clip(np.round(x), 0, 255).astype(np.uint8)

    @property
    def input_range(self) -> tuple[np.ndarray, np.ndarray]:
        """Per-channel (low, high) of valid images in model-input space."""
        lo = self(np.zeros((1, 1, 1, 3), np.float32))[0, 0, 0]
        hi = self(np.full((1, 1, 1, 3), 255.0, np.float32))[0, 0, 0]
        return np.minimum(lo, hi), np.maximum(lo, hi)


PREPROCESSINGS = {
    "0-1": Preprocessing("0-1", std=(255.0,) * 3),
    "-1-1": Preprocessing("-1-1", mean=(127.5,) * 3, std=(127.5,) * 3),
    "caffe": Preprocessing("caffe", mean=CAFFE_MEAN_BGR, bgr=True),
    "torch": Preprocessing("torch", mean=tuple(255 * m for m in IMAGENET_MEAN),
                           std=tuple(255 * s for s in IMAGENET_STD)),
    "raw": Preprocessing("raw"),
}


def _is_tensor(x) -> bool:
    return (type(x).__module__.startswith(("tensorflow", "keras"))
            or (hasattr(x, "numpy") and not isinstance(x, np.ndarray)))


def get_preprocessing(p) -> Preprocessing:
    if isinstance(p, Preprocessing):
        return p
    if p not in PREPROCESSINGS:
        raise ModelError(did_you_mean("preprocess", p, PREPROCESSINGS))
    return PREPROCESSINGS[p]
