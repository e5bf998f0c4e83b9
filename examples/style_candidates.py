"""Which layers and feature transform make efficientnet_lite0 a good loss network for
texture synthesis and style transfer? Every candidate side by side, one row each:
a texture grown from the bundled mosaic (shrunk to 128 px, grown to 256 px) and the cat
painted with the bundled strokes; total variation at the defaults (texture 2, style 5)
except in the first row.

    python examples/style_candidates.py [--steps 150] [--out docs/img/style_candidates.jpg]

Prints, per candidate, the style loss reached and the seconds taken. The defaults in
tfviz.synthesis.lossnet.LOSS_NETWORKS["efficientnet_lite0"] are the row judged best.
"""
import argparse
import time


import tfviz
from PIL import Image

from tfviz.images import caption, hstack, resize, vstack
from tfviz.synthesis import style_transfer, synthesize_texture

ADDS = ["stem_relu", "block2b_add", "block3b_add", "block4c_add", "block5c_add"]
EXPAND = ["stem_relu", "block2a_expand_relu", "block3a_expand_relu", "block4a_expand_relu", "block5a_expand_relu"]
DW = ["stem_relu", "block2a_relu", "block3a_relu", "block4a_relu", "block5a_relu"]
CANDIDATES = [
    ("expansions, raw, no TV", EXPAND, None, 0.0),
    ("block outputs, raw", ADDS, None),
    ("block outputs, softmax", ADDS, "softmax"),
    ("expansions, raw", EXPAND, None),
    ("expansions, softmax", EXPAND, "softmax"),
    ("expansions, channel softmax", EXPAND, "softmax_channels"),
    ("depthwise, softmax", DW, "softmax"),
]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--steps", type=int, default=150)
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--only", help="comma-separated candidate numbers (0-based)")
    ap.add_argument("--out", default="docs/img/style_candidates.jpg")
    a = ap.parse_args()
    b = tfviz.load_model()
    rows = []
    picks = [int(i) for i in a.only.split(",")] if a.only else range(len(CANDIDATES))
    src = resize(tfviz.images.load_image("mosaic"), (128, 128))
    for i in picks:
        label, layers, transform, *tv = CANDIDATES[i]
        tv = dict(tv_weight=tv[0]) if tv else {}   # default: the loss network's (2 texture, 5 style)
        t0 = time.perf_counter()
        tex = synthesize_texture(b, src, size=(a.size, a.size), layers=layers, transform=transform,
                                 steps=a.steps, **tv)
        t1 = time.perf_counter()
        sty = style_transfer(b, "chelsea", "strokes", style_layers=layers, transform=transform,
                             sizes=(a.size,), steps=a.steps, **tv)
        t2 = time.perf_counter()
        style_loss = sum(v[-1] for k, v in sty.losses.items() if k.startswith("gram"))
        print(f"[{i}] {label}: texture loss {-tex.history[-1]:.3f} ({t1 - t0:.0f} s), "
              f"style terms {-style_loss:.3f} ({t2 - t1:.0f} s)", flush=True)
        rows.append(hstack([caption(tex.image, f"[{i}] {label}: texture"), caption(sty.image, "style transfer")]))
        Image.fromarray(vstack(rows)).save(a.out, quality=88)   # JPEG: noisy textures make PNGs large
    print("wrote", a.out)


if __name__ == "__main__":
    main()
