"""``tfviz attribute`` (attribution maps as PNG panels, .npy and TensorBoard summaries) and
``tfviz trust`` (deletion / insertion AUC and the randomization check, per method)."""
from __future__ import annotations

import functools
import os
import time

import click

from ..defaults import IG_RULES, SMOOTHGRAD_VARIANTS
from .common import DEFAULT_OUT, IMAGE, default_images, logdir_option, model_options, out_option, progress, stage

#: The coalition methods (superpixels; see tfviz.attribution.coalitions): they take --segments,
#: --baseline, --seed and (lime, kernel_shap) --samples, and show a progress bar over their copies.
COALITION_METHODS = ("feature_ablation", "lime", "kernel_shap")
#: --samples of lime and kernel_shap inside `attribute all` and `trust` when --samples is not given:
#: each copy is a forward pass, and those commands run every method (trust: 1 + --layers times)
QUICK_SAMPLES = 512


def method_names() -> list:
    """Every attribution method's name, from the library's registry (loads TensorFlow)."""
    from ..attribution import METHODS
    return list(METHODS)


def _method_arg(ctx, param, value):
    key = value.strip().lower().replace("-", "_")
    names = method_names() + ["all"]
    if key not in names:
        from ..utils import did_you_mean
        raise click.BadParameter(did_you_mean("method", value, names))
    return key


def _methods_opt(ctx, param, value):
    if not value:
        return None
    out = []
    for v in value.split(","):
        out.append(_method_arg(ctx, param, v))
    if "all" in out:
        return None
    return out


def _fill_value(value):
    if value is None:
        return None
    v = value.strip()
    if v.replace(".", "", 1).isdigit():
        return float(v)
    return v


def _baseline_value(value):
    """``--baseline`` of the coalition methods: a grey level, ``R,G,B``, or a name / file."""
    parts = [p.strip() for p in value.split(",")]
    if len(parts) == 3 and all(p.replace(".", "", 1).isdigit() for p in parts):
        return tuple(float(p) for p in parts)
    return _fill_value(value)


class StepsType(click.ParamType):
    """A positive number of integration steps, or ``auto``."""
    name = "N|auto"

    def convert(self, value, param, ctx):
        if isinstance(value, int) or str(value).strip().lower() == "auto":
            return value if isinstance(value, int) else "auto"
        try:
            n = int(str(value).strip())
        except ValueError:
            self.fail(f"{value!r} is not a whole number of steps or 'auto'", param, ctx)
        if n < 1:
            self.fail(f"{n} is not in the range x>=1 (or 'auto')", param, ctx)
        return n


def method_options(samples, noise, seed, steps, baseline, patch, stride, fill, layer, batch_size, base_method,
                   variant=None, max_channels=None, baselines=None, rule=None, tol=None, max_steps=None, cam=None,
                   segments=None, quick=False):
    """CLI options -> ``{method: {option: value}}`` (only options that were given). ``cam``:
    ``{relu, aug_smooth, eigen_smooth}`` for every method that takes them (the CAM family).
    ``quick``: lime and kernel_shap get :data:`QUICK_SAMPLES` samples unless ``samples``
    is given (``attribute all``, ``trust``)."""
    import inspect

    from ..attribution import METHODS
    common = {"batch_size": batch_size} if batch_size else {}
    opts = {name: dict(common) for name in METHODS}
    occ = opts["occlusion"]
    if patch is not None:
        occ["patch"] = patch
    if stride is not None:
        occ["stride"] = stride
    if fill is not None:
        occ["fill"] = _fill_value(fill)
    sg = opts["smoothgrad"]
    sg.update({k: v for k, v in (("samples", samples), ("noise", noise), ("seed", seed)) if v is not None})
    if base_method:
        sg["method"] = base_method
    if variant:
        sg["variant"] = variant
    gs = opts["gradient_shap"]
    gs.update({k: v for k, v in (("samples", samples), ("noise", noise), ("seed", seed)) if v is not None})
    if baselines is not None:
        gs["baselines"] = _fill_value(baselines)
    ig = opts["integrated_gradients"]
    ig.update({k: v for k, v in (("steps", steps), ("rule", rule), ("tol", tol), ("max_steps", max_steps))
               if v is not None})
    if baseline is not None:
        for name in ("integrated_gradients", "deeplift"):
            opts[name]["baseline"] = _fill_value(baseline)
    cam = dict(cam or {})
    lrp_rule = cam.pop("lrp_rule", None)  # lrp's rule= (IG has a rule= of its own)
    given = {k: v for k, v in {"layer": layer or None, **cam}.items() if v is not None}
    for name, method in METHODS.items():  # the CAM family: every method with a layer= (relu=...) option
        params = inspect.signature(method).parameters
        opts[name].update({k: v for k, v in given.items() if k in params})
    if max_channels is not None:
        opts["score_cam"]["max_channels"] = max_channels
    if lrp_rule is not None:
        opts["lrp"]["rule"] = lrp_rule
    for name in COALITION_METHODS:
        o = opts[name]
        if segments is not None:
            o["segments"] = segments
        if baseline is not None:
            o["baseline"] = _baseline_value(baseline)
        if name != "feature_ablation":
            if samples is not None or quick:
                o["samples"] = samples if samples is not None else QUICK_SAMPLES
            if seed is not None:
                o["seed"] = seed
    return opts


