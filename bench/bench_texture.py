"""Texture synthesis candidates against a held-out yardstick: how close each output is to
its source, next to how close two pieces of the source are to each other (the floor)
and how far the source is from other pictures (the ceiling).

    python bench/bench_texture.py [--textures mosaic,strokes,brick,gravel,grass] [--candidates "gatys,c2f+hist+color tv0.5"]
        [--size 256] [--steps N] [--seeds 0,1] [--out-md t.md] [--out-grid g.jpg]
        [--save-dir runs/] [--reuse] [--floors-only]

Candidates are the :data:`CANDIDATES` below: a name and the keywords given to
``tfviz.synthesis.synthesize_texture``. One whose keywords this tfviz does not take is
skipped with a message (unless ``--reuse`` finds its saved outputs). Each texture (a
bundled name or a path) is synthesized at ``--size`` x ``--size`` for every seed of
``--seeds``; steps: ``--steps`` where given (for every candidate), else the candidate's
own ``steps``, else the recipe's default. Candidates that come out with the same keywords are run once.

Measures (``tfviz.synthesis.texture_measure``; efficientnet_lite0 layers the texture
loss does not use, Gram matrices per position, so sizes need not match):

* two crops of the source, read at its own size: top-left and bottom-right at the
  output's size, which do not overlap when the source is at least twice the output in
  height or width. Otherwise its two halves (left/right, or top/bottom for a tall source),
  **not** resized: the synthesis copies the source's statistics at the source's scale,
  and rescaling a crop by 4/3 moves it by about one floor (0.27 on mosaic, floor 0.25).
  brick is photographed in perspective (its bricks lean one way on the left, the other on
  the right), so its diagonal crops differ more than two crops of one side: its floor is
  the highest (0.50 at 256 px; 0.21 for two crops one above the other).
* ``tex out``: texture_distance(output, crop) averaged over the two crops; ``floor``:
  texture_distance(crop1, crop2); ``ceiling``: texture_distance(source, other) for the
  other bundled textures and the photos chelsea and coffee (min-max, nearest named).
  ``gap`` = (tex out - floor) / (nearest ceiling - floor): 0 is as close as another piece
  of the source, 1 as far as the nearest other picture.
* ``fine / coarse``: tex out over the measure's stride-2 and -4 layers (the look: grain,
  contrast, edges) and over its stride-8 and -16 layers (the arrangement), each with its
  floor in brackets; tex out is their mean.
* ``colour``: colour_distance(output, whole source) in grey levels, next to its floor
  colour_distance(crop1, crop2).
* seconds per run (one ``synthesize_texture`` call, tracing included) and per step.

With several seeds a figure is the mean and (min-max) over seeds. ``--save-dir`` keeps
each output as a PNG (and its timing as JSON) named by texture, candidate, size, seed and
a hash of the keywords; ``--reuse`` measures those instead of synthesizing again.
``--floors-only``: the floor and ceiling table alone, no synthesis.
"""
from __future__ import annotations

import argparse
import hashlib
import inspect
import json
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from tfviz.synthesis.texture_measure import COARSE_LAYERS, FINE_LAYERS  # noqa: E402

#: name -> keywords of synthesize_texture (and "model": another loss network than
#: efficientnet_lite0, a load_model name). Add candidates here.
GATYS = {"histogram_weight": 0, "color_weight": 0, "match_colors": None, "scales": 1, "steps": 200, "tv_weight": 2}
CANDIDATES = {
    "gatys": dict(GATYS),                                           # the Gram loss alone, as before (TV 2)
    "gatys+colors": dict(GATYS, match_colors="histogram"),          # and the colours matched after the run
    "hist": dict(GATYS, histogram_weight=1, match_colors="histogram"),
    "c2f": dict(GATYS, scales=(0.5, 1), steps=(100, 100), match_colors="histogram"),
    "c2f+hist": {"color_weight": 0, "tv_weight": 2},
    "c2f+hist+color": {"tv_weight": 2},
    "c2f+hist+color tv0.5": {},                                     # the defaults
    "3 scales": {"scales": (0.25, 0.5, 1), "steps": (60, 60, 100), "tv_weight": 2},
    "color 1": {"color_weight": 1, "tv_weight": 2},
    "random_multiscale": {"model": "random_multiscale"},
}
TEXTURES = ("mosaic", "strokes", "brick", "gravel", "grass")
#: what each source is compared with for the ceiling (itself left out)
OTHERS = ("mosaic", "strokes", "brick", "gravel", "grass", "chelsea", "coffee")
#: the two halves of the measure's layers, reported apart (tex = their mean)
HALVES = {"fine": FINE_LAYERS, "coarse": COARSE_LAYERS}


