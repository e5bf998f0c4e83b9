"""Throughput and memory of a data-set scan (``extract_features``) over an ImageNet-style
folder tree, with and without the tf.data pipeline, on one or two (logical) devices.

    python bench/bench_scan.py [--n 10000] [--px 64-96] [--batch 128] [--reps 3] [--data DIR]
    python bench/bench_scan.py --n 100000 --reps 1

Generates (once; reused when ``--data`` already holds it) ``N`` small JPEGs (random
sizes in ``--px``, 100 class sub-folders ``n00000000 ...``) with a process pool, then
runs one subprocess per configuration -- logical devices must be set before TensorFlow
starts:

  * ``pillow``  : ``from_folder(..., pipeline=False)``: Pillow decodes one batch at a time
  * ``tf.data`` : the default: parallel decode and resize in ``tf.data``, prefetched
  * ``x2``      : the same under ``tf.distribute.MirroredStrategy`` over two logical CPU
    devices (on GPUs it would be one replica per GPU)

Each subprocess opens the folder (listing + header check, timed once: "open s"), warms
up (tracing), then times ``reps`` full passes of ``extract_features`` with a small conv
net (64 x 64 input, 3 strided convolutions, global pool; seeded). Printed: images/s
(median of the passes, and the spread min..max), the peak RSS of the process
(``ru_maxrss``) and its growth over the RSS after warm-up -- the constant-memory claim:
it should not grow with N. One table at the end.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

CONFIGS = {"pillow": (False, 1), "tf.data": (True, 1), "pillow x2": (False, 2), "tf.data x2": (True, 2)}
CLASSES = 100


# ------------------------------------------------------------------ data generation
def _make_chunk(args):
    """Images ``start..stop``: crops of a few smooth random textures, each with its own
    colour shift and noise (cheap: numpy on uint8, tiny JPEGs)."""
    root, start, stop, lo, hi, seed = args
    from PIL import Image
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:2 * hi, 0:2 * hi]
    textures = [np.clip(128 + 60 * np.sin(xx[..., None] / rng.uniform(2, 9) + rng.uniform(0, 6, 3))
                        + 40 * np.cos(yy[..., None] / rng.uniform(2, 9)), 0, 255).astype(np.int16) for _ in range(8)]
    for i in range(start, stop):
        h, w = rng.integers(lo, hi + 1, 2)
        y, x = rng.integers(0, hi, 2)
        img = textures[i % 8][y:y + h, x:x + w] + rng.integers(-60, 61, 3).astype(np.int16)
        img = img + rng.integers(-12, 13, (h, w, 1), dtype=np.int16)
        d = os.path.join(root, f"n{i % CLASSES:08d}")
        Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)).save(os.path.join(d, f"img_{i:07d}.jpg"), quality=80)
    return stop - start


def make_tree(root: str, n: int, lo: int, hi: int) -> float:
    """N JPEGs in class sub-folders under ``root`` (skipped when already there)."""
    marker = os.path.join(root, f".done-{n}-{lo}-{hi}")
    if os.path.exists(marker):
        return 0.0
    from multiprocessing import Pool
    t = time.perf_counter()
    for c in range(CLASSES):
        os.makedirs(os.path.join(root, f"n{c:08d}"), exist_ok=True)
    step = 500
    jobs = [(root, s, min(s + step, n), lo, hi, s) for s in range(0, n, step)]
    with Pool(os.cpu_count()) as pool:
        for _ in pool.imap_unordered(_make_chunk, jobs):
            pass
    open(marker, "w").close()
    return time.perf_counter() - t


# ------------------------------------------------------------------ one configuration
def worker(cfg: str, root: str, batch: int, reps: int) -> dict:
    import resource
    import tensorflow as tf
    pipeline, devices = CONFIGS[cfg]
    if devices > 1:
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * devices)
    import keras

    import tfviz
    from tfviz.data import from_folder, image_set
    from tfviz.inspect import extract_features

    keras.utils.set_random_seed(0)
    L = keras.layers
    inp = keras.Input((64, 64, 3))
    x = L.Conv2D(16, 3, strides=2, activation="relu")(inp)
    x = L.Conv2D(32, 3, strides=2, activation="relu")(x)
    x = L.Conv2D(64, 3, strides=2, activation="relu")(x)
    x = L.GlobalAveragePooling2D(name="pool")(x)
    bundle = tfviz.load_model(keras.Model(inp, L.Dense(10)(x)), preprocess="0-1")
    strategy = tf.distribute.MirroredStrategy([f"/cpu:{i}" for i in range(devices)]) if devices > 1 else None

    t = time.perf_counter()
    data = from_folder(root, pipeline=pipeline)
    t_open = time.perf_counter() - t
    warm = image_set(list(data.names[:4 * batch]))
    warm.pipeline = pipeline
    extract_features(bundle, warm, batch_size=batch, strategy=strategy)
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    times, n = [], 0
    for _ in range(reps):
        t = time.perf_counter()
        fs = extract_features(bundle, data, batch_size=batch, strategy=strategy)
        times.append(time.perf_counter() - t)
        n = len(fs.indices)
        del fs
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    rate = n / np.asarray(times)
    return {"config": cfg, "images": n, "open_s": t_open, "median": float(np.median(rate)),
            "min": float(rate.min()), "max": float(rate.max()), "peak_mb": peak, "growth_mb": peak - rss0,
            "feature_mb": n * 64 * 4 / 2 ** 20}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=10_000, help="images (e.g. 10000 or 100000)")
    ap.add_argument("--px", default="64-96", help="image side range in pixels, e.g. 64-96")
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--data", default=None, help="folder for the generated tree (default: a temp dir, removed)")
    ap.add_argument("--configs", default=",".join(CONFIGS), help="comma-separated: " + ", ".join(CONFIGS))
    ap.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        print("RESULT " + json.dumps(worker(args.worker, args.data, args.batch, args.reps)), flush=True)
        return
    lo, hi = (int(v) for v in args.px.split("-"))
    tmp = None
    root = args.data
    if root is None:
        tmp = tempfile.TemporaryDirectory(prefix="scan_bench_")
        root = tmp.name
    took = make_tree(root, args.n, lo, hi)
    if took:
        print(f"generated {args.n} JPEGs ({lo}-{hi} px, {CLASSES} classes) in {took:.1f} s "
              f"({args.n / took:.0f} images/s, {os.cpu_count()} processes)", flush=True)
    rows = []
    for cfg in args.configs.split(","):
        cmd = [sys.executable, os.path.abspath(__file__), "--worker", cfg, "--data", root,
               "--batch", str(args.batch), "--reps", str(args.reps)]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        line = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
        if proc.returncode or not line:
            print(f"{cfg}: failed\n{proc.stderr[-2000:]}", file=sys.stderr)
            continue
        rows.append(json.loads(line[-1][7:]))
        print(f"  {cfg}: {rows[-1]['median']:.0f} images/s", flush=True)
    print(f"\nextract_features over {args.n} JPEGs ({lo}-{hi} px -> 64x64), batch {args.batch}, "
          f"{args.reps} pass(es), {os.cpu_count()} CPU cores")
    print(f"{'config':<12} {'images':>7} {'open s':>7} {'images/s':>9} {'spread':>13} {'peak RSS MB':>12} "
          f"{'growth MB':>10}")
    for r in rows:
        spread = f"{r['min']:.0f}..{r['max']:.0f}"
        print(f"{r['config']:<12} {r['images']:>7} {r['open_s']:>7.1f} {r['median']:>9.0f} {spread:>13} "
              f"{r['peak_mb']:>12.0f} {r['growth_mb']:>10.0f}")
    print("growth: peak RSS over the RSS after warm-up; the [N, 64] float32 features themselves are "
          f"{rows[0]['feature_mb'] if rows else 0:.1f} MB")
    if tmp is not None:
        tmp.cleanup()


if __name__ == "__main__":
    main()
