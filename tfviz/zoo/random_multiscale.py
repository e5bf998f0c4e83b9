"""random_multiscale: one convolutional layer of random filters of several sizes -- a
texture loss network with no training and no weights file.

Ustyuzhaninov, Brendel, Gatys and Bethge (2017, "What does it take to generate natural
textures?", ICLR) show that Gram-matrix texture synthesis (Gatys et al. 2015) does not
need a trained network: a single convolutional layer of *random* filters of several sizes
(3, 5, 7, 11, 15, 23, 37 and 55 pixels, 128 each), followed by a ReLU, with zero-mean
filters and a mean-subtracted input, makes textures that rival VGG's. Large filters are
what matters: they see the long-range structure a trained network reaches only deep down.

This module builds that network for tfviz (``load_model("random_multiscale")``,
``tfviz texture gravel --model random_multiscale``), with these choices:

* **Weights**: ``numpy.random.default_rng(seed)`` standard normal draws, one
  ``size x size`` slice per filter and input channel, each slice made zero-mean (so the
  whole filter is zero-mean too, and a flat colour of any hue gives no response), then
  scaled by ``sqrt(2 / (3 (k^2 - 1)))``: a filter's squared weights sum to 2 on average
  (He et al.'s gain for ReLU, after the centring), so white noise of variance ``s^2``
  gives responses of variance ``2 s^2`` at every kernel size. On natural images the
  pre-ReLU responses then have comparable magnitude at every scale -- standard deviations
  0.11-0.18 on gravel, 0.09-0.27 on mosaic, 0.06-0.13 on brick across the eight sizes
  (the images' own: 0.15, 0.25, 0.10) -- while white noise, which averaging flattens,
  falls from 0.4 to 0.05 on the 8x grid. The texture loss normalizes each layer's Gram
  term anyway.
* **Colour** (not in the paper): zero-mean filters cannot see an image's mean colour, so
  the synthesis kept the mid-grey of its starting noise whatever the texture (mosaic,
  whose mean is (105, 88, 67) of 255, came out (126, 128, 127)). A ninth "size", 1 px:
  8 random colour filters (not centred: a centred 1 x 1 filter is zero; scaled by
  ``sqrt(2 / 3)``), ``ReLU(w . (x - 0.5))``, whose Gram matrix holds the colour
  distribution. With it the mean colours match (mosaic (111, 86, 72), strokes (96, 114,
  142) against (93, 115, 141)), for 0.06x lite0's step.
* **Mean**: 0.5 (mid grey) is subtracted from the 0..1 image (:class:`SubtractMean`), not
  ImageNet's means: nothing here was trained on ImageNet, and mid grey is the centre of
  the colour cube, so the colour filters' ReLUs split colours through it (dark from
  light, warm from cool) rather than through black, where a filter with all-positive
  weights would never switch off. With zero-mean slices and mirrored borders no constant
  offset changes the spatial filters' responses: the mean matters for the colour filters,
  and for the borders only with ``padding="same"`` (there it is the colour of the zero
  padding, in image terms).
* **Cost**: the paper's layer (1,024 filters, up to 55 x 55, at full resolution) costs
  about 270 GFLOP for one forward pass of a 256 x 256 image -- minutes per step on a
  laptop CPU. Here sizes up to 7 run on the image itself; a larger size ``s`` runs on the
  image averaged over ``d x d`` blocks (d = 2, 4 or 8: the coarsest that keeps 5 taps a
  side) with a ``k x k`` kernel, ``k * d`` about ``s``: 11 -> 5 on 2x, 15 -> 7 on 2x,
  23 -> 5 on 4x, 37 -> 9 on 4x, 55 -> 7 on 8x (:func:`plan`). Their ReLU maps stay at the
  coarse size: the Gram matrix (divided by the number of positions) of a map enlarged by
  an integer factor is the map's own, so enlarging would only cost time. And the filter
  counts fall where pixels are many (:data:`FILTERS`): 8 colour, 32, 16, 16 at full
  resolution, 32, 32 on 2x, 128 on 4x and 8x -- 520 in all. One forward and backward pass
  of the texture loss then costs about 1.9x efficientnet_lite0's (its texture layers
  ``stem_relu ... block5a_expand_relu``) at 256 x 256 on 2 CPU cores, 1.5-2.3x from run
  to run (``bench/bench_random_multiscale.py``); a whole ``synthesize_texture`` step at
  128 px (L-BFGS's own work included), 1.3-1.4x lite0's. The full-resolution 3 to 7 px sizes cost half of it: 32
  filters of 3 px alone cost 0.37x lite0, 128 would cost 3x. The large sizes lose their
  high frequencies to the averaging; the small full-resolution sizes keep those, locally.
* **Borders**: every convolution pads by mirroring the map (NumPy's "symmetric": the edge
  pixel repeated; :class:`MirrorPad`), not with zeros. With zero padding the large
  filters see a grey frame that, on images not much larger than the filters, makes up a
  large share of the Gram statistics; the synthesis then paints diagonal streaks and
  dark and bright corners to match it (``padding="same"`` builds that variant). Mirroring
  keeps border windows image-like: a flat image gives exactly zero everywhere.
* **Output**: each size's ReLU (``scale1_relu``, ``scale3_relu``, ... ``scale55_relu``,
  named by the size in image pixels) is averaged over positions (``scale3_mean`` ...) and
  concatenated (``features``), a ``[N, 520]`` vector: what tfviz's model checks accept.
  The texture, style and inversion recipes read the ReLU maps
  (``tfviz.synthesis.LOSS_NETWORKS["random_multiscale"]``). The model takes images of
  any size, one pixel and up.

The per-size Gram matrices of tfviz's texture loss leave out the paper's cross-scale
correlations (one Gram matrix over all 1,024 maps at full resolution). At 128 px the
textures keep their sources' colours, edges and grain but their largest structures come
out smaller than the source's (gravel's stones, mosaic's cells). Nothing is downloaded or
cached: the same seed gives the same weights, built in a fraction of a second.
"""
from __future__ import annotations

