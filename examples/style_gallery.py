"""Remake the README's pictures of feature inversion, texture synthesis and style
transfer on the offline model (efficientnet_lite0) and the bundled images.

    python examples/style_gallery.py [--steps 200] [--out docs/img]

Writes style_inversion.png (the cat reconstructed from each block's activations),
style_texture.jpg (the mosaic, gravel and brick: a 256 px piece of each source, Gatys et
al.'s Gram loss alone, and tfviz's default -- histograms, colours, coarse to fine) and
style_transfer.png (the cat in two blended styles, and in strokes with its own
colours), and
prints the time of each.
"""
import argparse
import os
import time

import numpy as np
from PIL import Image

import tfviz
from tfviz.images import caption, hstack, load_image, resize, save_png
from tfviz.synthesis import inversion_strip, style_transfer, synthesize_texture


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--steps", type=int, default=200, help="Steps per inversion layer and for the Gram-only texture.")
    ap.add_argument("--style-steps", type=int, default=300)
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "..", "docs", "img"))
    ap.add_argument("--only", choices=["inversion", "texture", "style"], help="Remake one picture only.")
    a = ap.parse_args()
    b = tfviz.load_model()
    if a.only in (None, "inversion"):
        inversion(b, a)
    if a.only in (None, "texture"):
        texture(b, a)
    if a.only in (None, "style"):
        style(b, a)


def inversion(b, a):
    t0 = time.perf_counter()
    inv = inversion_strip(b, "chelsea", steps=a.steps, size=150)
    save_png(os.path.join(a.out, "style_inversion.png"), inv.extra["strip"])
    print(f"inversion strip: {time.perf_counter() - t0:.0f} s; PSNR " +
          ", ".join(f"{n} {p:.1f}" for n, p in zip(inv.extra["layers"], inv.extra["psnr"])), flush=True)


def texture(b, a):
    from tfviz.images import vstack
    rows = []
    for name in ("mosaic", "gravel", "brick"):
        t0 = time.perf_counter()
        src = load_image(name)
        gatys = synthesize_texture(b, name, size=256, steps=a.steps, scales=1, histogram_weight=0, color_weight=0,
                                   match_colors=None)
        t1 = time.perf_counter()
        ours = synthesize_texture(b, name, size=256)
        t2 = time.perf_counter()
        rows.append(hstack([caption(src[:256, :256], f"{name}: a 256 px piece"),
                            caption(gatys.image, f"Gram loss alone, {a.steps} steps"),
                            caption(ours.image, "default: + histograms, colours, coarse to fine")]))
        print(f"texture {name}: Gram alone {t1 - t0:.0f} s, default {t2 - t1:.0f} s", flush=True)
    Image.fromarray(np.asarray(vstack(rows))).save(os.path.join(a.out, "style_texture.jpg"), quality=88,
                                                   optimize=True)


def style(b, a):
    t0 = time.perf_counter()
    blend = style_transfer(b, "chelsea", ["strokes", "mosaic"], style_weights=(0.6, 0.4), steps=a.style_steps)
    t1 = time.perf_counter()
    keep = style_transfer(b, "chelsea", "strokes", preserve_colors=True, steps=a.style_steps)
    t2 = time.perf_counter()
    h = blend.image.shape[0]
    thumb = (h, h)
    save_png(os.path.join(a.out, "style_transfer.png"), hstack([
        caption(resize(load_image("chelsea"), blend.image.shape[:2]), "content"),
        caption(resize(load_image("strokes"), thumb), "style 1: strokes"),
        caption(resize(load_image("mosaic"), thumb), "style 2: mosaic"),
        caption(blend.image, "0.6 strokes + 0.4 mosaic"),
        caption(keep.image, "strokes, content's colours")]))
    print(f"style: blended {t1 - t0:.0f} s, preserved colours {t2 - t1:.0f} s; size {blend.image.shape[1]}x{h}")


if __name__ == "__main__":
    main()
