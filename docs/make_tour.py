"""Make the README's tour from a full demo run: its pictures, shrunk to 256-colour PNGs in
docs/img/tour/, and the tour's text (from tfviz/cli/demo/tour.py) between the README's tour markers.

    tfviz demo -o tfviz-out/demo          # the full run, about 15 minutes on 2 cores
    python docs/make_tour.py tfviz-out/demo

tests/test_demo.py checks that the README's tour is what this script writes and that every
picture it names exists.
"""
import json
import os
import sys

from PIL import Image

from tfviz.cli.demo import tour as demo
from tfviz.utils import atomic_path

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def shrink(src, dst, width=400, height=260):
    with Image.open(src) as im:
        im = im.convert("RGB")
        f = min(1.0, width / im.width, height / im.height)
        if f < 1.0:
            im = im.resize((max(1, round(im.width * f)), max(1, round(im.height * f))), Image.LANCZOS)
        elif im.width < 200:  # a filter grid: enlarge with sharp pixels
            k = max(1, 240 // im.width)
            im = im.resize((im.width * k, im.height * k), Image.NEAREST)
        im = im.quantize(256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
        with atomic_path(dst) as tmp:
            im.save(tmp, optimize=True)


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    out = argv[0] if argv else os.path.join("tfviz-out", "demo")
    summary = json.load(open(os.path.join(out, "summary.json"), encoding="utf-8"))
    pictures = os.path.join(ROOT, demo.TOUR_PICTURES)
    os.makedirs(pictures, exist_ok=True)
    for s in summary:
        pic = demo.tour_picture(s["pictures"])
        if pic:
            shrink(pic, os.path.join(pictures, f"{s['name']}.png"))  # paths as the demo wrote them
            print("wrote", os.path.join(demo.TOUR_PICTURES, f"{s['name']}.png"))
    readme = os.path.join(ROOT, "README.md")
    text = open(readme, encoding="utf-8").read()
    a, b = text.index(demo.TOUR_START), text.index(demo.TOUR_END) + len(demo.TOUR_END)
    text = text[:a] + demo.tour_markdown() + text[b:]
    with atomic_path(readme) as tmp, open(tmp, "w", encoding="utf-8") as fh:
        fh.write(text)
    print("updated the tour in README.md")


if __name__ == "__main__":
    main()
