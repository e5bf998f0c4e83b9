"""Two workers of a MultiWorkerMirroredStrategy cluster against one process, on the same
cores, and what crosses between the workers; then the per-image costs behind the
"scale on paper" table of docs/inspect.md ("Past one machine").

    python bench/bench_multiworker.py [--n 4000] [--px 64-96] [--batch 128] [--reps 3] [--data DIR]
                                      [--paper 192] [--skip-paper]

Generates (once; reused with ``--data``) ``N`` small JPEGs in 100 class folders
(bench_scan's tree), then times full passes of ``extract_features`` and
``max_activating_patches`` (all 64 channels of the last convolution, k=9) with
bench_scan's small conv net (64 x 64 input), each configuration in fresh processes:

  * ``one``: one process, no strategy, TensorFlow's pools at 2 threads;
  * ``two``: two worker processes on localhost ports (TF_CONFIG), one thread each, the
    strategy sharding the folder by image; a pass takes as long as its slower worker.

Each process opens the folder (listing and a header check per file: every worker does
it all, timed), warms up (tracing) on a few batches, then runs ``--reps`` passes; printed:
images/s, median and min-max over the passes. Bytes between workers are measured on the
arrays the scan gathers (``strategy.gather`` in ``run_steps`` and ``all_workers``): per
step, and once at the end for the patches' exchange of winners; a worker receives the
other workers' part of each gathered array.

``--paper``: per-image costs on ImageNet-like input -- JPEGs of 500 x 375 pixels decoded
and resized to 224 x 224 by the scans' tf.data pass, and efficientnet_lite0 (random
weights, the same arithmetic) on batches of 32 -- on the 2 cores, for the on-paper table.
"""
from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
sys.path.insert(0, HERE)
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from bench_scan import make_tree  # noqa: E402


# ------------------------------------------------------------------ one worker process
def _small_net():
    import keras

    import tfviz
    keras.utils.set_random_seed(0)
    L = keras.layers
    inp = keras.Input((64, 64, 3))
    x = L.Conv2D(16, 3, strides=2, activation="relu")(inp)
    x = L.Conv2D(32, 3, strides=2, activation="relu")(x)
    x = L.Conv2D(64, 3, strides=2, activation="relu", name="conv3")(x)
    x = L.GlobalAveragePooling2D(name="pool")(x)
    return tfviz.load_model(keras.Model(inp, L.Dense(10)(x)), preprocess="0-1")


def worker(root: str, batch: int, reps: int, threads: int) -> dict:
    import tensorflow as tf
    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(threads)
    strategy = tf.distribute.MultiWorkerMirroredStrategy() if os.environ.get("TF_CONFIG") else None

    from tfviz import distribute
    from tfviz.data import from_folder, image_set
    from tfviz.inspect import extract_features, max_activating_patches
    from tfviz.inspect import patches as patches_mod

    moved = {"steps": 0, "step_bytes": 0, "end_bytes": 0}
    run_steps, all_workers = distribute.run_steps, distribute.all_workers

    def counting_steps(*a, **kw):   # what each step gathers (gather=False: nothing crosses)
        gather = a[5] if len(a) > 5 else kw.get("gather", True)
        for out in run_steps(*a, **kw):
            if gather:
                moved["steps"] += 1
                moved["step_bytes"] += sum(v.nbytes for v in out.values())
            yield out

    def counting_all(strategy_, arrays):
        out = all_workers(strategy_, arrays)
        moved["end_bytes"] += sum(v.nbytes for v in out.values())
        return out

    distribute.run_steps, patches_mod.all_workers = counting_steps, counting_all
    bundle = _small_net()
    t = time.perf_counter()
    data = from_folder(root)   # every worker lists the folder and checks each file's header
    t_open = time.perf_counter() - t
    warm = image_set(list(data.names[:4 * batch]))
    extract_features(bundle, warm, batch_size=batch, strategy=strategy)
    max_activating_patches(bundle, warm, "conv3", None, k=9, batch_size=batch, strategy=strategy)
    res = {}
    for what in ("features", "patches"):
        times = []
        for _ in range(reps):
            moved.update(steps=0, step_bytes=0, end_bytes=0)
            t = time.perf_counter()
            if what == "features":
                n = len(extract_features(bundle, data, batch_size=batch, strategy=strategy).indices)
            else:
                max_activating_patches(bundle, data, "conv3", None, k=9, batch_size=batch, strategy=strategy)
            times.append(time.perf_counter() - t)
        res[what] = {"times": times, **moved}
    info = None if strategy is None else distribute.last_scan(strategy)
    return {"images": n, "res": res, "decoded": None if info is None else len(info.decoded),
            "worker": distribute.task(strategy).worker, "open_s": t_open}


