"""SmoothGrad and Integrated Gradients against their floor, on efficientnet_lite0 at 224 px.

    PYTHONPATH=/tmp/flr_peers python bench/bench_attribution_floor.py [--reps 5] [--samples 20] [--steps 20]

The floor of a method that takes G gradients of one image is G x (cost of one gradient
at the best batch size): the script measures a plain gradient program at several batch
sizes (each timed alternately with a batch-1 forward pass, so load from other jobs hits
both alike) and keeps the cheapest per gradient. Each method is then timed alternately
with a batch-1 forward pass (cost) and, separately, with a floor program -- G gradients
of copies of the image, made beforehand, at that batch size -- (ratio to the floor;
floor = cost / that ratio), each the median of the per-pair ratios over ``--reps`` pairs
with their min-max spread:

  * SmoothGrad (``--samples`` samples; the noise drawn once per seed and kept -- also
    timed with ``seed=None``, which draws afresh every call), Integrated Gradients
    (``--steps`` steps, trapezoid: steps + 1 gradients; and Gauss-Legendre: steps
    gradients); the ratio to the floor (target <= 1.15).
  * tf-explain's SmoothGrad and IntegratedGradients on the same logits model and image,
    if importable (never a tfviz dependency: ``pip install --no-deps --target
    /tmp/flr_peers tf-explain opencv-python-headless``, run with that PYTHONPATH).

Second table: the completeness error ``|sum(attr) - (f(x) - f(x'))| / |f(x) - f(x')|``
(black baseline; median and max over the bundled photos) against cost (gradients per
image) for the trapezoid rule at 10/20/50/100 steps, Gauss-Legendre at 5/10/16/20, and
``steps="auto"`` (tol 0.01) with both rules. The goal: Gauss-Legendre reaching the
trapezoid rule's error at 50 steps for a third of its cost.
Ratios, not absolute times, are the point: they transfer between machines.
"""
from __future__ import annotations

import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from bench_attribution import paired  # noqa: E402

