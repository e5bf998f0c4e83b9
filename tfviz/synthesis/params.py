"""How the image is parameterized: what the optimizer actually changes.

* :func:`pixel` -- the image itself, optimized in grey levels (float RGB 0..255, so
  learning rates and step sizes on it are grey levels whatever the preprocessing) and
  seen by the model and the regularizers in model-input space (projected into the valid
  range by the ``ClipRange`` regularizer). The Yosinski regularizers act on it.
* :func:`fourier` -- Olah et al. 2017 / Lucid: a random complex spectrum per channel,
  scaled by ``1 / f^decay_power`` so every frequency starts with equal energy, inverse
  FFT, then a fixed linear map that decorrelates colour (the square root of ImageNet's
  colour covariance), and a sigmoid into 0..1 RGB. Always a valid image.
* :func:`latent` -- a code fed to a generator (any Keras model code -> image), the
  "deep generator network" prior of Nguyen et al. 2016.

Each function returns a *spec*; :func:`tfviz.synthesis.optimize` builds it for a bundle
(``spec.build(bundle, rng)``) into a :class:`Parameterization` with ``variables`` and
``image()`` (model-input space, ``[N, H, W, 3]``, differentiable).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import tensorflow as tf

from ..errors import ParamError  # noqa: F401  (the classes live in tfviz.errors)
from ..utils import TfvizError, did_you_mean

# Lucid's square root of ImageNet's colour correlation (columns: decorrelated -> RGB).
COLOR_CORRELATION_SVD_SQRT = np.asarray([[0.26, 0.09, 0.02],
                                         [0.27, 0.00, -0.05],
                                         [0.27, -0.09, 0.03]], np.float32)
COLOR_CORRELATION_NORMALIZED = COLOR_CORRELATION_SVD_SQRT / np.max(np.linalg.norm(COLOR_CORRELATION_SVD_SQRT, axis=0))


class Parameterization:
    """A built parameterization: ``variables`` to optimize and ``image()``."""
    name = "param"
    variables: list = []
    pixel_variable = None  # the variable that IS the image (pixel only) -- regularizers need it

    def image(self):
        raise NotImplementedError


def _size(bundle, size):
    if size is None:
        return tuple(int(s) for s in bundle.input_size)
    if isinstance(size, int):
        size = (size, size)
    h, w = (int(s) for s in size)
    if h < 1 or w < 1:
        raise ParamError(f"image size must be positive, got {size}")
    return h, w


# ---------------------------------------------------------------------- pixel
@dataclass
class pixel:  # noqa: N801  (a spec, used like a function: pixel(batch=4))
    """The image itself. The variable holds its float RGB grey levels (0..255, the uint8
    image's scale) whatever the model's preprocessing, so a learning rate or step size
    on it is in grey levels: an Adam step of ``lr`` or a sign step of ``s`` moves a pixel
    by ``lr`` or ``s`` grey levels on a caffe, torch, 0-1 or -1-1 model alike.
    ``image()`` is the model input (``bundle.preprocess`` of it). ``init``: uint8 (or
    float 0..255) images ``[N,H,W,3]`` (or one ``[H,W,3]``), or model-input float arrays
    with ``init_is_model_input=True``; default: mid-gray plus Gaussian noise of ``std``
    (fraction of the valid range: 0.05 is 12.75 grey levels)."""
    size: tuple | int | None = None
    batch: int = 1
    init: object = None
    std: float = 0.05
    init_is_model_input: bool = False

    def build(self, bundle, rng: np.random.Generator) -> Parameterization:
        pre = bundle.preprocessing
        if self.init is not None:
            init = np.asarray(self.init)
            if init.ndim == 3:
                init = init[None]
            if init.ndim != 4 or init.shape[-1] != 3:
                raise ParamError(f"init images must be [N,H,W,3], got shape {init.shape}")
            x = pre.to_float_rgb(init.astype(np.float32)) if self.init_is_model_input else init.astype(np.float32)
            if not np.all(np.isfinite(x)):
                raise ParamError("init images contain NaN or infinite values")
            if self.batch not in (1, len(x)):
                if len(x) != 1:
                    raise ParamError(f"{len(x)} init images for a batch of {self.batch}")
                x = np.repeat(x, self.batch, axis=0)
        else:
            h, w = _size(bundle, self.size)
            _check_batch(self.batch)
            x = 127.5 + self.std * 255.0 * rng.standard_normal((self.batch, h, w, 3)).astype(np.float32)
        return _Pixel(tf.Variable(np.asarray(x, np.float32), name="pixels"), pre)


class _Pixel(Parameterization):
    """``pixel_variable``: the image in grey levels (float RGB 0..255); ``image()``: it
    preprocessed (model input); ``assign_image(x)`` sets it from a model-input image
    (what the regularizers return)."""
    name = "pixel"

    def __init__(self, var, preprocessing):
        self.pixel_variable = var
        self.variables = [var]
        self.preprocessing = preprocessing

    def image(self):
        return self.preprocessing(self.pixel_variable)

    def assign_image(self, x):
        self.pixel_variable.assign(self.preprocessing.to_float_rgb(x))


# ---------------------------------------------------------------------- fourier
def rfft2d_freqs(h: int, w: int) -> np.ndarray:
    """Spatial frequency magnitude (cycles per pixel) of each entry of a ``[h, w//2+1]``
    real-FFT spectrum."""
    fy = np.fft.fftfreq(h)[:, None]
    fx = np.fft.rfftfreq(w)[None, :]
    return np.sqrt(fx * fx + fy * fy)


def spectrum_scale(h: int, w: int, decay_power: float = 1.0) -> np.ndarray:
    """Lucid's scale ``sqrt(h w) / max(f, 1/max(h, w))^decay_power`` per frequency."""
    f = rfft2d_freqs(h, w)
    return (np.sqrt(h * w) / np.maximum(f, 1.0 / max(h, w)) ** decay_power).astype(np.float32)


def fourier_image(spectrum, size, decay_power: float = 1.0):
    """Scaled spectrum -> image (before colour decorrelation and sigmoid).

    ``spectrum``: real and imaginary parts ``[2, N, 3, h, w//2+1]``. Returns
    ``irfft2d(scale * spectrum) / 4`` as ``[N, h, w, 3]`` (Lucid's ``fft_image``)."""
    h, w = size
    s = tf.convert_to_tensor(spectrum, tf.float32)
    scale = tf.constant(spectrum_scale(h, w, decay_power))
    spec = tf.complex(s[0] * scale, s[1] * scale)
    img = tf.signal.irfft2d(spec, fft_length=[h, w])
    return tf.transpose(img, (0, 2, 3, 1)) / 4.0


def decorrelate_colors(t):
    """``[..., 3]`` decorrelated colour -> RGB with Lucid's normalized colour matrix."""
    m = tf.constant(COLOR_CORRELATION_NORMALIZED.T)
    return tf.reshape(tf.reshape(t, [-1, 3]) @ m, tf.shape(t))


@dataclass
class fourier:  # noqa: N801
    """Olah et al. 2017: ``sigmoid(decorrelate(irfft2d(spectrum / f^decay_power) / 4))``
    as 0..1 RGB, mapped into the model's input space. ``std``: spread of the initial
    spectrum (Lucid: 0.01)."""
    size: tuple | int | None = None
    batch: int = 1
    decay_power: float = 1.0
    decorrelate: bool = True
    std: float = 0.01

    def build(self, bundle, rng: np.random.Generator) -> Parameterization:
        h, w = _size(bundle, self.size)
        _check_batch(self.batch)
        init = rng.normal(0.0, self.std, (2, self.batch, 3, h, w // 2 + 1)).astype(np.float32)
        return _Fourier(tf.Variable(init, name="spectrum"), self, bundle, (h, w))


class _Generated(Parameterization):
    """An image made from one variable by ``spec`` for ``bundle``, at ``size``."""

    def __init__(self, var, spec, bundle, size):
        self.variables = [var]
        self.spec, self.bundle, self.size = spec, bundle, size

    variable = property(lambda self: self.variables[0])


class _Fourier(_Generated):
    name = "fourier"
    spectrum = _Generated.variable

    def image(self):
        t = fourier_image(self.spectrum, self.size, self.spec.decay_power)
        if self.spec.decorrelate:
            t = decorrelate_colors(t)
        return self.bundle.preprocess(tf.nn.sigmoid(t) * 255.0)


# ---------------------------------------------------------------------- latent
@dataclass
class latent:  # noqa: N801
    """A code ``z`` fed to ``generator`` (a Keras model ``[N, d] -> [N, h, w, 3]``) whose
    outputs span ``output_range`` (``(-1, 1)`` for tanh decoders, ``(0, 1)`` for sigmoid
    ones). The image is resized to the model's input size when it differs. ``init``: a
    code ``[N, d]``; default ``std`` * standard normal."""
    generator: object
    batch: int = 1
    output_range: tuple = (-1.0, 1.0)
    std: float = 1.0
    init: object = None
    size: tuple | int | None = None

    def build(self, bundle, rng: np.random.Generator) -> Parameterization:
        gen = self.generator
        if not hasattr(gen, "inputs") or not gen.inputs:
            raise ParamError("latent(generator): generator must be a built Keras model (code -> image)")
        shape = tuple(gen.inputs[0].shape[1:])
        out = tuple(gen.outputs[0].shape[1:])
        if len(out) != 3 or out[-1] != 3:
            raise ParamError(f"the generator must output images [N,H,W,3]; it outputs {(None,) + out}")
        if any(s is None for s in shape):
            raise ParamError(f"the generator's code shape {shape} must be fully known")
        _check_batch(self.batch)
        if self.init is not None:
            z = np.asarray(self.init, np.float32).reshape((-1,) + shape)
        else:
            z = (self.std * rng.standard_normal((self.batch,) + shape)).astype(np.float32)
        return _Latent(tf.Variable(z, name="code"), self, bundle, _size(bundle, self.size))


class _Latent(_Generated):
    name = "latent"
    code = _Generated.variable

    def image(self):
        lo, hi = self.spec.output_range
        img = self.spec.generator(self.code, training=False)
        rgb = (tf.cast(img, tf.float32) - lo) / (hi - lo) * 255.0
        if tuple(rgb.shape[1:3]) != tuple(self.size):
            rgb = tf.image.resize(rgb, self.size, method="bilinear")
        return self.bundle.preprocess(rgb)


def _check_batch(batch):
    if not isinstance(batch, (int, np.integer)) or batch < 1:
        raise ParamError(f"batch must be a positive integer, got {batch!r}")


def get(param) -> object:
    """A spec from a spec or a name (``"pixel"``, ``"fourier"``)."""
    if isinstance(param, str):
        specs = {"pixel": pixel, "fourier": fourier}
        if param not in specs:
            raise ParamError(did_you_mean("parameterization", param, specs))
        return specs[param]()
    if not hasattr(param, "build"):
        raise ParamError(f"param must be 'pixel', 'fourier' or a spec such as pixel(...), fourier(...), "
                         f"latent(generator); got {type(param).__name__}")
    return param
