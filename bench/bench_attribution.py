"""Cost of each attribution method relative to a forward pass, on efficientnet_lite0.

    python bench/bench_attribution.py [--batch 8] [--occlusion-images 2] [--reps 5]

Prints, for a batch of bundled photos at 224 px:
  * saliency and guided backprop: time / time of one forward pass of the same batch
    (targets: issue targets are <= 2.5x and <= 3x). Measured after a warm-up call, so
    tracing (once per shape) and building the guided copy (once per model) are not in
    the timed calls -- the script also prints how long those first calls took and checks
    that repeated calls do not retrace.
  * occlusion: time / time of forwarding the same number of occluded copies (built
    beforehand in memory) at the best batch size (target <= 1.2x).
  * every other method, for reference.
  * tf-keras-vis / tf-explain on the same model and images, if installed (not tfviz
    dependencies; e.g. ``pip install --target /tmp/peers tf-keras-vis deprecated imageio``
    and run with ``PYTHONPATH=/tmp/peers``).
Ratios, not absolute times, are the point: they transfer between machines.
"""
from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def timeit(fn, reps):
    """Median wall time of ``reps`` calls (after one untimed call)."""
    fn()
    ts = []
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t)
    return float(np.median(ts))


class Paired(tuple):
    """(median time of a, median time of b) plus ``ratio``: the median of the per-pair
    ratios a_i / b_i (all of them in ``ratios``), robust to load that drifts during the
    run."""
    ratio: float
    ratios: np.ndarray