def attribution_options(f):
    """The per-method options shared by ``attribute`` and ``trust``."""
    decorators = [
        click.option("--target", "-t", default=None,
                     help="Class index or name, or a unit 'layer:channel' / 'layer:channel:y:x'. "
                          "Default: each image's top-1 class."),
        click.option("--patch", type=click.IntRange(1, None),
                     help="occlusion: patch size in pixels (default 1/8 of the image)."),
        click.option("--stride", type=click.IntRange(1, None),
                     help="occlusion: stride in pixels (default half the patch)."),
        click.option("--fill", help="occlusion: mean, zero, gray, black, blur or a gray level 0-255 [mean]."),
        click.option("--samples", type=click.IntRange(1, None),
                     help="smoothgrad: noisy copies per image [25]; gradient_shap: draws per image [25]; lime: "
                          "coalitions per image [1000]; kernel_shap: coalitions per image besides the whole image "
                          f"and the baseline [1024, or all 2^M - 2 when fewer] ('attribute all' and 'trust': "
                          f"lime and kernel_shap {QUICK_SAMPLES} unless given)."),
        click.option("--noise", type=click.FloatRange(0, None),
                     help="smoothgrad, gradient_shap: noise std as a fraction of the input range [0.15; 0]."),
        click.option("--seed", type=int, help="smoothgrad, gradient_shap, lime, kernel_shap: seed of the random "
                                              "draws [0]."),
        click.option("--segments", metavar="slic|quickshift|grid|MASK.png",
                     help="feature_ablation, lime, kernel_shap: the superpixels -- slic (~50 SLIC segments), "
                          "slic:N (about N), quickshift (LIME's settings), grid (8x8 cells), grid:K or grid:RxC, or "
                          "an integer mask PNG at the model's input size (each grey level or colour one "
                          "superpixel) [slic]."),
        click.option("--base-method", type=click.Choice(["saliency", "guided_backprop", "integrated_gradients",
                                                         "input_x_gradient"]),
                     help="smoothgrad: the method it averages [saliency]."),
        click.option("--variant", type=click.Choice(SMOOTHGRAD_VARIANTS),
                     help="smoothgrad: the mean of the noisy maps, the mean of their squares, or their variance "
                          "[smoothgrad]."),
        click.option("--steps", type=StepsType(),
                     help="integrated_gradients: integration steps, or 'auto' to add steps until the attributions "
                          "sum to f(x) - f(baseline) within --tol [50]."),
        click.option("--rule", type=click.Choice(IG_RULES),
                     help="integrated_gradients: the quadrature rule; gausslegendre is captum's default [trapezoid]."),
        click.option("--tol", type=click.FloatRange(0, None, min_open=True),
                     help="integrated_gradients --steps auto: the completeness error allowed, as a fraction of "
                          "|f(x) - f(baseline)| [0.01]."),
        click.option("--max-steps", type=click.IntRange(1, None),
                     help="integrated_gradients --steps auto: the most steps it may take [256]."),
        click.option("--baseline", help="integrated_gradients, deeplift: the reference image: black, blur, gray, "
                                        "white, zero, mean or an image file [black]. feature_ablation, lime, "
                                        "kernel_shap: what a left-out superpixel shows: mean (its own mean "
                                        "colour), image_mean, blur, black, gray, white, a grey level 0-255, R,G,B "
                                        "or an image file [mean]."),
        click.option("--baselines", help="gradient_shap: uniform (random pixels), fills such as black,white, or "
                                         "an image file [uniform]."),
        click.option("--layer", help="The CAM family (grad_cam, guided_grad_cam, grad_cam_plus_plus, hires_cam, "
                                     "xgrad_cam, eigen_cam, eigengrad_cam, score_cam, ablation_cam): the conv "
                                     "layer (default: the last spatial conv layer); layer_cam: one layer, or "
                                     "several 'a,b,c' fused."),
        click.option("--relu/--no-relu", default=None,
                     help="The CAM family: keep the map's positive part (default), or the signed map."),
        click.option("--aug-smooth", is_flag=True, default=None,
                     help="The CAM family: average the map over the image and its mirror at scales "
                          "1.0, 1.1, 0.9, each mapped back (6x the work)."),
        click.option("--eigen-smooth", is_flag=True, default=None,
                     help="The CAM family: the first principal component of the weighted "
                          "activations instead of their channel sum."),
        click.option("--lrp-rule", default=None, metavar="RULE",
                     help="lrp: the rule of every layer: epsilon, zero, gamma, zplus, alpha2beta1, flat, wsquare, "
                          "zbox, or with a parameter such as gamma=0.5 or epsilon=0.25 [epsilon]."),
        click.option("--composite", default=None,
                     help="lrp: rules by layer kind and depth: epsilon_plus_flat, epsilon_gamma_box, epsilon_plus, "
                          "epsilon_alpha2_beta1 (instead of one --lrp-rule)."),
        click.option("--max-channels", type=click.IntRange(1, None),
                     help="score_cam: keep only the N channels that vary most (Faster Score-CAM) [all]."),
        click.option("--batch-size", type=click.IntRange(1, None), help="Images (or copies) per forward pass."),
        click.option("--region", callback=_box_arg, metavar="X0,Y0,X1,Y1",
                     help="A segmentation model: explain the target class summed over this box (input pixels) "
                          "instead of over the pixels predicted as it."),
        click.option("--negate", is_flag=True,
                     help="Explain the negated score: what lowers it (a regression's value, a class's logit)."),
    ]

    @functools.wraps(f)
    def with_target(*args, target, region, negate, relu, aug_smooth, eigen_smooth, lrp_rule, composite, **kwargs):
        cam = {"relu": relu, "aug_smooth": aug_smooth or None, "eigen_smooth": eigen_smooth or None,
               "composite": composite, "lrp_rule": lrp_rule}
        return f(*args, target=target_spec(target, region, negate), cam=cam, **kwargs)
    for d in reversed(decorators):
        with_target = d(with_target)
    return with_target


