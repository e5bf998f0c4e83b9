"""Running trained stylization networks: :func:`stylize` (a transformer on photos of any
size, one style or a mix) and :func:`texture_noise` / :func:`generate_texture` (a
texture network at any size)."""
from __future__ import annotations

import numbers

import numpy as np

from ..images import load_image
from .layers import StylizeError


def num_styles(model) -> int:
    """How many styles a transformer network knows (1 when it has no style input)."""
    return int(model.inputs[1].shape[-1]) if len(model.inputs) > 1 else 1


def style_vector(model, style=0) -> np.ndarray:
    """``[num_styles]`` weights from a style index or ``{index: weight}`` (normalized to
    sum to 1: interpolating the conditional-norm parameters)."""
    n = num_styles(model)
    if isinstance(style, dict):
        if not style:
            raise StylizeError("the style mix is empty; give {style index: weight, ...}")
        w = np.zeros(n, np.float32)
        for k, v in style.items():
            w[_index(k, n)] += float(v)
        if not np.all(np.isfinite(w)) or not w.sum() > 0:
            raise StylizeError(f"mixing weights must sum to a positive number, got {dict(style)}")
        return w / w.sum()
    w = np.zeros(n, np.float32)
    w[_index(style, n)] = 1.0
    return w


def _index(k, n):
    if not isinstance(k, (numbers.Integral, np.integer)) or isinstance(k, bool) or not 0 <= int(k) < n:
        raise StylizeError(f"style {k!r} out of range: this network has {n} style{'s' if n > 1 else ''} "
                           f"(0..{n - 1})")
    return int(k)


def _pad4(x):
    """Reflect-pad ``[N, H, W, 3]`` to multiples of 4; returns the padded batch and (h, w)."""
    h, w = x.shape[1:3]
    ph, pw = (-h) % 4, (-w) % 4
    if ph or pw:
        mode = "reflect" if h > 1 and w > 1 else "edge"
        x = np.pad(x, [(0, 0), (0, ph), (0, pw), (0, 0)], mode=mode)
    return x, (h, w)


def stylize(model, images, style=0, *, batch_size: int = 4) -> np.ndarray | list:
    """Stylize ``images`` with a transformer network in one forward pass each.

    images: one uint8 ``[H, W, 3]`` image, a batch ``[N, H, W, 3]``, or a list of
    images of any sizes (paths and bundled names work too). style: an index, or
    ``{index: weight}`` to mix styles. Returns uint8 images of the inputs' sizes (an
    array for one image or a batch, a list for a list)."""
    if not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise StylizeError(f"batch_size must be a positive integer, got {batch_size!r}")
    single = isinstance(images, np.ndarray) and images.ndim == 3
    if isinstance(images, np.ndarray) and images.ndim == 4:
        items, as_list = list(images), False
    elif single or isinstance(images, str):
        items, as_list = [images], False
    else:
        items, as_list = list(images), True
    items = [load_image(i) for i in items]
    w = style_vector(model, style)
    out = [None] * len(items)
    by_size: dict = {}
    for i, im in enumerate(items):
        by_size.setdefault(im.shape[:2], []).append(i)
    for hw, idx in by_size.items():
        for k in range(0, len(idx), int(batch_size)):
            part = idx[k:k + int(batch_size)]
            x, (h, ww) = _pad4(np.stack([items[i] for i in part]).astype(np.float32) / 255.0)
            args = [x] if len(model.inputs) == 1 else [x, np.repeat(w[None], len(part), 0)]
            y = np.asarray(model(args if len(args) > 1 else args[0], training=False))[:, :h, :ww]
            for i, img in zip(part, y):
                out[i] = (np.clip(img, 0, 1) * 255 + 0.5).astype(np.uint8)
    if as_list:
        return out
    return out[0] if (single or isinstance(images, str)) else np.stack(out)


def texture_noise(model, size, *, seed: int = 0, batch: int = 1) -> np.ndarray:
    """Standard-normal noise ``[batch, H, W, C]`` for a texture network (``size`` is
    ``(H, W)`` or one number, a multiple of ``2^(scales-1)``)."""
    h, w = (size, size) if isinstance(size, (int, np.integer)) else (int(size[0]), int(size[1]))
    c = int(model.inputs[0].shape[-1])
    pools = [layer for layer in model.layers if type(layer).__name__ == "AveragePooling2D"]
    m = max([int(layer.pool_size[0]) for layer in pools] + [1])
    if h < 1 or w < 1 or h % m or w % m:
        raise StylizeError(f"texture size {w}x{h}: both sides must be positive multiples of {m} for this network")
    return np.random.default_rng(seed).standard_normal((int(batch), h, w, c)).astype(np.float32)


def generate_texture(model, size, *, seed: int = 0, batch: int = 1) -> np.ndarray:
    """uint8 textures ``[batch, H, W, 3]`` from a texture network."""
    y = np.asarray(model(texture_noise(model, size, seed=seed, batch=batch), training=False))
    return (np.clip(y, 0, 1) * 255 + 0.5).astype(np.uint8)
