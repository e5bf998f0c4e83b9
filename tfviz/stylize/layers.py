"""Keras layers of the feed-forward stylization networks, serializable (a ``.keras``
save and load gives identical outputs):

* :class:`InstanceNormalization` -- Ulyanov et al. 2016: each image's each channel is
  normalized over its own positions, then scaled and shifted.
* :class:`ConditionalInstanceNormalization` -- Dumoulin et al. 2017: one scale and
  shift per style; the layer's second input is a ``[N, num_styles]`` weight vector (one
  hot for one style, any weights with a positive sum to mix styles by interpolating
  their parameters).
* :class:`ReflectionPadding2D` -- pads by mirroring the border, as Johnson et al. do
  (zero padding darkens the edges of a stylized image).
"""
from __future__ import annotations

import keras
import tensorflow as tf
from keras import ops

from ..errors import StylizeError  # noqa: F401  (the classes live in tfviz.errors)
from ..utils import TfvizError


def _moments(x, epsilon):
    mean = ops.mean(x, axis=(1, 2), keepdims=True)
    var = ops.mean(ops.square(x - mean), axis=(1, 2), keepdims=True)
    return (x - mean) / ops.sqrt(var + epsilon)


@keras.saving.register_keras_serializable(package="tfviz")
class InstanceNormalization(keras.layers.Layer):
    """``gamma * (x - mean) / sqrt(var + epsilon) + beta`` with the mean and variance of
    each image and channel over its height and width (``[N, H, W, C]`` inputs)."""

    def __init__(self, epsilon: float = 1e-5, center: bool = True, scale: bool = True, **kwargs):
        super().__init__(**kwargs)
        self.epsilon, self.center, self.scale = float(epsilon), bool(center), bool(scale)

    def build(self, input_shape):
        c = int(input_shape[-1])
        self.gamma = self.add_weight(name="gamma", shape=(c,), initializer="ones", trainable=self.scale)
        self.beta = self.add_weight(name="beta", shape=(c,), initializer="zeros", trainable=self.center)

    def call(self, x):
        return _moments(x, self.epsilon) * self.gamma + self.beta

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "epsilon": self.epsilon, "center": self.center, "scale": self.scale}


@keras.saving.register_keras_serializable(package="tfviz")
class ConditionalInstanceNormalization(keras.layers.Layer):
    """Instance normalization with ``num_styles`` pairs of (scale, shift). Called on
    ``[x, weights]``: ``weights`` ``[N, num_styles]`` picks (one-hot) or mixes the
    styles: ``gamma = weights @ gammas`` and ``beta = weights @ betas`` (weights are
    used as given; :func:`tfviz.stylize.stylize` normalizes them to sum to 1)."""

    def __init__(self, num_styles: int, epsilon: float = 1e-5, **kwargs):
        super().__init__(**kwargs)
        if int(num_styles) < 1:
            raise StylizeError(f"num_styles must be a positive integer, got {num_styles!r}")
        self.num_styles, self.epsilon = int(num_styles), float(epsilon)

    def build(self, input_shape):
        c = int(input_shape[0][-1])
        self.gammas = self.add_weight(name="gammas", shape=(self.num_styles, c), initializer="ones")
        self.betas = self.add_weight(name="betas", shape=(self.num_styles, c), initializer="zeros")

    def call(self, inputs):
        x, w = inputs
        w = ops.cast(w, x.dtype)
        gamma = ops.matmul(w, self.gammas)[:, None, None, :]
        beta = ops.matmul(w, self.betas)[:, None, None, :]
        return _moments(x, self.epsilon) * gamma + beta

    def compute_output_shape(self, input_shape):
        return input_shape[0]

    def get_config(self):
        return {**super().get_config(), "num_styles": self.num_styles, "epsilon": self.epsilon}


@keras.saving.register_keras_serializable(package="tfviz")
class ReflectionPadding2D(keras.layers.Layer):
    """Pad height and width by ``padding`` pixels on each side, mirroring the border."""

    def __init__(self, padding: int = 1, **kwargs):
        super().__init__(**kwargs)
        self.padding = int(padding)

    def call(self, x):
        p = self.padding
        return tf.pad(x, [[0, 0], [p, p], [p, p], [0, 0]], mode="REFLECT")

    def compute_output_shape(self, input_shape):
        n, h, w, c = input_shape
        p = 2 * self.padding
        return (n, None if h is None else h + p, None if w is None else w + p, c)

    def get_config(self):
        return {**super().get_config(), "padding": self.padding}


@keras.saving.register_keras_serializable(package="tfviz")
class ChannelSlice(keras.layers.Layer):
    """Channels ``start:stop`` of ``[N, H, W, C]`` (a serializable slice; the texture
    network splits its noise input into scales with it)."""

    def __init__(self, start: int, stop: int, **kwargs):
        super().__init__(**kwargs)
        self.start, self.stop = int(start), int(stop)

    def call(self, x):
        return x[..., self.start:self.stop]

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (self.stop - self.start,)

    def get_config(self):
        return {**super().get_config(), "start": self.start, "stop": self.stop}
