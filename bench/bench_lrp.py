"""Cost of LRP against a plain gradient of the same batch (issue 26: at most 1.5x).

    python bench/bench_lrp.py [--models efficientnet_lite0,resnet50,vgg16] [--batch 8] [--reps 7]

For each model, one batch of images at 224 px (random pixels: the cost does not depend on
them), and the traced programs tfviz runs, called side by side in alternation (so that load
from other processes hits all alike):

  * ``forward``: the logits (``core.forward_function``),
  * ``gradient``: the gradient of the target logit with respect to the input, the program
    behind saliency / input x gradient (``core.gradient_function``),
  * ``gradient + forward``: both in one program, the floor of the z+ and gamma rules
    (their denominators ``sum_j a_j w_jk^+`` are a second forward pass of each layer,
    with the positive weights),
  * ``lrp``: one LRP program (``lrp.lrp_function``) per rule / composite: epsilon (the
    default), LRP-0, epsilon_plus_flat, epsilon_gamma_box.

Each program is warmed up (traced) first. Reported per row: the median over the repeats of
the per-repeat ratio to the gradient's time of the same repeat, with min-max, and the ratio
to one forward pass. Also the conservation check: sum of the relevance minus the score,
relative to the score (biases and batch-norm shifts absorb relevance, so it is not 0 on
real networks). resnet50 and vgg16 are ``keras.applications`` models with
``weights=None`` (no download): the cost does not depend on the weights.
"""
from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

VARIANTS = [("lrp epsilon", dict(rule="epsilon")), ("lrp zero", dict(rule="zero")),
            ("lrp epsilon_plus_flat", dict(composite="epsilon_plus_flat")),
            ("lrp epsilon_gamma_box", dict(composite="epsilon_gamma_box"))]


def load(name):
    import keras

    import tfviz
    if name == "efficientnet_lite0":
        return tfviz.load_model()
    make = {"resnet50": keras.applications.ResNet50, "vgg16": keras.applications.VGG16}[name]
    return tfviz.load_model(make(weights=None), preprocess="caffe")


def bench(name, batch, reps):
    import tensorflow as tf

    from tfviz.attribution.core import forward_function, gradient_function, selection
    from tfviz.attribution.lrp import lrp_function, lrp_key, lrp_reason
    from tfviz.attribution.targets import resolve_targets

    t0 = time.perf_counter()
    bundle = load(name)
    reason = lrp_reason(bundle)
    if reason:
        print(f"{name}: lrp refuses: {reason}")
        return
    imgs = np.random.default_rng(0).integers(0, 256, (batch, 224, 224, 3)).astype(np.uint8)
    x = tf.constant(bundle.preprocess(imgs).astype(np.float32))
    targets = resolve_targets(bundle, None, batch, x.numpy())
    sel = tf.constant(selection(targets))
    fwd = forward_function(bundle)
    grad = gradient_function(bundle)

    @tf.function
    def floor(x, sel):  # what z+ / gamma cannot go below: their denominators are a second forward pass
        return grad(x, sel), fwd(tf.reverse(x, [0]))  # not x: no shared forward to merge
    progs = [("forward", lambda: fwd(x)), ("gradient", lambda: grad(x, sel)),
             ("gradient + forward", lambda: floor(x, sel))]
    firsts = {}
    for label, kw in VARIANTS:
        f = lrp_function(bundle, None, lrp_key(**kw))
        t = time.perf_counter()
        r, s = f(x, sel)  # builds the rewritten model and traces
        firsts[label] = time.perf_counter() - t
        rel = r.numpy().reshape(batch, -1).sum(1)
        s = s.numpy()
        firsts[label + " conservation"] = float(np.median(np.abs(rel - s) / np.maximum(np.abs(s), 1e-9)))
        progs.append((label, lambda f=f: f(x, sel)))
    for _, p in progs:  # warm up (the plain programs trace here)
        _sync(p())
    times = {label: [] for label, _ in progs}
    for _ in range(reps):
        for label, p in progs:
            t = time.perf_counter()
            _sync(p())
            times[label].append(time.perf_counter() - t)
    g = np.asarray(times["gradient"])
    f = np.asarray(times["forward"])
    print(f"\n{name}, batch {batch} at 224 px, {reps} repeats (setup {time.perf_counter() - t0:.0f} s)")
    print(f"{'program':26s} {'median s':>9s} {'/ gradient (min-max)':>24s} {'/ forward':>10s}  "
          f"{'first call s':>12s} {'|sum R - score| / |score|':>26s}")
    for label, _ in progs:
        t = np.asarray(times[label])
        ratio = t / g
        first = f"{firsts[label]:12.1f}" if label in firsts else " " * 12
        cons = f"{firsts[label + ' conservation']:26.3g}" if label in firsts else ""
        print(f"{label:26s} {np.median(t):9.3f} {np.median(ratio):8.2f}x ({ratio.min():.2f}-{ratio.max():.2f})"
              f"{np.median(t / f):10.2f}x  {first} {cons}")


def _sync(out):
    """Wait for the results (copy them to the host)."""
    for t in tf_flatten(out):
        t.numpy()


def tf_flatten(out):
    import tensorflow as tf
    return tf.nest.flatten(out)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default="efficientnet_lite0,resnet50,vgg16")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--reps", type=int, default=7)
    args = ap.parse_args()
    for name in args.models.split(","):
        bench(name.strip(), args.batch, args.reps)


if __name__ == "__main__":
    main()
