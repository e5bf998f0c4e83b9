"""Style transfer cost on the offline loss network (efficientnet_lite0): L-BFGS against
Adam, the cost of one step against one forward pass, and the peak memory of a 1024 px
coarse-to-fine run.

    python bench/bench_style.py [--sizes 256,512] [--repeats 3] [--parts optimizers,step,memory]

Sizes are the longer side of the bundled cat photo (451x300): 256 px is 256x170.

1. For each size and each Adam learning rate: L-BFGS runs ``--lbfgs-steps`` steps; its
   total loss there is the target. Adam (learning rate ``--lr``, grey levels per step) then
   runs until it reaches that loss or ``--adam-cap`` steps. Reported: forward+backward passes and seconds of
   each, and Adam / L-BFGS.
2. One step (a loss-and-gradient evaluation, L-BFGS's own work included) / one forward
   pass of the same layers at the same size: median and range over ``--repeats``
   timings (steps: the difference of a 16- and a 4-step run, over their evaluations).
3. Peak resident memory of ``style_transfer(sizes=(256, 512, 1024))`` in a child
   process (its ru_maxrss), next to tfviz's own estimate for the 1024 px stage.
"""
import argparse
import json
import subprocess
import sys
import time

import numpy as np

import tfviz
from tfviz.synthesis import style_transfer
from tfviz.synthesis.lossnet import estimate_memory, loss_network

CONTENT, STYLE = "chelsea", "strokes"


def total_loss(history):
    return -float(history[-1])


def lbfgs_vs_adam(bundle, size, lbfgs_steps, adam_cap, lr):
    t0 = time.perf_counter()
    lb = style_transfer(bundle, CONTENT, STYLE, sizes=(size,), steps=lbfgs_steps)
    lb_s = time.perf_counter() - t0
    target = total_loss(lb.history)   # the loss of its last evaluated step
    reached = {}

    def stop(step, images, losses):
        if -losses["objective"] <= target:
            reached["step"] = step
            return True
    t0 = time.perf_counter()
    ad = style_transfer(bundle, CONTENT, STYLE, sizes=(size,), steps=adam_cap, optimizer=lr, callbacks=[stop])
    ad_s = time.perf_counter() - t0
    return dict(size=size, target_loss=target, lbfgs_steps=lb.steps, lbfgs_passes=lb.extra["evaluations"],
                lbfgs_seconds=lb_s, adam_steps=ad.steps, adam_passes=ad.extra["evaluations"], adam_seconds=ad_s,
                adam_reached=bool(reached), adam_final_loss=total_loss(ad.history))


def step_over_forward(bundle, size, repeats):
    import tensorflow as tf
    from tfviz.synthesis.optimize import forward_fn
    net = loss_network(bundle)
    layers = list(net.style_layers) + [net.content_layer]
    run = forward_fn(bundle, layers, False, True)
    fwd = tf.function(lambda x: run(x)[1])
    from tfviz.images import load_image
    from tfviz.synthesis.recipe import hw_longer
    h, w = hw_longer(load_image(CONTENT).shape[:2], size)   # the size the style step runs at
    x = tf.constant(np.random.default_rng(0).normal(size=(1, h, w, 3)).astype(np.float32))
    fwd(x)
    ratios, fwds = [], []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(10):
            [v.numpy() for v in fwd(x).values()]
        f = (time.perf_counter() - t0) / 10
        # the difference of two runs removes tracing and set-up
        short, long_ = (style_transfer(bundle, CONTENT, STYLE, sizes=(size,), steps=n) for n in (4, 16))
        per_pass = (long_.seconds - short.seconds) / (long_.extra["evaluations"] - short.extra["evaluations"])
        ratios.append(per_pass / f)
        fwds.append(f)
    return dict(size=size, hw=(h, w), forward_ms=1000 * float(np.median(fwds)), step_over_forward=float(np.median(ratios)),
                range=[float(np.min(ratios)), float(np.max(ratios))])


CHILD = """
import json, resource, time, tfviz
from tfviz.synthesis import style_transfer
b = tfviz.load_model()
t = time.perf_counter()
r = style_transfer(b, "chelsea", "strokes", sizes=(256, 512, 1024), steps=(%d, %d, %d))
print(json.dumps(dict(seconds=time.perf_counter() - t, size=list(r.image.shape[:2]),
                      maxrss_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)))
"""


def peak_memory(steps):
    out = subprocess.run([sys.executable, "-c", CHILD % tuple(steps)], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", default="256,512")
    ap.add_argument("--lbfgs-steps", default="60,30", help="L-BFGS steps per size (its loss is Adam's target).")
    ap.add_argument("--adam-cap", default="600,300", help="Most Adam steps per size.")
    ap.add_argument("--lr", default="0.6,1.2,2.9", help="Adam's learning rates to try (grey levels per step).")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--memory-steps", default="30,10,3")
    ap.add_argument("--parts", default="optimizers,step,memory",
                    help="Which measurements: optimizers, step, memory (comma-separated).")
    a = ap.parse_args()
    b = tfviz.load_model()
    sizes = [int(s) for s in a.sizes.split(",")]
    lsteps = [int(s) for s in a.lbfgs_steps.split(",")]
    caps = [int(s) for s in a.adam_cap.split(",")]
    parts = a.parts.split(",")
    for size, ls, cap in zip(sizes, lsteps, caps) if "optimizers" in parts else ():
        for lr in [float(v) for v in a.lr.split(",")]:
            r = lbfgs_vs_adam(b, size, ls, cap, lr)
            reach = "reached it" if r["adam_reached"] else f"did NOT reach it (loss {r['adam_final_loss']:.4f})"
            print(f"{size} px: L-BFGS {r['lbfgs_steps']} steps, {r['lbfgs_passes']} passes, {r['lbfgs_seconds']:.1f} s "
                  f"-> loss {r['target_loss']:.4f}; Adam lr {lr} {reach} after {r['adam_steps']} steps, "
                  f"{r['adam_passes']} passes, {r['adam_seconds']:.1f} s; Adam / L-BFGS: passes "
                  f"{r['adam_passes'] / r['lbfgs_passes']:.1f}x, time {r['adam_seconds'] / r['lbfgs_seconds']:.1f}x",
                  flush=True)
    for size in sizes if "step" in parts else ():
        r = step_over_forward(b, size, a.repeats)
        print(f"{size} px ({r['hw'][1]}x{r['hw'][0]}): one forward {r['forward_ms']:.0f} ms; one style step (loss and gradient) = "
              f"{r['step_over_forward']:.2f}x a forward pass (range {r['range'][0]:.2f}-{r['range'][1]:.2f}, "
              f"{a.repeats} runs)", flush=True)
    if "memory" in parts:
        steps = [int(s) for s in a.memory_steps.split(",")]
        r = peak_memory(steps)
        net = loss_network(b)
        est = estimate_memory(b, list(net.style_layers) + [net.content_layer], tuple(r["size"]))
        print(f"coarse-to-fine 256,512,1024 ({'/'.join(map(str, steps))} steps): output {r['size']}, peak resident "
              f"memory {r['maxrss_mb'] / 1024:.2f} GB (tfviz's estimate for the last stage: "
              f"{est / 2**30:.2f} GB), {r['seconds']:.0f} s", flush=True)


if __name__ == "__main__":
    main()
