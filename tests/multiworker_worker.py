"""Helper of tests/test_multiworker.py and bench/bench_multiworker.py: one worker process
of a MultiWorkerMirroredStrategy cluster, started with TF_CONFIG set (the strategy is made
first, before TensorFlow runs anything else).

    python tests/multiworker_worker.py scan FOLDER
    python tests/multiworker_worker.py train --steps N [--ckpt DIR] [--every N] [--logdir DIR]
                                             [--out FILE.keras] [--hang-at STEP]

``scan``: a tiny seeded model; max_activating_patches, extract_features,
nearest_neighbors and embed on FOLDER (a folder with a truncated file), on a list of files
(one a TIFF named .png: TensorFlow drops it and Pillow rescues it), on an array and on a
one-pass stream, each with strategy=None (the single-process reference, in this same
process) and with the strategy. Prints one JSON line: ``{"task": ..., "checks": {name:
bool}, "decoded": {scan: [indices this worker decoded]}}``. ``--only-patches``: the first
scan only; ``--hang-at N``: this worker stops answering at its N-th batch of it.

``train``: train_stylizer on a tiny loss network (test_stylize_training's), printing one
JSON line per step ``{"step": s, "losses": {...}}``; ``--hang-at S``: after step S this
worker stops answering (sleeps), as a stuck or dying machine would; the chief saves
``--out``. Ends with ``{"done": training_info}``, or ``{"error": ..., "type": ...}`` when
the training raised a TfvizError.
"""
import argparse
import json
import os
import sys
import time
import warnings

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

tf.config.threading.set_intra_op_parallelism_threads(int(os.environ.get("WORKER_THREADS", "1")))
tf.config.threading.set_inter_op_parallelism_threads(int(os.environ.get("WORKER_THREADS", "1")))
STRATEGY = tf.distribute.MultiWorkerMirroredStrategy()   # waits for the other workers

import keras  # noqa: E402

import tfviz  # noqa: E402
from tfviz import distribute  # noqa: E402
from tfviz.inspect import embed, extract_features, max_activating_patches, nearest_neighbors  # noqa: E402
from worker_models import TINY_STYLIZE as TINY  # noqa: E402
from worker_models import tiny_model  # noqa: E402
import worker_models  # noqa: E402


def emit(obj):
    print(json.dumps(obj), flush=True)


