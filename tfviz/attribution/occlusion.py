"""Occlusion sensitivity (Zeiler & Fergus 2014): slide a patch over the image and record
how much the target's score drops at each position.

All occluded copies are made inside one ``tf.function`` from the image, the fill and the
patch positions (a boolean mask built by broadcasting), many copies per forward batch --
no Python loop over patches beyond batching, and no copy of the image per position in
host memory. Copies of several images share batches.
"""
from __future__ import annotations

import numpy as np

from . import incremental as inc
from .core import group_by_head, padded_batches, run, selection, substitute, target_scores
from .patch_grid import check_patch, positions

DEFAULT_OCCLUSION_BATCH = 64


def _occlusion_function(bundle, layer, probability):
    def build():
        import tensorflow as tf
        from .core import head_scores
        from .graph import head
        model = head(bundle, layer)

        @tf.function(autograph=False)
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
    return bundle.programs.get("attribution.occlusion", layer, (bool(probability),), build)


def _check_inference(inference):
    from .errors import AttributionError
    if not isinstance(inference, str) or inference.strip().lower() not in inc.INFERENCE_MODES:
        raise AttributionError(f"inference must be one of {', '.join(map(repr, inc.INFERENCE_MODES))}, "
                               f"got {inference!r}")
    return inference.strip().lower()


def _warn_fallback(bundle, mode, reason):
    """One ``UserWarning`` per model and reason: incremental inference is not possible."""
    import warnings
    seen = bundle.programs.get("attribution.incremental_warned", build=set)  # reasons already warned about
    if reason in seen:
        return
    seen.add(reason)
    warnings.warn(f"occlusion: inference={mode!r} is not possible for model {bundle.name!r} ({reason}); "
                  f"falling back to full re-inference (pass inference='full' to silence this)", UserWarning,
                  stacklevel=4)


def _incremental_function(bundle, layer, probability, plan):
    """``(cache_fn(x [1, H, W, 3]) -> caches, score_fn(caches, fill_flat, ti, li, idx, ys, xs) -> scores)``."""
    def build():
        import tensorflow as tf
        from .core import select_score

        @tf.function(autograph=False)  # a Python loop over layers, unrolled: nothing to convert
        def tfviz_occlusion_cache(x):
            return inc.run_cache(plan, x)

        @tf.function(autograph=False)
        def tfviz_occlusion_incremental(caches, fill_flat, ti, li, idx, ys, xs):
            out = inc.run_incremental(plan, caches, fill_flat, ti, li)
            if probability and layer is None:
                out = tf.nn.softmax(out)
            return select_score(out, idx, ys, xs)
        return tfviz_occlusion_cache, tfviz_occlusion_incremental
    return bundle.programs.get("attribution.occlusion_incremental", layer, (bool(probability), id(plan)), build)


def _drops_full(bundle, xt, ft, layer, prob, ids, idx, ys, xs, grid_t, grid_l, ph, pw, base, drops, bs, sel=None):
    """Fill ``drops[ids, positions]`` by full re-inference of every occluded copy."""
    f = _occlusion_function(bundle, layer, prob)
    p = len(grid_t)
    sel = np.arange(p) if sel is None else sel
    q = len(sel)
    total = len(ids) * q
    for it, real in padded_batches(total, bs):
        k, j = it // q, sel[it % q]
        img = ids[k].astype(np.int32)
        sc = f(xt, ft, img, grid_t[j], grid_l[j], np.int32(ph), np.int32(pw), idx[k], ys[k], xs[k]).numpy()
        drops[img[:real], j[:real]] = base[img[:real]] - sc[:real]


