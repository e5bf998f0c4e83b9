"""2-D reduction methods (tfviz.inspect.reduce): openTSNE t-SNE, PCA, UMAP (optional
extra), scikit-learn's t-SNE. No timing assertions (bench/bench_embedding.py times them)."""
import importlib.util
import sys

import numpy as np
import pytest

from tfviz.data import DataError
from tfviz.inspect import reduce_features
from tfviz.inspect.reduce import METHODS, MissingExtraError, ReduceError
from tfviz.utils import TfvizError

HAVE_UMAP = importlib.util.find_spec("umap") is not None


@pytest.fixture(autouse=True)
def _one_thread():
    """OpenMP/BLAS threads spin-wait: on a small, shared CI machine one thread is faster."""
    from threadpoolctl import threadpool_limits
    with threadpool_limits(1):
        yield


def _blobs(n_per=200, dims=20, seed=0):
    """3 well-separated Gaussian blobs in ``dims`` dimensions."""
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(3, dims)) * 10
    x = np.concatenate([c + rng.normal(size=(n_per, dims)) for c in centers])
    return x.astype(np.float32), np.repeat(np.arange(3), n_per)


def _knn_agreement(coords, labels, k=10):
    """Fraction of each point's k nearest 2-D neighbours with its label."""
    from sklearn.neighbors import NearestNeighbors
    idx = NearestNeighbors(n_neighbors=k + 1).fit(coords).kneighbors(coords, return_distance=False)[:, 1:]
    return float(np.mean(labels[idx] == labels[:, None]))


@pytest.mark.parametrize("method", ["tsne", "pca"] + (["umap"] if HAVE_UMAP else []))
def test_neighbourhoods_kept_and_deterministic(method):
    from sklearn.manifold import trustworthiness
    x, y = _blobs(n_per=100)
    a = reduce_features(x, method, seed=5)
    assert a.shape == (len(x), 2) and a.dtype == np.float32 and np.all(np.isfinite(a))
    np.testing.assert_array_equal(a, reduce_features(x, method, seed=5))   # same seed, same map
    if method != "pca":   # the seed reaches the method: another seed, another map (PCA has no randomness)
        assert np.abs(reduce_features(x, method, seed=6) - a).max() > 1e-3
    if method != "pca":   # PCA is linear: it keeps the clusters apart, not the neighbours within them
        assert trustworthiness(x, a, n_neighbors=10) >= 0.9
    assert _knn_agreement(a, y) >= 0.95                                      # clusters stay apart


def test_opentsne_fft_path_and_wide_features():
    """>= 1,000 points take the FFT path; > 50 columns go through PCA first (fewer
    iterations than the default, to keep the test short)."""
    from sklearn.manifold import trustworthiness

    from tfviz.inspect.reduce import tsne_opentsne
    x, y = _blobs(n_per=340, dims=80, seed=1)
    a = tsne_opentsne(x, seed=0, n_iter=100, early_exaggeration_iter=50)
    np.testing.assert_array_equal(a, tsne_opentsne(x, seed=0, n_iter=100, early_exaggeration_iter=50))
    assert trustworthiness(x, a, n_neighbors=10) >= 0.9 and _knn_agreement(a, y) >= 0.95


@pytest.mark.parametrize("n", [3, 4, 10, 40])
def test_small_sets_work(n):
    x = np.random.default_rng(n).normal(size=(n, 8))
    for method in ("tsne", "pca"):
        a = reduce_features(x, method, perplexity=30)     # perplexity clamped to (n - 1) / 3
        assert a.shape == (n, 2) and np.all(np.isfinite(a))
    centred = x - x.mean(0)                               # PCA: the projections on the top two directions
    top = np.linalg.svd(centred, full_matrices=False)[2][:2]
    np.testing.assert_allclose(np.abs(a), np.abs(centred @ top.T), rtol=1e-4, atol=1e-5)
    with pytest.raises(DataError, match="at least 3"):
        reduce_features(x[:2], "tsne")


def test_unknown_method_lists_the_valid_ones():
    with pytest.raises(ReduceError, match="unknown embedding method 'tnse'; did you mean 'tsne'") as err:
        reduce_features(np.zeros((5, 3)), "tnse")
    assert isinstance(err.value, TfvizError) and isinstance(err.value, ValueError)
    for m in METHODS:
        assert m in str(err.value)


def test_umap_missing_extra_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "umap", None)        # import umap -> ImportError
    with pytest.raises(MissingExtraError, match=r"pip install 'tfviz\[umap\]'") as err:
        reduce_features(np.random.default_rng(0).normal(size=(20, 4)), "umap")
    assert isinstance(err.value, TfvizError)


@pytest.mark.skipif(not HAVE_UMAP, reason="umap-learn not installed (optional extra: pip install 'tfviz[umap]')")
def test_umap_small_set():
    a = reduce_features(np.random.default_rng(0).normal(size=(12, 5)), "umap")
    assert a.shape == (12, 2) and np.all(np.isfinite(a))


def test_sklearn_tsne_kept_for_comparison():
    x, y = _blobs(n_per=30)
    a = reduce_features(x, "tsne_sklearn", seed=0)
    assert a.shape == (90, 2) and _knn_agreement(a, y) >= 0.95
