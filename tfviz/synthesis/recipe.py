"""What the statistics-matching recipes share (:mod:`.inversion`, :mod:`.texture`,
:mod:`.style`, and the training of :mod:`tfviz.stylize`): checking their arguments,
reading a loss network's activations and Gram matrices, the total-variation term, the
optimizer each uses, and joining several :func:`~tfviz.synthesis.optimize` runs (stages
or layers) into one :class:`~tfviz.synthesis.optimize.Result`. Total variation is
measured on the image in 0..1 units, so its weight means the same for every model."""
from __future__ import annotations

import math

import numpy as np
import tensorflow as tf

from . import objectives as obj
from . import params as _params
from . import regularizers as _reg
from .optimize import (DEFAULT_LR, LBFGS, PIXEL_ADAM_EPSILON, Result, SynthesisError, _optimizer, forward_fn,
                       optimize)


# ---------------------------------------------------------------------- arguments
def check_positive_int(name, v) -> int:
    """``v`` as an int; a SynthesisError naming ``name`` unless it is a positive integer."""
    if not isinstance(v, (int, np.integer)) or isinstance(v, bool) or v < 1:
        raise SynthesisError(f"{name} must be a positive integer, got {v!r}")
    return int(v)


def check_weight(name, v, positive=False) -> float:
    """``v`` as a float; a SynthesisError naming ``name`` unless it is a finite number
    that is zero or positive (``positive``: strictly positive)."""
    try:
        v = float(v)
    except (TypeError, ValueError):
        raise SynthesisError(f"{name} must be a number, got {v!r}") from None
    if not math.isfinite(v) or v < 0 or (positive and v == 0):
        raise SynthesisError(f"{name} must be {'positive' if positive else 'zero or positive'}, got {v}")
    return v


def check_size(size, what="size") -> tuple[int, int]:
    """``(height, width)`` from one number or a pair of positive integers."""
    if isinstance(size, (int, np.integer)) and not isinstance(size, bool):
        size = (size, size)
    try:
        h, w = (int(s) for s in size)
    except (TypeError, ValueError):
        raise SynthesisError(f"{what} must be (height, width) or one number, got {size!r}") from None
    if h < 1 or w < 1:
        raise SynthesisError(f"{what} must be positive, got {size!r}")
    return h, w


def hw_longer(hw, side: int) -> tuple[int, int]:
    """``hw`` scaled so that its longer side is ``side`` (each side at least 1)."""
    h, w = hw
    s = side / max(h, w)
    return max(1, round(h * s)), max(1, round(w * s))


def layer_weights(layers, default) -> dict:
    """``{layer: weight}`` from one layer name, a list (equal weights), a dict, or None
    (``default``); refuses an empty set and weights that are all zero."""
    if layers is None:
        return dict(default)
    if isinstance(layers, str):
        layers = [layers]
    if isinstance(layers, dict):
        out = {str(k): check_weight(f"weight of layer {k!r}", v) for k, v in layers.items()}
    else:
        out = {str(n): 1.0 for n in layers}
    if not out:
        raise SynthesisError("give at least one layer")
    if sum(out.values()) <= 0:
        raise SynthesisError("the layer weights must not all be zero")
    return out


def check_spatial_layers(bundle, layers) -> None:
    """Every one of ``layers`` exists and has a spatial output (else one error naming the
    valid ones)."""
    for n in layers:
        bundle.spatial_layer(n)


# ---------------------------------------------------------------------- the loss network's view
def layer_features(bundle, layers, x) -> dict:
    """Activations of ``layers`` for model-input images ``x`` at their own size."""
    _, feats = forward_fn(bundle, list(layers), False, True)(tf.constant(np.asarray(x, np.float32)))
    return feats


def layer_grams(bundle, layers, x, transform) -> dict:
    """``{layer: [C, C]}``: the Gram matrix of the first image of ``x`` (model input) at
    each of ``layers``, after the feature ``transform``."""
    fn_t = obj.feature_transform(transform)
    feats = layer_features(bundle, layers, x)
    return {n: obj.gram_matrix(fn_t(tf.convert_to_tensor(feats[n]))).numpy()[0] for n in layers}


def tv_term(bundle, weight):
    """``weight * TV`` of the image in 0..1 units (model-input units divided by the
    width of the valid range)."""
    lo, hi = (np.asarray(v, np.float32) for v in bundle.input_range)
    return obj.total_variation(weight / float(np.mean(hi - lo)) ** 2)


