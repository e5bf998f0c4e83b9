"""Cost of the CAM family, FullGrad and LRP relative to a forward pass, side by side.

    python bench/bench_cam_family.py [--batch 4] [--reps 5] [--model NAME]

For a batch of bundled photos at the model's size (default: efficientnet_lite0, offline),
each method's call is timed alternately with one forward pass of the same batch (after an
untimed warm-up, so tracing is not in the timed calls), and the table gives the median of
the per-pair ratios method / forward with their min-max over the repeats. Grad-CAM and a
plain input gradient are in the table as the references the other methods are read
against (a CAM method is one forward and one backward pass to its layer; LRP is one
modified backward pass: the issue asks for at most 1.5x a gradient). Ablation-CAM's cost
against its own floor is bench/bench_ablation_cam.py. Ratios, not seconds, transfer
between machines.
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

CASES = [
    ("saliency (plain gradient)", "saliency", {}),
    ("grad_cam", "grad_cam", {}),
    ("hires_cam", "hires_cam", {}),
    ("xgrad_cam", "xgrad_cam", {}),
    ("eigen_cam", "eigen_cam", {}),
    ("eigengrad_cam", "eigengrad_cam", {}),
    ("grad_cam eigen_smooth", "grad_cam", {"eigen_smooth": True}),
    ("grad_cam aug_smooth", "grad_cam", {"aug_smooth": True}),
    ("ablation_cam", "ablation_cam", {}),
    ("score_cam (max_channels=64)", "score_cam", {"max_channels": 64}),
    ("full_grad", "full_grad", {}),
    ("lrp (epsilon)", "lrp", {}),
    ("lrp epsilon_plus_flat", "lrp", {"composite": "epsilon_plus_flat"}),
    ("lrp epsilon_gamma_box", "lrp", {"composite": "epsilon_gamma_box"}),
]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--model", default=None, help="a load_model name (default: efficientnet_lite0)")
    args = ap.parse_args()

    import tensorflow as tf

    import tfviz
    from tfviz import attribution as A
    from tfviz.images import sample_photo, sample_photos
    tfviz.quiet()
    bundle = tfviz.load_model(args.model, weights=None) if args.model else tfviz.load_model()
    names = list(sample_photos())
    u8 = bundle.load_images([sample_photo(names[i % len(names)]) for i in range(args.batch)])
    x = tf.constant(bundle.preprocess(u8))
    logits = bundle.logits
    fwd = tf.function(lambda t: logits(t, training=False))
    targets = [int(t) for t in np.argmax(fwd(x).numpy(), axis=1)]
    print(f"{bundle.name}, batch {args.batch} at {bundle.input_size[0]} px, {args.reps} pairs; "
          f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}")
    print(f"{'method':32s} {'/ forward':>10s}  (min-max)")
    for label, name, kw in CASES:
        fn = A.METHODS[name]
        p = paired(lambda: fn(bundle, u8, targets, **kw), lambda: fwd(x).numpy(), args.reps)
        print(f"{label:32s} {p.ratio:9.2f}x  ({p.ratios.min():.2f}-{p.ratios.max():.2f})", flush=True)
    print(f"load average {os.getloadavg()[0]:.1f} at the end")


if __name__ == "__main__":
    main()