def _box_arg(ctx, param, value):
    if value is None:
        return None
    parts = [p.strip() for p in value.split(",")]
    if len(parts) != 4 or not all(p.lstrip("-").isdigit() for p in parts):
        raise click.BadParameter(f"{value!r} is not four whole numbers x0,y0,x1,y1 (pixels)", ctx, param)
    return tuple(int(p) for p in parts)


def target_spec(target, region=None, negate=False):
    """``--target`` with ``--region`` and ``--negate``, as the library's target."""
    if region is not None:
        from ..attribution.targets import Region
        target = Region(target, box=region)
    if negate:
        from ..attribution.targets import Negate
        target = Negate(target)
    return target


def _stems(paths):
    seen, out = {}, []
    for p in paths:
        stem = os.path.splitext(os.path.basename(str(p)))[0] or "image"
        k = seen.get(stem, 0)
        seen[stem] = k + 1
        out.append(stem if k == 0 else f"{stem}-{k + 1}")
    return out


def _load(bundle, paths):
    import numpy as np
    return np.concatenate([bundle.load_images([p]) for p in paths])


#: a square image under this many pixels a side (digits_cnn's 32, shapes_segmenter's 64) is drawn
#: at PANEL_SIZE in its panel, as the comparison figure draws every image, so the caption fits
SMALL_IMAGE, PANEL_SIZE = 128, 224


