"""``tfviz classviz``, ``tfviz neurons``, ``tfviz fool``, ``tfviz dream``: images made by
gradient ascent (tfviz.synthesis). Each writes the final image, a strip of snapshots
beside it (``NAME_snapshots.png``), shows a progress bar, and with ``--logdir`` logs the
loss at every step, the snapshots and the recipe's parameters for TensorBoard."""
from __future__ import annotations

import os

import click

from ..defaults import DREAM_STEP_SIZE, FOOLING_LR
from .common import IMAGE, Interrupted, channels_callback, logdir_option, model_options, out_option, out_path, \
    progress
from .common import slug as _slug

SNAPSHOTS = 8
POSITIVE = click.FloatRange(0, min_open=True)


def run_options(steps_default: int, steps_help: str = "Optimization steps.", name: str | None = None):
    """--steps/--seed/--out/--logdir shared by the synthesis commands."""
    def deco(f):
        f = logdir_option(f)
        f = out_option(single=True, name=name)(f)
        f = click.option("--seed", default=0, show_default=True, type=int,
                         help="Random seed (same seed, same image).")(f)
        f = click.option("--steps", default=steps_default, show_default=True, type=click.IntRange(1, None),
                         help=steps_help)(f)
        return f
    return deco


class _Session:
    """Progress bar + TensorBoard logging around one synthesis run. Both start with the
    first step, so a recipe that refuses its input prints one error line and writes no
    logdir."""

    def __init__(self, length, label, logdir, run, params):
        self.bar = progress(length=length, label=label)
        self.logdir, self.run, self.params = logdir, run, params
        self.writer = None
        self.started = False

    def __enter__(self):
        return self

    def _start(self):
        if self.started:
            return
        self.started = True
        self.bar.__enter__()
        if self.logdir:
            from ..summary import Writer
            self.writer = Writer(self.logdir, run=self.run)
            self.writer.params("optimization", {k: "default" if v is None else v for k, v in self.params.items()})

    def callback(self, step, images, losses):
        self._start()
        self.bar.update(1)
        if self.writer is not None:
            for k, v in losses.items():
                self.writer.scalar(f"optimization/{k}", v, step)

    def log_result(self, res, tag="snapshots"):
        self._start()
        if self.writer is None:
            return
        for step, imgs in res.snapshots:
            self.writer.image("optimization", tag, imgs, step=step, caption=f"step {step}")
        self.writer.image("optimization", tag, res.images, step=res.steps, caption=f"final, step {res.steps}")

    def __exit__(self, *exc):
        if self.started:
            self.bar.__exit__(*exc)
        if self.writer is not None:
            self.writer.close()


def _save(out, image, res, size=112):
    """The final image and, beside it, the strip of snapshots (``NAME_snapshots.png``)."""
    from ..images import save_png
    save_png(out, image)
    root, _ = os.path.splitext(out)
    strip = root + "_snapshots.png"
    if res is not None:
        save_png(strip, res.snapshot_strip(size=size))
    click.echo(f"wrote {out}" + (f" and {strip}" if res is not None else ""))


def _finish(res):
    """Report how the run ended; an interrupted run (its latest image saved) exits 130."""
    if res is not None and res.nan_step is not None:
        click.echo(f"warning: {res.stopped}", err=True)
    elif res is not None and res.interrupted:
        click.echo(f"interrupted: {res.stopped}; kept the latest image", err=True)
        raise Interrupted(res.stopped)