def scan(folder, only_patches=False, hang_at=None):
    from tfviz.errors import TfvizError
    bundle = tiny_model()
    s = STRATEGY
    checks, decoded = {}, {}
    calls = []

    def progress(n):   # --hang-at N: at its N-th batch this worker stops answering (the test kills it)
        calls.append(n)
        if hang_at is not None and len(calls) == hang_at:
            print("hanging", flush=True)
            time.sleep(3600)

    def last(name):
        info = distribute.last_scan(s)
        decoded[name] = info.decoded.tolist()
        checks[f"{name}/workers"] = info.workers == 2

    def same_patches(name, a, b):
        checks[name] = worker_models.same_patches(a, b)

    def same_features(name, a, b):
        checks[name] = worker_models.same_features(a, b)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # the folder: per_image=None over two layers, then per_image=1
        kw = dict(k=5, batch_size=7)
        ref = max_activating_patches(bundle, folder, ["c1", "c2"], None, per_image=None, **kw)
        try:
            got = max_activating_patches(bundle, folder, ["c1", "c2"], None, per_image=None, strategy=s,
                                         progress=progress, **kw)
        except TfvizError as exc:
            emit({"error": str(exc), "type": type(exc).__name__})
            sys.exit(3)
        same_patches("patches/folder/all", ref, got)
        last("patches/folder/all")
        if only_patches:
            emit({"checks": checks, "decoded": decoded})
            return
        ref = max_activating_patches(bundle, folder, "c2", [0, 3], k=4, batch_size=6, per_image=1)
        got = max_activating_patches(bundle, folder, "c2", [0, 3], k=4, batch_size=6, per_image=1, strategy=s)
        same_patches("patches/folder/per_image", ref, got)
        ref_f = extract_features(bundle, folder, batch_size=7)
        got_f = extract_features(bundle, folder, batch_size=7, strategy=s)
        same_features("features/folder", ref_f, got_f)
        last("features/folder")
        q = [0, 5, 11]
        a_idx, a_dist = nearest_neighbors(bundle, q, folder, k=4, batch_size=7)
        b_idx, b_dist = nearest_neighbors(bundle, q, folder, k=4, batch_size=7, strategy=s)
        checks["neighbors/indices"] = bool(np.array_equal(a_idx, b_idx))
        checks["neighbors/distances"] = bool(np.allclose(a_dist, b_dist, rtol=1e-5, atol=1e-6))
        arr = np.random.default_rng(3).integers(0, 256, (23, 20, 20, 3), dtype=np.uint8)
        a_idx, _ = nearest_neighbors(bundle, arr[[1, 2]], folder, k=3, batch_size=7)
        b_idx, _ = nearest_neighbors(bundle, arr[[1, 2]], folder, k=3, batch_size=7, strategy=s)
        checks["neighbors/images"] = bool(np.array_equal(a_idx, b_idx))
        checks["embed/pca"] = bool(np.allclose(embed(bundle, folder, method="pca", batch_size=7),
                                               embed(bundle, folder, method="pca", batch_size=7, strategy=s),
                                               rtol=1e-4, atol=1e-5))
        # a list of files: the TIFF named .png is dropped by tf.data and rescued by Pillow
        files = sorted(os.path.join(r, f) for r, _, fs in os.walk(folder) for f in fs if not f.startswith("cut"))
        ref_f = extract_features(bundle, files, batch_size=5)
        got_f = extract_features(bundle, files, batch_size=5, strategy=s)
        same_features("features/files", ref_f, got_f)
        last("features/files")
        # an array (loaded by index: sharded) and a one-pass stream (read whole, its share kept)
        ref = max_activating_patches(bundle, arr, "c2", [1, 4], k=6, batch_size=5, per_image=None)
        got = max_activating_patches(bundle, arr, "c2", [1, 4], k=6, batch_size=5, per_image=None, strategy=s)
        same_patches("patches/array", ref, got)
        last("patches/array")
        same_features("features/stream", extract_features(bundle, iter([arr[:10], arr[10:]]), batch_size=4),
                      extract_features(bundle, iter([arr[:10], arr[10:]]), batch_size=4, strategy=s))
        flat = np.full((9, 20, 20, 3), 128, np.uint8)   # every unit ties: earliest images, then positions, win
        ref = max_activating_patches(bundle, flat, "c2", [1], k=7, batch_size=4, per_image=None)
        got = max_activating_patches(bundle, flat, "c2", [1], k=7, batch_size=4, per_image=None, strategy=s)
        same_patches("patches/ties", ref, got)
        checks["patches/ties/order"] = bool(np.array_equal(got[0].locations[:, 0], [0] * 7))
    t = distribute.task(s)
    emit({"task": {"worker": t.worker, "workers": t.workers, "chief": t.chief}, "checks": checks, "decoded": decoded,
          "files": files})


def train(args):
    from tfviz.errors import TfvizError
    from tfviz.stylize.training import train_stylizer
    scope = {"keras": keras, "tfviz": tfviz}
    exec(TINY, scope)
    me = distribute.task(STRATEGY)

    def log(step, losses):
        emit({"step": step, "losses": losses})
        if args.hang_at is not None and step == args.hang_at:
            time.sleep(3600)   # this worker stops answering; the test kills it

    try:
        model = train_stylizer(scope["bundle"], ["strokes", "mosaic"], image_size=32, batch_size=4,
                               steps=args.steps, width=0.125, strategy=STRATEGY, callbacks=[log],
                               checkpoint_dir=args.ckpt, checkpoint_every=args.every, logdir=args.logdir,
                               preview_every=2)
    except TfvizError as exc:
        emit({"error": str(exc), "type": type(exc).__name__, "worker": me.worker})
        sys.exit(3)
    if args.out and model.training_info["chief"]:
        model.save(args.out)
    emit({"done": model.training_info})


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("mode", choices=["scan", "train"])
    p.add_argument("folder", nargs="?")
    p.add_argument("--steps", type=int, default=3)
    p.add_argument("--ckpt")
    p.add_argument("--every", type=int, default=100)
    p.add_argument("--logdir")
    p.add_argument("--out")
    p.add_argument("--hang-at", type=int)
    p.add_argument("--only-patches", action="store_true")
    a = p.parse_args()
    scan(a.folder, a.only_patches, a.hang_at) if a.mode == "scan" else train(a)
