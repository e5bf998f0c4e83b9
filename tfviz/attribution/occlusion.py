"""Occlusion sensitivity (Zeiler & Fergus 2014): slide a patch over the image and record
how much the target's score drops at each position.

All occluded copies are made inside one ``tf.function`` from the image, the fill and the
patch positions (a boolean mask built by broadcasting), many copies per forward batch --
no Python loop over patches beyond batching, and no copy of the image per position in
host memory. Copies of several images share batches.

Where the patches go (:class:`~tfviz.attribution.patch_grid.PatchGrid`) lives in
:mod:`.patch_grid`; scoring a copy by re-running only what the patch changes, in
:mod:`.incremental`.
"""
from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import tensorflow as tf

from . import incremental as inc
from .core import (check_finite, group_by_head, head_scores, padded_batches, score_activation, select_score, selection,
                   substitute, target_scores)
from .errors import AttributionError
from .heads import head
from .patch_grid import PatchGrid, check_patch, positions  # noqa: F401  (positions, check_patch: re-exported)
from .registry import attribution_method

DEFAULT_OCCLUSION_BATCH = 64


# --------------------------------------------------------------------------- programs
def _occlusion_function(bundle, layer, probability):
    def build():
        model = head(bundle, layer)
        activation = score_activation(bundle, layer, probability)

        @tf.function(autograph=False)
        def tfviz_occlusion(x, fill, img, tops, lefts, ph, pw, sel):
            h, w = tf.shape(x)[1], tf.shape(x)[2]
            rows = tf.range(h)[None, :]
            cols = tf.range(w)[None, :]
            rm = (rows >= tops[:, None]) & (rows < tops[:, None] + ph)     # [B, H]
            cm = (cols >= lefts[:, None]) & (cols < lefts[:, None] + pw)   # [B, W]
            m = tf.cast(rm[:, :, None] & cm[:, None, :], x.dtype)[..., None]
            xb = tf.gather(x, img) * (1.0 - m) + tf.gather(fill, img) * m
            return head_scores(model, xb, activation, sel)
        return tfviz_occlusion
    return bundle.programs.get("attribution.occlusion", layer, (bool(probability),), build)


def _incremental_function(bundle, layer, probability, plan):
    """``(cache_fn(x [1, H, W, 3]) -> caches, score_fn(caches, fill_flat, ti, li, sel) -> scores)``."""
    def build():
        activation = score_activation(bundle, layer, probability)

        @tf.function(autograph=False)  # a Python loop over layers, unrolled: nothing to convert
        def tfviz_occlusion_cache(x):
            return inc.run_cache(plan, x)

        @tf.function(autograph=False)
        def tfviz_occlusion_incremental(caches, fill_flat, ti, li, sel):
            out = inc.run_incremental(plan, caches, fill_flat, ti, li)
            if activation is not None:
                out = activation(out)
            return select_score(out, sel)
        return tfviz_occlusion_cache, tfviz_occlusion_incremental
    return bundle.programs.get("attribution.occlusion_incremental", layer, (bool(probability), id(plan)), build)


# --------------------------------------------------------------------------- options
def _check_inference(inference):
    if not isinstance(inference, str) or inference.strip().lower() not in inc.INFERENCE_MODES:
        raise AttributionError(f"inference must be one of {', '.join(map(repr, inc.INFERENCE_MODES))}, "
                               f"got {inference!r}")
    return inference.strip().lower()


@dataclass(frozen=True)
class _Approximation:
    """``inference="approximate"``: windows capped at ``tau`` of their map, a stride
    ``coarse`` times the stride first, the fine stride at the ``refine`` fraction of
    positions where the coarse drops are largest."""
    tau: float
    coarse: int
    refine: float

    @classmethod
    def of(cls, tau, coarse, refine) -> "_Approximation":
        """The settings (defaults for None); values that cannot work raise AttributionError."""
        try:
            tau = inc.DEFAULT_TAU if tau is None else float(tau)
            coarse = inc.DEFAULT_COARSE if coarse is None else int(coarse)
            refine = inc.DEFAULT_REFINE if refine is None else float(refine)
        except (TypeError, ValueError, OverflowError) as exc:
            raise AttributionError(f"approximate occlusion: tau and refine must be numbers and coarse an integer "
                                   f"({exc})") from None
        if not math.isfinite(tau):
            raise AttributionError(f"tau must be a finite fraction of a map (e.g. {inc.DEFAULT_TAU}), got {tau!r}")
        if coarse < 1:
            raise AttributionError(f"coarse must be a positive integer (the coarse stride is coarse x the stride), "
                                   f"got {coarse!r}")
        if not 0.0 <= refine <= 1.0:
            raise AttributionError(f"refine must be a fraction between 0 and 1, got {refine!r}")
        return cls(tau, coarse, refine)


