"""Make the README's fast-stylization pictures from networks trained with the CLI:

    tfviz train-stylizer --style strokes --style mosaic --steps 1000 --image-size 128 --width 0.5 --checkpoint-dir ckpt
    tfviz train-texture mosaic --steps 1000
    python examples/stylize_gallery.py [--only styles|texture] [--stylizer tfviz-out/stylizer-strokes-mosaic.keras]
                                       [--texture tfviz-out/texture-net-mosaic.keras] [--out docs/img]

Writes stylize_styles.png (the coffee photo in style 0, style 1 and a 50/50 mix) and
stylize_texture.png (the texture network at two sizes).
"""
import argparse
import os

import keras

from tfviz.images import caption, hstack, load_image, resize, save_png
from tfviz.stylize import generate_texture, stylize  # importing tfviz.stylize registers its layers


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--stylizer", default="tfviz-out/stylizer-strokes-mosaic.keras")
    ap.add_argument("--texture", default="tfviz-out/texture-net-mosaic.keras")
    ap.add_argument("--photo", default="coffee")
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "..", "docs", "img"))
    ap.add_argument("--only", choices=["styles", "texture"], help="Remake one picture only.")
    a = ap.parse_args()
    if a.only in (None, "styles"):
        net = keras.models.load_model(a.stylizer)
        photo = load_image(a.photo)
        tiles = [caption(photo, a.photo), caption(stylize(net, photo, 0), "style 0: strokes"),
                 caption(stylize(net, photo, 1), "style 1: mosaic"),
                 caption(stylize(net, photo, {0: 0.5, 1: 0.5}), "50/50 mix")]
        save_png(os.path.join(a.out, "stylize_styles.png"),
                 hstack([resize(t, (t.shape[0] * 3 // 4, t.shape[1] * 3 // 4)) for t in tiles]))
        print("wrote stylize_styles.png")
    if a.only in (None, "texture"):
        tex = keras.models.load_model(a.texture)
        save_png(os.path.join(a.out, "stylize_texture.png"), hstack([
            caption(load_image("mosaic")[:128, :128], "source, a 128 px piece"),
            caption(generate_texture(tex, 128, seed=1)[0], "128x128"),
            caption(generate_texture(tex, (256, 384), seed=2)[0], "384x256")]))
        print("wrote stylize_texture.png")


if __name__ == "__main__":
    main()