def _panel_size(img):
    h, w = img.shape[:2]
    return PANEL_SIZE if h == w < SMALL_IMAGE else None


_SUMMED = {"predicted_sum": "its pixels", "box_sum": "the box"}


def _caption(bundle, method, target, score, prob):
    from ..attribution.render import LABELS
    label = LABELS.get(method, method)
    if target.kind == "class" and target.region.endswith("_sum"):  # a map's pixels: a sum, not a probability
        what = f"{target.label} (class {target.index}): logits summed over {_SUMMED[target.region]} = {score:.1f}"
    elif target.kind == "class":
        what = f"{target.label} (class {target.index}): logit {score:.2f}, p {prob:.1%}"
    else:
        what = f"unit {target.label} = {score:.3f}"
    return f"{label} | {what} | {bundle.name}"


@click.command("attribute")
@click.argument("method", callback=_method_arg, metavar="METHOD")
@click.argument("images", nargs=-1, type=IMAGE)
@attribution_options
@out_option(single=False)
@logdir_option
@click.option("--run", "run_name", help="Run name under --logdir (default: the model name).")
@click.option("--inference", type=click.Choice(["auto", "incremental", "approximate", "full"]), default=None,
              help="occlusion: how each occluded copy is scored. auto (default): incremental where it saves at "
                   "least 1.2x of the work, else full. incremental: the same map as full, faster -- "
                   "the image's activations are computed once and each layer recomputes only the window the "
                   "patch can reach (Krypton); approximate: faster still, not exact (windows capped at 90% of "
                   "their map, a coarse stride first, the fine one only where drops are largest); full: every "
                   "copy through the whole model. Models incremental cannot follow fall back to full with a "
                   "warning [incremental].")