# ------------------------------------------------------------------ per-image costs for the table
def paper(n_images: int, tmp: str) -> dict:
    import tensorflow as tf
    tf.config.threading.set_intra_op_parallelism_threads(2)
    tf.config.threading.set_inter_op_parallelism_threads(2)
    from PIL import Image

    import tfviz
    from tfviz.data import TFPass, from_folder
    from tfviz.default_layers import feature_layer as default_feature_layer
    from tfviz.inspect import extract_features
    from tfviz.inspect.activations import forward_fn
    from tfviz.zoo.efficientnet_lite0 import build

    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:375, 0:500]
    os.makedirs(os.path.join(tmp, "c"), exist_ok=True)
    for i in range(n_images):   # smooth textures with noise: ~ a photo's JPEG cost per pixel
        img = 128 + 60 * np.sin(xx[..., None] / rng.uniform(3, 20) + rng.uniform(0, 6, 3)) \
            + 40 * np.cos(yy[..., None] / rng.uniform(3, 20)) + rng.normal(0, 12, (375, 500, 1))
        Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)).save(os.path.join(tmp, "c", f"{i:04d}.jpg"), quality=90)
    data = from_folder(tmp)
    kb = np.mean([os.path.getsize(f) for f in data.names]) / 1024

    def decode_pass():
        t = time.perf_counter()
        for _ in TFPass(data, 64, (224, 224)).dataset:
            pass
        return (time.perf_counter() - t) / len(data)

    decode_pass()
    decode = float(np.median([decode_pass() for _ in range(3)]))
    bundle = tfviz.load_model(build(), preprocess="0-1")
    x = np.random.default_rng(1).integers(0, 256, (32, 224, 224, 3), dtype=np.uint8)
    fn = forward_fn(bundle, [default_feature_layer(bundle)])
    fn(x)
    model = []
    for _ in range(3):
        t = time.perf_counter()
        fn(x)
        model.append((time.perf_counter() - t) / len(x))
    extract_features(bundle, data, batch_size=32)   # traced once; then timed
    t = time.perf_counter()
    fs = extract_features(bundle, data, batch_size=32)
    scan = (time.perf_counter() - t) / len(data)
    return {"decode_ms": 1e3 * decode, "model_ms": 1e3 * float(np.median(model)), "scan_ms": 1e3 * scan,
            "dims": int(fs.features.shape[1]), "jpeg_kb": float(kb), "images": len(data)}


# ------------------------------------------------------------------ driver
def _ports(n):
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("localhost", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def _run(cmds_envs, timeout=3600):
    procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
             for cmd, env in cmds_envs]
    outs = []
    try:
        for p in procs:
            out, err = p.communicate(timeout=timeout)
            line = [ln for ln in out.splitlines() if ln.startswith("RESULT ")]
            if p.returncode or not line:
                raise RuntimeError(f"a worker failed:\n{err[-3000:]}")
            outs.append(json.loads(line[-1][7:]))
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    return outs


IMAGENET = 1_281_167


def paper_table(p: dict, open_ms: float, workers=(1, 8, 64), batch: int = 64, n: int = IMAGENET) -> list[str]:
    """The on-paper table: ImageNet's training set scanned by ``workers`` machines like
    this one, from the measured per-image costs ``p`` (``scan_ms``: extract_features end
    to end, decode overlapped) and the per-file cost of opening the folder (every worker
    opens all of it). ``batch``: images per worker and step."""
    d = p["dims"]
    row_bytes = 4 * d + 16                               # a feature row, its index and label
    image_bytes = 224 * 224 * 3
    lines = [f"{'workers':>7} | {'scan time':>9} | {'opening (every worker)':>22} | "
             f"{'features: matrix per worker':>27} | {'features: MB/s in per worker':>28} | "
             f"{'patches, per-step gather of images: MB/s in':>43}"]
    for w in workers:
        t = n * p["scan_ms"] / 1e3 / w
        step = batch * p["scan_ms"] / 1e3                 # one step: a worker's batch
        feat_in = (w - 1) * batch * row_bytes / step / 1e6
        img_in = (w - 1) * batch * image_bytes / step / 1e6
        lines.append(f"{w:>7} | {_hms(t):>9} | {_hms(n * open_ms / 1e3):>22} | {n * d * 4 / 1e9:>24.1f} GB | "
                     f"{feat_in:>28.1f} | {img_in:>43.0f}")
    return lines


def _hms(sec: float) -> str:
    return f"{sec / 3600:.1f} h" if sec >= 5400 else f"{sec / 60:.0f} min" if sec >= 90 else f"{sec:.0f} s"


