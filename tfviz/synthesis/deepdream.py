"""DeepDream (Mordvintsev et al. 2015): a recipe over :func:`optimize`.

Per octave, from the coarsest: ``optimize`` maximizes ``sum_l w_l * 0.5 mean(a_l^2)`` (each
layer's term divided by its size, so several layers weigh as their weights say) with
a wrap-around jitter before each step, L1-normalized gradient steps and clipping to the
valid range; between octaves the image is upsampled and the detail lost by downsampling
the original is added back (detail re-injection). Only the convolutional part of the
model runs, at the image's own size, so images larger than the model input work.
"""
from __future__ import annotations

import numpy as np
import tensorflow as tf

from ..default_layers import dream_layers as default_layers
from ..defaults import DREAM_STEP_SIZE
from ..images import load_image, resize
from . import objectives as obj
from . import params as _params
from . import regularizers as _reg
from . import transforms as _tf
from .optimize import GradientStep, Result, SynthesisError, optimize
from .recipe import check_spatial_layers, shift_callbacks

MIN_OCTAVE_SIZE = 32
STEP_SIZE = DREAM_STEP_SIZE  # grey levels: mean |change| of a pixel per step (was 0.01 of the range, 2.55 grey levels)


def dream_objective(layers: dict):
    """``sum_l w_l * 0.5 * mean(a_l^2)``: each layer's term normalized by its size, so a
    large early layer does not drown a small late one."""
    return sum(float(wt) * obj.layer_l2(name, normalize=True) for name, wt in layers.items())


def _resize(x, hw):
    return tf.image.resize(x, hw, method="bilinear").numpy()


def deepdream(bundle, image, layers: dict | None = None, octaves: int = 4, octave_scale: float = 1.4,
              steps_per_octave: int = 10, step_size: float = STEP_SIZE, jitter: int = 32, seed: int = 0,
              callbacks=(), max_side: int | None = None) -> Result:
    """DeepDream ``image`` (path, array; any size >= the octave minimum) at ``layers``
    ``{name: weight}`` (default: :func:`default_layers`). ``step_size``: the mean change
    of a pixel per step, in grey levels whatever the model's preprocessing (an
    L1-normalized step on the image in grey levels); ``jitter`` the largest roll in
    pixels. Returns a :class:`Result` at the image's size, one snapshot per octave,
    ``steps`` over all octaves. Callbacks see the step number counted over all octaves."""
    img = _limit_side(load_image(image), max_side)
    h, w = img.shape[:2]
    _check_octaves((h, w), octaves, octave_scale, steps_per_octave, step_size)
    layers = dict(layers or default_layers(bundle))
    check_spatial_layers(bundle, layers)  # unknown or non-spatial: one clear error listing valid ones
    objective = dream_objective(layers)
    step = GradientStep("l1", step_size)   # on the pixel variable, in grey levels
    x, details = _octaves(bundle.preprocess(img[None]), octaves, octave_scale)
    hist, snaps, losses, total = [], [], {}, 0
    res = None
    for o in range(octaves):
        if o > 0:
            detail = details[-o]
            x = _resize(x, detail.shape[1:3]) + detail
        res = optimize(bundle, objective, param=_params.pixel(init=x, init_is_model_input=True),
                       transforms=[_tf.Roll(jitter)] if jitter else [], regularizers=[_reg.ClipRange()],
                       steps=int(steps_per_octave), optimizer=step, seed=seed + o,
                       callbacks=shift_callbacks(callbacks, total), flexible_size=True)
        x = res.x
        total += res.steps
        hist.append(res.history)
        for k, v in res.losses.items():
            losses.setdefault(k, []).append(v)
        snaps.append((total, bundle.deprocess(_resize(x, (h, w)))))
        if res.interrupted or res.stopped:
            break
    final = x if x.shape[1:3] == (h, w) else _resize(x, (h, w))
    return Result(images=bundle.deprocess(final), history=np.concatenate(hist),
                  losses={k: np.concatenate(v) for k, v in losses.items()},
                  snapshots=snaps[:-1] if len(snaps) > 1 else [],
                  steps=total, x=final, interrupted=res.interrupted, stopped=res.stopped, nan_step=res.nan_step,
                  extra={"recipe": "deepdream", "layers": layers, "octaves": octaves, "octave_scale": octave_scale,
                         "steps_per_octave": steps_per_octave, "step_size": step_size, "jitter": jitter})


def _limit_side(img, max_side):
    """``img`` shrunk so that its longer side is at most ``max_side`` (None: as it is)."""
    if max_side and max(img.shape[:2]) > max_side:
        s = max_side / max(img.shape[:2])
        img = resize(img, (max(1, round(img.shape[0] * s)), max(1, round(img.shape[1] * s))))
    return img


def _check_octaves(hw, octaves, octave_scale, steps_per_octave, step_size) -> None:
    if not isinstance(octaves, (int, np.integer)) or octaves < 1:
        raise SynthesisError(f"octaves must be a positive integer, got {octaves!r}")
    if not octave_scale > 1:
        raise SynthesisError(f"octave_scale must be > 1, got {octave_scale}")
    if not isinstance(steps_per_octave, (int, np.integer)) or steps_per_octave < 1:
        raise SynthesisError(f"steps_per_octave must be a positive integer, got {steps_per_octave!r}")
    if not step_size > 0:
        raise SynthesisError(f"step_size must be positive, got {step_size}")
    h, w = hw
    smallest = min(h, w) / octave_scale ** (octaves - 1)
    if smallest < MIN_OCTAVE_SIZE:
        raise SynthesisError(
            f"image {w}x{h} is too small for {octaves} octaves at scale {octave_scale}: the smallest octave "
            f"would be {smallest:.0f} px (< {MIN_OCTAVE_SIZE}); use fewer octaves or a larger image")


def _octaves(x, octaves, octave_scale):
    """Laplacian-style octaves of model-input images ``x``: the base (coarsest) and the
    detail each downsampling loses, finest first."""
    details = []
    for _ in range(octaves - 1):
        hw = x.shape[1:3]
        small = _resize(x, (max(1, round(hw[0] / octave_scale)), max(1, round(hw[1] / octave_scale))))
        details.append(x - _resize(small, hw))
        x = small
    return x, details
