"""Time and quality of the 2-D embedding methods on 10,000 digit feature vectors.

    python bench/bench_embedding.py [--n 10000] [--reps 3] [--sklearn-reps 3] [--threads 1,2]
    PYTHONPATH=/tmp/emb_umap python bench/bench_embedding.py    # with umap-learn installed aside

Data: scikit-learn's digits bundled with tfviz have only 1,797 images, so the set is the
1,797 originals plus copies of random digits shifted by up to 2 pixels (np.roll; the
digits have a black border) with Gaussian pixel noise (sigma 12 of 255) -- 10,000 images
in all. Their features are the 64-unit penultimate layer of ``digits_cnn`` (computed
once, not timed), i.e. what ``tfviz embed`` maps.

One table: method, n, seconds (median, min-max over ``--reps`` runs), ratio of the median
to scikit-learn's Barnes-Hut t-SNE, and trustworthiness at k=10
(``sklearn.manifold.trustworthiness``: 1.0 = no false neighbours in 2-D; deterministic
methods, so computed once per method). openTSNE runs with each thread count of
``--threads`` (the default is 1 below 5,000 points, else the CPUs). UMAP rows appear when
umap-learn is importable; its numba compilation is done by an untimed call on 500 points.
Issue target: openTSNE <= 20 s for 10,000 points on 2 cores, trustworthiness no worse
than scikit-learn's.
"""
from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def digit_features(n, seed=0):
    """``[n, 64]`` digits_cnn features of the digits plus shifted, noisy copies; labels."""
    import tfviz
    import tfviz.models
    from tfviz.inspect import extract_features
    d = tfviz.data.digits()
    x, y = d.take(np.arange(len(d))), d.labels
    rng = np.random.default_rng(seed)
    src = np.concatenate([np.arange(min(n, len(d))), rng.integers(0, len(d), max(0, n - len(d)))])
    imgs = x[src].copy()
    for i in range(len(d), n):
        dy, dx = rng.integers(-2, 3, 2)
        im = np.roll(np.roll(imgs[i], dy, 0), dx, 1).astype(np.float32) + rng.normal(0, 12, imgs[i].shape)
        imgs[i] = np.clip(im, 0, 255).astype(np.uint8)
    fs = extract_features(tfviz.models.load_model("digits_cnn"), imgs, batch_size=256)
    return fs.features, y[src]


def run(fn, reps):
    ts, out = [], None
    for _ in range(reps):
        t = time.perf_counter()
        out = fn()
        ts.append(time.perf_counter() - t)
    return np.array(ts), out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=10_000)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--sklearn-reps", type=int, default=3)
    ap.add_argument("--threads", default="1,2", help="openTSNE n_jobs values to time")
    args = ap.parse_args()
    from sklearn.manifold import trustworthiness

    from tfviz.inspect.reduce import reduce_features
    feats, _ = digit_features(args.n)
    print(f"{len(feats)} x {feats.shape[1]} digits_cnn features; {os.cpu_count()} CPUs; "
          f"load average {os.getloadavg()[0]:.1f} at start", flush=True)
    rows = []
    for nj in [int(t) for t in args.threads.split(",")]:
        rows.append((f"openTSNE (n_jobs={nj})", *run(lambda nj=nj: reduce_features(feats, "tsne", 0, n_jobs=nj),
                                                     args.reps)))
        print(f"  {rows[-1][0]}: {np.round(rows[-1][1], 1)} s", flush=True)
    try:
        import importlib
        importlib.import_module("umap")
        reduce_features(feats[:500], "umap")   # numba compilation, untimed
        rows.append(("UMAP (umap-learn)", *run(lambda: reduce_features(feats, "umap", 0), args.reps)))
        print(f"  {rows[-1][0]}: {np.round(rows[-1][1], 1)} s", flush=True)
    except ImportError:
        print("  (umap-learn not importable: no UMAP row)")
    rows.append(("sklearn t-SNE (Barnes-Hut)", *run(lambda: reduce_features(feats, "tsne_sklearn", 0),
                                                     args.sklearn_reps)))
    print(f"  {rows[-1][0]}: {np.round(rows[-1][1], 1)} s", flush=True)
    base = np.median(rows[-1][1])
    print("\n| method | n | seconds (median, min-max) | ratio to sklearn | trustworthiness k=10 |")
    print("|---|---|---|---|---|")
    for name, ts, coords in rows:
        tw = trustworthiness(feats, coords, n_neighbors=10)
        print(f"| {name} | {len(feats):,} | {np.median(ts):.1f} ({ts.min():.1f}-{ts.max():.1f}) | "
              f"{np.median(ts) / base:.2f}x | {tw:.4f} |", flush=True)
    print(f"\nload average {os.getloadavg()[0]:.1f} at the end (2 cores shared: times include others' load)")


if __name__ == "__main__":
    main()