def paired(fa, fb, reps):
    """Times of ``fa`` and ``fb``, calls alternating (after one untimed call of each), so
    that load from other processes hits both alike and the ratio stays fair."""
    fa(), fb()
    ta, tb = [], []
    for _ in range(reps):
        t = time.perf_counter()
        fa()
        ta.append(time.perf_counter() - t)
        t = time.perf_counter()
        fb()
        tb.append(time.perf_counter() - t)
    out = Paired((float(np.median(ta)), float(np.median(tb))))
    out.ratios = np.asarray(ta) / np.asarray(tb)
    out.ratio = float(np.median(out.ratios))
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--occlusion-images", type=int, default=2)
    ap.add_argument("--patch", type=int, default=28)
    ap.add_argument("--stride", type=int, default=14)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--skip-others", action="store_true", help="only the three methods with targets")
    ap.add_argument("--only", choices=["gradients", "occlusion"], help="only saliency + guided backprop, or only "
                                                                        "occlusion")
    args = ap.parse_args()

    import tensorflow as tf

    import tfviz
    from tfviz import attribution as A
    from tfviz.attribution import core
    from tfviz.attribution.occlusion import positions

    bundle = tfviz.load_model("efficientnet_lite0")
    photos = list(tfviz.images.sample_photos().values())
    u8 = bundle.load_images([photos[i % len(photos)] for i in range(args.batch)])
    x = bundle.preprocess(u8)
    targets = [int(t) for t in bundle.predict(u8).argmax(1)]
    dev = tf.config.list_logical_devices("GPU")
    print(f"device: {'GPU ' + dev[0].name if dev else 'CPU'} ({os.cpu_count()} cores), TF {tf.__version__}; "
          f"efficientnet_lite0, batch {args.batch} at {bundle.input_size[0]} px, median of {args.reps}")

    logits = bundle.logits
    fwd = tf.function(lambda t: logits(t, training=False))
    xt = tf.constant(x)
    t_fwd = timeit(lambda: fwd(xt).numpy(), args.reps)
    print(f"forward pass                {t_fwd * 1000:8.1f} ms   1.00x")

    rows = []

    def report(name, secs, base, goal=None, note="", ratio=None):
        ratio = secs / base if ratio is None else ratio
        flag = "" if goal is None else (f"  (target <= {goal}x: {'ok' if ratio <= goal else 'MISSED'})")
        print(f"{name:<27s} {secs * 1000:8.1f} ms  {ratio:5.2f}x{flag}{note}")
        rows.append((name, ratio))

    # saliency / guided backprop: first call (trace, build), then timed calls
    grads = [] if args.only == "occlusion" else [("saliency", A.saliency, 2.5),
                                                 ("guided_backprop", A.guided_backprop, 3.0)]
    for name, fn, goal in grads:
        t0 = time.perf_counter()
        fn(bundle, u8, targets)
        first = time.perf_counter() - t0
        gf = core.gradient_function(bundle, None, None if name == "saliency" else "guided")
        traces = gf.experimental_get_tracing_count()
        p = paired(lambda: fn(bundle, u8, targets), lambda: fwd(xt).numpy(), args.reps)
        secs, base = p
        assert gf.experimental_get_tracing_count() == traces, "retraced on a repeated call"
        built = " + guided copy" if goal == 3.0 else ""
        report(name, secs, base, goal, ratio=p.ratio,
               note=f"   first call {first:.1f} s (trace{built}), forward {base * 1000:.0f} ms alongside")

    if args.only == "gradients":
        return
    # occlusion vs forwarding the same occluded copies at the best batch size
    n_occ = min(args.occlusion_images, len(u8))
    xo, to = x[:n_occ], targets[:n_occ]
    h, w = bundle.input_size
    tops, lefts = positions(h, args.patch, args.stride), positions(w, args.patch, args.stride)
    fill = xo.mean(axis=(1, 2), keepdims=True)
    copies = []
    for i in range(n_occ):
        for t in tops:
            for le in lefts:
                c = xo[i].copy()
                c[t:t + args.patch, le:le + args.patch] = fill[i, 0, 0]
                copies.append(c)
    copies = np.stack(copies)
    print(f"occlusion: {n_occ} image(s) x {len(tops) * len(lefts)} positions = {len(copies)} copies "
          f"(patch {args.patch}, stride {args.stride})")
    best_bs, best = None, None
    chunks = {}
    for bs in (16, 32, 64, 128):
        chunks[bs] = [tf.constant(copies[i:i + bs]) for i in range(0, len(copies), bs)]
        secs = timeit(lambda: [fwd(c).numpy() for c in chunks[bs]], 1)
        print(f"  forward copies, batch {bs:<4d} {secs * 1000:8.1f} ms")
        if best is None or secs < best:
            best, best_bs = secs, bs
    print(f"  best: batch {best_bs}")
    occ_reps = max(2, args.reps // 2)
    for bs in (None, best_bs):
        p = paired(lambda: A.occlusion(bundle, u8[:n_occ], to, patch=args.patch, stride=args.stride,
                                       batch_size=bs),
                   lambda: [fwd(c).numpy() for c in chunks[best_bs]], occ_reps)
        report(f"occlusion (batch {bs or 'default'})", p[0], p[1], 1.2,
               f"   vs forwarding the copies at batch {best_bs} ({p[1] * 1000:.0f} ms alongside)", ratio=p.ratio)

    if not args.skip_others and not args.only:
        one = u8[:1]
        x1 = xt[:1]
        print("other methods, one image, relative to a forward pass of that image:")
        for name, kw in [("deconvnet", {}), ("smoothgrad", {"samples": 25}),
                         ("integrated_gradients", {"steps": 50}), ("grad_cam", {}), ("guided_grad_cam", {})]:
            fn = getattr(A, name)
            p = paired(lambda: fn(bundle, one, targets[:1], **kw), lambda: fwd(x1).numpy(), max(2, args.reps // 2))
            report(f"{name}", p[0], p[1], ratio=p.ratio)

    if not args.only:
        peers(bundle, u8, targets, t_fwd, args.reps)


def _forward(bundle):
    import tensorflow as tf
    logits = bundle.logits
    return tf.function(lambda t: logits(t, training=False))


def peers(bundle, u8, targets, t_fwd, reps):
    """tf-keras-vis and tf-explain, when installed, on the same model and batch."""
    x = bundle.preprocess(u8)
    try:
        from tf_keras_vis.saliency import Saliency
        from tf_keras_vis.utils.scores import CategoricalScore
    except Exception as exc:
        print(f"tf-keras-vis: not available ({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''})")
    else:
        try:
            from tf_keras_vis.utils.model_modifiers import ReplaceToLinear
            sal = Saliency(bundle.model, model_modifier=ReplaceToLinear(), clone=True)
            score = CategoricalScore(targets)
            from tfviz import attribution as A
            fwd = _forward(bundle)
            theirs = paired(lambda: sal(score, x), lambda: fwd(x).numpy(), reps)
            ours = paired(lambda: A.saliency(bundle, u8, targets), lambda: fwd(x).numpy(), reps)
            print(f"tf-keras-vis Saliency      {theirs[0] * 1000:8.1f} ms  {theirs.ratio:5.2f}x   "
                  f"(tfviz saliency alongside: {ours.ratio:.2f}x)")
            from tf_keras_vis.gradcam import Gradcam
            cam = Gradcam(bundle.model, model_modifier=ReplaceToLinear(), clone=True)
            theirs = paired(lambda: cam(score, x, penultimate_layer="top_relu"), lambda: fwd(x).numpy(), reps)
            ours = paired(lambda: A.grad_cam(bundle, u8, targets), lambda: fwd(x).numpy(), reps)
            print(f"tf-keras-vis Gradcam       {theirs[0] * 1000:8.1f} ms  {theirs.ratio:5.2f}x   "
                  f"(tfviz grad_cam alongside: {ours.ratio:.2f}x)")
        except Exception as exc:
            print(f"tf-keras-vis: installed but failed on Keras 3 ({type(exc).__name__}: "
                  f"{str(exc).splitlines()[0] if str(exc) else ''})")
    try:
        from tf_explain.core.vanilla_gradients import VanillaGradients
    except Exception as exc:
        print(f"tf-explain: not available ({type(exc).__name__})")
    else:
        try:
            vg = VanillaGradients()
            fwd = _forward(bundle)
            theirs = paired(lambda: vg.explain((x, None), bundle.logits, targets[0]), lambda: fwd(x).numpy(), reps)
            print(f"tf-explain VanillaGradients {theirs[0] * 1000:8.1f} ms  {theirs.ratio:5.2f}x")
        except Exception as exc:
            print(f"tf-explain: installed but failed on Keras 3 ({type(exc).__name__}: "
                  f"{str(exc).splitlines()[0] if str(exc) else ''})")


if __name__ == "__main__":
    main()
