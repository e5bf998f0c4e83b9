"""ROAD, RemOve And Debias (Rong et al., ICML 2022, "A Consistent and Efficient
Evaluation Strategy for Attribution Methods"): a trust metric that, unlike deletion and
insertion, does not reward maps for the shapes their removal draws.

Deletion paints removed pixels black: the black holes have the map's shape, the model
reacts to the shape itself, and a map can score well because of the out-of-distribution
image it makes, not because it found what the model uses. ROAD fills each removed pixel
from its neighbours instead -- *noisy linear imputation*: every removed pixel is the
weighted mean of its 8 neighbours (4 direct ones weighing 1/6 each, 4 diagonal ones 1/12;
at the image's border the weights of the neighbours that exist, renormalized), all removed
pixels solved together as one sparse linear system (scipy), plus a little Gaussian noise
-- so a smooth fill leaks no outline of the removed set.

Pixels are removed in the map's order at several fractions, most relevant first (MoRF:
a faithful map makes the score fall fast, low is better) and least relevant first (LeRF:
the score should stay, high is better); ``gap = mean LeRF - mean MoRF`` sums both up
(higher is better), as pytorch-grad-cam's ``ROADCombined`` does.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sparse
import scipy.sparse.linalg as splinalg

from .core import as_bundle, check_finite, maps_2d, pixel_ranks, prepare, target_scores
from .errors import AttributionError
from .targets import resolve_targets

#: The removal fractions of ROAD's curves (the paper's and pytorch-grad-cam's 10 %..90 %).
DEFAULT_FRACTIONS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)
#: Noise added to imputed pixels, on the 0..1 pixel scale (the paper's 0.01).
DEFAULT_NOISE = 0.01
#: The imputation's neighbours ``(dy, dx, weight)``: direct 1/6, diagonal 1/12 (sum 1).
NEIGHBOURS = ((1, 0, 1 / 6), (-1, 0, 1 / 6), (0, 1, 1 / 6), (0, -1, 1 / 6),
              (1, 1, 1 / 12), (1, -1, 1 / 12), (-1, 1, 1 / 12), (-1, -1, 1 / 12))


def impute(image: np.ndarray, removed: np.ndarray, noise: float = 0.0, rng=None) -> np.ndarray:
    """``image`` (``[H, W, C]`` float) with the pixels where ``removed`` (``[H, W]`` bool)
    replaced by noisy linear imputation: each removed pixel equals the weighted mean of its
    neighbours (:data:`NEIGHBOURS`, renormalized at the border), known or removed, solved
    for all removed pixels at once; then ``noise`` (standard deviation) is added to them.
    A field that is linear in y and x is its own neighbour mean, so a removed region inside
    a linear ramp comes back exactly (with ``noise=0``)."""
    img = np.asarray(image, np.float64)
    removed = np.asarray(removed, bool)
    if img.ndim != 3 or removed.shape != img.shape[:2]:
        raise AttributionError(f"impute needs an image [H, W, C] and a mask [H, W] of the same size, got "
                               f"{img.shape} and {removed.shape}")
    h, w, c = img.shape
    ys, xs = np.nonzero(removed)
    u = len(ys)
    out = img.copy()
    if u == 0:
        return out
    if u == h * w:
        raise AttributionError("ROAD cannot remove every pixel: nothing is left to impute from")
    index = np.full((h, w), -1, np.int64)
    index[ys, xs] = np.arange(u)
    parts, total = [], np.zeros(u)
    for dy, dx, wt in NEIGHBOURS:
        ny, nx = ys + dy, xs + dx
        inside = (ny >= 0) & (ny < h) & (nx >= 0) & (nx < w)
        total[inside] += wt
        parts.append((ny, nx, inside, wt))
    rows, cols, vals = [np.arange(u)], [np.arange(u)], [np.ones(u)]
    rhs = np.zeros((u, c))
    for ny, nx, inside, wt in parts:
        r = np.nonzero(inside)[0]
        j = index[ny[r], nx[r]]
        unknown = j >= 0
        rows.append(r[unknown])
        cols.append(j[unknown])
        vals.append(-wt / total[r[unknown]])
        known = r[~unknown]
        rhs[known] += (wt / total[known])[:, None] * img[ny[known], nx[known]]
    a = sparse.csc_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(u, u))
    sol = splinalg.spsolve(a, rhs).reshape(u, c)
    if noise:
        rng = np.random.default_rng(rng)
        sol = sol + rng.normal(0.0, noise, sol.shape)
    out[ys, xs] = sol
    return out


@dataclass
class RoadResult:
    """ROAD curves of ``N`` images: ``morf`` and ``lerf`` ``[N, F]``, the target's score
    after removing ``fractions[f]`` of the pixels, most / least relevant first."""
    fractions: tuple
    morf: np.ndarray
    lerf: np.ndarray

    @property
    def morf_mean(self) -> np.ndarray:
        """Per image, the mean MoRF score over the fractions (lower is better)."""
        return self.morf.mean(axis=1)

    @property
    def lerf_mean(self) -> np.ndarray:
        """Per image, the mean LeRF score over the fractions (higher is better)."""
        return self.lerf.mean(axis=1)

    @property
    def gap(self) -> np.ndarray:
        """Per image, mean LeRF - mean MoRF (higher is better)."""
        return self.lerf_mean - self.morf_mean


def _check_fractions(fractions) -> tuple:
    try:
        fr = tuple(float(f) for f in fractions)
    except (TypeError, ValueError):
        raise AttributionError(f"fractions must be numbers in (0, 1), got {fractions!r}") from None
    if not fr or not all(0.0 < f < 1.0 for f in fr):
        raise AttributionError(f"fractions must be numbers in (0, 1), got {fractions!r}")
    return fr


def road_curves(bundle, x, targets, maps, fractions=DEFAULT_FRACTIONS, noise: float = DEFAULT_NOISE,
                seed: int = 0, score: str = "probability") -> RoadResult:
    """ROAD on model inputs ``x`` with resolved ``targets`` (see :func:`road`)."""
    fr = _check_fractions(fractions)
    if score not in ("probability", "logit"):
        raise AttributionError(f"score must be 'probability' or 'logit', got {score!r}")
    if not np.isfinite(noise) or noise < 0:
        raise AttributionError(f"noise must be a number >= 0, got {noise!r}")
    n, h, w, _ = x.shape
    m = maps_2d(maps, n, h, w)
    u8 = bundle.deprocess(x)
    rng = np.random.default_rng(seed)
    counts = [int(round(f * h * w)) for f in fr]
    morf = np.zeros((n, len(fr)), np.float32)
    lerf = np.zeros((n, len(fr)), np.float32)
    for i in range(n):
        rank = pixel_ranks(m[i:i + 1])[0]
        pixels = u8[i].astype(np.float64) / 255.0
        made = []
        for order in (rank, h * w - 1 - rank):   # most relevant first, then least relevant first
            for k in counts:
                filled = impute(pixels, order < k, noise, rng)
                made.append(np.clip(np.round(filled * 255.0), 0, 255).astype(np.uint8))
        xi = bundle.preprocess(np.stack(made)).astype(np.float32)
        s = target_scores(bundle, xi, [targets[i]] * len(made), probability=score == "probability")
        morf[i], lerf[i] = s[:len(fr)], s[len(fr):]
    check_finite(morf, "ROAD scores", targets)
    return RoadResult(fr, morf, lerf)


def road(bundle, images, target, maps, *, fractions=DEFAULT_FRACTIONS, noise: float = DEFAULT_NOISE,
         seed: int = 0, score: str = "probability") -> RoadResult:
    """ROAD (Rong et al. 2022) of ``maps`` (``[N, H, W]`` or ``[N, H, W, 3]``) on ``images``:
    for each fraction of ``fractions``, that share of the pixels is removed in the map's
    order, most relevant first (MoRF) and least relevant first (LeRF), and filled by noisy
    linear imputation from the pixels around them (``noise``: its standard deviation on the
    0..1 pixel scale; ``seed`` makes it repeatable); the target's ``score`` ("probability"
    or "logit") is taken on each filled image. Returns a :class:`RoadResult`: the curves
    ``morf`` / ``lerf`` ``[N, F]`` and per image ``morf_mean`` (lower is better),
    ``lerf_mean`` (higher is better) and their ``gap`` (higher is better)."""
    bundle = as_bundle(bundle)
    x = prepare(bundle, images)
    targets = resolve_targets(bundle, target, len(x), x)
    return road_curves(bundle, x, targets, maps, fractions, noise, seed, score)


__all__ = ["road", "road_curves", "impute", "RoadResult", "DEFAULT_FRACTIONS", "DEFAULT_NOISE", "NEIGHBOURS"]
