"""``tfviz invert``, ``tfviz texture``, ``tfviz style``: images that match a network's
statistics (tfviz.synthesis: inversion, texture, style). Same conventions as the other synthesis commands:
a progress bar, ``--steps``/``--seed``/``--out``/``--logdir``, snapshots beside the
result, Ctrl-C keeps the latest image and exits 130."""
from __future__ import annotations

import os
import re

import click

from .common import IMAGE, logdir_option, model_options, out_option, out_path, slug
from .synthesis import POSITIVE, SNAPSHOTS, _finish, _parse_layers, _save, _Session, run_options

OPTIMIZER = click.option("--optimizer", type=click.Choice(["lbfgs", "adam"]), default="lbfgs", show_default=True,
                         help="lbfgs: L-BFGS (Gatys; far fewer passes); adam: Adam's gradient steps, in grey "
                              "levels whatever the model's preprocessing (1.2 per step for style, 3 for texture "
                              "and pixel inversion; 0.05 on the Fourier spectrum).")
NONNEG = click.FloatRange(0)


def _stem(path):
    return slug(os.path.splitext(os.path.basename(str(path)))[0])


def _every(steps):
    return max(1, steps // SNAPSHOTS)


def _size_wxh(ctx, param, value):
    """``WxH`` or ``N`` -> (h, w)."""
    if value is None:
        return None
    m = re.fullmatch(r"\s*(\d+)\s*(?:[xX]\s*(\d+)\s*)?", value)
    if not m:
        raise click.BadParameter(f"{value!r}: expected WIDTHxHEIGHT (e.g. 384x256) or one number")
    w = int(m.group(1))
    h = int(m.group(2)) if m.group(2) else w
    if w < 1 or h < 1:
        raise click.BadParameter(f"{value!r}: sizes must be positive")
    return (h, w)


def _int_list(what, example):
    """A click callback: ``N`` or ``N,M,...`` -> a tuple of positive ints (``what`` in the message)."""
    def parse(ctx, param, value):
        if value is None:
            return None
        try:
            out = tuple(int(v) for v in value.split(","))
        except ValueError:
            raise click.BadParameter(f"{value!r}: expected a number or a comma-separated list, e.g. {example}") \
                from None
        if not out or any(v < 1 for v in out):
            raise click.BadParameter(f"{value!r}: {what} must be positive")
        return out
    return parse


_size_list = _int_list("sizes", "256,512")     # ``512`` or ``256,512,1024``
_step_list = _int_list("steps", "100,150")     # one per coarse-to-fine stage


def _weights(ctx, param, value):
    if value is None:
        return None
    try:
        out = [float(v) for v in value.split(",")]
    except ValueError:
        raise click.BadParameter(f"{value!r}: expected comma-separated numbers, e.g. 0.7,0.3") from None
    if any(not v >= 0 for v in out) or not sum(out) > 0:
        raise click.BadParameter(f"{value!r}: weights must be zero or positive, and not all zero")
    return out


def _layer_list(ctx, param, value):
    if value is None:
        return None
    out = [v.strip() for v in value.split(",") if v.strip()]
    if not out:
        raise click.BadParameter("give at least one layer name")
    return out


@click.command("invert")
@click.argument("image", type=IMAGE)
@click.option("--layers", callback=_layer_list,
              help="Comma-separated layers, first to last (default: one per block; efficientnet_lite0: stem_relu, "
                   "block2b_add, ..., top_relu).")
@click.option("--tv", "tv_weight", type=NONNEG, help="Total-variation weight, on 0..1 pixels (default 0.5).")
@click.option("--param", type=click.Choice(["fourier", "pixel"]), default="fourier", show_default=True,
              help="fourier: decorrelated Fourier image (keeps colour at deep layers); pixel: plain pixels.")
@OPTIMIZER
@run_options(200, "Optimization steps per layer.", name="invert-IMAGE.png")
@model_options()
def invert_cmd(image, layers, tv_weight, param, optimizer, steps, seed, out, logdir, bundle):
    """Feature inversion: for each layer, the image whose activations there match IMAGE's,
    grown from noise (Mahendran & Vedaldi 2015). Early layers give the photo back; deep
    ones keep only what matters for the class.

    Writes tfviz-out/invert-IMAGE.png: the original and one reconstruction per layer.
    IMAGE is a file or a bundled photo's name (chelsea, coffee, rocket, astronaut).

    \b
    Examples:
      tfviz invert chelsea                               # the default layers
      tfviz invert my_photo.jpg --layers block3b_add,top_relu --steps 300
    """
    from ..images import save_png
    from ..synthesis import inversion_strip, loss_network
    lay = layers or list(loss_network(bundle).inversion_layers)
    for n in lay:
        bundle.layer(n)
    stem = _stem(image)
    out = out_path(out, f"invert-{stem}.png")
    params = dict(recipe="inversion_strip", model=bundle.name, image=image, layers=lay, steps=steps,
                  tv_weight=tv_weight, param=param, optimizer=optimizer, seed=seed)
    with _Session(steps * len(lay), "invert", logdir, f"invert-{stem}", params) as s:
        res = inversion_strip(bundle, image, lay, steps=steps, tv_weight=tv_weight, seed=seed, param=param,
                              optimizer=optimizer, callbacks=[s.callback])
        s.log_result(res, tag="reconstructions")
    save_png(out, res.extra["strip"])
    click.echo(f"wrote {out}")
    click.echo("PSNR against the photo: " + ", ".join(
        f"{n} {p:.1f} dB" for n, p in zip(res.extra["layers"], res.extra["psnr"])))
    _finish(res)


def _fractions(ctx, param, value):
    """``0.5,1`` -> (0.5, 1.0), checked as ``synthesize_texture`` checks ``scales``."""
    if value is None:
        return None
    from ..synthesis.optimize import SynthesisError
    from ..synthesis.texture import check_scales
    try:
        return check_scales(value.split(","))
    except SynthesisError as e:
        raise click.BadParameter(f"{value!r}: {e}") from None


@click.command("texture")
@click.argument("texture", type=IMAGE)
@click.option("--size", callback=_size_wxh, help="Output WIDTHxHEIGHT or one number; any size, larger than the "
                                                  "source too (default: the source's).")
@click.option("--layer", "layers", multiple=True, help="Layer whose Gram matrix to match, NAME or NAME:WEIGHT; "
                                                        "repeat for several (default: the model's texture layers).")
@click.option("--histogram-weight", type=NONNEG,
              help="Weight of the histogram loss (each channel's whole distribution, Risser et al. 2017) beside "
                   "the Gram loss's 1; 0 turns it off (default: the model's; 1 on efficientnet_lite0).")
@click.option("--color-weight", type=NONNEG,
              help="Weight of the loss on the pixels' colour histogram; 0 turns it off (default: the model's).")
@click.option("--match-colors", type=click.Choice(["histogram", "mean-cov", "none"]),
              help="After the run, match the colours to the source's: histogram (exact, per decorrelated colour "
                   "axis), mean-cov (mean and covariance only) or none (default: histogram).")
@click.option("--scales", callback=_fractions,
              help="Coarse-to-fine stages as fractions of the size, ending with 1 (default: 0.5,1): large "
                   "structures form at the coarse stage, detail at the fine one; 1 is one stage.")
@click.option("--steps", callback=_step_list,
              help="L-BFGS steps per stage, one number or one per scale (default: the model's; 100,100 on "
                   "efficientnet_lite0).")
@click.option("--tv", "tv_weight", type=NONNEG, help="Total-variation weight, on 0..1 pixels (default: the "
                                                   "model's; 0.5 on efficientnet_lite0).")
@OPTIMIZER
@click.option("--seed", default=0, show_default=True, type=int, help="Random seed (same seed, same image).")
@out_option(single=True, name="texture-TEXTURE.png")
@logdir_option
@model_options()
def texture_cmd(texture, size, layers, histogram_weight, color_weight, match_colors, scales, steps, tv_weight,
                optimizer, seed, out, logdir, bundle):
    """Texture synthesis: a new image, grown from noise, with the statistics of
    TEXTURE's activations -- their Gram matrices (Gatys et al. 2015) and histograms
    (Risser et al. 2017) -- and its colours, coarse to fine, at any size.

    Writes tfviz-out/texture-TEXTURE.png and the snapshots beside it. TEXTURE is a file
    or a bundled picture's name: the drawn mosaic and strokes, the photographed gravel,
    grass and brick, or a photo.

    \b
    Examples:
      tfviz texture gravel --size 256                    # grey gravel, grey texture
      tfviz texture mosaic --size 384x256                # wider than the 384 px source is tall
      tfviz texture my_texture.jpg --size 512 --scales 0.25,0.5,1 --steps 100,100,50
      tfviz texture mosaic --histogram-weight 0 --color-weight 0 --match-colors none --scales 1 --steps 200
                                                         # Gatys et al.'s plain Gram loss
    """
    from ..synthesis import loss_network, synthesize_texture
    from ..synthesis.recipe import stage_steps
    from ..synthesis.texture import check_scales
    net = loss_network(bundle)
    n_stages = len(check_scales(scales if scales is not None else net.texture_scales))
    per_stage = stage_steps(steps if steps is not None else net.texture_steps, n_stages, "scales")
    lay = _parse_layers(layers)
    stem = _stem(texture)
    out = out_path(out, f"texture-{stem}.png")
    colors = "default" if match_colors is None else None if match_colors == "none" else match_colors.replace("-", "_")
    params = dict(recipe="synthesize_texture", model=bundle.name, texture=texture, size=size, layers=lay,
                  histogram_weight=histogram_weight, color_weight=color_weight, match_colors=match_colors,
                  scales=scales, steps=steps, tv_weight=tv_weight, optimizer=optimizer, seed=seed)
    with _Session(sum(per_stage), "texture", logdir, f"texture-{stem}", params) as s:
        res = synthesize_texture(bundle, texture, size=size, layers=lay, steps=steps, seed=seed,
                                 tv_weight=tv_weight, histogram_weight=histogram_weight, color_weight=color_weight,
                                 match_colors=colors, scales=scales, optimizer=optimizer,
                                 snapshot_every=_every(max(per_stage)), callbacks=[s.callback])
        s.log_result(res)
    _save(out, res.image, res, size=128)
    h, w = res.extra["size"]
    sh, sw = res.extra["source_size"]
    sc = res.extra["scales"]
    how = f"over {len(sc)} scales ({', '.join(f'{f:g}' for f in sc)})" if len(sc) > 1 else "at one scale"
    click.echo(f"{w}x{h} texture from a {sw}x{sh} source in {res.steps} steps {how} "
               f"({res.extra['evaluations']} forward and backward passes, {res.seconds:.0f} s)")
    _finish(res)


@click.command("style")
@click.argument("content", type=IMAGE)
@click.argument("styles", nargs=-1, required=True, type=IMAGE)
@click.option("--style-weights", callback=_weights, help="One weight per STYLE, comma-separated (default: equal); "
                                                         "the styles' Gram matrices are blended by them.")
@click.option("--style-scale", type=POSITIVE, default=1.0, show_default=True,
              help="Resize the styles to this times the output's size first: larger strokes above 1.")
@click.option("--preserve-colors", is_flag=True, help="Keep the content's colours (luminance-only transfer).")
@click.option("--match-colors", "style_colors", type=click.Choice(["histogram", "mean-cov"]),
              help="Give the result the styles' colours after the run: histogram (exact) or mean-cov (mean and "
                   "covariance only); the opposite of --preserve-colors.")
@click.option("--histogram-weight", type=NONNEG, default=0.0, show_default=True,
              help="Weight of a histogram loss at the style layers (Risser et al. 2017) beside the Gram loss's 1: "
                   "crisper contrast and the style's darks and lights.")
@click.option("--size", "sizes", callback=_size_list,
              help="Longer side of the output (default: the content's, at most 384); a list such as 256,512,1024 "
                   "runs coarse to fine.")
@click.option("--content-weight", type=NONNEG, help="Weight of the content term (default 1).")
@click.option("--style-weight", type=POSITIVE, help="Weight of the style term (default 10).")
@click.option("--tv", "tv_weight", type=NONNEG, help="Total-variation weight, on 0..1 pixels (default: the "
                                                   "model's; 5 on efficientnet_lite0).")
@click.option("--init", type=click.Choice(["content", "style", "noise"]), default="content", show_default=True,
              help="Start from the content, the first style, or noise.")
@click.option("--content-layer", help="Layer of the content term (default: the model's; lite0: block4c_add).")
@click.option("--style-layer", "style_layers", multiple=True,
              help="Layer of the style term, NAME or NAME:WEIGHT; repeat for several (default: the model's).")
@OPTIMIZER
@run_options(300, "Optimization steps (per size when coarse to fine).", name="style-CONTENT-STYLE.png")
@model_options()
def style_cmd(content, styles, style_weights, style_scale, preserve_colors, style_colors, histogram_weight, sizes,
              content_weight, style_weight, tv_weight, init, content_layer, style_layers, optimizer, steps, seed, out,
              logdir, bundle):
    """Neural style transfer: CONTENT painted in the style of STYLE (Gatys et al. 2016);
    several STYLEs are blended by --style-weights.

    Writes tfviz-out/style-CONTENT-STYLE.png and the snapshots beside it. Images are
    files or bundled pictures' names: the styles strokes and mosaic, the photos chelsea,
    coffee, rocket, astronaut.

    \b
    Examples:
      tfviz style chelsea strokes                              # the cat in brush strokes
      tfviz style chelsea strokes mosaic --style-weights 0.7,0.3
      tfviz style coffee mosaic --preserve-colors --size 256,512
      tfviz style chelsea mosaic --histogram-weight 1 --match-colors histogram   # the mosaic's palette
    """
    from ..synthesis import style_transfer
    if style_weights is not None and len(style_weights) != len(styles):
        raise click.BadParameter(f"{len(style_weights)} weights for {len(styles)} style images",
                                 param_hint="--style-weights")
    if style_colors and preserve_colors:
        raise click.UsageError("--preserve-colors keeps the content's colours and --match-colors gives the styles': "
                               "pick one")
    lay = _parse_layers(style_layers)
    stem = _stem(content) + "-" + "-".join(_stem(s) for s in styles)
    out = out_path(out, f"style-{stem}.png")
    n_stages = len(sizes) if sizes else 1
    params = dict(recipe="style_transfer", model=bundle.name, content=content, styles=list(styles),
                  style_weights=style_weights, style_scale=style_scale, preserve_colors=preserve_colors,
                  sizes=sizes, content_weight=content_weight, style_weight=style_weight, tv_weight=tv_weight,
                  init=init, content_layer=content_layer, style_layers=lay, optimizer=optimizer, steps=steps,
                  seed=seed, histogram_weight=histogram_weight, match_colors=style_colors)
    with _Session(steps * n_stages, "style", logdir, f"style-{stem}", params) as s:
        res = style_transfer(bundle, content, list(styles), style_weights=style_weights, content_layer=content_layer,
                             style_layers=lay, content_weight=content_weight, style_weight=style_weight,
                             tv_weight=tv_weight, style_scale=style_scale, preserve_colors=preserve_colors,
                             init=init, optimizer=optimizer, sizes=sizes, steps=steps, seed=seed,
                             histogram_weight=histogram_weight,
                             match_colors=style_colors.replace("-", "_") if style_colors else None,
                             snapshot_every=_every(steps), callbacks=[s.callback])
        s.log_result(res)
    _save(out, res.image, res, size=128)
    h, w = res.image.shape[:2]
    click.echo(f"{w}x{h} in {res.steps} steps ({res.extra['evaluations']} forward and backward passes, "
               f"{res.seconds:.0f} s)")
    _finish(res)


COMMANDS = [invert_cmd, texture_cmd, style_cmd]
