"""What each texture loss term costs per step on the offline loss network
(efficientnet_lite0): one loss-and-gradient evaluation of the image, traced once, with
the Gram loss alone and with each addition (the histogram loss at the texture layers,
the pixel colour histogram, total variation), against one forward pass to the deepest
texture layer at the same size.

    python bench/bench_texture_cost.py [--sizes 128,256] [--repeats 7] [--calls 10] [--texture gravel]

Reported per size: median milliseconds per evaluation and the ratio to one forward pass,
with the (min-max) ratio over ``--repeats`` timings of ``--calls`` calls each; and what
each addition adds, in forward passes.
"""
import argparse
import time

import numpy as np
import tensorflow as tf

import tfviz
from tfviz.images import load_image, resize
from tfviz.synthesis import objectives as obj
from tfviz.synthesis.color import color_target
from tfviz.synthesis.lossnet import loss_network
from tfviz.synthesis.objectives import Context
from tfviz.synthesis.optimize import forward_fn
from tfviz.synthesis.recipe import layer_features, tv_term


def objectives(bundle, src, layers):
    feats = layer_features(bundle, layers, bundle.preprocess(src[None]))
    gram = sum(obj.gram_match(n, obj.gram_matrix(feats[n]).numpy()[0], normalize=True) for n in layers)
    hist = sum(obj.histogram_match(n, obj.histogram_target(feats[n])) for n in layers)
    c = color_target(src)
    pix = obj.pixel_histogram_match(c["target"], c["basis"], c["mean"])
    tv = tv_term(bundle, 2.0)
    return {"gram": gram, "gram + histogram": gram + hist, "gram + histogram + colour": gram + hist + pix,
            "gram + histogram + colour + TV": gram + hist + pix + tv}


def timed(fn, x, repeats, calls):
    fn(x)   # trace
    out = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(calls):
            r = fn(x)
        np.asarray(r[0] if isinstance(r, tuple) else r)
        out.append((time.perf_counter() - t0) / calls)
    return np.array(out)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="128,256")
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--calls", type=int, default=10)
    ap.add_argument("--texture", default="gravel")
    a = ap.parse_args()
    bundle = tfviz.load_model()
    layers = list(loss_network(bundle).texture)
    lo, hi = (tf.constant(np.asarray(v, np.float32)) for v in bundle.input_range)
    run = forward_fn(bundle, layers, False, True)
    src = load_image(a.texture)
    print(f"efficientnet_lite0, texture layers {', '.join(layers)}; {a.repeats} timings of {a.calls} calls\n")
    print("| size | loss | ms per evaluation | / one forward (min-max) |")
    print("|---|---|---|---|")
    for size in (int(s) for s in a.sizes.split(",")):
        x = tf.constant(bundle.preprocess(resize(src, (size, size))[None]).astype(np.float32))
        fwd = tf.function(lambda x: run(x)[1][layers[-1]])
        f_t = timed(fwd, x, a.repeats, a.calls)
        print(f"| {size}x{size} | forward to {layers[-1]} | {np.median(f_t) * 1e3:.1f} | 1 |")
        base = None
        for name, objective in objectives(bundle, src, layers).items():
            evaluate = objective.bind(bundle, 1)

            @tf.function
            def step(x, evaluate=evaluate):
                with tf.GradientTape() as tape:
                    tape.watch(x)
                    _, feats = run(x)
                    total, _ = evaluate(Context(image=x, raw_image=x, features=feats, lo=lo, hi=hi,
                                                center=(lo + hi) / 2))
                    loss = -tf.reduce_sum(total)
                return loss, tape.gradient(loss, x)
            t = timed(step, x, a.repeats, a.calls)
            r = t / np.median(f_t)
            extra = "" if base is None else f" (+{np.median(t - base) / np.median(f_t):.2f})"
            base = t if base is None else base
            print(f"| {size}x{size} | {name} | {np.median(t) * 1e3:.1f} | {np.median(r):.2f}x "
                  f"({r.min():.2f}-{r.max():.2f}){extra} |")


if __name__ == "__main__":
    main()
