"""Pixel colour statistics for texture synthesis and style transfer: a picture's
principal colour axes (:func:`color_basis`), its colour histogram as a target of
:func:`~tfviz.synthesis.objectives.pixel_histogram_match` (:func:`color_target`), and
the colour transfer applied after a run (:func:`match_colors`).

Colours are matched channel by channel in the source's decorrelated colour space (the
principal axes of its RGB pixels, in 0..1 units): there the three channels are
uncorrelated, so matching each one's histogram matches the colour distribution far
better than matching R, G and B separately, and a grey source -- all its spread on the
grey axis, none on the other two -- makes every pixel grey.
"""
from __future__ import annotations

import numpy as np

from ..images import load_image
from .objectives import MAX_QUANTILES, histogram_target
from .optimize import SynthesisError

MATCH_COLORS = ("histogram", "mean_cov")


def check_match_colors(mode):
    """``mode`` if it is one of :data:`MATCH_COLORS` or None, else a SynthesisError."""
    if mode is not None and mode not in MATCH_COLORS:
        raise SynthesisError(f"match_colors must be one of {', '.join(MATCH_COLORS)} or None, got {mode!r}")
    return mode


def _pixels01(img) -> np.ndarray:
    """uint8 (or 0..255 float) ``[H, W, 3]`` -> ``[H*W, 3]`` floats in 0..1."""
    return np.asarray(img, np.float64).reshape(-1, 3) / 255.0


def color_basis(img):
    """``(mean [3], basis [3, 3])`` of ``img``'s pixels in 0..1 units: the basis's
    columns are the principal colour axes, the most varied first, each signed so its
    largest component is positive (the same picture always gives the same axes)."""
    px = _pixels01(img)
    mean = px.mean(0)
    cov = np.cov(px - mean, rowvar=False) if len(px) > 1 else np.zeros((3, 3))
    vals, vecs = np.linalg.eigh(cov)
    vecs = vecs[:, np.argsort(vals)[::-1]]
    vecs = vecs * np.where(vecs[np.argmax(np.abs(vecs), 0), range(3)] < 0, -1.0, 1.0)
    return mean.astype(np.float32), vecs.astype(np.float32)


def color_target(img, max_quantiles: int = MAX_QUANTILES) -> dict:
    """What :func:`~tfviz.synthesis.objectives.pixel_histogram_match` needs to pull an
    image's colours to ``img``'s: ``{"target": [Q, 3], "basis": [3, 3], "mean": [3]}``."""
    mean, basis = color_basis(img)
    y = (_pixels01(img) - mean) @ basis
    return {"target": histogram_target(y.astype(np.float32), max_quantiles=max_quantiles), "basis": basis,
            "mean": mean}


def _remap(values: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Each column of ``values`` ``[M, C]`` given ``target``'s sorted values ``[Q, C]``
    rank for rank (linear between quantiles): its histogram becomes the target's."""
    m, q = values.shape[0], target.shape[0]
    pos = (np.arange(m) + 0.5) / m * q - 0.5
    out = np.empty_like(values)
    grid = np.arange(q)
    for c in range(values.shape[1]):
        order = np.argsort(values[:, c], kind="stable")
        out[order, c] = np.interp(pos, grid, target[:, c])
    return out


def match_colors(img, source, mode: str = "histogram") -> np.ndarray:
    """``img`` (uint8 RGB) with ``source``'s colour distribution (paths, bundled names
    or arrays; any sizes), as uint8. ``mode``: ``"histogram"`` -- every channel of the
    source's decorrelated colour space given the source's histogram, rank for rank (the
    pixels keep their order of brightness along each axis); ``"mean_cov"`` -- the pixels
    moved by the affine map that gives them the source's mean and colour covariance
    (gentler: it keeps the picture's own histogram shape). A grey source gives a grey
    picture either way."""
    if check_match_colors(mode) is None:
        raise SynthesisError("match_colors needs a mode: " + ", ".join(MATCH_COLORS))
    img = load_image(img) if not isinstance(img, np.ndarray) or img.dtype != np.uint8 else img
    src = load_image(source) if not isinstance(source, np.ndarray) or source.dtype != np.uint8 else source
    px = _pixels01(img)
    if mode == "histogram":
        mean, basis = color_basis(src)
        y = (px - mean) @ basis
        ys = (_pixels01(src) - mean) @ basis
        out = _remap(y, np.sort(ys, axis=0)) @ basis.T + mean
    else:
        out = _mean_cov(px, _pixels01(src))
    return np.clip(out.reshape(img.shape) * 255.0 + 0.5, 0, 255).astype(np.uint8)


def _sqrtm(cov, inverse=False, eps=1e-6):
    vals, vecs = np.linalg.eigh(cov)
    vals = np.maximum(vals, 0.0)
    d = 1.0 / np.sqrt(vals + eps) if inverse else np.sqrt(vals)
    return (vecs * d) @ vecs.T


def _mean_cov(px, src):
    """``px`` moved by ``x -> (x - m) C^-1/2 Cs^1/2 + ms`` (Hertzmann-style colour transfer,
    symmetric square roots): the source's mean and covariance, up to ``eps``."""
    m, ms = px.mean(0), src.mean(0)
    c = np.cov(px - m, rowvar=False)
    cs = np.cov(src - ms, rowvar=False)
    return (px - m) @ _sqrtm(c, inverse=True) @ _sqrtm(cs) + ms