def two_crops(src, hw):
    """Two non-overlapping pieces of ``src`` and how they were taken (see the doc)."""
    H, W = src.shape[:2]
    h, w = hw
    if h <= H and w <= W and (H >= 2 * h or W >= 2 * w):
        return src[:h, :w], src[H - h:, W - w:], f"top-left, bottom-right {w}x{h}"
    if W >= H:
        return src[:, :W // 2], src[:, W - W // 2:], f"left, right halves {W // 2}x{H}"
    return src[:H // 2], src[H - H // 2:], f"top, bottom halves {W}x{H // 2}"


def fmt(values, digits=2):
    """``mean`` or ``mean (min-max)`` of several."""
    v = np.asarray(values, np.float64)
    if v.size == 1:
        return f"{v[0]:.{digits}f}"
    return f"{v.mean():.{digits}f} ({v.min():.{digits}f}-{v.max():.{digits}f})"


def table(header, rows):
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(str(c) for c in r) + " |" for r in rows])


def effective(kwargs, steps_arg):
    kw = dict(kwargs)
    if steps_arg is not None:
        kw["steps"] = steps_arg
    return kw


def unknown_keywords(kwargs):
    from tfviz.synthesis import synthesize_texture
    params = inspect.signature(synthesize_texture).parameters
    if any(p.kind is p.VAR_KEYWORD for p in params.values()):
        return []
    return [k for k in kwargs if k != "model" and (k not in params or k in ("bundle", "texture", "size", "seed"))]


def run_name(texture, cand, size, seed, kw):
    tag = hashlib.sha1(json.dumps(kw, sort_keys=True, default=str).encode()).hexdigest()[:8]
    base = os.path.splitext(os.path.basename(texture))[0]
    return f"{base}-{cand}-{size}px-{tag}-seed{seed}"


class Sources:
    """Each texture's source, crops and their measures, computed once."""

    def __init__(self, bundle):
        self.bundle, self._stats, self.info = bundle, {}, {}

    def stats(self, key, img):
        from tfviz.synthesis import gram_statistics
        if key not in self._stats:
            self._stats[key] = gram_statistics(img, self.bundle)
        return self._stats[key]

    def measure(self, texture, hw):
        from tfviz.images import load_image
        from tfviz.synthesis import colour_distance, texture_distance
        if texture in self.info:
            return self.info[texture]
        src = load_image(texture)
        c1, c2, how = two_crops(src, hw)
        s1, s2 = self.stats((texture, 1), c1), self.stats((texture, 2), c2)
        halves = {h: texture_distance(s1, s2, layers=ls) for h, ls in HALVES.items()}
        ceil = {o: texture_distance(self.stats(o, load_image(o)), self.stats(texture, src))
                for o in OTHERS if o != texture}
        near = min(ceil, key=ceil.get)
        self.info[texture] = dict(src=src, crops=(c1, c2), how=how, floor=texture_distance(s1, s2), halves=halves,
                                  ceiling=ceil, nearest=near, colour_floor=colour_distance(c1, c2))
        return self.info[texture]


def synthesize(bundle, texture, size, seed, kw, save_dir, reuse, name):
    """The output of one run and its seconds (None when reused without a record)."""
    from tfviz.images import load_image, save_png
    from tfviz.synthesis import synthesize_texture
    png = os.path.join(save_dir, name + ".png") if save_dir else None
    if reuse and png and os.path.exists(png):
        rec = json.load(open(png[:-4] + ".json")) if os.path.exists(png[:-4] + ".json") else {}
        return load_image(png), rec.get("seconds"), rec.get("steps"), True
    kw = dict(kw)
    if "model" in kw:
        import tfviz
        bundle = tfviz.load_model(kw.pop("model"))
    t0 = time.perf_counter()
    res = synthesize_texture(bundle, texture, size=(size, size), seed=seed, **kw)
    sec = time.perf_counter() - t0
    if png:
        os.makedirs(save_dir, exist_ok=True)
        save_png(png, res.image)
        with open(png[:-4] + ".json", "w") as fh:
            json.dump(dict(seconds=sec, steps=int(res.steps), kwargs=kw, seed=seed, size=size), fh, default=str)
    return res.image, sec, int(res.steps), False


