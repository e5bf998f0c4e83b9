"""``tfviz classviz``, ``tfviz neurons``, ``tfviz fool``, ``tfviz dream``: images made by
gradient ascent (tfviz.synthesis). Each writes the final image, a strip of snapshots
beside it (``NAME_snapshots.png``), shows a progress bar, and with ``--logdir`` logs the
loss at every step, the snapshots and the recipe's parameters for TensorBoard."""
from __future__ import annotations

import os
import re

import click

from .common import model_options, progress

SNAPSHOTS = 8


def _slug(s) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", str(s)).strip("_") or "out"


def run_options(steps_default: int, steps_help: str = "Optimization steps."):
    """--steps/--seed/--out/--logdir shared by the synthesis commands."""
    def deco(f):
        f = click.option("--logdir", type=click.Path(file_okay=False),
                         help="Write loss scalars (every step), snapshots and parameters here for TensorBoard.")(f)
        f = click.option("--out", "-o", type=click.Path(dir_okay=False),
                         help="Output PNG (default: out/<command>-<name>.png); the snapshot strip goes "
                              "beside it as <name>_snapshots.png.")(f)
        f = click.option("--seed", default=0, show_default=True, type=int, help="Random seed (same seed, same image).")(f)
        f = click.option("--steps", default=steps_default, show_default=True, type=click.IntRange(1, None),
                         help=steps_help)(f)
        return f
    return deco


class _Session:
    """Progress bar + TensorBoard logging around one synthesis run."""

    def __init__(self, length, label, logdir, run, params):
        self.bar = progress(length=length, label=label)
        self.writer = None
        if logdir:
            from ..summary import Writer
            self.writer = Writer(logdir, run=run)
            self.writer.params("optimization", {k: "default" if v is None else v for k, v in params.items()})

    def __enter__(self):
        self.bar.__enter__()
        return self

    def callback(self, step, images, losses):
        self.bar.update(1)
        if self.writer is not None:
            for k, v in losses.items():
                self.writer.scalar(f"optimization/{k}", v, step)

    def log_result(self, res, tag="snapshots"):
        if self.writer is None:
            return
        for step, imgs in res.snapshots:
            self.writer.image("optimization", tag, imgs, step=step, caption=f"step {step}")
        self.writer.image("optimization", tag, res.images, step=res.steps, caption=f"final, step {res.steps}")

    def __exit__(self, *exc):
        self.bar.__exit__(*exc)
        if self.writer is not None:
            self.writer.close()


def _save(out, image, res, size=112):
    from ..images import save_png
    save_png(out, image)
    root, _ = os.path.splitext(out)
    strip = root + "_snapshots.png"
    if res is not None:
        save_png(strip, res.snapshot_strip(size=size))
    click.echo(f"wrote {out}" + (f" and {strip}" if res is not None else ""))


def _finish(res):
    if res is not None and res.nan_step is not None:
        click.echo(f"warning: {res.stopped}", err=True)
    elif res is not None and res.interrupted:
        click.echo(f"interrupted: {res.stopped}; kept the latest image", err=True)