@model_options()
def attribute_cmd(method, images, target, patch, stride, fill, samples, noise, seed, segments, base_method, variant,
                  steps, rule, tol, max_steps, baseline, baselines, layer, max_channels, batch_size, out, logdir,
                  run_name, inference, bundle, cam=None):
    """Which pixels make the model decide: write an attribution map for each IMAGE
    (default: the bundled cat and coffee photos). IMAGE is a file or a bundled photo's
    name: chelsea (a cat), coffee, rocket, astronaut.

    METHOD is one of saliency, guided_backprop, deconvnet, occlusion, smoothgrad,
    integrated_gradients, grad_cam, guided_grad_cam, grad_cam_plus_plus, layer_cam,
    hires_cam, xgrad_cam, eigen_cam, eigengrad_cam, score_cam, ablation_cam, full_grad,
    input_x_gradient, gradient_shap, deeplift, lrp, feature_ablation, lime, kernel_shap
    (superpixels), attention_rollout (vision transformers) --
    or 'all' for one comparison figure of every method that can explain the model, per
    image. For each image, OUT/<image>_<method>.png shows
    input | map | overlay with the target's name and score (a small model's images, under
    128 pixels, drawn at 224), and <image>_<method>.npy holds
    the raw map ('all': <image>_all.png and <image>_all.npz); lime also writes
    <image>_lime_top.png, LIME's picture: the 5 superpixels for the target, then the 5
    against it, the rest grey. OUT is ./tfviz-out unless --out names another folder.

    \b
    Examples:
      tfviz attribute saliency                         # bundled photos, top-1 class
      tfviz attribute grad_cam chelsea --target "tabby cat" --out maps
      tfviz attribute occlusion my_cat.jpg --patch 32 --stride 16
      tfviz attribute guided_backprop chelsea --target top_conv:12
      tfviz attribute score_cam chelsea --max-channels 256   # Faster Score-CAM
      tfviz attribute layer_cam chelsea --layer block3b_add,block5c_add,top_relu
      tfviz attribute hires_cam chelsea --no-relu --aug-smooth   # signed, smoothed
      tfviz attribute lrp chelsea --composite epsilon_gamma_box  # relevance, zennit-style
      tfviz attribute smoothgrad chelsea --variant vargrad
      tfviz attribute lime chelsea --segments quickshift --samples 500
      tfviz attribute kernel_shap chelsea --segments grid --baseline blur
      tfviz attribute all coffee --logdir logs         # the comparison figure
    """
    import numpy as np

    from .. import attribution as A
    from .. import images as im
    from ..attribution.core import prepare, target_scores
    from ..attribution.targets import resolve_targets

    paths = default_images(images)
    stems = _stems(paths)
    u8 = _load(bundle, paths)
    x = prepare(bundle, u8)
    targets = resolve_targets(bundle, target, len(x), x)
    opts = method_options(samples, noise, seed, steps, baseline, patch, stride, fill, layer, batch_size, base_method,
                          variant, max_channels, baselines, rule, tol, max_steps, cam, segments, quick=method == "all")
    if inference is not None:
        opts["occlusion"]["inference"] = inference
    names = A.methods_for(bundle) if method == "all" else [method]
    maps, lime_info = {}, None
    for i, name in enumerate(names, 1):  # everything is computed before anything is written
        t0 = time.perf_counter()
        if name in COALITION_METHODS:
            with CopiesBar(f"{name}: scoring copies") as bar:
                maps[name] = A.METHODS[name](bundle, u8, targets, progress=bar, return_info=method == "lime",
                                             **opts[name])
            if method == "lime":
                maps[name], lime_info = maps[name]
        else:
            maps[name] = A.METHODS[name](bundle, u8, targets, **opts[name])
        took = time.perf_counter() - t0
        if len(names) > 1 or took > 2:   # a line per finished stage; errors stay one line
            stage(f"{name}: done ({i}/{len(names)}, {took:.1f} s)")
    scores = target_scores(bundle, x, targets)
    probs = target_scores(bundle, x, targets, probability=True)

    out_dir = out or DEFAULT_OUT
    files = []
    for i, stem in enumerate(stems):
        t = targets[i]
        if method == "all":
            title = _caption(bundle, "all methods", t, scores[i], probs[i]).replace("all methods | ", "")
            fig = A.comparison_figure(u8[i], {n: maps[n][i] for n in names}, title=title)
            files.append((os.path.join(out_dir, f"{stem}_all.png"), fig, "png"))
            files.append((os.path.join(out_dir, f"{stem}_all.npz"), {n: maps[n][i] for n in names}, "npz"))
        else:
            cap = _caption(bundle, method, t, scores[i], probs[i])
            pic = A.panel(u8[i], maps[method][i], cap, size=_panel_size(u8[i]))
            files.append((os.path.join(out_dir, f"{stem}_{method}.png"), pic, "png"))
            files.append((os.path.join(out_dir, f"{stem}_{method}.npy"), maps[method][i], "npy"))
            if lime_info is not None:
                files.append((os.path.join(out_dir, f"{stem}_lime_top.png"), lime_picture(u8[i], lime_info, i, t),
                              "png"))
    for path, obj, kind in files:
        if kind == "png":
            im.save_png(path, obj)
        elif kind == "npy":
            im.save_npy(path, obj)
        else:
            from ..utils import atomic_path
            with atomic_path(path) as tmp:
                with open(tmp, "wb") as fh:
                    np.savez_compressed(fh, **obj)
        click.echo(path)
    if logdir:
        write_summaries(logdir, run_name or bundle.name, bundle, u8, stems, targets, scores, probs, maps)
        click.echo(f"TensorBoard summaries: {logdir}")