def lbfgs_or_adam(optimizer, param):
    """The optimizer and regularizers for a recipe: L-BFGS keeps pixels valid by its
    bounds; gradient steps need clipping. ``"adam"``: Adam at the parameterization's
    :data:`~tfviz.synthesis.optimize.DEFAULT_LR` (3 grey levels per step on pixels, 0.05
    on the Fourier spectrum); a number is Adam's learning rate, in grey levels on pixels."""
    if isinstance(optimizer, str) and optimizer == "adam":
        optimizer = DEFAULT_LR["pixel" if isinstance(param, _params.pixel) else "fourier"]
    opt = _optimizer(optimizer, epsilon=PIXEL_ADAM_EPSILON if isinstance(param, _params.pixel) else 1e-7)
    regs = [] if isinstance(opt, LBFGS) or not isinstance(param, _params.pixel) else [_reg.ClipRange()]
    return opt, regs


# ---------------------------------------------------------------------- coarse to fine
def enlarged_start(x, hw):
    """The start of a finer stage: the last stage's image ``x`` (model input) enlarged
    to ``hw`` (bicubic)."""
    return _params.pixel(init=tf.image.resize(x, hw, method="bicubic").numpy(), init_is_model_input=True)


def stage_steps(steps, n_stages: int, what: str) -> list:
    """Steps per stage from one number (every stage) or one per stage; ``what`` names the
    stages in the error (``"sizes"``, ``"scales"``)."""
    steps_list = list(np.atleast_1d(np.asarray(steps, dtype=object)))
    if len(steps_list) == 1:
        steps_list = steps_list * n_stages
    if len(steps_list) != n_stages:
        raise SynthesisError(f"{len(steps_list)} step counts given for {n_stages} {what}")
    return [check_positive_int("steps", s) for s in steps_list]


def stage_snapshots(results, steps_list, crops=None) -> list:
    """The stages' snapshots as one list, steps counted over all stages; ``crops``: one
    ``(h, w)`` per stage to cut each stage's snapshots to (a texture's margin)."""
    snaps, base = [], 0
    for i, (r, n_steps) in enumerate(zip(results, steps_list)):
        h, w = crops[i] if crops is not None else (None, None)
        snaps += [(s + base, im[:, :h, :w]) for s, im in r.snapshots]
        base += n_steps
    return snaps


def run_stage(bundle, objective, spec, optimizer, *, steps, seed, callbacks, offset, snapshot_every):
    """One stage of a coarse-to-fine recipe (texture, style): ``optimize`` from ``spec``
    with the recipe's optimizer, its callbacks seeing steps counted from ``offset``.
    Returns the Result, its image clipped to the valid range (the next stage's start)
    and what the stage did (``steps``, ``evaluations``, ``seconds``)."""
    opt, regs = lbfgs_or_adam(optimizer, spec)
    res = optimize(bundle, objective, param=spec, regularizers=regs, steps=steps, optimizer=opt, seed=seed,
                   callbacks=shift_callbacks(callbacks, offset), snapshot_every=snapshot_every,
                   flexible_size=True)
    lo, hi = (np.asarray(v, np.float32) for v in bundle.input_range)
    return res, np.clip(res.x, lo, hi), {"steps": res.steps, "evaluations": res.extra.get("evaluations"),
                                         "seconds": res.seconds}


# ---------------------------------------------------------------------- several runs as one
def shift_callbacks(callbacks, offset):
    """``callbacks`` seeing steps counted from ``offset`` (a later stage or layer)."""
    return [lambda s, im, ls, cb=cb, off=offset: cb(s + off, im, ls) for cb in callbacks]


def run_ended(res) -> bool:
    """True when a run was interrupted, hit a NaN or was stopped by a callback: the
    stages or layers after it are not run."""
    return bool(res.interrupted or res.nan_step is not None or (res.stopped and "callback" in res.stopped))


def merge_results(results, images, extra, snapshots=None) -> Result:
    """One Result from several optimize runs (stages or layers)."""
    hist = np.concatenate([r.history for r in results]) if results else np.zeros(0, np.float32)
    keys = []
    for r in results:
        keys += [k for k in r.losses if k not in keys]
    losses = {k: np.concatenate([r.losses.get(k, np.full(len(r.history), np.nan, np.float32)) for r in results])
              for k in keys}
    last = results[-1]
    extra = dict(extra, evaluations=sum(int(r.extra.get("evaluations", r.steps)) for r in results),
                 traces=sum(int(r.extra.get("traces", 0)) for r in results))
    return Result(images=images, history=hist, losses=losses,
                  snapshots=snapshots if snapshots is not None else [s for r in results for s in r.snapshots],
                  steps=sum(r.steps for r in results), x=last.x, interrupted=any(r.interrupted for r in results),
                  stopped=next((r.stopped for r in results if r.stopped), None),
                  nan_step=next((r.nan_step for r in results if r.nan_step is not None), None),
                  seconds=sum(r.seconds for r in results), extra=extra)
