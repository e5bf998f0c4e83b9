"""``tfviz attribute`` (attribution maps as PNG panels, .npy and TensorBoard summaries) and
``tfviz trust`` (deletion / insertion AUC and the randomization check, per method)."""
from __future__ import annotations

import os
import sys

import click

from .common import default_images, model_options

METHOD_NAMES = ["saliency", "guided_backprop", "deconvnet", "occlusion", "smoothgrad", "integrated_gradients",
                "grad_cam", "guided_grad_cam"]


def _method_arg(ctx, param, value):
    key = value.strip().lower().replace("-", "_")
    if key not in METHOD_NAMES + ["all"]:
        from ..utils import did_you_mean
        raise click.BadParameter(did_you_mean("method", value, METHOD_NAMES + ["all"]))
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


def method_options(samples, noise, seed, steps, baseline, patch, stride, fill, layer, batch_size, base_method):
    """CLI options -> ``{method: {option: value}}`` (only options that were given)."""
    common = {"batch_size": batch_size} if batch_size else {}
    opts = {name: dict(common) for name in METHOD_NAMES}
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
    ig = opts["integrated_gradients"]
    if steps is not None:
        ig["steps"] = steps
    if baseline is not None:
        ig["baseline"] = _fill_value(baseline)
    for name in ("grad_cam", "guided_grad_cam"):
        if layer:
            opts[name]["layer"] = layer
    return opts


def attribution_options(f):
    """The per-method options shared by ``attribute`` and ``trust``."""
    decorators = [
        click.option("--target", "-t", default=None,
                     help="Class index or name, or a unit 'layer:channel' / 'layer:channel:y:x'. "
                          "Default: each image's top-1 class."),
        click.option("--patch", type=int, help="occlusion: patch size in pixels (default 1/8 of the image)."),
        click.option("--stride", type=int, help="occlusion: stride in pixels (default half the patch)."),
        click.option("--fill", help="occlusion: mean, zero, gray, black, blur or a gray level 0-255 [mean]."),
        click.option("--samples", type=int, help="smoothgrad: noisy copies per image [25]."),
        click.option("--noise", type=float, help="smoothgrad: noise std as a fraction of the input range [0.15]."),
        click.option("--seed", type=int, help="smoothgrad: noise seed [0]."),
        click.option("--base-method", type=click.Choice(["saliency", "guided_backprop", "integrated_gradients"]),
                     help="smoothgrad: the method it averages [saliency]."),
        click.option("--steps", type=int, help="integrated_gradients: integration steps [50]."),
        click.option("--baseline", help="integrated_gradients: black, blur, gray, white, zero, mean or an image "
                                        "file [black]."),
        click.option("--layer", help="grad_cam: the conv layer (default: the last spatial conv layer)."),
        click.option("--batch-size", type=click.IntRange(1, None), help="Images (or copies) per forward pass."),
    ]
    for d in reversed(decorators):
        f = d(f)
    return f


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


def _caption(bundle, method, target, score, prob):
    from ..attribution.render import LABELS
    label = LABELS.get(method, method)
    if target.kind == "class":
        what = f"{target.label} (class {target.index}): logit {score:.2f}, p {prob:.1%}"
    else:
        what = f"unit {target.label} = {score:.3f}"
    return f"{label} | {what} | {bundle.name}"


def _progress(msg):
    if sys.stderr.isatty():
        click.echo(msg, err=True)


@click.command("attribute")
@click.argument("method", callback=_method_arg, metavar="METHOD")
@click.argument("images", nargs=-1, type=click.Path(dir_okay=False))
@attribution_options
@click.option("--out", "-o", "out_dir", default="tfviz-attribution", show_default=True,
              type=click.Path(file_okay=False), help="Folder for the PNG panels and .npy maps.")
@click.option("--logdir", type=click.Path(file_okay=False),
              help="Also write TensorBoard image summaries (kind 'attribution') here.")