class CopiesBar:
    """The progress bar of a coalition method: ``bar(done, total)`` after each batch of
    perturbed copies; shown from the first call when there are at least ``least`` copies
    (a few seconds of work and more), else nothing."""

    def __init__(self, label, least=200):
        self.label, self.least, self.bar, self.done = label, least, None, 0

    def __enter__(self):
        return self

    def __call__(self, done, total):
        if self.bar is None and total >= self.least:
            self.bar = progress(length=total, label=self.label).__enter__()
        if self.bar is not None:
            self.bar.update(done - self.done)
        self.done = done

    def __exit__(self, *exc):
        if self.bar is not None:
            self.bar.__exit__(*exc)


def lime_picture(image, info, i, target, k=5):
    """LIME's picture of image ``i`` (Ribeiro et al. 2016, Fig. 4): its ``k`` superpixels
    for the target | its ``k`` against, the rest grey, with a caption."""
    from .. import images as im
    from ..attribution import superpixel_picture
    lab, values = info["segments"][i], info["values"][i]
    tiles = [superpixel_picture(image, lab, values, k, sign) for sign in ("positive", "negative")]
    size = _panel_size(image)
    if size:
        tiles = [im.resize(t, (size, size)) for t in tiles]
    return im.caption(im.hstack(tiles, gap=4), f"LIME | top {k} superpixels for | against {target.label}", size=14)


def write_summaries(logdir, run, bundle, u8, stems, targets, scores, probs, maps, trust=None):
    """One ``attribution`` summary per method (the images once, as ``attribution/inputs``,
    so the dashboard can overlay the maps), with each image's target and score; ``trust``:
    ``{method: {figure: value}}`` of ``tfviz trust``, shown beside the method's name."""
    from ..summary import Writer
    with Writer(logdir, run=run) as w:
        for name, m in maps.items():  # the writer draws them (the one attribution renderer)
            extra = {"trust": trust[name]} if trust and name in trust else {}
            w.attribution(name, u8, list(m), targets=[t.label for t in targets], scores=[float(s) for s in scores],
                          names=list(stems), model=bundle.name, target_kinds=[t.kind for t in targets],
                          target_indices=[t.index for t in targets], target_layers=[t.layer for t in targets],
                          probabilities=[float(p) if t.kind == "class" else None for t, p in zip(targets, probs)],
                          **extra)


@click.command("trust")
@click.argument("images", nargs=-1, type=IMAGE)
@attribution_options
@click.option("--methods", callback=_methods_opt, help="Comma-separated methods to check (default: all).")
@click.option("--curve-steps", default=50, show_default=True, type=click.IntRange(1, None),
              help="Steps of the deletion / insertion curves.")
@click.option("--layers", "n_layers", default=3, show_default=True, type=click.IntRange(1, None),
              help="Weighted layers to re-initialize (from the top) in the randomization check.")
@click.option("--road/--no-road", "with_road", default=True, show_default=True,
              help="ROAD: pixels removed in the map's order filled from their neighbours (about 2 s a method "
                   "and image).")