def _warn_fallback(bundle, reason):
    """One ``UserWarning`` per model and reason: incremental inference is not possible."""
    seen = bundle.programs.get("attribution.incremental_warned", build=set)  # reasons already warned about
    if reason in seen:
        return
    seen.add(reason)
    warnings.warn(f"occlusion: incremental inference is not possible for model {bundle.name!r} ({reason}); "
                  f"falling back to full re-inference (pass inference='full' to silence this)", UserWarning,
                  stacklevel=4)


# --------------------------------------------------------------------------- scoring the positions
@dataclass
class _Scoring:
    """What every occluded copy of a call shares: the model, the images ``x`` and what a
    patch puts in (``fill``, both ``[N, H, W, 3]`` model inputs), the images' unoccluded
    target scores ``base [N]``, logits or probabilities, copies per forward pass."""
    bundle: object
    x: np.ndarray
    fill: np.ndarray
    base: np.ndarray
    probability: bool
    batch_size: int

    @cached_property
    def tensors(self):
        """``x`` and ``fill`` as tensors (made once, for full re-inference)."""
        return tf.constant(self.x), tf.constant(self.fill)


@dataclass
class _Targets:
    """The images whose targets come from one head (``layer``; None: the logits): their
    indices ``ids`` and, per image, the target's selection row (:func:`.core.selection`)."""
    layer: str | None
    ids: np.ndarray
    rows: np.ndarray

    @classmethod
    def of(cls, layer, ids, targets) -> "_Targets":
        return cls(layer, ids, selection([targets[i] for i in ids]))

    def one(self, k) -> "_Targets":
        """Only the ``k``-th image."""
        part = slice(k, k + 1)
        return _Targets(self.layer, self.ids[part], self.rows[part])


def _drops_full(s: _Scoring, g: _Targets, grid: PatchGrid, drops, sel=None):
    """Fill ``drops[g.ids, positions]`` (all of ``grid``'s, or those in ``sel``) by full
    re-inference of every occluded copy."""
    f = _occlusion_function(s.bundle, g.layer, s.probability)
    xt, ft = s.tensors
    grid_t, grid_l = grid.flat_tops, grid.flat_lefts
    sel = np.arange(grid.size) if sel is None else sel
    q = len(sel)
    for it, real in padded_batches(len(g.ids) * q, s.batch_size):
        k, j = it // q, sel[it % q]
        img = g.ids[k].astype(np.int32)
        sc = f(xt, ft, img, grid_t[j], grid_l[j], np.int32(grid.ph), np.int32(grid.pw), g.rows[k]).numpy()
        drops[img[:real], j[:real]] = s.base[img[:real]] - sc[:real]