GOAL = 1.15


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--samples", type=int, default=20)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--batches", default="1,4,5,7,8,10,16", help="batch sizes tried for the floor")
    ap.add_argument("--skip-errors", action="store_true", help="only the cost table")
    args = ap.parse_args()

    import tensorflow as tf

    import tfviz
    from tfviz import attribution as A
    from tfviz.attribution import core
    from tfviz.attribution.gradients import auto_cost

    bundle = tfviz.load_model("efficientnet_lite0")
    photos = tfviz.images.sample_photos()
    u8 = bundle.load_images([photos["chelsea"]])
    x = bundle.preprocess(u8)
    target = int(bundle.predict(u8).argmax(1)[0])
    h, w = bundle.input_size
    dev = tf.config.list_logical_devices("GPU")
    print(f"device: {'GPU ' + dev[0].name if dev else 'CPU'} ({os.cpu_count()} cores), TF {tf.__version__}; "
          f"efficientnet_lite0, 1 image at {h} px, median of {args.reps} pairs (min-max); default gradient "
          f"batch {core.gradient_batch(bundle, h, w)}")

    logits = bundle.logits
    fwd = tf.function(lambda t: logits(t, training=False))
    x1 = tf.constant(x)

    def f1():
        fwd(x1).numpy()

    # ---- the floor: one gradient at the best batch size
    grad = core.gradient_function(bundle)
    per = {}
    for bs in [int(v) for v in args.batches.split(",")]:
        xb = tf.constant(np.repeat(x, bs, 0) + np.random.default_rng(bs).normal(0, 0.01, (bs, h, w, 3)).astype("f"))
        z = tf.zeros(bs, tf.int32) + target
        m = -tf.ones(bs, tf.int32)
        p = paired(lambda: [t.numpy() for t in grad(xb, z, m, m)], f1, args.reps)
        per[bs] = p.ratio / bs
    best = min(per, key=per.get)
    g1 = per[best]
    print("gradient per image / batch-1 forward: " + ", ".join(f"batch {b} {v:.2f}" for b, v in per.items())
          + f"  -> best batch {best}: {g1:.2f}")

    # ---- table 1: cost against the floor. The floor program: G gradients of copies of the
    # image (made beforehand) at the best batch size; each method is timed alternately with
    # it (ratio to floor) and with the batch-1 forward (cost).
    from tfviz.attribution.core import even_batches
    z1 = tf.zeros(best, tf.int32) + target
    copies = tf.constant(np.repeat(x, best, 0))

    def floor_fn(grads):
        parts = [(copies[:s.stop - s.start], z1[:s.stop - s.start]) for s in even_batches(grads, best)]
        m1 = -tf.ones(best, tf.int32)
        return lambda: [t.numpy() for xb, z in parts for t in grad(xb, z, m1[:len(z)], m1[:len(z)])]

    rows = []

    def ours(name, fn, grads):
        p = paired(fn, f1, args.reps)
        q = paired(fn, floor_fn(grads), args.reps)
        rows.append((name, p.ratio, p.ratios.min(), p.ratios.max(), grads, p.ratio / q.ratio, q.ratio,
                     q.ratios.min(), q.ratios.max()))

    def theirs(name, fn, grads):
        try:
            ours(name, fn, grads)
        except Exception as exc:  # tf-explain on Keras 3
            rows.append((name, f"failed on Keras 3 ({type(exc).__name__}: {str(exc).splitlines()[0][:60]})"))

    S, N = args.samples, args.steps
    ours(f"tfviz smoothgrad ({S} samples)", lambda: A.smoothgrad(bundle, u8, target, samples=S), S)
    ours(f"tfviz smoothgrad ({S}, seed=None)", lambda: A.smoothgrad(bundle, u8, target, samples=S, seed=None), S)
    ours(f"tfviz smoothgrad_sq ({S})", lambda: A.smoothgrad(bundle, u8, target, samples=S, variant="smoothgrad_sq"),
         S)
    ours(f"tfviz IG ({N} steps, trapezoid)", lambda: A.integrated_gradients(bundle, u8, target, steps=N), N + 1)
    ours(f"tfviz IG ({N} steps, gausslegendre)",
         lambda: A.integrated_gradients(bundle, u8, target, steps=N, rule="gausslegendre"), N)
    try:
        from tf_explain.core.integrated_gradients import IntegratedGradients
        from tf_explain.core.smoothgrad import SmoothGrad
    except Exception as exc:
        rows.append(("tf-explain", f"not importable ({type(exc).__name__}); see the docstring"))
    else:
        sg, ig = SmoothGrad(), IntegratedGradients()
        theirs(f"tf-explain SmoothGrad ({S})", lambda: sg.explain((x, None), logits, target, num_samples=S,
                                                                   noise=0.15 * 2), S)
        theirs(f"tf-explain IntegratedGradients ({N})", lambda: ig.explain((x, None), logits, target, n_steps=N), N)

    print()
    print(f"{'method':<38s} {'cost/fwd':>9s} {'(min-max)':>13s} {'grads':>5s} {'floor':>6s} {'/floor':>7s} "
          f"{'(min-max)':>12s}  target")
    for r in rows:
        if isinstance(r[1], str):
            print(f"{r[0]:<38s} {r[1]}")
            continue
        name, med, lo, hi, grads, floor, rel, rlo, rhi = r
        flag = f"<= {GOAL}: {'ok' if rel <= GOAL else 'MISSED'}" if name.startswith("tfviz") else ""
        print(f"{name:<38s} {med:8.1f}x {f'({lo:.1f}-{hi:.1f})':>13s} {grads:5d} {floor:5.1f}x {rel:6.2f}x "
              f"{f'({rlo:.2f}-{rhi:.2f})':>12s}  {flag}")

    if args.skip_errors:
        return
    # ---- table 2: completeness error against cost
    imgs = bundle.load_images(list(photos.values()))
    tops = [int(t) for t in bundle.predict(imgs).argmax(1)]
    from tfviz.attribution.core import prepare, substitute, target_scores
    from tfviz.attribution.targets import resolve_targets
    xs = prepare(bundle, imgs)
    tg = resolve_targets(bundle, tops, len(xs), xs)
    gap = np.abs(target_scores(bundle, xs, tg) - target_scores(bundle, substitute(bundle, xs, "black"), tg))
    print()
    print(f"completeness error |sum(attr) - (f(x) - f(x'))| / |f(x) - f(x')|, black baseline, {len(imgs)} photos "
          f"(|f(x) - f(x')| {gap.min():.1f}-{gap.max():.1f})")
    print(f"{'rule':<15s} {'steps':>11s} {'grads':>7s} {'cost vs trap-50':>16s} {'median err':>11s} {'max err':>9s}")
    ref = 51

    def err_row(rule, steps, **kw):
        _, d, used = A.integrated_gradients(bundle, imgs, tops, steps=steps, rule=rule, return_delta=True,
                                            return_steps=True, **kw)
        e = np.abs(d) / gap
        if steps == "auto":
            grads = np.asarray([auto_cost(rule, s) for s in used])
            label, g = f"auto {used.min()}-{used.max()}", float(grads.mean())
        else:
            label, g = str(steps), float(steps + 1 if rule == "trapezoid" else steps)
        print(f"{rule:<15s} {label:>11s} {g:7.1f} {g / ref:15.2f}x {np.median(e):11.2e} {e.max():9.2e}", flush=True)

    for s in (10, 20, 50, 100):
        err_row("trapezoid", s)
    for s in (5, 10, 16, 20):
        err_row("gausslegendre", s)
    err_row("trapezoid", "auto")
    err_row("gausslegendre", "auto")
    print("(Gauss-Legendre and midpoint also need f(x) and f(x') -- two forward passes -- when the error is "
          "wanted: return_delta or steps='auto')")


if __name__ == "__main__":
    main()