@logdir_option
@click.option("--run", "run_name", help="Run name under --logdir (default: the model name).")
@model_options()
def trust_cmd(images, target, patch, stride, fill, samples, noise, seed, segments, base_method, variant, steps, rule,
              tol, max_steps, baseline, baselines, layer, max_channels, batch_size, methods, curve_steps, n_layers,
              with_road, logdir, run_name, bundle, cam=None):
    """Which attribution map to believe: for each method, the deletion AUC (lower is
    better), the insertion AUC (higher is better), ROAD (Rong et al. 2022: the removed
    pixels filled from their neighbours instead of painted black, so the removal draws no
    shape; the score after removing the most relevant pixels first, lower is better, the
    least relevant first, higher is better, and their gap, higher is better) and the rank
    correlation of its map with the map after re-initializing the model's top layers
    (lower is better: a map that does not change ignores the model), averaged over
    IMAGE(s) (default: the bundled
    cat and coffee photos; IMAGE is a file or a bundled photo's name: chelsea (a cat),
    coffee, rocket, astronaut). Every method takes a while (all of them: minutes on a laptop);
    a line per method on stderr gives its figures as soon as they are known.

    \b
    Examples:
      tfviz trust --methods saliency,grad_cam      # bundled photos, two methods
      tfviz trust my_cat.jpg --methods saliency,grad_cam,integrated_gradients --layers 5
      tfviz trust --methods saliency,grad_cam --logdir logs   # the maps and figures in TensorBoard
    """
    from .. import attribution as A

    paths = default_images(images)
    u8 = _load(bundle, paths)
    opts = method_options(samples, noise, seed, steps, baseline, patch, stride, fill, layer, batch_size, base_method,
                          variant, max_channels, baselines, rule, tol, max_steps, cam, segments, quick=True)
    rows = A.trust_report(bundle, u8, target, methods, steps=curve_steps, layers=n_layers, method_options=opts,
                          progress=_TrustProgress(methods or A.methods_for(bundle)).line, road=with_road)
    tgt = "top-1 class" if target is None else target
    click.echo(f"{bundle.name}: {len(paths)} image(s), target {tgt}; randomized: "
               f"{', '.join(rows[0]['randomized_layers']) if rows else '-'}")
    road_head = (f" {'ROAD MoRF':>15s} {'ROAD LeRF':>16s} {'ROAD gap':>16s}", f" {'(lower better)':>15s} "
                 f"{'(higher better)':>16s} {'(higher better)':>16s}") if with_road else ("", "")
    click.echo(f"{'method':<22s} {'deletion AUC':>15s} {'insertion AUC':>16s}{road_head[0]} {'randomization':>15s}")
    click.echo(f"{'':<22s} {'(lower better)':>15s} {'(higher better)':>16s}{road_head[1]} {'(lower better)':>15s}")
    for r in rows:
        road_cols = f" {r['road_morf']:15.3f} {r['road_lerf']:16.3f} {r['road']:16.3f}" if with_road else ""
        click.echo(f"{r['method']:<22s} {r['deletion']:15.3f} {r['insertion']:16.3f}{road_cols} "
                   f"{r['randomization']:15.3f}")
    for r in rows:  # on stderr: stdout stays the table
        if r.get("note"):
            stage(f"note: {r['method']} is {r['note']}")
    if logdir:  # each method's maps with its figures, which the Attribution view shows by its name
        from ..attribution.core import prepare, target_scores
        from ..attribution.targets import resolve_targets
        x = prepare(bundle, u8)
        targets = resolve_targets(bundle, target, len(x), x)
        trust = {r["method"]: {k: r[k] for k in ("deletion", "insertion", "road_morf", "road_lerf", "road",
                                                  "randomization")} for r in rows}
        write_summaries(logdir, run_name or bundle.name, bundle, u8, _stems(paths), targets,
                        target_scores(bundle, x, targets), target_scores(bundle, x, targets, probability=True),
                        {r["method"]: r["maps"] for r in rows}, trust=trust)
        stage(f"TensorBoard summaries: {logdir}")


class _TrustProgress:
    """One line per method as the trust report finishes it, with its figures:
    ``[2/8] guided_backprop: deletion 0.021, insertion 0.358, randomization 0.995 (41 s)``."""

    def __init__(self, methods):
        self.total = len(methods)
        self.done = 0
        self.t0 = time.perf_counter()

    def line(self, name, row):
        self.done += 1
        now = time.perf_counter()
        road = f"ROAD gap {row['road']:.3f}, " if row.get("road") is not None else ""
        stage(f"[{self.done}/{self.total}] {name}: deletion {row['deletion']:.3f}, insertion {row['insertion']:.3f}, "
              f"{road}randomization {row['randomization']:.3f} ({now - self.t0:.0f} s)")
        self.t0 = now


COMMANDS = [attribute_cmd, trust_cmd]