def _drops_incremental(s: _Scoring, g: _Targets, plan, grid: PatchGrid, drops, sel=None):
    """Fill ``drops[g.ids, positions]`` (all of ``grid``'s, or those in ``sel``)
    incrementally with ``plan`` (per image: its maps once, then batches of positions)."""
    cache_fn, score_fn = _incremental_function(s.bundle, g.layer, s.probability, plan)
    sel = np.arange(grid.size) if sel is None else np.asarray(sel)
    for k, i in enumerate(g.ids):
        caches = cache_fn(tf.constant(s.x[i:i + 1]))
        ff = tf.constant(s.fill[i].reshape(-1, s.fill.shape[-1]))
        for it, real in padded_batches(len(sel), s.batch_size):
            j = sel[it]
            b = len(j)
            sc = score_fn(caches, ff, (j // grid.nx).astype(np.int32), (j % grid.nx).astype(np.int32),
                          np.repeat(g.rows[k:k + 1], b, axis=0)).numpy()
            drops[i, j[:real]] = s.base[i] - sc[:real]


def _plans(bundle, layer, grid: PatchGrid, mode, approx, info):
    """``(plan, coarse plan)`` of one head (the coarse one in approximate mode only), or
    None for full re-inference: asked for, or the model cannot run incrementally (then
    one warning, and the reason in ``info["fallback"]``)."""
    if mode == "full":
        return None
    tau = approx.tau if approx else None
    try:
        plan = inc.plan_for(bundle, layer, grid.tops, grid.lefts, grid.ph, grid.pw, tau)
        coarse_plan = None
        if approx:
            cg = grid.coarser(approx.coarse)
            coarse_plan = inc.plan_for(bundle, layer, cg.tops, cg.lefts, cg.ph, cg.pw, tau)
    except inc.IncrementalUnsupported as exc:
        info["fallback"] = str(exc)
        info["inference"] = "full"
        _warn_fallback(bundle, str(exc))
        return None
    info["theoretical_saving"] = plan.saving
    if mode == "auto":
        if plan.saving < inc.MIN_SAVING:  # a choice, not a failure: no warning
            info["fallback"] = (f"incremental inference would save only {plan.saving:.2f}x of the multiply-adds "
                                f"(< {inc.MIN_SAVING}), less than its window gathers cost")
            info["inference"] = "full"
            return None
        info["inference"] = "incremental"
    return plan, coarse_plan


def _drill_down(s: _Scoring, g: _Targets, grid: PatchGrid, plan, coarse_plan, approx, drops):
    """Approximate mode: drops at the coarse stride, then at the fine one only where the
    interpolated coarse drops are largest (elsewhere the interpolation). Returns the
    number of positions evaluated."""
    cg = grid.coarser(approx.coarse)
    coarse = np.zeros((len(s.x), cg.size), np.float32)
    _drops_incremental(s, g, coarse_plan, cg, coarse)
    evaluated = 0
    for k, i in enumerate(g.ids):
        est, want, _ = grid.refine(cg, coarse[i].reshape(cg.ny, cg.nx), approx.refine)
        drops[i] = est.ravel()
        sel = np.flatnonzero(want.ravel())
        if len(sel):
            _drops_incremental(s, g.one(k), plan, grid, drops, sel=sel)
        evaluated += cg.size + len(sel)
    return evaluated


def _head_drops(s: _Scoring, g: _Targets, grid: PatchGrid, mode, approx, drops, info):
    """Fill ``drops[g.ids]`` the way ``mode`` asks (or by full re-inference where it
    cannot); returns the number of positions evaluated."""
    plans = _plans(s.bundle, g.layer, grid, mode, approx, info)
    if plans is None:
        _drops_full(s, g, grid, drops)
        return len(g.ids) * grid.size
    plan, coarse_plan = plans
    if approx is None:
        _drops_incremental(s, g, plan, grid, drops)
        return len(g.ids) * grid.size
    return _drill_down(s, g, grid, plan, coarse_plan, approx, drops)


@attribution_method
def occlusion(bundle, x, targets, *, patch=None, stride=None, fill="mean", batch_size: int | None = None,
              score: str = "logit", resample: bool = True, inference: str = "auto", tau: float | None = None,
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

    * ``"auto"`` (default): ``"incremental"`` where it saves at least
      :data:`~tfviz.attribution.incremental.MIN_SAVING` (1.2x) of the multiply-adds, else
      ``"full"`` (``info["inference"]`` says which ran, ``info["fallback"]`` why not).
    * ``"incremental"``: exact, the same map as ``"full"`` within float
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
    explicitly, but not when ``"auto"`` chose ``"full"`` for a small saving.
    ``return_info=True`` returns ``(map, info)``: the mode, the fallback
    reason (or None), the theoretical multiply-add saving, positions evaluated."""
    if score not in ("logit", "probability"):
        raise AttributionError(f"score must be 'logit' or 'probability', got {score!r}")
    mode = _check_inference(inference)
    n, h, w, _ = x.shape
    grid = PatchGrid.of(h, w, patch, stride)
    approx = _Approximation.of(tau, coarse, refine) if mode == "approximate" else None
    prob = score == "probability"
    base = target_scores(bundle, x, targets, probability=prob)
    s = _Scoring(bundle, x, substitute(bundle, x, fill), base, prob, int(batch_size or DEFAULT_OCCLUSION_BATCH))
    drops = np.zeros((n, grid.size), np.float32)
    info = {"inference": mode, "positions": grid.size, "evaluated": 0, "fallback": None, "theoretical_saving": 1.0}
    for layer, ids in group_by_head(targets).items():
        info["evaluated"] += _head_drops(s, _Targets.of(layer, ids, targets), grid, mode, approx, drops, info)
    check_finite(drops, "occlusion scores", targets)
    out = drops.reshape(n, grid.ny, grid.nx)
    if resample:
        out = grid.per_pixel(out)  # each pixel: the mean drop over the patches that cover it
    return (out, info) if return_info else out


