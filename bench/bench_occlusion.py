"""Incremental occlusion (Krypton) against full re-inference, on VGG16 and efficientnet_lite0.

    python bench/bench_occlusion.py [--images 1] [--reps 2] [--vgg-positions 64] [--skip-vgg]
    PYTHONPATH=/tmp/occ_peers python bench/bench_occlusion.py      # with tf-explain

Settings: 224 px, patch 16, stride 8 (27 x 27 = 729 positions), the bundled cat photo
(``--images 2`` adds the coffee photo), fill "mean", batch 64. Prints ONE table:

  * ratio: time of full re-inference / time of the mode (speedup), the median of the
    per-pair ratios of ``--reps`` alternating pairs (after one untimed call of each, so
    tracing is not timed), with min-max over the pairs;
  * theory: full / incremental multiply-adds per position (convolutions and dense layers,
    :func:`tfviz.attribution.incremental.theoretical_saving`), the best a mode can do;
  * rank corr / peak: Spearman correlation of the map with the exact one and whether the
    peaks agree (:func:`tfviz.attribution.incremental.fidelity`);
  * vs tf-explain: tf-explain's ``OcclusionSensitivity`` time per occluded copy (its patch
    16 at stride 16, grey fill, ``model.predict``) / the mode's time per copy, in the
    same run (> 1: tfviz is faster); "n/a" when it is not installed or breaks on Keras 3.

VGG16 (``keras.applications.VGG16(weights=None)``; timing does not depend on weights) is
costly in full on 2 cores (~0.3 s a copy), so it is timed on ``--vgg-positions`` evenly
spaced positions of the 729, the same in both modes (cost is linear in positions), and
its maps are compared on those positions. efficientnet_lite0 runs the whole grid.
Targets (issue): incremental >= 4x (VGG16), >= 1.4x (lite0); approximate >= 3x (lite0)
with rank correlation >= 0.95.
"""
from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from bench_attribution import paired as _paired  # noqa: E402

PATCH, STRIDE = 16, 8


def paired(fa, fb, reps):
    """(median, min, max) of the per-pair ratios time(fa) / time(fb), and fb's median time
    -- bench_attribution.paired, calls alternating so that load hits both alike."""
    p = _paired(fa, fb, reps)
    return p.ratio, float(p.ratios.min()), float(p.ratios.max()), p[1]