import keras
import numpy as np
from keras import layers

from ..errors import OptionError

MEAN = 0.5              # subtracted from the 0..1 image (see above: mid grey)
SIZES = (1, 3, 5, 7, 11, 15, 23, 37, 55)            # the paper's, in image pixels, and 1: colour
FILTERS = (8, 32, 16, 16, 32, 32, 128, 128, 128)    # per size: few where pixels are many
GRID_FILTERS = {1: 16, 2: 32, 4: 128, 8: 128}   # other sizes' default, by averaging factor
FULL_RESOLUTION = 7     # sizes up to this run on the image itself
MIN_TAPS = 5            # a kernel on an averaged image keeps at least this many taps a side
FACTORS = (1, 2, 4, 8)  # the averaging factors


def plan(size: int) -> tuple[int, int]:
    """``(kernel, factor)`` for a filter of ``size`` image pixels (odd): the image averaged
    over ``factor x factor`` blocks, then a ``kernel x kernel`` convolution (odd) with
    ``kernel * factor`` about ``size``. Sizes up to :data:`FULL_RESOLUTION` run on the
    image (factor 1); larger ones on the coarsest grid that keeps :data:`MIN_TAPS` taps a
    side: 11 -> (5, 2), 15 -> (7, 2), 23 -> (5, 4), 37 -> (9, 4), 55 -> (7, 8)."""
    size = int(size)
    if size < 1 or size % 2 == 0:
        raise OptionError(f"filter sizes are positive odd numbers of pixels, got {size}")
    if size <= FULL_RESOLUTION:
        return size, 1
    factor = max(d for d in FACTORS if size / d >= MIN_TAPS)
    k = size / factor
    kernel = min((2 * i + 1 for i in range(int(k) + 2)), key=lambda o: (abs(o - k), o))
    return kernel, factor


@keras.saving.register_keras_serializable(package="tfviz")
class SubtractMean(keras.layers.Layer):
    """``x - mean``, one fixed number for every channel."""

    def __init__(self, mean=MEAN, **kwargs):
        super().__init__(**kwargs)
        self.mean = float(mean)

    def call(self, x):
        return x - self.mean

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "mean": self.mean}


def _mirror_index(n, pad):
    """Indices ``-pad .. n + pad - 1`` folded into ``0 .. n - 1`` like NumPy's "symmetric"
    padding (..., 1, 0 | 0, 1, ..., n - 1 | n - 1, n - 2, ...), for any ``pad``."""
    i = keras.ops.arange(-pad, n + pad)
    m = keras.ops.mod(i, 2 * n)
    return keras.ops.where(m < n, m, 2 * n - 1 - m)