def _drops_incremental(bundle, x, fill, layer, prob, plan, ids, idx, ys, xs, nx, base, drops, bs, sel=None):
    """Fill ``drops[ids, positions]`` incrementally (per image: its maps once, then
    batches of positions)."""
    import tensorflow as tf
    cache_fn, score_fn = _incremental_function(bundle, layer, prob, plan)
    p = drops.shape[1]
    sel = np.arange(p) if sel is None else np.asarray(sel)
    for k, i in enumerate(ids):
        caches = cache_fn(tf.constant(x[i:i + 1]))
        ff = tf.constant(fill[i].reshape(-1, fill.shape[-1]))
        for it, real in padded_batches(len(sel), bs):
            j = sel[it]
            b = len(j)
            sc = score_fn(caches, ff, (j // nx).astype(np.int32), (j % nx).astype(np.int32),
                          np.full(b, idx[k], np.int32), np.full(b, ys[k], np.int32),
                          np.full(b, xs[k], np.int32)).numpy()
            drops[i, j[:real]] = base[i] - sc[:real]


def _refine_positions(coarse, ctops, clefts, tops, lefts, frac):
    """The coarse drops interpolated (bilinear) at the fine positions ``[ny, nx]``, the
    fine positions to re-run (those with the largest ``frac`` of interpolated drops that
    are not coarse positions), and which fine positions are coarse ones."""
    ry = np.stack([np.interp(tops, ctops, e) for e in np.eye(len(ctops))], 1)
    rx = np.stack([np.interp(lefts, clefts, e) for e in np.eye(len(clefts))], 1)
    est = ry @ coarse @ rx.T
    thr = np.quantile(est, 1.0 - frac)
    on_coarse = np.isin(tops, ctops)[:, None] & np.isin(lefts, clefts)[None, :]
    return est.astype(np.float32), (est >= thr) & ~on_coarse, on_coarse


def _occlusion_x(bundle, x, targets, patch=None, stride=None, fill="mean", batch_size=None, score="logit",
                 resample=True, inference="incremental", tau=None, coarse=None, refine=None, return_info=False):
    import tensorflow as tf
    from .errors import AttributionError
    if score not in ("logit", "probability"):
        raise AttributionError(f"score must be 'logit' or 'probability', got {score!r}")
    mode = _check_inference(inference)
    n, h, w, _ = x.shape
    (ph, pw), (sh, sw) = check_patch(h, w, patch, stride)
    tops, lefts = positions(h, ph, sh), positions(w, pw, sw)
    ny, nx = len(tops), len(lefts)
    grid_t = np.repeat(tops, nx)
    grid_l = np.tile(lefts, ny)
    p = ny * nx
    prob = score == "probability"
    base = target_scores(bundle, x, targets, probability=prob)
    fill_x = substitute(bundle, x, fill)
    drops = np.zeros((n, p), np.float32)
    bs = int(batch_size or DEFAULT_OCCLUSION_BATCH)
    tau = (inc.DEFAULT_TAU if tau is None else float(tau)) if mode == "approximate" else None
    info = {"inference": mode, "positions": p, "evaluated": 0, "fallback": None, "theoretical_saving": 1.0}
    xt = ft = None
    for layer, ids in group_by_head(targets).items():
        idx, ys, xs = selection([targets[i] for i in ids])
        plan = None
        if mode != "full":
            try:
                plan = inc.plan_for(bundle, layer, tops, lefts, ph, pw, tau)
                info["theoretical_saving"] = plan.saving
            except inc.IncrementalUnsupported as exc:
                info["fallback"] = str(exc)
                _warn_fallback(bundle, mode, str(exc))
        if plan is None:
            if xt is None:
                xt, ft = tf.constant(x), tf.constant(fill_x)
            _drops_full(bundle, xt, ft, layer, prob, ids, idx, ys, xs, grid_t, grid_l, ph, pw, base, drops, bs)
            info["evaluated"] += len(ids) * p
        elif mode == "incremental":
            _drops_incremental(bundle, x, fill_x, layer, prob, plan, ids, idx, ys, xs, nx, base, drops, bs)
            info["evaluated"] += len(ids) * p
        else:
            # adaptive drill-down: a coarse stride first, then the fine one where drops are largest
            factor = int(inc.DEFAULT_COARSE if coarse is None else coarse)
            frac = float(inc.DEFAULT_REFINE if refine is None else refine)
            ctops, clefts = positions(h, ph, sh * factor), positions(w, pw, sw * factor)
            cplan = inc.plan_for(bundle, layer, ctops, clefts, ph, pw, tau)
            cd = np.zeros((n, len(ctops) * len(clefts)), np.float32)
            _drops_incremental(bundle, x, fill_x, layer, prob, cplan, ids, idx, ys, xs, len(clefts), base, cd, bs)
            for i in ids:
                c = cd[i].reshape(len(ctops), len(clefts))
                est, want, _ = _refine_positions(c, ctops, clefts, tops, lefts, frac)
                drops[i] = est.ravel()
                sel = np.flatnonzero(want.ravel())
                if len(sel):
                    k = int(np.flatnonzero(ids == i)[0])
                    _drops_incremental(bundle, x, fill_x, layer, prob, plan, ids[k:k + 1], idx[k:k + 1],
                                       ys[k:k + 1], xs[k:k + 1], nx, base, drops, bs, sel=sel)
                info["evaluated"] += len(ctops) * len(clefts) + len(sel)
    from .core import check_finite
    check_finite(drops, "occlusion scores", targets)
    grid = drops.reshape(n, ny, nx)
    if not resample:
        return (grid, info) if return_info else grid
    # Each pixel: the mean drop over the patches that cover it.
    r = ((np.arange(h)[None, :] >= tops[:, None]) & (np.arange(h)[None, :] < tops[:, None] + ph)).astype(np.float32)
    c = ((np.arange(w)[None, :] >= lefts[:, None]) & (np.arange(w)[None, :] < lefts[:, None] + pw)).astype(np.float32)
    num = np.einsum("iy,nij,jx->nyx", r, grid, c, optimize=True)
    den = np.einsum("iy,jx->yx", r, c)
    out = (num / den[None]).astype(np.float32)
    return (out, info) if return_info else out


def occlusion(bundle, images, target=None, *, patch=None, stride=None, fill="mean", batch_size: int | None = None,
              score: str = "logit", resample: bool = True, inference: str = "incremental", tau: float | None = None,
              coarse: int | None = None, refine: float | None = None, return_info: bool = False) -> np.ndarray:
    """Occlusion map ``[N, H, W]``: the drop of the target's score (``score="logit"``, or
    ``"probability"``) when a ``patch`` (int or (h, w); default 1/8 of the image) filled
    with ``fill`` covers each position, every ``stride`` pixels (default half the patch).
    Each pixel gets the mean drop of the patches covering it. Positive: the region
    supports the target.

    ``fill``: ``"mean"`` (each image's mean color, default), ``"zero"``, ``"gray"``,
    ``"black"``, ``"blur"``, a gray level or RGB triple 0..255 (see
    :func:`tfviz.attribution.core.substitute`). ``batch_size``: occluded copies per
    forward pass (default 64). ``resample=False`` returns the raw ``[N, rows, cols]``
    grid of drops, one per patch position.

    ``inference``: how each occluded copy is scored.

    * ``"incremental"`` (default): exact, the same map as ``"full"`` within float
      round-off, faster: the image's activations are computed once and each layer
      recomputes only the window a patch can reach (Krypton, Nakandala et al. 2019; see
      :mod:`tfviz.attribution.incremental`). Saves most on plain conv stacks (VGG16 at
      224 px, patch 16, stride 8: ~9x fewer multiply-adds) and less where windows
      soon cover the whole map (efficientnet_lite0: ~1.8x).
    * ``"approximate"``: faster still, not exact: windows stop growing at ``tau`` of their
      map (default 0.9), and a coarse stride (``coarse`` times the stride, default 2)
      runs first, the fine stride only at the ``refine`` fraction (default 0.5) of
      positions where the coarse drops are largest (others: the coarse drops interpolated).
      Check it with :func:`tfviz.attribution.incremental.fidelity` against an exact map.
    * ``"full"``: every occluded copy through the whole model (the reference).

    Models incremental inference cannot follow (subclassed models, a squeeze-and-excitation
    gate before the last stage, unknown layer types) fall back to ``"full"`` with one
    ``UserWarning`` naming the reason -- also when ``"incremental"`` was asked for
    explicitly. ``return_info=True`` returns ``(map, info)``: the mode, the fallback
    reason (or None), the theoretical multiply-add saving, positions evaluated."""
    return run(_occlusion_x, bundle, images, target, patch=patch, stride=stride, fill=fill, batch_size=batch_size,
               score=score, resample=resample, inference=inference, tau=tau, coarse=coarse, refine=refine,
               return_info=return_info)


occlusion._on_inputs = _occlusion_x
