"""Make the synthesis pictures of the README (docs/img/synthesis_*.png) on the built-in
efficientnet_lite0: class visualizations of three classes (Fourier and pixel), a neuron
grid, a fooling pair with its difference image, and a DeepDream image. About 5 min on 2 cores (4.7 min measured).

    python examples/synthesis_gallery.py [OUTDIR]
"""
import os
import sys

import tfviz
from tfviz.images import caption, hstack, resize, sample_photo, save_png, vstack
from tfviz.synthesis import class_visualization, deepdream, fooling_image, neuron_visualization

out = sys.argv[1] if len(sys.argv) > 1 else os.path.join("docs", "img")


def shrink(img, f):
    """Scale down so the README's PNGs stay small."""
    return resize(img, (round(img.shape[0] * f), round(img.shape[1] * f)))


bundle = tfviz.load_model()
S = 192  # thumbnail size in the README

# 1. class visualizations: three classes, both parameterizations
rows = []
for param in ("fourier", "pixel"):
    row = []
    for name in ("flamingo", "goldfish", "pizza"):
        r = class_visualization(bundle, name, param=param, seed=0)
        print(f"{param:8s} {name:9s} p={r.extra['probability']:.3f}  {r.seconds:.0f}s", flush=True)
        row.append(caption(resize(r.image, (S, S)), f"{name} ({param}) {r.extra['probability']:.0%}"))
    rows.append(hstack(row))
save_png(os.path.join(out, "synthesis_classes.png"), shrink(vstack(rows), 0.72))

# 2. neuron grid: 8 channels of a mid-level layer
r = neuron_visualization(bundle, "block4c_add", range(8), steps=128)
save_png(os.path.join(out, "synthesis_neurons.png"), shrink(r.extra["grid"], 0.4))

# 3. fooling pair with its difference image
cat = sample_photo("chelsea")
f = fooling_image(bundle, cat, "goldfish")
print(f"fooling: success={f.success} steps={f.steps} L2={f.l2:.1f} Linf={f.linf:.0f} p={f.probability:.2f}")
pair = hstack([caption(resize(f.original, (S, S)), f"{bundle.class_name(f.original_class)}"),
               caption(resize(f.image, (S, S)), f"goldfish {f.probability:.0%}"),
               caption(resize(f.difference, (S, S)), f"difference x{f.magnification:.0f}")])
save_png(os.path.join(out, "synthesis_fooling.png"), pair)

# 4. DeepDream on the full-size photo (451x300, larger than the 224 input)
d = deepdream(bundle, cat)
save_png(os.path.join(out, "synthesis_deepdream.png"), shrink(d.image, 0.85))
print("wrote", out)