def tf_explain_time(bundle, x_u8):
    """Seconds per occluded copy of tf-explain's OcclusionSensitivity, or a reason."""
    try:
        from tf_explain.core.occlusion_sensitivity import OcclusionSensitivity
    except Exception as exc:  # noqa: BLE001 - reported in the table
        return None, f"not installed ({type(exc).__name__})"
    try:
        x = bundle.preprocess(x_u8)
        expl = OcclusionSensitivity(batch_size=64)
        expl.explain((x, None), bundle.model, 0, PATCH)           # warm-up
        t = time.perf_counter()
        expl.explain((x, None), bundle.model, 0, PATCH)
        dt = time.perf_counter() - t
        per = -(-x.shape[1] // PATCH) * -(-x.shape[2] // PATCH) * len(x)
        return dt / per, None
    except Exception as exc:  # noqa: BLE001
        return None, f"breaks: {type(exc).__name__}: {str(exc)[:60]}"


def subset_runner(bundle, u8, mode, sel):
    """Drops at positions ``sel`` only (both modes through tfviz's own code paths)."""
    from tfviz.attribution import incremental as inc
    occ = sys.modules["tfviz.attribution.occlusion"]
    from tfviz.attribution.core import group_by_head, prepare, substitute, target_scores
    from tfviz.attribution.patch_grid import PatchGrid
    from tfviz.attribution.targets import resolve_targets
    x = prepare(bundle, u8)
    targets = resolve_targets(bundle, None, len(x), x)
    grid = PatchGrid.of(x.shape[1], x.shape[2], PATCH, STRIDE)
    s = occ._Scoring(bundle, x, substitute(bundle, x, "mean"), target_scores(bundle, x, targets), False, 64)
    (layer, ids), = group_by_head(targets).items()
    g = occ._Targets.of(layer, ids, targets)
    plan = inc.plan_for(bundle, None, grid.tops, grid.lefts, PATCH, PATCH)

    def run():
        drops = np.zeros((len(x), grid.size), np.float32)
        if mode == "full":
            occ._drops_full(s, g, grid, drops, sel=sel)
        else:
            occ._drops_incremental(s, g, plan, grid, drops, sel=sel)
        return drops[:, sel]
    return run


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=1, choices=[1, 2])
    ap.add_argument("--reps", type=int, default=2)
    ap.add_argument("--vgg-positions", type=int, default=64)
    ap.add_argument("--skip-vgg", action="store_true")
    args = ap.parse_args()

    import keras
    from tfviz.attribution import occlusion
    from tfviz.attribution.incremental import fidelity, theoretical_saving
    from tfviz.models import load_model

    names = ["chelsea", "coffee"][:args.images]
    rows = []
    lite = load_model("efficientnet_lite0")
    u8 = lite.load_images(names)
    te, te_why = tf_explain_time(lite, u8)
    maps = {}

    def lite_mode(mode):
        def f():
            maps[mode] = occlusion(lite, u8, patch=PATCH, stride=STRIDE, inference=mode)
        return f
    theory = theoretical_saving(lite, PATCH, STRIDE)["saving"]
    for mode in ("incremental", "approximate"):
        med, lo, hi, t_mode = paired(lite_mode("full"), lite_mode(mode), args.reps)
        f = fidelity(maps[mode], maps["full"])
        th = theory if mode == "incremental" else theoretical_saving(lite, PATCH, STRIDE, tau=0.9)["saving"]
        per = t_mode / (729 * len(u8))
        rows.append(("efficientnet_lite0", mode, med, lo, hi, th, f["spearman"], f["peak_agrees"],
                     (te / per) if te else None))
    if not args.skip_vgg:
        vgg = load_model(keras.applications.VGG16(weights=None), preprocess="caffe")
        vu8 = vgg.load_images(names)
        sel = np.unique(np.linspace(0, 728, args.vgg_positions).round().astype(int))
        full_run = subset_runner(vgg, vu8, "full", sel)
        inc_run = subset_runner(vgg, vu8, "incremental", sel)
        out = {}
        med, lo, hi, t_inc = paired(lambda: out.__setitem__("full", full_run()),
                                    lambda: out.__setitem__("inc", inc_run()), args.reps)
        f = fidelity(out["inc"], out["full"])
        vte, _ = tf_explain_time(vgg, vu8)
        per = t_inc / (len(sel) * len(vu8))
        rows.append(("vgg16", f"incremental ({len(sel)} pos.)", med, lo, hi,
                     theoretical_saving(vgg, PATCH, STRIDE)["saving"], f["spearman"], f["peak_agrees"],
                     (vte / per) if vte else None))

    print(f"\nocclusion at 224 px, patch {PATCH}, stride {STRIDE}, {len(u8)} image(s), {args.reps} paired reps"
          + (f"; tf-explain: {te_why}" if te_why else ""))
    head = f"{'model':<20}{'mode':<26}{'speedup vs full (min-max)':<28}{'theory':>8}{'rank corr':>11}{'peak':>6}" \
           f"{'vs tf-explain':>15}"
    print(head)
    print("-" * len(head))
    for m, mode, med, lo, hi, th, rho, peak, tx in rows:
        print(f"{m:<20}{mode:<26}{f'{med:.2f}x ({lo:.2f}-{hi:.2f})':<28}{th:>7.2f}x{rho:>11.4f}"
              f"{'yes' if peak else 'no':>6}{(f'{tx:.2f}x' if tx else 'n/a'):>15}")


if __name__ == "__main__":
    main()
