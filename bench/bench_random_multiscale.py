"""Cost of the random_multiscale loss network against efficientnet_lite0's: one forward
and backward pass of a texture loss (the gradient, with respect to the image, of the sum
of the squared Gram matrices of the texture layers) in one ``tf.function``, at one size.

    python bench/bench_random_multiscale.py [--size 256] [--repeats 7] [--filters 32,16,...]

lite0's layers: stem_relu, block2a_expand_relu, block3a_expand_relu, block4a_expand_relu,
block5a_expand_relu (its texture layers); random_multiscale's: every scale's ReLU. Both
run through tfviz's own forward program (``forward_fn``, any image size). The two are
timed alternately (lite0, random, lite0, ...), after two warm-up calls each, and each
random pass is divided by the mean of the lite0 passes either side of it: the machine's
load changes slowly next to one pass. Reported: the median ratio and its range over
``--repeats`` pairs, and each one's median seconds. ``--per-scale`` times each scale alone
too (same pairing), to choose filter counts.
"""
import argparse
import time

import numpy as np
import tensorflow as tf

import tfviz
from tfviz.synthesis.optimize import forward_fn
from tfviz.zoo import random_multiscale as rm

LITE0_LAYERS = ["stem_relu", "block2a_expand_relu", "block3a_expand_relu", "block4a_expand_relu",
                "block5a_expand_relu"]


def texture_step(bundle, layers):
    """``f(x) -> (loss, d loss / d x)`` with loss = sum of the squared Gram matrices."""
    run = forward_fn(bundle, layers, False, True)

    @tf.function
    def step(x):
        with tf.GradientTape() as tape:
            tape.watch(x)
            loss = 0.0
            for f in run(x)[1].values():
                hw = tf.cast(tf.shape(f)[1] * tf.shape(f)[2], tf.float32)
                g = tf.einsum("nhwc,nhwd->ncd", f, f) / hw
                loss += tf.reduce_sum(g * g)
        return loss, tape.gradient(loss, x)
    return step


def seconds(step, x) -> float:
    t0 = time.perf_counter()
    _, g = step(x)
    g.numpy()
    return time.perf_counter() - t0


def compare(base, others: dict, x, repeats: int):
    """``{name: (ratios, seconds)}`` and the base's seconds, timed alternately."""
    for s in [base, *others.values()]:
        s(x)
        s(x)
    out = {k: ([], []) for k in others}
    b_all = []
    before = seconds(base, x)
    for _ in range(repeats):
        for k, s in others.items():
            t = seconds(s, x)
            after = seconds(base, x)
            out[k][0].append(t / ((before + after) / 2))
            out[k][1].append(t)
            b_all.append(after)
            before = after
    return out, b_all


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--sizes", default=",".join(map(str, rm.SIZES)))
    ap.add_argument("--filters", default=",".join(map(str, rm.FILTERS)))
    ap.add_argument("--per-scale", action="store_true")
    a = ap.parse_args()
    sizes = [int(s) for s in a.sizes.split(",")]
    filters = [int(f) for f in a.filters.split(",")]
    x = tf.constant(np.random.default_rng(0).random((1, a.size, a.size, 3), np.float32))
    base = texture_step(tfviz.load_model(), LITE0_LAYERS)
    bundle = tfviz.load_model(rm.build(sizes=sizes, filters=filters), preprocess="0-1")
    others = {"random_multiscale": texture_step(bundle, [f"scale{s}_relu" for s in sizes])}
    if a.per_scale:
        for s, f in zip(sizes, filters):
            one = tfviz.load_model(rm.build(sizes=[s], filters=[f]), preprocess="0-1")
            others[f"scale{s} ({f} filters, kernel, factor {rm.plan(s)})"] = texture_step(one, [f"scale{s}_relu"])
    out, b = compare(base, others, x, a.repeats)
    print(f"{a.size}x{a.size}, {a.repeats} pairs: efficientnet_lite0 {np.median(b):.3f} s per pass "
          f"({min(b):.3f}-{max(b):.3f})")
    for k, (r, t) in out.items():
        print(f"{k}: {np.median(t):.3f} s per pass; / lite0: median {np.median(r):.2f}, range "
              f"{min(r):.2f}-{max(r):.2f}")


if __name__ == "__main__":
    main()
