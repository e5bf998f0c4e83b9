"""Helper of tests/test_scale.py, run in a subprocess: logical devices must be set
before TensorFlow initializes.

    python tests/scale_worker.py FOLDER

Splits the CPU into two logical devices, builds a tiny seeded model, and runs
max_activating_patches, extract_features and nearest_neighbors on FOLDER (a tf.data
file set with a truncated file), on an array and on a one-pass stream, with and without
``tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])``. Prints one JSON line:
``{"checks": {name: true/false...}, "errors": [...]}``.
"""
import json
import os
import sys
import warnings

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)


from tfviz.data import UnreadableImagesWarning  # noqa: E402
from tfviz.inspect import extract_features, max_activating_patches, nearest_neighbors  # noqa: E402
from worker_models import tiny_model  # noqa: E402
import worker_models  # noqa: E402


def main(folder):
    bundle = tiny_model()
    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    checks, errors = {}, []
    arr = np.random.default_rng(3).integers(0, 256, (23, 20, 20, 3), dtype=np.uint8)

    def stream():
        return iter([arr[i:i + 6] for i in range(0, len(arr), 6)])

    def same_patches(name, a, b):
        checks[name] = worker_models.same_patches(a, b)

    def same_features(name, a, b):
        checks[name] = worker_models.same_features(a, b)

    # folder: 18 readable files in batches of 7 (replicas get 4 + 3); array: 23 in batches of 11, the
    # last (one image) leaves a replica empty; stream: its own batches of 6 (and 5)
    runs = [("folder", lambda: folder, 7), ("array", lambda: arr, 11), ("stream", stream, 6)]
    for name, src, bs in runs:
        kw = dict(k=5, batch_size=bs)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            if name == "folder":
                ref = max_activating_patches(bundle, src(), ["c1", "c2"], None, per_image=None, **kw)
                got = max_activating_patches(bundle, src(), ["c1", "c2"], None, per_image=None,
                                             strategy=strategy, **kw)
                same_patches(f"patches/{name}/all", ref, got)
            if name == "array":
                ref = max_activating_patches(bundle, src(), "c2", [0, 3], per_image=1, **kw)
                got = max_activating_patches(bundle, src(), "c2", [0, 3], per_image=1, strategy=strategy, **kw)
                same_patches(f"patches/{name}/per_image", ref, got)
            ref = extract_features(bundle, src(), batch_size=bs)
            got = extract_features(bundle, src(), batch_size=bs, strategy=strategy)
            same_features(f"features/{name}", ref, got)
            if name == "array":
                px = extract_features(bundle, src(), space="pixels", batch_size=bs, strategy=strategy)
                same_features(f"pixels/{name}", extract_features(bundle, src(), space="pixels", batch_size=bs), px)
        if name == "folder":
            skipped = [str(w.message) for w in caught if issubclass(w.category, UnreadableImagesWarning)]
            checks[f"warned/{name}"] = len(skipped) == 4 and all("cut.png" in m for m in skipped)
    flat = np.full((9, 20, 20, 3), 128, np.uint8)  # every unit ties: earliest images, then positions, win
    ref = max_activating_patches(bundle, flat, "c2", [1], k=7, batch_size=4, per_image=None)
    got = max_activating_patches(bundle, flat, "c2", [1], k=7, batch_size=4, per_image=None, strategy=strategy)
    same_patches("patches/ties", ref, got)
    checks["patches/ties/order"] = bool(np.array_equal(ref[0].locations[:, 0], [0] * 7))
    q = [0, 5, 11]
    a_idx, a_dist = nearest_neighbors(bundle, q, arr, k=4, batch_size=7)
    b_idx, b_dist = nearest_neighbors(bundle, q, arr, k=4, batch_size=7, strategy=strategy)
    checks["neighbors/indices"] = bool(np.array_equal(a_idx, b_idx))
    checks["neighbors/distances"] = bool(np.allclose(a_dist, b_dist, rtol=1e-5, atol=1e-6))
    imgs = arr[[1, 2]]
    fs = extract_features(bundle, arr, batch_size=7)
    a_idx, _ = nearest_neighbors(bundle, imgs, arr, k=3, dataset_features=fs)
    b_idx, _ = nearest_neighbors(bundle, imgs, arr, k=3, dataset_features=fs, strategy=strategy)
    checks["neighbors/images"] = bool(np.array_equal(a_idx, b_idx))
    checks["replicas"] = strategy.num_replicas_in_sync == 2
    print(json.dumps({"checks": checks, "errors": errors}))


if __name__ == "__main__":
    main(sys.argv[1])
