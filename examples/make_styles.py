"""Make the two bundled style images (tfviz/assets/photos/strokes.jpg and mosaic.jpg).

Offline machines have no paintings to download, so tfviz draws its own, with this
script (their licence is the project's: the drawings are ours):

* strokes -- short thick brush strokes in a swirling flow field, in night blues and
  star yellows (a Van-Gogh-like swirl);
* mosaic -- Voronoi tiles in warm glass colours with dark lead lines (stained glass).

    python examples/make_styles.py [--out tfviz/assets/photos]
"""
import argparse
import os

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

SIZE = 384


def strokes(seed=1, size=SIZE):
    rng = np.random.default_rng(seed)
    img = Image.new("RGB", (size, size), (18, 38, 92))
    draw = ImageDraw.Draw(img)
    palette = np.array([(24, 52, 128), (40, 84, 170), (70, 120, 200), (20, 30, 70), (110, 160, 220),
                        (236, 206, 80), (250, 236, 150), (210, 160, 40), (235, 240, 245), (60, 110, 90)])
    p = np.array([.16, .16, .14, .10, .10, .10, .06, .06, .06, .06])

    def angle(x, y):  # a swirling flow field: a few vortices plus a drift
        a = 0.6 * np.sin(x / 40.0) + 0.5 * np.cos(y / 55.0)
        for cx, cy, s in ((0.3, 0.3, 1), (0.72, 0.55, -1), (0.4, 0.8, 1)):
            dx, dy = x - cx * size, y - cy * size
            r2 = dx * dx + dy * dy
            w = np.exp(-r2 / (2 * (0.16 * size) ** 2))
            a = (1 - w) * a + w * (np.arctan2(dy, dx) + s * np.pi / 2)
        return a
    for _ in range(2600):
        x, y = rng.uniform(-10, size + 10, 2)
        col = palette[rng.choice(len(palette), p=p)] + rng.integers(-18, 19, 3)
        col = tuple(int(c) for c in np.clip(col, 0, 255))
        width = int(rng.integers(4, 10))
        pts = [(x, y)]
        for _ in range(int(rng.integers(4, 10))):
            a = angle(x, y)
            x, y = x + 4 * np.cos(a), y + 4 * np.sin(a)
            pts.append((x, y))
        draw.line(pts, fill=col, width=width, joint="curve")
    return np.asarray(img.filter(ImageFilter.GaussianBlur(0.7)))


def mosaic(seed=2, size=SIZE, cells=140):
    rng = np.random.default_rng(seed)
    pts = rng.uniform(0, size, (cells, 2))
    yy, xx = np.mgrid[0:size, 0:size]
    d = (yy[..., None] - pts[:, 0]) ** 2 + (xx[..., None] - pts[:, 1]) ** 2
    order = np.argsort(d, axis=-1)[..., :2]
    d1 = np.sqrt(np.take_along_axis(d, order[..., :1], -1)[..., 0])
    d2 = np.sqrt(np.take_along_axis(d, order[..., 1:2], -1)[..., 0])
    palette = np.array([(196, 40, 36), (232, 120, 30), (244, 196, 48), (28, 120, 130), (40, 70, 150),
                        (120, 40, 110), (70, 150, 70), (230, 224, 200)])
    colors = palette[rng.integers(0, len(palette), cells)] + rng.integers(-25, 26, (cells, 3))
    img = colors[order[..., 0]].astype(np.float64)
    # glass shading: lighter toward each tile's centre
    img *= (1.08 - 0.25 * np.clip(d1 / 30.0, 0, 1))[..., None]
    lead = (d2 - d1) < 3.0
    img[lead] = (30, 26, 24)
    img = np.clip(img, 0, 255).astype(np.uint8)
    return np.asarray(Image.fromarray(img).filter(ImageFilter.GaussianBlur(0.6)))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "..", "tfviz", "assets", "photos"))
    a = ap.parse_args()
    for name, fn in (("strokes", strokes), ("mosaic", mosaic)):
        path = os.path.join(a.out, name + ".jpg")
        Image.fromarray(fn()).save(path, quality=92)
        print("wrote", os.path.normpath(path))


if __name__ == "__main__":
    main()
