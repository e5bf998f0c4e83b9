"""2-D maps of feature vectors: t-SNE (openTSNE), PCA, UMAP (optional extra) and
scikit-learn's Barnes-Hut t-SNE (the former default, kept for comparison).

========================  ==============================================================
``"tsne"`` (default)      openTSNE, FFT-accelerated interpolation of the repulsive forces
                          (Linderman et al. 2019): ~10,000 points in seconds on 2 cores.
``"pca"``                 the top two principal components (exact, instant).
``"umap"``                UMAP (``pip install 'tfviz[umap]'``); the first call in a
                          process compiles numba code (tens of seconds).
``"tsne_sklearn"``        scikit-learn's Barnes-Hut t-SNE (slower; for comparison).
========================  ==============================================================

Every method is deterministic for a seed. Features wider than 50 columns go through a
PCA to 50 dimensions first (t-SNE and UMAP), which keeps the neighbourhoods and makes
the neighbour search cheap.
"""
from __future__ import annotations

import os
import warnings

import numpy as np
import openTSNE
from sklearn.decomposition import PCA
from sklearn.manifold import TSNE

from ..data import DataError
from ..errors import MissingExtraError, ReduceError  # noqa: F401  (the classes live in tfviz.errors)
from ..utils import TfvizError, did_you_mean

METHODS = ("tsne", "pca", "umap", "tsne_sklearn")
PCA_DIMS = 50           # t-SNE / UMAP input width (after PCA when wider)
EXACT_KNN_MAX = 20_000  # up to this many points exact neighbours beat Annoy's index build (measured)


def _pca(x, dims, seed):
    return PCA(dims, svd_solver="full", random_state=seed).fit_transform(x)


def _narrow(x, seed):
    return _pca(x, PCA_DIMS, seed) if x.shape[1] > PCA_DIMS and len(x) > PCA_DIMS else x


def _perplexity(perplexity, n):
    """t-SNE needs about 3 * perplexity neighbours: clamp for small sets."""
    if not perplexity > 0:
        raise ReduceError(f"perplexity must be > 0, not {perplexity!r}")
    return float(min(perplexity, (n - 1) / 3.0))


def _jobs(n_jobs, n):
    """openTSNE threads: one below 5,000 points (threads cost more than they save there,
    and far more on a busy machine), else the CPUs, at most 8."""
    if n_jobs is not None:
        return int(n_jobs)
    return 1 if n < 5000 else max(1, min(os.cpu_count() or 1, 8))


def tsne_opentsne(x, seed=0, perplexity=30.0, n_jobs=None, n_iter=375, early_exaggeration_iter=125):
    """openTSNE with settings chosen by measurement on 10,000 digit features (see
    ``bench/bench_embedding.py``): PCA initialisation, learning rate N/12 (openTSNE's
    "auto"), 125 early-exaggeration + 375 ordinary iterations (instead of 250 + 500: the
    same trustworthiness, about half the time -- the late iterations are the slow ones,
    as the map spreads over more interpolation intervals), a 2x coarser interpolation
    grid (``ints_in_interval=2``), exact neighbours up to 20,000 points (faster than
    building an Annoy index at this size) and Annoy beyond. Barnes-Hut instead of FFT
    below 1,000 points, where it is faster and more precise."""
    x = _narrow(np.asarray(x, np.float64), seed)
    n = len(x)
    tsne = openTSNE.TSNE(
        n_components=2, perplexity=_perplexity(perplexity, n), initialization="pca", learning_rate="auto",
        early_exaggeration_iter=early_exaggeration_iter, n_iter=n_iter,
        negative_gradient_method="fft" if n >= 1000 else "bh", ints_in_interval=2,
        neighbors="exact" if n <= EXACT_KNN_MAX else "annoy",
        n_jobs=_jobs(n_jobs, n), random_state=seed, verbose=False)
    with warnings.catch_warnings():   # openTSNE warns about its own clamping on tiny sets
        warnings.simplefilter("ignore")
        return np.asarray(tsne.fit(x), np.float32)


def tsne_sklearn(x, seed=0, perplexity=30.0):
    """scikit-learn's Barnes-Hut t-SNE, PCA initialisation (tfviz's former default)."""
    x = _narrow(np.asarray(x, np.float64), seed)
    tsne = TSNE(2, perplexity=_perplexity(perplexity, len(x)), init="pca", random_state=seed, learning_rate="auto")
    return tsne.fit_transform(x).astype(np.float32)


def _import_umap():
    try:  # an optional extra (tfviz[umap]), and slow to import: only when asked for
        import umap
    except ImportError:
        raise MissingExtraError("method='umap' needs the optional package umap-learn: "
                                "pip install 'tfviz[umap]'  (or: pip install umap-learn)") from None
    return umap


def umap_2d(x, seed=0, n_neighbors=15, min_dist=0.1):
    """UMAP (umap-learn) with a fixed seed: deterministic, and therefore single-threaded."""
    umap = _import_umap()
    x = _narrow(np.asarray(x, np.float32), seed)
    n = len(x)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")   # "n_jobs overridden by setting random_state", tiny-set notes
        red = umap.UMAP(n_components=2, n_neighbors=int(max(2, min(n_neighbors, n - 1))), min_dist=min_dist,
                        init="spectral" if n > 10 else "random", random_state=seed)
        return np.asarray(red.fit_transform(x), np.float32)


def reduce_features(features, method: str = "tsne", seed: int = 0, perplexity: float = 30.0,
                    n_jobs: int | None = None) -> np.ndarray:
    """``[N, D]`` features -> ``[N, 2]`` float32 coordinates; see the module docstring for
    the methods. Deterministic for a seed. ``perplexity``: t-SNE only, clamped to
    ``(N - 1) / 3`` for small sets. ``n_jobs``: openTSNE threads (default: 1 below 5,000
    points, else the CPUs, at most 8)."""
    if method not in METHODS:
        raise ReduceError(did_you_mean("embedding method", method, METHODS))
    x = np.asarray(features, np.float64)
    if x.ndim != 2 or len(x) < 3:
        raise DataError(f"need at least 3 feature vectors [N, D] to embed, got shape {x.shape}")
    if not np.all(np.isfinite(x)):
        raise DataError("features contain NaN or infinite values")
    if method == "pca":
        return _pca(x, 2, seed).astype(np.float32)
    if method == "tsne":
        return tsne_opentsne(x, seed, perplexity, n_jobs)
    if method == "tsne_sklearn":
        return tsne_sklearn(x, seed, perplexity)
    return umap_2d(x, seed)


__all__ = ["reduce_features", "METHODS", "MissingExtraError", "ReduceError", "tsne_opentsne", "tsne_sklearn",
           "umap_2d"]