@click.option("--run", "run_name", help="Run name under --logdir (default: the model name).")
@model_options()
def attribute_cmd(method, images, target, patch, stride, fill, samples, noise, seed, base_method, steps, baseline,
                  layer, batch_size, out_dir, logdir, run_name, bundle):
    """Which pixels make the model decide: write an attribution map for each IMAGE
    (default: bundled photos).

    METHOD is one of saliency, guided_backprop, deconvnet, occlusion, smoothgrad,
    integrated_gradients, grad_cam, guided_grad_cam -- or 'all' for one comparison
    figure of every method per image. For each image, OUT/<image>_<method>.png shows
    input | map | overlay with the target's name and score, and <image>_<method>.npy holds
    the raw map ('all': <image>_all.png and <image>_all.npz).

    \b
    Examples:
      tfviz attribute saliency                         # bundled photos, top-1 class
      tfviz attribute grad_cam cat.jpg --target "tabby cat" --out maps
      tfviz attribute occlusion cat.jpg --patch 32 --stride 16
      tfviz attribute guided_backprop cat.jpg --target top_conv:12
      tfviz attribute all cat.jpg --logdir logs        # the comparison figure
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
    opts = method_options(samples, noise, seed, steps, baseline, patch, stride, fill, layer, batch_size, base_method)
    names = METHOD_NAMES if method == "all" else [method]
    maps = {}
    for name in names:  # everything is computed before anything is written
        _progress(f"{name} ...")
        maps[name] = A.METHODS[name](bundle, u8, targets, **opts[name])
    scores = target_scores(bundle, x, targets)
    probs = target_scores(bundle, x, targets, probability=True)

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
            files.append((os.path.join(out_dir, f"{stem}_{method}.png"), A.panel(u8[i], maps[method][i], cap), "png"))
            files.append((os.path.join(out_dir, f"{stem}_{method}.npy"), maps[method][i], "npy"))
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


def write_summaries(logdir, run, bundle, u8, stems, targets, scores, probs, maps):
    """One ``attribution`` summary per method (the images once, as ``attribution/inputs``,
    so the dashboard can overlay the maps), with each image's target and score."""
    from ..attribution.render import render_gradient, render_map
    from ..summary import Writer
    with Writer(logdir, run=run) as w:
        for name, m in maps.items():
            pics = [render_gradient(mi) if mi.ndim == 3 else render_map(mi) for mi in m]
            w.attribution(name, u8, pics, targets=[t.label for t in targets], scores=[float(s) for s in scores],
                          names=list(stems), model=bundle.name, target_kinds=[t.kind for t in targets],
                          target_indices=[t.index for t in targets], target_layers=[t.layer for t in targets],
                          probabilities=[float(p) if t.kind == "class" else None for t, p in zip(targets, probs)])


@click.command("trust")
@click.argument("images", nargs=-1, type=click.Path(dir_okay=False))
@attribution_options
@click.option("--methods", callback=_methods_opt, help="Comma-separated methods to check (default: all).")
@click.option("--curve-steps", default=50, show_default=True, type=click.IntRange(1, None),
              help="Steps of the deletion / insertion curves.")
@click.option("--layers", "n_layers", default=3, show_default=True, type=click.IntRange(1, None),
              help="Weighted layers to re-initialize (from the top) in the randomization check.")
@model_options()
def trust_cmd(images, target, patch, stride, fill, samples, noise, seed, base_method, steps, baseline, layer,
              batch_size, methods, curve_steps, n_layers, bundle):
    """Which attribution map to believe: for each method, the deletion AUC (lower is
    better), the insertion AUC (higher is better) and the rank correlation of its map
    with the map after re-initializing the model's top layers (lower is better: a map
    that does not change ignores the model), averaged over IMAGE(s) (default: bundled
    photos).

    \b
    Examples:
      tfviz trust
      tfviz trust cat.jpg --methods saliency,grad_cam,integrated_gradients --layers 5
    """
    from .. import attribution as A

    paths = default_images(images)
    u8 = _load(bundle, paths)
    opts = method_options(samples, noise, seed, steps, baseline, patch, stride, fill, layer, batch_size, base_method)
    rows = A.trust_report(bundle, u8, target, methods, steps=curve_steps, layers=n_layers, method_options=opts,
                          progress=lambda n: _progress(f"{n} ..."))
    tgt = "top-1 class" if target is None else target
    click.echo(f"{bundle.name}: {len(paths)} image(s), target {tgt}; randomized: "
               f"{', '.join(rows[0]['randomized_layers']) if rows else '-'}")
    click.echo(f"{'method':<22s} {'deletion AUC':>15s} {'insertion AUC':>16s} {'randomization':>15s}")
    click.echo(f"{'':<22s} {'(lower better)':>15s} {'(higher better)':>16s} {'(lower better)':>15s}")
    for r in rows:
        click.echo(f"{r['method']:<22s} {r['deletion']:15.3f} {r['insertion']:16.3f} {r['randomization']:15.3f}")


COMMANDS = [attribute_cmd, trust_cmd]
