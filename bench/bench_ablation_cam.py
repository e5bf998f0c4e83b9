"""Ablation-CAM against its floor: forwarding the ablated activations from the CAM layer up.

    python bench/bench_ablation_cam.py [--reps 5] [--models efficientnet_lite0,resnet50]

For each model (efficientnet_lite0 with its ImageNet weights, offline; resnet50 with
``weights=None``), one image at 224 px, and two CAM layers -- the default one (the last
conv activation: only global pooling and the classifier lie above it) and one a block
lower (a convolution, and for resnet50 a residual ``Add`` whose skip bypasses the layer,
lie above it):

* **floor**: a traced program that forwards *already made* ablated activations -- every
  channel of the layer zeroed in turn, the copies made beforehand and kept in memory (a
  pool of distinct copies larger than the cache, cycled), a bypassing skip tensor
  likewise -- through the layers above the CAM layer to the target's score, at the best of
  ``--batches`` (each timed, the cheapest kept). Nothing else: no forward pass to get the
  activations, no weights, no map.
* **ablation_cam**: the whole method on the model input (``ablation_cam.on_inputs``:
  its one forward pass per image, the copies made in-graph, the weights and the map) at
  its default batch size, and the same with the mask pushed through nothing
  (``push=False``: every layer above the CAM layer runs per copy, as the floor).
* **forward**: one forward pass of the image (batch 1) to the logits.

Then FullGrad on the same image: its cost against one forward pass and against one plain
input gradient (both batch 1, alternating), and its completeness -- the input part plus the
bias parts against the score (exact for resnet50, a ReLU network; efficientnet_lite0's
ReLU6 saturates, an implicit bias FullGrad does not count).

Each ratio is the median over ``--reps`` pairs timed alternately (so load from other jobs
hits both alike) with its min-max spread. The goal: ablation_cam <= 1.1 x floor.
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

from bench_attribution import paired, timeit as timed  # noqa: E402

GOAL = 1.1
LAYERS = {"efficientnet_lite0": (None, "block7a_project_bn"), "resnet50": (None, "conv5_block3_2_relu")}
POOL_BYTES = 64 << 20


def spread(p):
    return f"{p.ratio:.2f} ({p.ratios.min():.2f}-{p.ratios.max():.2f})"


def floor_program(plan, head_layer):
    """``f(acts [B, ...], [bypass [B, ...]], sel) -> scores``: the layers above the CAM layer
    on made copies (the plan must be the plain one, every upper layer per copy)."""
    import tensorflow as tf

    from tfviz.attribution.ablation import apply_score, run_node
    from tfviz.attribution.core import select_score

    @tf.function(autograph=False)
    def tfviz_bench_floor(acts, bypass, sel):
        vals = {id(plan.cam): acts}
        for t, v in zip(plan.bypass, bypass):
            vals[id(t)] = v
        for node in plan.run:
            run_node(node, vals)
        return select_score(apply_score(vals[id(plan.main)], head_layer), sel)
    return tfviz_bench_floor


def bench_layer(bundle, x, targets, layer, batches, reps, fwd1):
    import tensorflow as tf

    from tfviz.attribution import ablation as AB
    from tfviz.attribution.core import even_batches, selection

    head_layer = targets[0].head
    cam = AB.cam_layer_for(bundle, layer, head_layer)
    plain = AB.ablation_plan(bundle, cam, head_layer, push=False)
    fast = AB.ablation_plan(bundle, cam, head_layer, push=True)
    sel1 = selection(targets)
    _, a, _, byp = AB.lower_function(bundle, cam, head_layer, push=False)(x, sel1)
    c = plain.channels
    a = a.numpy()
    per_copy = a[0].nbytes + sum(int(np.prod(b.shape[1:])) * 4 for b in byp)
    pool = int(min(c, max(2 * max(batches), POOL_BYTES // per_copy)))
    ch = np.arange(pool) % c
    made = np.repeat(a, pool, axis=0)
    made[np.arange(pool), ..., ch] = 0.0
    made = tf.constant(made)
    made_byp = [tf.constant(np.repeat(b.numpy(), pool, axis=0)) for b in byp]
    f = floor_program(plain, head_layer)
    sel_pool = tf.constant(np.repeat(sel1, max(batches), axis=0))

    def floor(bs):
        def run():
            for s in even_batches(c, bs):
                k = s.stop - s.start
                i0 = s.start % pool
                if i0 + k > pool:
                    i0 = 0
                f(made[i0:i0 + k], [m[i0:i0 + k] for m in made_byp], sel_pool[:k]).numpy()
        return run

    per_bs = {bs: timed(floor(bs), 3) for bs in batches}
    best = min(per_bs, key=per_bs.get)
    ours = lambda: AB.ablation_cam.on_inputs(bundle, x, targets, layer=cam)  # noqa: E731

    def ours_plain():
        AB.ablation_scores(bundle, x, targets, layer=cam, push=False)

    vs_floor = paired(ours, floor(best), reps)
    plain_vs_floor = paired(ours_plain, floor(best), reps)
    vs_fwd = paired(ours, fwd1, reps)
    ours_bs = {bs: timed(lambda: AB.ablation_scores(bundle, x, targets, layer=cam, batch_size=bs), 3)
               for bs in batches}
    return {"layer": cam, "channels": c, "above": [n.operation.name for n in plain.run],
            "per_copy": [n.operation.name for n in fast.run], "bypass": len(plain.bypass),
            "floor_best": best, "floor_per_bs": per_bs, "default_bs": AB.copies_per_batch(fast),
            "default_bs_plain": AB.copies_per_batch(plain), "ours_per_bs": ours_bs,
            "vs_floor": vs_floor, "plain_vs_floor": plain_vs_floor, "vs_fwd": vs_fwd}


def bench_full_grad(bundle, x, targets, reps, fwd1):
    from tfviz.attribution import fullgrad as FG
    from tfviz.attribution.core import gradient_function, selection, target_scores

    grad = gradient_function(bundle)
    sel = selection(targets)

    def grad1():
        grad(x, sel)[1].numpy()
    xg, parts = FG.full_grad.on_inputs(bundle, x, targets, post=False)
    return {"vs_fwd": paired(lambda: FG.full_grad.on_inputs(bundle, x, targets), fwd1, reps),
            "vs_grad": paired(lambda: FG.full_grad.on_inputs(bundle, x, targets), grad1, reps),
            "points": parts.shape[1], "score": float(target_scores(bundle, x, targets)[0]),
            "sum": float(xg.sum() + parts.sum())}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--models", default="efficientnet_lite0,resnet50")
    ap.add_argument("--batches", default="8,16,32,64,128", help="copies per batch tried for the floor")
    args = ap.parse_args()
    batches = [int(b) for b in args.batches.split(",")]

    import tensorflow as tf

    import tfviz
    from tfviz.attribution.core import prepare
    from tfviz.attribution.targets import resolve_targets

    dev = tf.config.list_logical_devices("GPU")
    print(f"device: {'GPU ' + dev[0].name if dev else 'CPU'} ({os.cpu_count()} cores), TF {tf.__version__}; one image "
          f"at 224 px, target its top-1 class; median of {args.reps} pairs (min-max)")
    rows, fg_rows = [], []
    for name in args.models.split(","):
        bundle = tfviz.load_model(name) if name == "efficientnet_lite0" else tfviz.load_model(name, weights=None)
        u8 = bundle.load_images([tfviz.images.sample_photos()["chelsea"]])
        x = prepare(bundle, u8)
        targets = resolve_targets(bundle, None, 1, x)
        logits = bundle.logits
        fwd = tf.function(lambda t: logits(t, training=False))
        x1 = tf.constant(x)

        def fwd1():
            fwd(x1).numpy()
        fg_rows.append((name, bench_full_grad(bundle, x, targets, args.reps, fwd1)))
        for layer in LAYERS.get(name, (None,)):
            r = bench_layer(bundle, x, targets, layer, batches, args.reps, fwd1)
            rows.append((name, r))
            print(f"\n{name} {r['layer']} ({r['channels']} channels); above it: {', '.join(r['above'])}"
                  f"{'; a skip bypasses it' if r['bypass'] else ''}")
            per_copy = ", ".join(r["per_copy"]) or "nothing (rank-one update)"
            print(f"  per copy after pushing the mask through: {per_copy}")
            print("  floor s per batch size: " + ", ".join(f"{bs}: {t:.3f}" for bs, t in r["floor_per_bs"].items())
                  + f" -> best {r['floor_best']}")
            print("  ablation_scores s per batch size: "
                  + ", ".join(f"{bs}: {t:.3f}" for bs, t in r["ours_per_bs"].items())
                  + f"; default {r['default_bs']} (push=False: {r['default_bs_plain']})")
    print("\n| model | CAM layer | channels | floor (s) | ablation_cam (s) | ablation_cam / floor | push=False / floor "
          "| ablation_cam / forward |")
    print("|---|---|---|---|---|---|---|---|")
    for name, r in rows:
        ok = "ok" if r["vs_floor"].ratio <= GOAL else "OVER"
        print(f"| {name} | {r['layer']} | {r['channels']} | {r['vs_floor'][1]:.3f} | {r['vs_floor'][0]:.3f} | "
              f"{spread(r['vs_floor'])} {ok} | {spread(r['plain_vs_floor'])} | {spread(r['vs_fwd'])} |")
    print(f"\ngoal: ablation_cam / floor <= {GOAL}")
    print("\n| model | full_grad / forward | full_grad / gradient | bias layers | score | input + bias parts |")
    print("|---|---|---|---|---|---|")
    for name, r in fg_rows:
        print(f"| {name} | {spread(r['vs_fwd'])} | {spread(r['vs_grad'])} | {r['points']} | {r['score']:.4f} | "
              f"{r['sum']:.4f} |")


if __name__ == "__main__":
    main()