@keras.saving.register_keras_serializable(package="tfviz")
class MirrorPad(keras.layers.Layer):
    """Pads ``[N, H, W, C]`` by ``pad`` on every side with the map's mirror image, the
    edge row or column repeated (NumPy's "symmetric"), by gathering rows and columns: any
    ``pad``, even larger than the map, works."""

    def __init__(self, pad=1, **kwargs):
        super().__init__(**kwargs)
        self.pad = int(pad)

    def call(self, x):
        shape = keras.ops.shape(x)
        x = keras.ops.take(x, _mirror_index(shape[1], self.pad), axis=1)
        return keras.ops.take(x, _mirror_index(shape[2], self.pad), axis=2)

    def compute_output_shape(self, s):
        grow = lambda d: None if d is None else d + 2 * self.pad
        return (s[0], grow(s[1]), grow(s[2]), s[3])

    def get_config(self):
        return {**super().get_config(), "pad": self.pad}


def random_kernel(rng, kernel: int, filters: int, channels: int = 3) -> np.ndarray:
    """``[kernel, kernel, channels, filters]`` float32: standard normal draws, each
    filter's ``kernel x kernel`` slice of each input channel made zero-mean, then scaled
    by ``sqrt(2 / (channels (kernel^2 - 1)))`` so that a filter's squared weights sum to 2
    on average (He et al.'s ReLU gain, the centring's lost degree of freedom made up).
    A 1 x 1 kernel (a colour filter) is not centred -- it would be zero -- and is scaled by
    ``sqrt(2 / channels)``."""
    w = rng.standard_normal((kernel, kernel, channels, filters))
    if kernel > 1:
        w -= w.mean(axis=(0, 1), keepdims=True)
        w *= np.sqrt(2.0 / (channels * (kernel * kernel - 1)))
    else:
        w *= np.sqrt(2.0 / channels)
    return w.astype(np.float32)


def _counts(sizes, filters) -> list[int]:
    if filters is None:
        table = dict(zip(SIZES, FILTERS))
        counts = [table.get(s) or GRID_FILTERS[plan(s)[1]] for s in sizes]
    elif np.isscalar(filters):
        counts = [int(filters)] * len(sizes)
    else:
        counts = [int(f) for f in filters]
        if len(counts) != len(sizes):
            raise OptionError(f"{len(counts)} filter counts for {len(sizes)} sizes")
    if any(c < 1 for c in counts):
        raise OptionError(f"filter counts must be positive, got {counts}")
    return counts


def build(seed: int = 0, sizes=SIZES, filters=None, mean: float = MEAN, padding: str = "mirror"):
    """The network: ``sizes`` (odd, image pixels, each once) with ``filters`` filters
    each (one number, or one per size; default :data:`FILTERS` for the paper's sizes, and
    :data:`GRID_FILTERS` by averaging factor for others), weights drawn from
    ``numpy.random.default_rng(seed)`` size by size in the order given (:func:`random_kernel`).
    ``padding``: ``"mirror"`` (default) or ``"same"`` (zeros, TensorFlow's)."""
    sizes = [int(s) for s in sizes]
    if not sizes or len(set(sizes)) != len(sizes):
        raise OptionError(f"sizes must be distinct odd numbers of pixels, got {sizes}")
    if padding not in ("mirror", "same"):
        raise OptionError(f"padding must be 'mirror' or 'same', got {padding!r}")
    counts = _counts(sizes, filters)
    plans = [plan(s) for s in sizes]
    rng = np.random.default_rng(seed)
    inp = keras.Input((None, None, 3), name="image")
    x = SubtractMean(mean, name="subtract_mean")(inp)
    grids, means = {1: x}, []
    for size, count, (kernel, factor) in zip(sizes, counts, plans):
        if factor not in grids:
            grids[factor] = layers.AveragePooling2D(factor, padding="same", name=f"average{factor}")(x)
        h = grids[factor]
        if padding == "mirror" and kernel > 1:
            h = MirrorPad(kernel // 2, name=f"scale{size}_pad")(h)
        conv = layers.Conv2D(count, kernel, padding="valid" if padding == "mirror" else "same", use_bias=False,
                             name=f"scale{size}_conv")
        h = conv(h)
        conv.set_weights([random_kernel(rng, kernel, count)])
        h = layers.ReLU(name=f"scale{size}_relu")(h)
        means.append(layers.GlobalAveragePooling2D(name=f"scale{size}_mean")(h))
    out = means[0] if len(means) == 1 else layers.Concatenate(name="features")(means)
    return keras.Model(inp, out, name="random_multiscale")


def load(seed: int = 0, **kwargs):
    """The network of ``seed`` (same seed, same weights; nothing is read or cached).
    ``kwargs``: :func:`build`'s ``sizes``, ``filters``, ``mean``, ``padding``."""
    return build(seed=seed, **kwargs)