def floors_table(src, textures, hw):
    rows = []
    for t in textures:
        m = src.measure(t, hw)
        c = list(m["ceiling"].values())
        rows.append([t, f"{m['src'].shape[1]}x{m['src'].shape[0]}", m["how"], f"{m['floor']:.3f}",
                     f"{min(c):.3f}-{max(c):.3f} ({m['nearest']})", f"{min(c) / m['floor']:.1f}",
                     f"{m['colour_floor']:.1f}"])
    return table(["texture", "source", "crops", "texture floor", "ceiling min-max (nearest)", "ceiling/floor",
                  "colour floor"], rows)


def caption_lines(cand, tex, col, sec):
    return f"{cand}\ntex {tex:.2f} col {col:.0f}" + (f" {sec:.0f}s" if sec is not None else "")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--textures", default=",".join(TEXTURES), help="bundled names or paths, comma-separated")
    ap.add_argument("--candidates", default=",".join(CANDIDATES),
                    help=f"names from CANDIDATES: {', '.join(CANDIDATES)}")
    ap.add_argument("--size", type=int, default=256, help="output side in pixels (square)")
    ap.add_argument("--steps", type=int, default=None,
                    help="steps of every candidate (default: the candidate's own, else the recipe's)")
    ap.add_argument("--seeds", default="0", help="comma-separated seeds")
    ap.add_argument("--out-md", help="also write the tables to this markdown file")
    ap.add_argument("--out-grid", help="a picture grid (JPEG or PNG): a row per texture, the source crop then each "
                                       "candidate's output (first seed)")
    ap.add_argument("--save-dir", help="keep each output here (PNG + JSON)")
    ap.add_argument("--reuse", action="store_true", help="measure the outputs in --save-dir instead of synthesizing")
    ap.add_argument("--floors-only", action="store_true", help="only the floor and ceiling table")
    a = ap.parse_args()
    textures = [t for t in a.textures.split(",") if t]
    seeds = [int(s) for s in a.seeds.split(",") if s]
    names = [c for c in a.candidates.split(",") if c]
    bad = [c for c in names if c not in CANDIDATES]
    if bad:
        ap.error(f"unknown candidates {bad}; CANDIDATES has {', '.join(CANDIDATES)}")
    if a.reuse and not a.save_dir:
        ap.error("--reuse needs --save-dir")

    import tensorflow as tf

    import tfviz
    from tfviz.images import caption, hstack, resize, vstack
    from tfviz.synthesis import HELD_OUT_LAYERS, colour_distance, gram_statistics, texture_distance
    from tfviz.synthesis.texture_measure import default_bundle

    bundle = default_bundle()
    hw = (a.size, a.size)
    dev = tf.config.list_logical_devices("GPU")
    head = (f"device: {'GPU ' + dev[0].name if dev else 'CPU'} ({os.cpu_count()} cores), TF {tf.__version__}, "
            f"tfviz {tfviz.__version__}; {bundle.name}; measure layers {', '.join(HELD_OUT_LAYERS)}; "
            f"output {a.size}x{a.size}")
    print(head, flush=True)
    src = Sources(bundle)
    t0 = time.perf_counter()
    out = [head, "", "Floors and ceilings (texture_distance; colour_distance in grey levels):", "",
           floors_table(src, textures, hw)]
    print("\n".join(out[2:]), flush=True)
    print(f"({time.perf_counter() - t0:.0f} s)", flush=True)

    if not a.floors_only:
        done, runs, skipped = {}, [], []
        for cand in names:
            kw = effective(CANDIDATES[cand], a.steps)
            key = json.dumps(kw, sort_keys=True, default=str)
            if key in done:
                print(f"candidate {cand}: same keywords as {done[key]} ({kw}); its results are reused", flush=True)
            unknown = unknown_keywords(kw)
            for t in textures:
                m = src.measure(t, hw)
                for seed in seeds:
                    name = run_name(t, cand, a.size, seed, kw)
                    twin = next((r for r in runs if r["key"] == key and r["texture"] == t and r["seed"] == seed), None)
                    png = os.path.join(a.save_dir, name + ".png") if a.save_dir else None
                    if twin is not None:
                        runs.append(dict(twin, cand=cand, same_as=twin["cand"]))
                        continue
                    if unknown and not (a.reuse and png and os.path.exists(png)):
                        msg = (f"skip candidate {cand}: synthesize_texture here takes no keyword "
                               f"{', '.join(map(repr, unknown))}")
                        if msg not in skipped:
                            print(msg, flush=True)
                            skipped.append(msg)
                        continue
                    try:
                        img, sec, steps, reused = synthesize(bundle, t, a.size, seed, kw, a.save_dir, a.reuse, name)
                    except Exception as exc:   # a candidate's bad value: report it, measure the others
                        msg = f"skip candidate {cand} on {t}, seed {seed}: {type(exc).__name__}: {exc}"
                        print(msg, flush=True)
                        skipped.append(msg)
                        continue
                    g = gram_statistics(img, bundle)
                    crops = [src.stats((t, k), m["crops"][k - 1]) for k in (1, 2)]
                    d = [texture_distance(g, c) for c in crops]
                    halves = {h: float(np.mean([texture_distance(g, c, layers=ls) for c in crops]))
                              for h, ls in HALVES.items()}
                    col = colour_distance(img, m["src"])
                    r = dict(key=key, cand=cand, texture=t, seed=seed, image=img, seconds=sec, steps=steps,
                             tex=float(np.mean(d)), halves=halves, colour=col, reused=reused)
                    runs.append(r)
                    print(f"{t} {cand} seed {seed}: tex {r['tex']:.3f} (floor {m['floor']:.3f}), colour {col:.1f}"
                          + (f", {sec:.1f} s, {steps} steps" if sec is not None else "")
                          + (" (reused)" if reused else ""), flush=True)
            done.setdefault(key, cand)

        rows, summary = [], {}
        for t in textures:
            m = src.measure(t, hw)
            near = m["ceiling"][m["nearest"]]
            for cand in names:
                rs = [r for r in runs if r["texture"] == t and r["cand"] == cand]
                if not rs:
                    continue
                tex = [r["tex"] for r in rs]
                gap = [(x - m["floor"]) / (near - m["floor"]) for x in tex]
                secs = [r["seconds"] for r in rs if r["seconds"] is not None]
                per = [r["seconds"] / r["steps"] for r in rs if r["seconds"] is not None and r["steps"]]
                split = " / ".join(f"{np.mean([r['halves'][h] for r in rs]):.2f} ({m['halves'][h]:.2f})"
                                   for h in HALVES)
                label = cand + (f" (= {rs[0]['same_as']})" if rs[0].get("same_as") else "")
                rows.append([t, label, rs[0]["steps"] or "?", fmt(tex, 3), f"{m['floor']:.3f}", fmt(gap),
                             fmt([x / m["floor"] for x in tex], 1), split, fmt([r["colour"] for r in rs], 1),
                             f"{m['colour_floor']:.1f}", fmt(secs, 0) if secs else "-", fmt(per, 3) if per else "-"])
                s = summary.setdefault(cand, dict(gap=[], colour=[], sec=[]))
                s["gap"] += gap
                s["colour"] += [r["colour"] for r in rs]
                s["sec"] += secs
        t1 = table(["texture", "candidate", "steps", "tex out", "floor", "gap", "tex/floor",
                    "fine / coarse (floor)", "colour",
                    "colour floor", "seconds", "s/step"], rows)
        t2 = table(["candidate", "mean gap", "mean colour", "mean seconds"],
                   [[c, fmt(s["gap"]), fmt(s["colour"], 1), fmt(s["sec"], 0) if s["sec"] else "-"]
                    for c, s in summary.items()])
        part = ["", f"Candidates (seeds {', '.join(map(str, seeds))}; gap: 0 = floor, 1 = nearest other picture):",
                "", t1, "", "Over all textures (mean (min-max) over textures and seeds):", "", t2]
        if skipped:
            part += [""] + [f"- {s}" for s in skipped]
        print("\n".join(part), flush=True)
        out += part

        if a.out_grid:
            grid = []
            for t in textures:
                m = src.measure(t, hw)
                crop = m["crops"][0]
                if crop.shape[:2] != hw:   # shown at the output's size; measured at its own
                    crop = resize(crop, (a.size, round(a.size * crop.shape[1] / crop.shape[0])))
                cells = [caption(crop, f"{os.path.basename(t)}\nsource crop 1", size=12)]
                for cand in names:
                    r = next((r for r in runs if r["texture"] == t and r["cand"] == cand and r["seed"] == seeds[0]),
                             None)
                    if r is not None:
                        label = cand + (f" (= {r['same_as']})" if r.get("same_as") else "")
                        cells.append(caption(r["image"], caption_lines(label, r["tex"], r["colour"], r["seconds"]),
                                             size=12))
                grid.append(hstack(cells))
            from PIL import Image
            Image.fromarray(vstack(grid)).save(a.out_grid, quality=88)
            print("wrote", a.out_grid)

    print(f"load average {os.getloadavg()[0]:.1f} at the end")
    if a.out_md:
        with open(a.out_md, "w") as fh:
            fh.write("\n".join(out) + "\n")
        print("wrote", a.out_md)


if __name__ == "__main__":
    main()
