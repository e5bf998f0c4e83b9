"""Token layers of vision transformers on their patch grid.

A transformer's token layer has output ``[N, T, D]``: ``T`` tokens, ``extra`` leading ones
(a class token, a distillation token, registers) and then a ``gh`` x ``gw`` grid of patch
tokens, row by row, as a patchify convolution followed by a reshape leaves them. Methods
that show maps (the CAM family, activation grids) put the patch tokens back on that grid,
as pytorch-grad-cam's ``reshape_transform`` does; the grid is found from the token count
and the input size.
"""
from __future__ import annotations

import tensorflow as tf

from ..errors import NoSpatialLayerError
from .layers import output_shape

#: Leading tokens a token layer may carry beyond its patch grid: a class token, a
#: distillation token, registers (Darcet et al. 2024 use up to 16).
MAX_EXTRA_TOKENS = 16


def _rounded_grids(h: int, w: int) -> set:
    """The ``(gh, gw)`` a stride ``s`` cuts an ``h`` x ``w`` input into, both sides rounded
    the same way (down: patches that do not overhang; up: ``"same"`` padding)."""
    out = set()
    for s in range(1, max(h, w) + 1):
        out.add((h // s, w // s))
        out.add((-(-h // s), -(-w // s)))
    return out


def find_grid(tokens: int, hw) -> tuple | None:
    """``(extra, gh, gw)``: a token layer's ``tokens`` are ``extra`` leading tokens (class,
    registers) then a ``gh`` x ``gw`` patch grid, row by row, of an input of size ``hw``;
    None when no grid fits. The grid has the input's aspect ratio (exactly, or as a stride
    rounds both sides) and the fewest extra tokens (at most :data:`MAX_EXTRA_TOKENS`)."""
    h, w = int(hw[0]), int(hw[1])
    rounded = _rounded_grids(h, w)
    for extra in range(min(MAX_EXTRA_TOKENS, int(tokens) - 1) + 1):
        n = int(tokens) - extra
        grids = [(gh, n // gh) for gh in range(1, min(n, h) + 1) if n % gh == 0 and n // gh <= w]
        fits = [g for g in grids if g[0] * w == g[1] * h or g in rounded]
        if fits:
            return (extra,) + min(fits, key=lambda g: abs(g[0] * w - g[1] * h))
    return None


def layer_grid(shape, hw) -> tuple | None:
    """``(extra, gh, gw)`` when ``shape`` (a layer's output shape) is a token layer
    ``[N, T, D]`` whose tokens fit a patch grid of an input of size ``hw``; else None."""
    if shape is None or len(shape) != 3 or shape[1] is None:
        return None
    return find_grid(shape[1], hw)


def is_token_layer(bundle, name: str) -> bool:
    """Whether ``bundle``'s layer ``name`` is a token layer ``[N, T, D]`` whose tokens fit
    a patch grid of the model's input (unknown names list the valid ones)."""
    return layer_grid(output_shape(bundle.layer(name)), bundle.input_size) is not None


def token_grid(tokens: int, hw) -> tuple:
    """:func:`find_grid`, or :class:`NoSpatialLayerError` naming the count and the input size."""
    grid = find_grid(tokens, hw)
    if grid is None:
        raise NoSpatialLayerError(
            f"{tokens} tokens fit no patch grid of the {int(hw[0])}x{int(hw[1])} input (a grid with the input's "
            f"aspect ratio, after at most {MAX_EXTRA_TOKENS} class or register tokens); pick a spatial "
            f"[N, H, W, C] layer or a token layer of the vision transformer")
    return grid


def as_grid(a, hw):
    """A layer's activations as a spatial map ``[N, h, w, C]``: 4-D ones as they are; tokens
    ``[N, T, D]`` on their patch grid (:func:`token_grid` for an input of size ``hw``),
    extra leading tokens dropped. Token ``extra + k`` lands at row ``k // gw``, column
    ``k % gw``."""
    if len(a.shape) != 3:
        return a
    extra, gh, gw = token_grid(a.shape[1], hw)
    return tf.reshape(a[:, extra:], [-1, gh, gw, a.shape[-1]])
