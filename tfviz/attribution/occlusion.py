"""Occlusion sensitivity (Zeiler & Fergus 2014): slide a patch over the image and record
how much the target's score drops at each position.

All occluded copies are made inside one ``tf.function`` from the image, the fill and the
patch positions (a boolean mask built by broadcasting), many copies per forward batch --
no Python loop over patches beyond batching, and no copy of the image per position in
host memory. Copies of several images share batches.
"""
from __future__ import annotations

import numpy as np

from .core import _fn_cache, group_by_head, padded_batches, run, selection, substitute, target_scores
from .errors import PatchSizeError, StrideError

DEFAULT_OCCLUSION_BATCH = 64


def _pair(v, what, error):
    if isinstance(v, (tuple, list)) and len(v) == 2:
        a, b = v
    else:
        a = b = v
    for t in (a, b):
        if isinstance(t, bool) or not isinstance(t, (int, np.integer)):
            raise error(f"{what} must be a positive integer or a pair (height, width), got {v!r}")
    return int(a), int(b)


def positions(size: int, patch: int, stride: int) -> np.ndarray:
    """Patch offsets along one axis: every ``stride`` pixels, plus one flush with the
    far edge so every pixel is covered."""
    pos = list(range(0, size - patch + 1, stride))
    if pos[-1] != size - patch:
        pos.append(size - patch)
    return np.asarray(pos, np.int32)


def check_patch(h: int, w: int, patch, stride):
    """Validated ``(ph, pw), (sh, sw)``; defaults: patch 1/8 of the smaller side,
    stride half the patch."""
    if patch is None:
        patch = max(1, min(h, w) // 8)
    ph, pw = _pair(patch, "patch", PatchSizeError)
    if ph <= 0 or pw <= 0:
        raise PatchSizeError(f"patch must be positive, got {patch!r}")
    if ph > h or pw > w:
        raise PatchSizeError(f"patch {ph}x{pw} is larger than the image {h}x{w}; use a patch of at most {h}x{w}")
    if stride is None:
        stride = (max(1, ph // 2), max(1, pw // 2))
    sh, sw = _pair(stride, "stride", StrideError)
    if sh <= 0 or sw <= 0:
        raise StrideError(f"stride must be a positive integer, got {stride!r}")
    return (ph, pw), (sh, sw)


def _occlusion_function(bundle, layer, probability):
    def build():
        import tensorflow as tf
        from .core import head_scores
        from .graph import head
        model = head(bundle, layer)

        @tf.function
        def tfviz_occlusion(x, fill, img, tops, lefts, ph, pw, idx, ys, xs):
            h, w = tf.shape(x)[1], tf.shape(x)[2]
            rows = tf.range(h)[None, :]
            cols = tf.range(w)[None, :]
            rm = (rows >= tops[:, None]) & (rows < tops[:, None] + ph)     # [B, H]
            cm = (cols >= lefts[:, None]) & (cols < lefts[:, None] + pw)   # [B, W]
            m = tf.cast(rm[:, :, None] & cm[:, None, :], x.dtype)[..., None]
            xb = tf.gather(x, img) * (1.0 - m) + tf.gather(fill, img) * m
            return head_scores(model, xb, layer, probability, idx, ys, xs)
        return tfviz_occlusion
    return _fn_cache(bundle, ("occlusion", layer, bool(probability)), build)


def _occlusion_x(bundle, x, targets, patch=None, stride=None, fill="mean", batch_size=None, score="logit",
                 resample=True):
    import tensorflow as tf
    from .errors import AttributionError
    if score not in ("logit", "probability"):
        raise AttributionError(f"score must be 'logit' or 'probability', got {score!r}")
    n, h, w, _ = x.shape
    (ph, pw), (sh, sw) = check_patch(h, w, patch, stride)
    tops, lefts = positions(h, ph, sh), positions(w, pw, sw)
    ny, nx = len(tops), len(lefts)
    grid_t = np.repeat(tops, nx)
    grid_l = np.tile(lefts, ny)
    p = ny * nx
    prob = score == "probability"
    base = target_scores(bundle, x, targets, probability=prob)
    xt = tf.constant(x)
    ft = tf.constant(substitute(bundle, x, fill))
    drops = np.zeros((n, p), np.float32)
    bs = int(batch_size or DEFAULT_OCCLUSION_BATCH)
    for layer, ids in group_by_head(targets).items():
        f = _occlusion_function(bundle, layer, prob)
        idx, ys, xs = selection([targets[i] for i in ids])
        # items: (image k of this group, position j), image-major
        total = len(ids) * p
        for it, real in padded_batches(total, bs):
            k, j = it // p, it % p
            img = ids[k].astype(np.int32)
            sc = f(xt, ft, img, grid_t[j], grid_l[j], np.int32(ph), np.int32(pw), idx[k], ys[k], xs[k]).numpy()
            drops[img[:real], j[:real]] = base[img[:real]] - sc[:real]
    from .core import check_finite
    check_finite(drops, "occlusion scores", targets)
    grid = drops.reshape(n, ny, nx)
    if not resample:
        return grid
    # Each pixel: the mean drop over the patches that cover it.
    r = ((np.arange(h)[None, :] >= tops[:, None]) & (np.arange(h)[None, :] < tops[:, None] + ph)).astype(np.float32)
    c = ((np.arange(w)[None, :] >= lefts[:, None]) & (np.arange(w)[None, :] < lefts[:, None] + pw)).astype(np.float32)
    num = np.einsum("iy,nij,jx->nyx", r, grid, c, optimize=True)
    den = np.einsum("iy,jx->yx", r, c)
    return (num / den[None]).astype(np.float32)


def occlusion(bundle, images, target=None, *, patch=None, stride=None, fill="mean", batch_size: int | None = None,
              score: str = "logit", resample: bool = True) -> np.ndarray:
    """Occlusion map ``[N, H, W]``: the drop of the target's score (``score="logit"``, or
    ``"probability"``) when a ``patch`` (int or (h, w); default 1/8 of the image) filled
    with ``fill`` covers each position, every ``stride`` pixels (default half the patch).
    Each pixel gets the mean drop of the patches covering it. Positive: the region
    supports the target.

    ``fill``: ``"mean"`` (each image's mean color, default), ``"zero"``, ``"gray"``,
    ``"black"``, ``"blur"``, a gray level or RGB triple 0..255 (see
    :func:`tfviz.attribution.core.substitute`). ``batch_size``: occluded copies per
    forward pass (default 64). ``resample=False`` returns the raw ``[N, rows, cols]``
    grid of drops, one per patch position."""
    return run(_occlusion_x, bundle, images, target, patch=patch, stride=stride, fill=fill, batch_size=batch_size,
               score=score, resample=resample)


occlusion._on_inputs = _occlusion_x
