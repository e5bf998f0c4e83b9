"""``tfviz train-stylizer``, ``tfviz stylize``, ``tfviz train-texture``: feed-forward
stylization networks (tfviz.stylize): train one on a folder of photos (the bundled
photos offline), then stylize any image in one forward pass."""
from __future__ import annotations

import os
import time

import click

from .common import IMAGE, check_writable, logdir_option, model_options, not_the_chief, progress, slug, \
    strategy_option

POS_INT = click.IntRange(1, None)
POSITIVE = click.FloatRange(0, min_open=True)


def _checkpoint_dir(ctx, param, value):
    if value is not None:
        check_writable(value, "--checkpoint-dir", folder=True)
    return value


def _model_out(ctx, param, value):
    if value is not None:
        if not value.endswith(".keras"):
            raise click.BadParameter(f"{value!r}: the trained network is saved as a .keras file")
        check_writable(value, "--out", folder=False)
    return value


def _mix(ctx, param, value):
    if value is None:
        return None
    out = {}
    for part in value.split(","):
        k, _, w = part.partition("=")
        try:
            out[int(k)] = out.get(int(k), 0.0) + float(w)
        except ValueError:
            raise click.BadParameter(f"{part!r}: expected STYLE=WEIGHT, e.g. 0=0.5,1=0.5") from None
    if not sum(out.values()) > 0:
        raise click.BadParameter(f"{value!r}: the weights must sum to a positive number")
    return out


def _save_model(model, out):
    """Save atomically: a temporary .keras beside ``out``, then renamed over it."""
    folder = os.path.dirname(os.path.abspath(out))
    os.makedirs(folder, exist_ok=True)
    tmp = os.path.join(folder, f".tmp-{os.getpid()}-{os.path.basename(out)}")
    try:
        model.save(tmp)
        os.replace(tmp, out)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


class _Progress:
    """A progress bar showing steps/s; it starts with the first step."""

    def __init__(self, steps, label):
        self.steps, self.label, self.bar, self.t0, self.n = steps, label, None, None, 0

    def __call__(self, step, losses):
        if self.bar is None:
            self.bar = progress(length=self.steps - step, label=self.label)
            self.bar.item_show_func = lambda _: (f"{self.n / max(time.perf_counter() - self.t0, 1e-9):.2f} steps/s, "
                                                 f"loss {losses['total']:.4f}")
            self.bar.__enter__()
            self.t0 = time.perf_counter()
        self.n += 1
        self.bar.update(1)

    def close(self):
        if self.bar is not None:
            self.bar.__exit__(None, None, None)


def _training_options(f):
    f = click.option("--checkpoint-every", default=100, show_default=True, type=POS_INT,
                     help="Save model and optimizer state every so many steps (a killed run resumes there).")(f)
    f = click.option("--checkpoint-dir", callback=_checkpoint_dir, type=click.Path(),
                     help="Folder for checkpoints; a run with the same folder resumes from the last one.")(f)
    f = click.option("--seed", default=0, show_default=True, type=int)(f)
    f = click.option("--lr", default=1e-3, show_default=True, type=POSITIVE, help="Adam learning rate.")(f)
    f = click.option("--width", default=1.0, show_default=True, type=POSITIVE,
                     help="Channel-count multiplier of the network (0.5: 4x fewer multiply-adds).")(f)
    f = click.option("--batch-size", default=4, show_default=True, type=POS_INT)(f)
    f = click.option("--steps", default=2000, show_default=True, type=POS_INT, help="Training steps.")(f)
    f = logdir_option(f)
    return f


@click.command("train-stylizer")
@click.option("--style", "styles", multiple=True, required=True, type=IMAGE,
              help="A style image (a file, or strokes / mosaic); repeat for one network with several styles.")
@click.option("--content", type=click.Path(file_okay=False),
              help="Folder of content photos (e.g. COCO's train2017); default: tfviz's bundled photos.")
