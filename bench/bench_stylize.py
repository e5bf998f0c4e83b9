"""Feed-forward stylization speed: a transformer network (random weights: speed does not
depend on them) stylizing 256 and 512 px images, against Gatys optimization of the same
content at the same size; and training steps/s at 256 px by batch size.

    python bench/bench_stylize.py [--width 1.0] [--batches 1,2,4,8] [--gatys-steps 300]

Ratios: Gatys (the style issue's defaults: L-BFGS, 300 steps) / one stylization at the
same size, and steps/s per batch size (images/s = steps/s x batch).
"""
import argparse
import time

import numpy as np

import tfviz
from tfviz.images import load_image, resize
from tfviz.stylize import stylize, transformer_network
from tfviz.stylize.training import train_stylizer
from tfviz.synthesis import style_transfer


def stylize_ms(model, size, batch, repeats=3):
    imgs = np.repeat(resize(load_image("chelsea"), (size, size))[None], batch, 0)
    stylize(model, imgs, 0, batch_size=batch)  # trace
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        stylize(model, imgs, 0, batch_size=batch)
        times.append((time.perf_counter() - t0) / batch)
    return 1000 * float(np.median(times)), 1000 * float(np.min(times)), 1000 * float(np.max(times))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--width", type=float, default=1.0)
    ap.add_argument("--batches", default="1,2,4,8")
    ap.add_argument("--gatys-steps", type=int, default=300)
    ap.add_argument("--train-batches", default="1,2,4")
    ap.add_argument("--train-steps", type=int, default=6)
    a = ap.parse_args()
    b = tfviz.load_model()
    model = transformer_network(num_styles=2, width=a.width)
    for size in (256, 512):
        rows = []
        for batch in [int(v) for v in a.batches.split(",")]:
            med, lo, hi = stylize_ms(model, size, batch)
            rows.append((med, batch))
            print(f"{size}x{size}, batch {batch}: {med:.0f} ms per image ({lo:.0f}-{hi:.0f}), "
                  f"{1000 / med:.1f} images/s", flush=True)
        best, best_batch = min(rows)
        t0 = time.perf_counter()
        g = style_transfer(b, resize(load_image("chelsea"), (size, size)), "strokes", sizes=(size,),
                           steps=a.gatys_steps)
        gatys = time.perf_counter() - t0
        print(f"{size}x{size}: Gatys ({g.steps} L-BFGS steps) {gatys:.1f} s = {1000 * gatys / best:.0f}x one "
              f"stylization at the best batch ({best_batch}: {best:.0f} ms)", flush=True)
    for batch in [int(v) for v in a.train_batches.split(",")]:
        marks = []
        train_stylizer(b, ["strokes", "mosaic"], image_size=256, batch_size=batch, steps=a.train_steps,
                       width=a.width, callbacks=[lambda s, l: marks.append(time.perf_counter())])
        per = np.diff(marks[1:])   # the first step traces
        print(f"training at 256 px, batch {batch}: {1 / np.median(per):.2f} steps/s "
              f"({batch / np.median(per):.2f} images/s)", flush=True)


if __name__ == "__main__":
    main()
