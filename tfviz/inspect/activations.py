"""Activation maps (Yosinski 2015, "deep visualization toolbox"): every channel of a
layer for one image, tiled, each map normalized, the strongest channels first."""
from __future__ import annotations

import numpy as np
import tensorflow as tf

from .. import images as _images
from ..models.tokens import as_grid, is_token_layer
from ..utils import OptionError

SORT_BY = ("mean", "max")


def layer_names_arg(layers) -> list[str]:
    return [layers] if isinstance(layers, str) else list(layers)


def forward_fn(bundle, layers):
    """A cached ``tf.function``: uint8 images ``[B, H, W, 3]`` -> the outputs of
    ``layers`` (a list), in one forward pass; traced once per batch shape."""
    names = tuple(layer_names_arg(layers))
    def build():
        model = bundle.features(list(names))
        pre = bundle.preprocessing

        @tf.function(autograph=False, reduce_retracing=True)
        def fn(images):
            out = model(pre(images), training=False)
            return list(out) if isinstance(out, (list, tuple)) else [out]

        return fn
    return bundle.programs.get("inspect.forward", names, (), build)


def as_model_images(bundle, image) -> np.ndarray:
    """One image (path, array, PIL) or a batch as uint8 ``[N, H, W, 3]`` at the model's size."""
    if isinstance(image, np.ndarray) and image.ndim == 4:
        return bundle.load_images(image)
    return bundle.load_images([image])


def activation_maps(bundle, image, layer) -> np.ndarray:
    """The float32 maps ``[h, w, C]`` of spatial ``layer`` for one image (resized to the
    model's input size); a vision transformer's token layer ``[N, T, D]`` on its patch grid
    (:mod:`tfviz.models.tokens`). Other layers raise, listing the spatial ones."""
    if not is_token_layer(bundle, layer):
        bundle.spatial_layer(layer)
    batch = as_model_images(bundle, image)[:1]
    return np.asarray(as_grid(forward_fn(bundle, [layer])(batch)[0], bundle.input_size))[0]


def channel_order(maps: np.ndarray, sort: bool = True, by: str = "mean") -> np.ndarray:
    """Channel indices, strongest first (by mean or max activation) when ``sort``."""
    if by not in SORT_BY:
        raise OptionError(f"sort_by must be one of {SORT_BY}, not {by!r}")
    if not sort:
        return np.arange(maps.shape[-1])
    strength = maps.reshape(-1, maps.shape[-1])
    strength = strength.mean(0) if by == "mean" else strength.max(0)
    return np.argsort(-strength, kind="stable")


def activation_grid(bundle, image, layer, sort: bool = True, limit: int | None = None, scale: str = "tile",
                    sort_by: str = "mean", upsample: int | None = None, gap: int = 1,
                    cmap: str | None = None) -> _images.Picture:
    """Every channel's map of ``layer`` for ``image`` tiled into one uint8 RGB picture.

    ``sort``: strongest channels first (``sort_by`` ``"mean"`` or ``"max"`` activation);
    ``limit``: show only the first ``limit`` channels; ``scale``: ``"tile"`` normalizes
    each map to 0..255 on its own, ``"shared"`` uses one scale for all (so weak channels
    look weak); ``cmap``: a :data:`tfviz.images.COLORMAPS` name, else grayscale;
    ``upsample``: nearest-neighbour factor (default: maps become at least 32 pixels)."""
    if scale not in ("tile", "shared"):
        raise OptionError(f"scale must be 'tile' or 'shared', not {scale!r}")
    maps = activation_maps(bundle, image, layer)
    order = channel_order(maps, sort, sort_by)
    if limit is not None:
        if limit < 1:
            raise OptionError("limit must be >= 1")
        order = order[:limit]
    sel = np.transpose(maps[..., order], (2, 0, 1))  # [C, h, w]
    if scale == "shared":
        lo, hi = float(sel.min()), float(sel.max())
        tiles = [_images.to_uint8(m, lo, hi) for m in sel]
    else:
        tiles = [_images.to_uint8(m) for m in sel]
    tiles = np.stack(tiles)
    if cmap:
        tiles = np.stack([_images.colormap(t, cmap, 0, 255) for t in tiles])
    else:
        tiles = np.repeat(tiles[..., None], 3, axis=-1)
    h = max(tiles.shape[1:3])
    tiles = _images.upsample_nearest(tiles, upsample or max(1, -(-32 // h)))
    return _images.tile(tiles, gap=gap)


__all__ = ["activation_grid", "activation_maps", "channel_order", "forward_fn"]