def _every(steps):
    return max(1, steps // SNAPSHOTS)


@click.command("classviz")
@click.argument("target")
@click.option("--param", type=click.Choice(["fourier", "pixel"]), default="fourier", show_default=True,
              help="fourier: decorrelated Fourier image (Olah 2017); pixel: pixels with Yosinski's regularizers.")
@click.option("--lr", type=POSITIVE, help="Adam's learning rate: pixel, grey levels per step whatever the "
                                           "model's preprocessing (default 17); fourier, spectrum units "
                                           "(default 0.05).")
@run_options(256, name="classviz-CLASS.png")
@model_options()
def classviz_cmd(target, param, lr, steps, seed, out, logdir, bundle):
    """Visualize class TARGET (a name or an index): an image the model is sure shows it.

    Writes tfviz-out/classviz-NAME.png and, beside it, the snapshots along the way.

    \b
    Examples:
      tfviz classviz flamingo                     # tfviz-out/classviz-flamingo.png
      tfviz classviz 130 --param pixel --steps 512 --logdir logs
    """
    from ..synthesis import class_visualization
    t = bundle.class_index(target)
    name = bundle.class_name(t)
    out = out_path(out, f"classviz-{_slug(name)}.png")
    params = dict(recipe="class_visualization", model=bundle.name, target=t, class_name=name, param=param,
                  steps=steps, seed=seed, lr=lr)
    with _Session(steps, f"classviz {name}", logdir, f"classviz-{_slug(name)}", params) as s:
        res = class_visualization(bundle, t, param=param, steps=steps, lr=lr, seed=seed,
                                  snapshot_every=_every(steps), callbacks=[s.callback])
        s.log_result(res)
    _save(out, res.image, res)
    click.echo(f"{name} (class {t}): probability {res.extra['probability']:.3f} after {res.steps} steps")
    _finish(res)


@click.command("neurons")
@click.argument("layer")
@click.option("--channels", callback=channels_callback,
              help="Channels, e.g. 0-15 or 3,7,12 (default: the first 16).")
@click.option("--param", type=click.Choice(["fourier", "pixel"]), default="fourier", show_default=True)
@click.option("--cols", type=click.IntRange(1, None), help="Grid columns (default: square).")
@run_options(128, name="neurons-LAYER.png")
@model_options()
def neurons_cmd(layer, channels, param, cols, steps, seed, out, logdir, bundle):
    """What each filter of LAYER wants: one image per channel, tiled in a grid.

    \b
    Examples:
      tfviz neurons block4c_add --channels 0-15    # tfviz-out/neurons-block4c_add.png
      tfviz neurons top_conv --channels 3,7,12 --param pixel --out top.png
    """
    from ..synthesis import neuron_visualization
    chans = channels
    bundle.layer(layer)  # unknown layer: list the valid ones before anything runs
    out = out_path(out, f"neurons-{_slug(layer)}.png")
    params = dict(recipe="neuron_visualization", model=bundle.name, layer=layer, channels=chans, param=param,
                  steps=steps, seed=seed)
    with _Session(steps, f"neurons {layer}", logdir, f"neurons-{_slug(layer)}", params) as s:
        res = neuron_visualization(bundle, layer, chans, param=param, steps=steps, seed=seed,
                                   snapshot_every=_every(steps), callbacks=[s.callback], cols=cols)
        s.log_result(res)
    _save(out, res.extra["grid"], res)
    _finish(res)


@click.command("fool")
@click.argument("image", type=IMAGE)
@click.argument("target")
@click.option("--lr", type=POSITIVE, default=FOOLING_LR, show_default=True,
              help="Adam's learning rate in grey levels (0..255), whatever the model's preprocessing: the first "
                   "step moves every pixel by this much.")
@run_options(200, "Most steps to try.", name="fool-IMAGE-CLASS.png")
@model_options()
def fool_cmd(image, target, lr, steps, seed, out, logdir, bundle):
    """Change IMAGE imperceptibly until the model calls it TARGET (a fooling image).

    Writes tfviz-out/fool-IMAGE-TARGET.png, and beside it ..._pair.png: original, fooled
    image, and their difference magnified. IMAGE is a file or a bundled photo's name:
    chelsea (a cat), coffee, rocket, astronaut.

    \b
    Examples:
      tfviz fool chelsea goldfish                  # the bundled cat photo
      tfviz fool my_cat.jpg goldfish --out fooled.png
    """
    from ..images import caption, hstack, save_png
    from ..synthesis import fooling_image
    t = bundle.class_index(target)
    img = bundle.load_images([image])[0]
    name = bundle.class_name(t)
    stem = _slug(os.path.splitext(os.path.basename(image))[0])
    out = out_path(out, f"fool-{stem}-{_slug(name)}.png")
    params = dict(recipe="fooling_image", model=bundle.name, image=image, target=t, class_name=name,
                  max_steps=steps, lr=lr, seed=seed)
    with _Session(steps, f"fool -> {name}", logdir, f"fool-{stem}-{_slug(name)}", params) as s:
        res = fooling_image(bundle, img, t, max_steps=steps, lr=lr, seed=seed, callbacks=[s.callback],
                            snapshot_every=max(1, steps // 20))
        if res.result is not None:
            s.log_result(res.result)
    _save(out, res.image, res.result)
    root, _ = os.path.splitext(out)
    pair = hstack([caption(res.original, f"original: {bundle.class_name(res.original_class)}"),
                   caption(res.image, f"{name} {res.probability:.0%}"),
                   caption(res.difference, f"difference x{res.magnification:.0f}")])
    save_png(root + "_pair.png", pair)
    click.echo(f"wrote {root}_pair.png")
    verdict = "fooled" if res.success else "NOT fooled"
    click.echo(f"{verdict}: {name} (class {t}) probability {res.probability:.3f} after {res.steps} steps; "
               f"change L2 {res.l2:.1f}, L-inf {res.linf:.0f} grey levels")
    if res.result is not None:
        _finish(res.result)


def _parse_layers(specs):
    if not specs:
        return None
    out = {}
    for spec in specs:
        name, _, w = spec.partition(":")
        try:
            out[name] = float(w) if w else 1.0
        except ValueError:
            raise click.BadParameter(f"{spec!r}: expected NAME or NAME:WEIGHT", param_hint="--layer") from None
    return out


@click.command("dream")
@click.argument("image", type=IMAGE)
@click.option("--layer", "layers", multiple=True, help="Layer to amplify, NAME or NAME:WEIGHT; repeat for several "
                                                        "(default: block4c_add and block5c_add on efficientnet_lite0).")
@click.option("--octaves", default=4, show_default=True, type=click.IntRange(1, None),
              help="Scales to dream at, coarse to fine.")
@click.option("--octave-scale", default=1.4, show_default=True, type=click.FloatRange(1, min_open=True),
              help="Size ratio between successive octaves.")
@click.option("--step-size", default=DREAM_STEP_SIZE, show_default=True, type=POSITIVE,
              help="Mean change of a pixel per step, in grey levels (0..255) whatever the model's preprocessing.")
@click.option("--jitter", default=32, show_default=True, type=click.IntRange(0, None),
              help="Largest random shift (pixels, wrapping around) before each step.")
@click.option("--max-side", type=click.IntRange(32, None),
              help="Shrink the image first so its longer side is at most this.")
@run_options(10, "Steps per octave.", name="dream-IMAGE.png")
@model_options()
def dream_cmd(image, layers, octaves, octave_scale, step_size, jitter, max_side, steps, seed, out, logdir, bundle):
    """DeepDream IMAGE at its own size (any size: only the convolutional part runs).

    Writes tfviz-out/dream-IMAGE.png and the snapshots beside it. IMAGE is a file or a
    bundled photo's name: chelsea (a cat), coffee, rocket, astronaut.

    \b
    Examples:
      tfviz dream chelsea                          # the bundled cat photo
      tfviz dream my_photo.jpg --layer block5c_add:2 --layer block3b_add --octaves 5
    """
    from ..synthesis import deepdream
    lay = _parse_layers(layers)
    stem = _slug(os.path.splitext(os.path.basename(image))[0])
    out = out_path(out, f"dream-{stem}.png")
    params = dict(recipe="deepdream", model=bundle.name, image=image, layers=lay, octaves=octaves,
                  octave_scale=octave_scale, steps_per_octave=steps, step_size=step_size, jitter=jitter, seed=seed)
    with _Session(steps * octaves, "dream", logdir, f"dream-{stem}", params) as s:
        res = deepdream(bundle, image, layers=lay, octaves=octaves, octave_scale=octave_scale,
                        steps_per_octave=steps, step_size=step_size, jitter=jitter, seed=seed,
                        callbacks=[s.callback], max_side=max_side)
        s.log_result(res)
    _save(out, res.image, res, size=160)
    _finish(res)


COMMANDS = [classviz_cmd, neurons_cmd, fool_cmd, dream_cmd]
