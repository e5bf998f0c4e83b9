"""Cost of one synthesis step relative to one forward pass (efficientnet_lite0, 224 px,
batch 1) and steps per second for the pixel and Fourier parameterizations.

    python bench/bench_synthesis.py [--steps 60]

The issue's bound: one optimization step <= 3x a forward pass (the step is one
tf.function traced once; per step only the loss values come back to Python). With
tf-keras-vis installed, its ActivationMaximization runs the same number of steps.
"""
import argparse
import time

import numpy as np
import tensorflow as tf

import tfviz
from tfviz.synthesis import class_logit, optimize
from tfviz.synthesis.classviz import DEFAULTS, _spec, default_regularizers, default_transforms


def forward_fn(bundle):
    lm = bundle.logits
    f = tf.function(lambda x: lm(x, training=False))
    x = tf.constant(bundle.preprocess(np.full((1, 224, 224, 3), 128, np.uint8)))
    f(x).numpy()

    def timed():
        t0 = time.perf_counter()
        f(x).numpy()
        return time.perf_counter() - t0
    return timed


def forward_seconds(bundle, n=30):
    timed = forward_fn(bundle)
    return float(np.min([timed() for _ in range(n)]))


def step_seconds(bundle, param, steps, transforms, regularizers, forward):
    """Step time and forward time, measured alternately (a forward pass between every
    two steps) so that both see the same machine load; the fastest of each."""
    steps_t, fwd_t, last = [], [], [None]

    def cb(s, im, ls):
        now = time.perf_counter()
        if last[0] is not None and s >= 5:  # skip tracing and warm-up
            steps_t.append(now - last[0])
            fwd_t.append(forward())
        last[0] = time.perf_counter()
    optimize(bundle, class_logit("flamingo"), param=_spec(param, 1, None), steps=steps,
             transforms=transforms, regularizers=regularizers, optimizer=DEFAULTS[param]["lr"], callbacks=[cb])
    # the fastest of each (timeit's rule): other processes only ever add time
    return float(np.min(steps_t)), float(np.min(fwd_t))


def tf_keras_vis_seconds(bundle, steps):
    try:
        from tf_keras_vis.activation_maximization import ActivationMaximization
        from tf_keras_vis.utils.scores import CategoricalScore
    except ImportError:
        return None
    am = ActivationMaximization(bundle.logits, clone=True)
    times = []
    for n in (5, 5 + steps):  # the difference removes set-up and tracing
        t0 = time.perf_counter()
        am(CategoricalScore(130), steps=n)
        times.append(time.perf_counter() - t0)
    return (times[1] - times[0]) / steps


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=60)
    ap.add_argument("--threads", type=int, default=0, help="TensorFlow intra-op threads (0: TensorFlow's default).")
    a = ap.parse_args()
    if a.threads:
        tf.config.threading.set_intra_op_parallelism_threads(a.threads)
        tf.config.threading.set_inter_op_parallelism_threads(a.threads)
    bundle = tfviz.load_model()
    forward = forward_fn(bundle)
    fwd = forward_seconds(bundle)
    print(f"efficientnet_lite0, 224 px, batch 1, {a.threads or 'default'} threads")
    print(f"forward pass (logits):                 {fwd * 1000:7.1f} ms")
    rows = [
        ("pixel, no transforms/regularizers", "pixel", [], []),
        ("pixel + transforms + Yosinski regs", "pixel", default_transforms("pixel"), default_regularizers()),
        ("fourier, no transforms", "fourier", [], []),
        ("fourier + transforms (default)", "fourier", default_transforms("fourier"), []),
    ]
    for label, param, tr, rg in rows:
        s, f = step_seconds(bundle, param, a.steps, tr, rg, forward)
        print(f"step: {label:34s} {s * 1000:7.1f} ms  = {s / f:4.2f}x forward ({f * 1000:.1f} ms)  "
              f"{1 / s:6.1f} steps/s")
    fwd = forward_seconds(bundle)
    tkv = tf_keras_vis_seconds(bundle, a.steps)
    if tkv is None:
        print("tf-keras-vis: not installed (pip install tf-keras-vis to compare)")
    else:
        print(f"tf-keras-vis ActivationMaximization    {tkv * 1000:7.1f} ms  = {tkv / fwd:4.2f}x forward ({fwd * 1000:.1f} ms)  "
              f"{1 / tkv:6.1f} steps/s  (its defaults: jitter, rotation, TV and L-p regularizers)")


if __name__ == "__main__":
    main()