@click.option("--strict", is_flag=True, help="Stop on an unreadable content image instead of skipping it.")
@click.option("--image-size", default=256, show_default=True, type=click.IntRange(16, None),
              help="Training crop size (pixels).")
@click.option("-o", "--out", callback=_model_out, type=click.Path(),
              help="Where to save the trained network (default: tfviz-out/stylizer-STYLES.keras).")
@_training_options
@strategy_option
@model_options()
def train_stylizer_cmd(styles, content, strict, image_size, out, steps, batch_size, width, lr, seed, checkpoint_dir,
                       checkpoint_every, logdir, strategy, bundle):
    """Train one feed-forward network for STYLEs (Johnson et al. 2016; conditional
    instance norm for several, Dumoulin et al. 2017), with the style-transfer loss of
    the --model loss network.

    Offline, the content images are tfviz's few bundled photos (random crops, scales and
    flips): enough to see the style learned, not for a polished network. Point
    --content at a real photo folder (COCO) for that.

    \b
    Examples:
      tfviz train-stylizer --style strokes --style mosaic --steps 400 --image-size 128
      tfviz train-stylizer --style my_painting.jpg --content ~/coco/train2017 --checkpoint-dir ckpt
      tfviz train-stylizer --style mosaic --content /shared/coco --checkpoint-dir /shared/ckpt --strategy multiworker
    """
    from ..stylize.training import train_stylizer
    out = out or os.path.join("tfviz-out", "stylizer-" + "-".join(slug(os.path.splitext(os.path.basename(s))[0])
                                                                   for s in styles) + ".keras")
    check_writable(out, "--out", folder=False)
    bar = _Progress(steps, "train-stylizer")
    try:
        model = train_stylizer(bundle, list(styles), content, image_size=image_size, batch_size=batch_size,
                               steps=steps, lr=lr, width=width, checkpoint_dir=checkpoint_dir,
                               checkpoint_every=checkpoint_every, seed=seed, strict=strict, logdir=logdir,
                               callbacks=[bar], strategy=strategy)
    finally:
        bar.close()
    if not_the_chief(strategy):
        return
    _save_model(model, out)
    info = model.training_info
    ran = info["steps"] - info["start_step"]
    click.echo(f"wrote {out} ({len(styles)} style{'s' if len(styles) > 1 else ''}); {ran} steps in "
               f"{info['seconds']:.0f} s ({ran / max(info['seconds'], 1e-9):.2f} steps/s)"
               + (f", resumed at step {info['start_step']}" if info["start_step"] else ""))


@click.command("stylize")
@click.argument("model_path", metavar="MODEL", type=click.Path(exists=True, dir_okay=False))
@click.argument("images", nargs=-1, required=True, type=IMAGE)
@click.option("--style", default=0, show_default=True, type=click.IntRange(0, None),
              help="Which style of a several-style network.")
@click.option("--mix", callback=_mix, help="Mix styles by weight, e.g. 0=0.5,1=0.5 (overrides --style).")
@click.option("-o", "--out", default="tfviz-out", show_default=True, type=click.Path(file_okay=False),
              help="Output folder.")
def stylize_cmd(model_path, images, style, mix, out):
    """Stylize IMAGEs with a network MODEL trained by train-stylizer, in one forward
    pass each, at their own sizes.

    \b
    Examples:
      tfviz stylize tfviz-out/stylizer-strokes-mosaic.keras chelsea coffee --style 1
      tfviz stylize net.keras photo.jpg --mix 0=0.5,1=0.5 --out mixed
    """
    import keras

    from .. import stylize as _layers  # registers tfviz's layers for loading
    from ..images import save_png
    from ..stylize import stylize
    check_writable(out, "--out", folder=True)
    try:
        model = keras.models.load_model(model_path, custom_objects={
            "InstanceNormalization": _layers.InstanceNormalization})
    except Exception as exc:  # noqa: BLE001 - any unreadable file: one line naming it
        raise click.BadParameter(f"{model_path}: not a network saved by train-stylizer ({exc})",
                                 param_hint="MODEL") from None
    which = mix if mix is not None else style
    outs = stylize(model, list(images), which)
    tag = "mix-" + "-".join(f"{k}x{w:g}" for k, w in sorted(mix.items())) if mix else f"style{style}"
    for src, img in zip(images, outs):
        path = os.path.join(out, f"stylized-{slug(os.path.splitext(os.path.basename(src))[0])}-{tag}.png")
        save_png(path, img)
        click.echo(f"wrote {path}")


