"""Scan speed and memory of the data-set methods: max-activating patches and embedding
features over 2,000 and 10,000 images (scikit-learn's digits, shifted and noised anew
for every batch, streamed so the data itself takes no memory).

Each (task, size) runs in a fresh process and reports images/s, the cost relative to a
plain forward pass over the same stream, the peak of Python/numpy allocations during the
scan (tracemalloc) and the growth of the process's peak RSS during the scan. A running
top-k means the patch scan's memory must not grow from 2,000 to 10,000 images; the
embedding scan keeps one 64-float feature row per image (256 KB per 1,000 images).

    python bench/bench_inspect.py                  # digits_cnn, 2,000 and 10,000 images
    python bench/bench_inspect.py --tsne           # also time t-SNE / PCA of the features
    python bench/bench_inspect.py --model efficientnet_lite0 --sizes 200 1000 --layer block4a_expand_conv
"""
import argparse
import json
import os
import resource
import subprocess
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def stream(n, size, batch=100, seed=0):
    """``n`` digits, each batch shifted by up to 3 px and noised, made on the fly."""
    import numpy as np

    from tfviz.images import resize
    from tfviz.zoo.digits_cnn import digits_images
    x, _ = digits_images()
    if tuple(x.shape[1:3]) != tuple(size):
        x = resize(x, size)
    rng = np.random.default_rng(seed)
    for start in range(0, n, batch):
        b = min(batch, n - start)
        idx = rng.integers(0, len(x), b)
        dy, dx = rng.integers(-3, 4, 2)
        imgs = np.roll(np.roll(x[idx], dy, 1), dx, 2).astype(np.int16)
        imgs += rng.integers(-20, 21, imgs.shape, dtype=np.int16)
        yield np.clip(imgs, 0, 255).astype(np.uint8)


def rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def child(task, n, model, layer, batch, tsne):
    import tracemalloc

    import tfviz
    from tfviz.inspect import extract_features, max_activating_patches, reduce_features
    from tfviz.inspect.activations import forward_fn
    bundle = tfviz.load_model(model)
    layer = layer or ("conv3" if model == "digits_cnn" else bundle.conv_layers()[len(bundle.conv_layers()) // 2])
    size = bundle.input_size
    out = {"task": task, "images": n, "model": model}
    # warm up: trace the functions, allocate TensorFlow's pools
    fwd = forward_fn(bundle, [bundle.model.layers[-1].name])
    for b in stream(2 * batch, size, batch):
        fwd(b)
    if task == "patches":
        max_activating_patches(bundle, stream(2 * batch, size, batch), layer, None, k=9, batch_size=batch)
    else:
        extract_features(bundle, stream(2 * batch, size, batch), batch_size=batch)
    # baseline: one plain forward pass over the same stream (the data making included)
    t = time.perf_counter()
    for b in stream(n, size, batch):
        fwd(b)
    t_fwd = time.perf_counter() - t
    rss0 = rss_mb()
    tracemalloc.start()
    t = time.perf_counter()
    if task == "patches":
        res = max_activating_patches(bundle, stream(n, size, batch), layer, None, k=9, batch_size=batch)
        out["channels"] = len(res)
        out["layer"] = layer
    else:
        fs = extract_features(bundle, stream(n, size, batch), batch_size=batch)
        out["dims"] = int(fs.features.shape[1])
    dt = time.perf_counter() - t
    out["tracemalloc_peak_mb"] = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    out.update(seconds=dt, images_per_s=n / dt, forward_images_per_s=n / t_fwd, cost_vs_forward=dt / t_fwd,
               rss_before_mb=rss0, rss_peak_mb=rss_mb(), rss_growth_mb=rss_mb() - rss0)
    if task == "embed" and tsne:
        for method in ("pca", "tsne"):
            t = time.perf_counter()
            reduce_features(fs.features, method, seed=0)
            out[f"{method}_seconds"] = time.perf_counter() - t
    print(json.dumps(out))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="digits_cnn")
    ap.add_argument("--layer", default=None)
    ap.add_argument("--sizes", type=int, nargs="+", default=[2000, 10000])
    ap.add_argument("--batch", type=int, default=250)
    ap.add_argument("--tsne", action="store_true", help="also time PCA and t-SNE of the features")
    ap.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:
        child(a.child[0], int(a.child[1]), a.model, a.layer, a.batch, a.tsne)
        return
    rows = []
    for task in ("patches", "embed"):
        for n in a.sizes:
            cmd = [sys.executable, __file__, "--child", task, str(n), "--model", a.model, "--batch", str(a.batch)]
            cmd += ["--layer", a.layer] if a.layer else []
            cmd += ["--tsne"] if a.tsne else []
            r = subprocess.run(cmd, capture_output=True, text=True)
            line = [ln for ln in r.stdout.splitlines() if ln.startswith("{")]
            if r.returncode or not line:
                sys.exit(f"{task} {n} failed:\n{r.stderr[-3000:]}")
            rows.append(json.loads(line[-1]))
    print(f"model {a.model}, batch {a.batch}; patches: all channels of {rows[0].get('layer')}, k=9")
    print(f"{'task':8s} {'images':>7s} {'img/s':>8s} {'fwd img/s':>10s} {'x fwd':>6s} {'tracemalloc MB':>15s} "
          f"{'RSS growth MB':>14s} {'peak RSS MB':>12s}")
    for r in rows:
        print(f"{r['task']:8s} {r['images']:7d} {r['images_per_s']:8.0f} {r['forward_images_per_s']:10.0f} "
              f"{r['cost_vs_forward']:6.2f} {r['tracemalloc_peak_mb']:15.2f} {r['rss_growth_mb']:14.1f} "
              f"{r['rss_peak_mb']:12.0f}" + (f"   pca {r['pca_seconds']:.2f}s, t-SNE {r['tsne_seconds']:.1f}s"
                                               if "tsne_seconds" in r else ""))


if __name__ == "__main__":
    main()