def _rates(n, times):
    r = n / np.asarray(times)
    return float(np.median(r)), float(r.min()), float(r.max())


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=4000)
    ap.add_argument("--px", default="64-96")
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--data", default=None)
    ap.add_argument("--paper", type=int, default=192, help="JPEGs of 500 x 375 for the per-image costs")
    ap.add_argument("--skip-paper", action="store_true")
    ap.add_argument("--worker", type=int, default=None, help=argparse.SUPPRESS)
    ap.add_argument("--paper-worker", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker is not None:
        print("RESULT " + json.dumps(worker(args.data, args.batch, args.reps, args.worker)), flush=True)
        return
    if args.paper_worker is not None:
        print("RESULT " + json.dumps(paper(args.paper, args.paper_worker)), flush=True)
        return
    lo, hi = (int(v) for v in args.px.split("-"))
    tmp = tempfile.TemporaryDirectory(prefix="mw_bench_")
    root = args.data or os.path.join(tmp.name, "tree")
    make_tree(root, args.n, lo, hi)
    base = dict(os.environ, CUDA_VISIBLE_DEVICES="", TF_CPP_MIN_LOG_LEVEL="3", PYTHONWARNINGS="ignore")
    base.pop("TF_CONFIG", None)
    me = [sys.executable, os.path.abspath(__file__), "--data", root, "--batch", str(args.batch), "--reps",
          str(args.reps)]
    one = _run([(me + ["--worker", "2"], base)])[0]
    ports = _ports(2)
    cluster = {"worker": [f"localhost:{p}" for p in ports]}
    two = _run([(me + ["--worker", "1"], dict(base, TF_CONFIG=json.dumps(
        {"cluster": cluster, "task": {"type": "worker", "index": i}}))) for i in range(2)])
    n = one["images"]
    print(f"\n{n} JPEGs ({lo}-{hi} px -> 64x64), global batch {args.batch}, {args.reps} passes, "
          f"{os.cpu_count()} CPU cores shared by all processes (load average now {os.getloadavg()[0]:.1f})")
    print(f"{'scan':<9} {'config':<28} {'images/s (median)':>18} {'min-max':>13} {'per step, a worker receives':>28} "
          f"{'at the end':>11}")
    for what in ("features", "patches"):
        r1 = one["res"][what]
        print(f"{what:<9} {'one process, 2 threads':<28} {_rates(n, r1['times'])[0]:>18.0f} "
              f"{'%.0f-%.0f' % _rates(n, r1['times'])[1:]:>13} {'-':>28} {'-':>11}")
        t2 = np.max([w["res"][what]["times"] for w in two], axis=0)   # a pass ends with its slower worker
        w0 = two[0]["res"][what]
        steps = max(w0["steps"], 1)
        per_step = w0["step_bytes"] / steps / 2   # of the gathered arrays, half came from the other worker
        end = w0["end_bytes"] / 2
        per = f"{per_step / 1024:.1f} KiB ({steps} steps)" if w0["steps"] else "0 (kept on each worker)"
        spread = "%.0f-%.0f" % _rates(n, t2)[1:]
        print(f"{'':<9} {'two workers, 1 thread each':<28} {_rates(n, t2)[0]:>18.0f} {spread:>13} "
              f"{per:>28} {end / 1024:>9.1f} KiB")
    print(f"decoded per worker: {[w['decoded'] for w in two]} (of {n}); opening the folder (listing, headers): "
          f"{1e3 * one['open_s'] / n:.3f} ms per file, on every worker")
    if not args.skip_paper:
        p = _run([([sys.executable, os.path.abspath(__file__), "--paper", str(args.paper), "--paper-worker",
                    os.path.join(tmp.name, "paper")], base)])[0]
        print(f"\nper image on these 2 cores ({p['images']} JPEGs 500x375, {p['jpeg_kb']:.0f} KB): tf.data decode + "
              f"resize to 224: {p['decode_ms']:.2f} ms; efficientnet_lite0 forward (batch 32): {p['model_ms']:.2f} ms; "
              f"extract_features end to end: {p['scan_ms']:.2f} ms; features {p['dims']}-D")
        print(f"\nscale on paper: {IMAGENET:,} ImageNet images at 224x224, efficientnet_lite0's {p['dims']} features, "
              f"workers like this 2-core machine, 64 images per worker and step")
        print("\n".join(paper_table(p, 1e3 * one["open_s"] / n)))
        print("RESULT " + json.dumps({"one": one, "two": two, "paper": p}))
    tmp.cleanup()


if __name__ == "__main__":
    main()
