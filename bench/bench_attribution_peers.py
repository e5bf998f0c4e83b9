"""The attribution methods other libraries have (issue 15): cost relative to a forward
pass on efficientnet_lite0, side by side with tf-keras-vis on the same model object.

    PYTHONPATH=/tmp/peers python bench/bench_attribution_peers.py [--batch 4] [--reps 5]

tf-keras-vis is not a tfviz dependency: install it on the side with
``pip install --target /tmp/peers tf-keras-vis deprecated imageio`` (then delete the
numpy / scipy / pillow copies pip puts there, so the main ones are used).

Prints, per method, the median over ``--reps`` of (method time / forward time of the
same images), each pair timed alternately so load from other jobs hits both alike, with
the min-max of the per-pair ratios. Score-CAM runs on one image (one forward per
channel); it is also compared with forwarding its masked copies, made beforehand, at
the best batch size -- the floor of any Score-CAM.
"""
from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from bench_attribution import paired  # noqa: E402


def pairs(fa, fb, reps):
    """(median time of a, median ratio a_i / b_i, min ratio, max ratio), calls alternating."""
    p = paired(fa, fb, reps)
    return p[0], p.ratio, float(p.ratios.min()), float(p.ratios.max())


def line(name, res, peer=None):
    t, med, lo, hi = res
    s = f"{name:<34s} {t * 1000:9.1f} ms {med:8.2f}x ({lo:.2f}-{hi:.2f})"
    if peer is not None:
        s += f"   tf-keras-vis {peer[1]:8.2f}x ({peer[2]:.2f}-{peer[3]:.2f})  ours/peer {med / peer[1]:.2f}"
    print(s, flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, default=4, help="images for the gradient methods")
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--score-reps", type=int, default=3, help="repetitions for Score-CAM (slow)")
    ap.add_argument("--max-channels", type=int, default=64, help="Faster Score-CAM's channel count")
    ap.add_argument("--skip-score-cam", action="store_true")
    args = ap.parse_args()

    import tensorflow as tf

    import tfviz
    from tfviz import attribution as A
    from tfviz.attribution.core import forward_function

    bundle = tfviz.load_model("efficientnet_lite0")
    photos = list(tfviz.images.sample_photos().values())
    u8 = bundle.load_images([photos[i % len(photos)] for i in range(args.batch)])
    x = tf.constant(bundle.preprocess(u8))
    targets = [int(t) for t in bundle.predict(u8).argmax(1)]
    print(f"CPU ({os.cpu_count()} cores), TF {tf.__version__}; efficientnet_lite0 at 224 px; "
          f"batch {args.batch}; median of {args.reps} paired runs (min-max of the ratios)")
    logits = bundle.logits
    fwd = tf.function(lambda t: logits(t, training=False))
    f_batch = lambda: fwd(x).numpy()  # noqa: E731
    layer = "top_relu"

    try:
        sys_path_ok = True
        from tf_keras_vis.gradcam_plus_plus import GradcamPlusPlus
        from tf_keras_vis.layercam import Layercam
        from tf_keras_vis.scorecam import Scorecam
        from tf_keras_vis.utils.model_modifiers import ReplaceToLinear
        from tf_keras_vis.utils.scores import CategoricalScore
    except Exception as exc:  # not installed
        sys_path_ok = False
        print(f"tf-keras-vis: not available ({type(exc).__name__}); run with PYTHONPATH=/tmp/peers")

    peer = {}
    if sys_path_ok:
        score = CategoricalScore(targets)
        # tf-keras-vis' own recipe: the user's model with its final softmax replaced by a
        # linear activation on a clone (it cannot take tfviz's logits view, whose layers'
        # ``.output`` belong to the original graph)
        def peer_of(cls):
            return cls(bundle.model, model_modifier=ReplaceToLinear(), clone=True)
        gpp = peer_of(GradcamPlusPlus)
        lc = peer_of(Layercam)
        peer["grad_cam_plus_plus"] = lambda: gpp(score, x, penultimate_layer=layer)
        peer["layer_cam"] = lambda: lc(score, x, penultimate_layer=layer)

    print(f"{'method (batch of ' + str(args.batch) + ')':<34s} {'time':>12s} {'/ forward':>9s}")
    line("forward pass", pairs(f_batch, f_batch, args.reps))
    runs = [("grad_cam_plus_plus", {}), ("layer_cam", {}), ("input_x_gradient", {}),
            ("smoothgrad_sq (25 samples)", {"variant": "smoothgrad_sq"}), ("vargrad (25 samples)",
                                                                           {"variant": "vargrad"}),
            ("gradient_shap (25 samples)", {}), ("deeplift", {}), ("layer_cam, 3 layers fused",
                                                                   {"layer": "block3b_add,block5c_add,top_relu"})]
    for name, kw in runs:
        key = name.split(" ")[0].rstrip(",")
        fn = A.smoothgrad if key in ("smoothgrad_sq", "vargrad") else getattr(A, key, None)
        if fn is None:
            print(f"{name:<34s} not in this tfviz")
            continue
        ours = pairs(lambda: fn(bundle, u8, targets, **kw), f_batch, args.reps)
        theirs = None
        if key in peer and not kw:
            theirs = pairs(peer[key], f_batch, args.reps)
        line(name, ours, theirs)

    if args.skip_score_cam:
        return
    # Score-CAM: one image, one forward pass per channel
    one, x1, t1 = u8[:1], x[:1], targets[:1]
    f_one = lambda: fwd(x1).numpy()  # noqa: E731
    a = forward_function(bundle, layer)(x1).numpy()[0]  # [7, 7, C]
    live = np.nonzero(a.max(axis=(0, 1)) > a.min(axis=(0, 1)))[0]
    print(f"\nScore-CAM, one image; {layer}: {a.shape[-1]} channels, {len(live)} not constant "
          f"(median of {args.score_reps})")
    up = tf.image.resize(a[..., live], (224, 224), method="bilinear").numpy()
    lo, hi = up.min(axis=(0, 1)), up.max(axis=(0, 1))
    masks = np.transpose((up - lo) / (hi - lo), (2, 0, 1))[..., None].astype(np.float32)
    copies = tf.constant(masks * x1.numpy())  # the masked copies, made beforehand
    best, best_t = None, np.inf
    for bs in (16, 32, 64):
        t = time.perf_counter()
        for i in range(0, len(copies), bs):
            fwd(copies[i:i + bs]).numpy()
        t = time.perf_counter() - t
        if t < best_t:
            best, best_t = bs, t
    floor = lambda: [fwd(copies[i:i + best]).numpy() for i in range(0, len(copies), best)]  # noqa: E731
    ours = pairs(lambda: A.score_cam(bundle, one, t1, layer=layer), f_one, args.score_reps)
    theirs = None
    if sys_path_ok:
        sc = peer_of(Scorecam)  # it applies the softmax to the linear outputs itself
        theirs = pairs(lambda: sc(CategoricalScore(t1), x1, penultimate_layer=layer), f_one, args.score_reps)
    line("score_cam, all channels", ours, theirs)
    fl = pairs(lambda: A.score_cam(bundle, one, t1, layer=layer), floor, args.score_reps)
    print(f"{'  / forwarding the masked copies':<34s} {fl[1]:8.2f}x ({fl[2]:.2f}-{fl[3]:.2f})  "
          f"({len(live)} copies at batch {best})")
    ours = pairs(lambda: A.score_cam(bundle, one, t1, layer=layer, max_channels=args.max_channels), f_one,
                 args.score_reps)
    theirs = None
    if sys_path_ok:
        theirs = pairs(lambda: sc(CategoricalScore(t1), x1, penultimate_layer=layer, max_N=args.max_channels),
                       f_one, args.score_reps)
    line(f"score_cam, {args.max_channels} channels (Faster)", ours, theirs)


if __name__ == "__main__":
    main()