@click.command("train-texture")
@click.argument("texture", type=IMAGE)
@click.option("--image-size", default=128, show_default=True, type=click.IntRange(16, None),
              help="Training size (a multiple of 2^(scales-1)).")
@click.option("--scales", default=5, show_default=True, type=click.IntRange(1, 8), help="Noise scales.")
@click.option("--histogram-weight", type=click.FloatRange(0),
              help="Weight of the histogram loss (Risser et al. 2017) beside the Gram loss's 1; 0 turns it off "
                   "(default: the model's, as tfviz texture).")
@click.option("--color-weight", type=click.FloatRange(0),
              help="Weight of the loss on the colour histogram; 0 turns it off (default: the model's).")
@click.option("--sample-size", "sample_sizes", default="256,512x256", show_default=True,
              help="Sizes of the sample textures written beside the network (WxH or N, comma-separated).")
@click.option("-o", "--out", callback=_model_out, type=click.Path(),
              help="Where to save the network (default: tfviz-out/texture-net-TEXTURE.keras).")
@_training_options
@strategy_option
@model_options()
def train_texture_cmd(texture, image_size, scales, histogram_weight, color_weight, sample_sizes, out, steps, batch_size, width, lr, seed,
                      checkpoint_dir, checkpoint_every, logdir, strategy, bundle):
    """Train a texture network for TEXTURE (Ulyanov et al. 2016): noise in, the texture
    out, at any size, on tfviz texture's losses (Gram matrices, histograms, colours).
    Writes the network and sample textures beside it.

    \b
    Examples:
      tfviz train-texture mosaic --steps 300
      tfviz train-texture my_texture.jpg --image-size 256 --checkpoint-dir ckpt
    """
    from ..images import save_png
    from ..stylize import generate_texture
    from ..stylize.training import train_texture_network
    sizes = []
    for part in sample_sizes.split(","):
        w, _, h = part.lower().partition("x")
        try:
            sizes.append((int(h or w), int(w)))
        except ValueError:
            raise click.BadParameter(f"{part!r}: expected WIDTHxHEIGHT or one number",
                                     param_hint="--sample-size") from None
    stem = slug(os.path.splitext(os.path.basename(texture))[0])
    out = out or os.path.join("tfviz-out", f"texture-net-{stem}.keras")
    check_writable(out, "--out", folder=False)
    bar = _Progress(steps, "train-texture")
    try:
        model = train_texture_network(bundle, texture, image_size=image_size, batch_size=batch_size, steps=steps,
                                      lr=lr, scales=scales, width=width, histogram_weight=histogram_weight,
                                      color_weight=color_weight, checkpoint_dir=checkpoint_dir,
                                      checkpoint_every=checkpoint_every, seed=seed, logdir=logdir, callbacks=[bar],
                                      strategy=strategy)
    finally:
        bar.close()
    if not_the_chief(strategy):
        return
    _save_model(model, out)
    click.echo(f"wrote {out}")
    root = os.path.splitext(out)[0]
    for h, w in sizes:
        path = f"{root}_{w}x{h}.png"
        save_png(path, generate_texture(model, (h, w), seed=seed)[0])
        click.echo(f"wrote {path}")


COMMANDS = [train_stylizer_cmd, stylize_cmd, train_texture_cmd]