def _every(steps):
    return max(1, steps // SNAPSHOTS)


@click.command("classviz")
@click.argument("target")
@click.option("--param", type=click.Choice(["fourier", "pixel"]), default="fourier", show_default=True,
              help="fourier: decorrelated Fourier image (Olah 2017); pixel: pixels with Yosinski's regularizers.")
@click.option("--lr", type=float, help="Learning rate (default: 0.05 fourier, 0.3 pixel).")
@run_options(256)
@model_options()
def classviz_cmd(target, param, lr, steps, seed, out, logdir, bundle):
    """Visualize class TARGET (a name or an index): an image the model is sure shows it.

    \b
    Examples:
      tfviz classviz flamingo                     # out/classviz-flamingo.png
      tfviz classviz 130 --param pixel --steps 512 --logdir logs
    """
    from ..synthesis import class_visualization
    from ..synthesis.optimize import SynthesisError
    t = bundle.class_index(target)
    if lr is not None and not lr > 0:
        raise SynthesisError(f"--lr must be positive, got {lr}")
    name = bundle.class_name(t)
    out = out or os.path.join("out", f"classviz-{_slug(name)}.png")
    params = dict(recipe="class_visualization", model=bundle.name, target=t, class_name=name, param=param,
                  steps=steps, seed=seed, lr=lr)
    with _Session(steps, f"classviz {name}", logdir, f"classviz-{_slug(name)}", params) as s:
        res = class_visualization(bundle, t, param=param, steps=steps, lr=lr, seed=seed,
                                  snapshot_every=_every(steps), callbacks=[s.callback])
        s.log_result(res)
    _save(out, res.image, res)
    click.echo(f"{name} (class {t}): probability {res.extra['probability']:.3f} after {res.steps} steps")
    _finish(res)


def _parse_channels(text):
    if text is None:
        return None
    out = []
    for part in str(text).split(","):
        part = part.strip()
        if not part:
            continue
        m = re.fullmatch(r"(\d+)\s*-\s*(\d+)", part)
        if m:
            a, b = int(m.group(1)), int(m.group(2))
            if b < a:
                raise click.BadParameter(f"range {part!r} is backwards", param_hint="--channels")
            out.extend(range(a, b + 1))
        elif part.isdigit():
            out.append(int(part))
        else:
            raise click.BadParameter(f"{part!r} is not a channel number or range like 0-15",
                                     param_hint="--channels")
    return out


@click.command("neurons")
@click.argument("layer")
@click.option("--channels", help="Channels, e.g. 0-15 or 3,7,12 (default: the first 16).")
@click.option("--param", type=click.Choice(["fourier", "pixel"]), default="fourier", show_default=True)
@click.option("--cols", type=click.IntRange(1, None), help="Grid columns (default: square).")
@run_options(128)
@model_options()
def neurons_cmd(layer, channels, param, cols, steps, seed, out, logdir, bundle):
    """What each filter of LAYER wants: one image per channel, tiled in a grid.

    \b
    Examples:
      tfviz neurons block4c_add --channels 0-15
      tfviz neurons top_conv --channels 3,7,12 --param pixel --out top.png
    """
    from ..synthesis import neuron_visualization
    bundle.layer(layer)  # unknown layer: list the valid ones before anything runs
    chans = _parse_channels(channels)
    out = out or os.path.join("out", f"neurons-{_slug(layer)}.png")
    params = dict(recipe="neuron_visualization", model=bundle.name, layer=layer, channels=chans, param=param,
                  steps=steps, seed=seed)
    with _Session(steps, f"neurons {layer}", logdir, f"neurons-{_slug(layer)}", params) as s:
        res = neuron_visualization(bundle, layer, chans, param=param, steps=steps, seed=seed,
                                   snapshot_every=_every(steps), callbacks=[s.callback], cols=cols)
        s.log_result(res)
    _save(out, res.extra["grid"], res)
    _finish(res)


@click.command("fool")
@click.argument("image", type=click.Path(dir_okay=False))
@click.argument("target")
@click.option("--lr", type=float, default=0.01, show_default=True, help="Adam learning rate (model-input units).")
@run_options(200, "Most steps to try.")
@model_options()
def fool_cmd(image, target, lr, steps, seed, out, logdir, bundle):
    """Change IMAGE imperceptibly until the model calls it TARGET (a fooling image).

    Writes the fooled image, and beside it NAME_pair.png: original, fooled image, and
    their difference magnified.

    \b
    Example:
      tfviz fool cat.jpg goldfish --out out/fooled.png
    """
    from ..images import caption, hstack, save_png
    from ..synthesis import fooling_image
    from ..synthesis.optimize import SynthesisError
    if not lr > 0:
        raise SynthesisError(f"--lr must be positive, got {lr}")
    t = bundle.class_index(target)
    img = bundle.load_images([image])[0]
    name = bundle.class_name(t)
    stem = _slug(os.path.splitext(os.path.basename(image))[0])
    out = out or os.path.join("out", f"fool-{stem}-{_slug(name)}.png")
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
@click.argument("image", type=click.Path(dir_okay=False))
@click.option("--layer", "layers", multiple=True, help="Layer to amplify, NAME or NAME:WEIGHT; repeat for several "
                                                        "(default: block4c_add and block5c_add on efficientnet_lite0).")
@click.option("--octaves", default=4, show_default=True, type=int)
@click.option("--octave-scale", default=1.4, show_default=True, type=float)
@click.option("--step-size", default=0.01, show_default=True, type=float,
              help="Step per iteration, a fraction of the valid input range.")
@click.option("--jitter", default=32, show_default=True, type=click.IntRange(0, None))
@click.option("--max-side", type=click.IntRange(32, None), help="Shrink the image first so its longer side is at most this.")
@run_options(10, "Steps per octave.")
@model_options()
def dream_cmd(image, layers, octaves, octave_scale, step_size, jitter, max_side, steps, seed, out, logdir, bundle):
    """DeepDream IMAGE at its own size (any size: only the convolutional part runs).

    \b
    Examples:
      tfviz dream photo.jpg
      tfviz dream photo.jpg --layer block5c_add:2 --layer block3b_add --octaves 5
    """
    from ..synthesis import deepdream
    lay = _parse_layers(layers)
    stem = _slug(os.path.splitext(os.path.basename(image))[0])
    out = out or os.path.join("out", f"dream-{stem}.png")
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
