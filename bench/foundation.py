"""Foundation figures: efficientnet_lite0 first (convert + cache) and cached load times,
and the top-5 classes of the bundled sample photos.

    python bench/foundation.py
"""
import os
import tempfile
import time

os.environ["TFVIZ_CACHE"] = tempfile.mkdtemp(prefix="tfviz-bench-")

import tfviz  # noqa: E402
import tensorflow as tf  # noqa: E402  (imported before timing; quiet through tfviz's import hook)
tf.constant(0.0)  # start TensorFlow's runtime before timing, too
t0 = time.perf_counter()
tfviz.load_model("efficientnet_lite0")
first = time.perf_counter() - t0
t0 = time.perf_counter()
bundle = tfviz.load_model("efficientnet_lite0")
cached = time.perf_counter() - t0
print(f"efficientnet_lite0 load: first {first:.2f}s (convert + cache), cached {cached:.2f}s")
for name, path in tfviz.images.sample_photos().items():
    top = bundle.top_k(bundle.load_images([path]), 5)[0]
    print(f"{name:10s} " + " | ".join(f"{n} {p:.2f}" for _, n, p in top))
