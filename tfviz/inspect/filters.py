"""Filter grids: a convolution layer's kernels as one tiled picture (Krizhevsky 2012).

First layer (3 input channels): one RGB tile per output filter. Deeper layers: one
grayscale tile per (output, input) slice (``mode="channels"``: a row per output filter, a
column per input channel), or the mean over inputs (``mode="mean"``). Depthwise kernels
have one input slice per output channel; grouped convolutions show each output's own
group. Each tile is min-max rescaled to 0..255 on its own (``scale="tile"``) or with one
scale for the whole layer (``scale="shared"``); biases are not shown. Tiles are enlarged
by nearest-neighbour ``upsample`` so a 3x3 kernel is visible.
"""
from __future__ import annotations

import keras
import numpy as np

from .. import images as _images
from ..models import is_conv, iter_layers
from ..utils import LayerKindError, ModelError, OptionError, names_hint

MODES = ("rgb", "channels", "mean")
SCALES = ("tile", "shared")


def _conv_layers(bundle) -> list:
    return [(p, layer) for p, layer, _ in iter_layers(bundle.model)
            if is_conv(layer) and len(getattr(layer, "kernel_size", ())) == 2]


def conv_kernel(bundle, layer=None):
    """``(layer, kernel)``: the spatial kernel ``[kh, kw, in, out]`` of a 2-D convolution
    (the first one when ``layer`` is None). Depthwise ``[kh, kw, C, m]`` kernels are
    returned as ``[kh, kw, 1, C*m]`` (output ``c*m + j`` sees input ``c`` only); for
    separable convolutions the depthwise part is returned (the pointwise part is 1x1)."""
    convs = _conv_layers(bundle)
    if not convs:
        raise ModelError(f"model {bundle.name!r} has no 2-D convolution layers")
    if layer is None:
        lay = convs[0][1]
    else:
        lay = bundle.layer(layer)
        if all(lay is not c for _, c in convs):
            raise LayerKindError(f"layer {lay.name!r} ({type(lay).__name__}) is not a 2-D convolution; "
                                    "convolution layers: " + names_hint(lay.name, [p for p, _ in convs],
                                                                        bundle.list_hint("layers", " --conv"),
                                                                        noun="convolution layers"))
    if isinstance(lay, keras.layers.SeparableConv2D):
        k = np.asarray(lay.depthwise_kernel)
    else:
        k = np.asarray(lay.kernel)
    if isinstance(lay, (keras.layers.DepthwiseConv2D, keras.layers.SeparableConv2D)):
        kh, kw, c, m = k.shape
        k = k.reshape(kh, kw, 1, c * m)
    return lay, k.astype(np.float32)


def filter_tiles(kernel: np.ndarray, mode: str = "rgb", scale: str = "tile") -> np.ndarray:
    """The tiles of a filter grid before layout: uint8 ``[T, kh, kw, 3]`` in order
    (``rgb``/``mean``: one per output filter; ``channels``: output-major, input-minor)."""
    kh, kw, cin, cout = kernel.shape
    if mode not in MODES:
        raise OptionError(f"mode must be one of {MODES}, not {mode!r}")
    if scale not in SCALES:
        raise OptionError(f"scale must be one of {SCALES}, not {scale!r}")
    if mode == "rgb":
        if cin != 3:
            raise ModelError(f"mode='rgb' needs a kernel with 3 input channels (a first layer); this one has "
                             f"{cin}: use mode='channels' or mode='mean'")
        tiles = np.transpose(kernel, (3, 0, 1, 2))                      # [out, kh, kw, 3]
    elif mode == "mean":
        tiles = np.transpose(kernel.mean(axis=2), (2, 0, 1))[..., None]  # [out, kh, kw, 1]
    else:
        tiles = np.transpose(kernel, (3, 2, 0, 1)).reshape(cout * cin, kh, kw)[..., None]
    if scale == "shared":
        out = _images.to_uint8(tiles)
    else:
        out = np.stack([_images.to_uint8(t) for t in tiles])
    return np.repeat(out, 3, axis=-1) if out.shape[-1] == 1 else out


def filter_grid(bundle, layer=None, mode: str | None = None, scale: str = "tile", upsample: int | None = None,
                gap: int = 1, limit: int | None = None) -> _images.Picture:
    """The kernels of ``layer`` (default: the first convolution) tiled into one uint8 RGB
    image. ``mode``: ``"rgb"`` (default for 3-channel inputs), ``"channels"``, or
    ``"mean"`` (default otherwise). ``upsample``: integer nearest-neighbour factor per
    tile (default: tiles become at least 24 pixels). ``limit``: show only the first
    ``limit`` output filters. Tiles sit in a grid with ``gap`` white pixels between them;
    ``channels`` mode puts one output filter per row."""
    _, kernel = conv_kernel(bundle, layer)
    kh, kw, cin, cout = kernel.shape
    if mode is None:
        mode = "rgb" if cin == 3 else "mean"
    if limit is not None:
        if limit < 1:
            raise OptionError("limit must be >= 1")
        kernel = kernel[..., :limit]
    tiles = filter_tiles(kernel, mode, scale)
    if upsample is None:
        upsample = max(1, -(-24 // max(kh, kw)))
    if upsample < 1:
        raise OptionError("upsample must be >= 1")
    tiles = _images.upsample_nearest(tiles, int(upsample))
    cols = cin if mode == "channels" else int(np.ceil(np.sqrt(len(tiles))))
    return _images.tile(tiles, cols=cols, gap=gap)


__all__ = ["filter_grid", "filter_tiles", "conv_kernel"]
