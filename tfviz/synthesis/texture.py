"""Texture synthesis (Gatys et al. 2015): a new image, any size, with the statistics of a
texture's activations, grown from noise on :func:`~tfviz.synthesis.optimize`.

The loss matches, at the loss network's texture layers, the Gram matrices (Gatys) and
each channel's whole histogram (Risser, Wilmot & Barnes 2017: the Gram matrix holds
second moments only, so a texture matched on it alone loses contrast and sparsity),
and the image's colour histogram in the source's decorrelated colour space
(:mod:`.color`); the result's colours are then matched to the source's. It runs coarse
to fine: the texture is grown at a fraction of the size from the source shrunk alike,
so large structures (tiles, stones) form first, then enlarged and refined at full size.
"""
from __future__ import annotations

import numpy as np
import tensorflow as tf

from ..images import load_image, resize
from . import objectives as obj
from . import params as _params
from .color import check_match_colors, color_target, match_colors as _match_colors
from .lossnet import check_fits, loss_network
from .recipe import (check_size, check_spatial_layers, check_weight, enlarged_start, layer_features, layer_weights,
                     merge_results, run_ended, run_stage, stage_snapshots, stage_steps, tv_term)
from .optimize import Result, SynthesisError

#: Extra rows and columns grown below and right of the texture, then cut off: with 'same'
#: padding a strided convolution pads the bottom and right more than the top and left,
#: so the last ~10 pixels feed fewer windows and stay flat (lower contrast) unless the
#: canvas runs past them.
MARGIN = 16


def synthesize_texture(bundle, texture, *, size=None, layers=None, steps=None, seed: int = 0,
                       optimizer="lbfgs", transform="default", tv_weight: float | None = None,
                       histogram_weight: float | None = None, histogram_layers=None,
                       color_weight: float | None = None, match_colors="default", scales=None,
                       callbacks=(), snapshot_every: int | None = None, memory_limit: int | None = None) -> Result:
    """A new image with the statistics of ``texture`` (a path, a bundled name or a uint8
    array, read at its own size), grown from noise.

    size: ``(H, W)`` or one number, any size including larger than the source and not
    square (default: the source's). layers: the Gram layers, ``{layer: weight}`` or a
    list (default: the loss network's texture layers). transform: the feature transform
    before the statistics (``"default"``: the loss network's).
    histogram_weight: weight of the histogram loss (Risser et al. 2017) against the Gram
    loss's 1, at ``histogram_layers`` (default: the Gram layers); 0 turns it off.
    color_weight: weight of the pixel colour histogram loss
    (:func:`~tfviz.synthesis.objectives.pixel_histogram_match`); 0 turns it off.
    match_colors: after the run, the colours matched to the source's: ``"histogram"``,
    ``"mean_cov"`` or ``None`` (:func:`~tfviz.synthesis.color.match_colors`).
    scales: the stages, coarse to fine, as fractions of the size ending with 1, e.g.
    ``(0.5, 1)``: each stage grows the texture at that fraction of ``size`` from the
    source shrunk by the same fraction, starting from the last stage's image enlarged;
    ``(1,)`` is one stage. steps: per stage, one number or one per stage.
    The defaults of ``steps``, ``tv_weight``, ``histogram_weight``, ``color_weight``,
    ``match_colors`` and ``scales`` are the loss network's (:func:`loss_network`).
    optimizer: ``"lbfgs"`` (default), ``"adam"`` (3 grey levels per step), a learning
    rate for Adam in grey levels per step or a Keras optimizer. Same seed, same image.
    """
    net = loss_network(bundle)
    tv = check_weight("tv_weight", net.texture_tv_weight if tv_weight is None else tv_weight)
    hist_w = check_weight("histogram_weight", net.histogram_weight if histogram_weight is None
                          else histogram_weight)
    color_w = check_weight("color_weight", net.color_weight if color_weight is None else color_weight)
    match_colors = check_match_colors(net.match_colors if match_colors == "default" else match_colors)
    scales = check_scales(net.texture_scales if scales is None else scales)
    steps_list = stage_steps(net.texture_steps if steps is None else steps, len(scales), "scales")
    layers = layer_weights(layers, net.texture)
    h_layers = layer_weights(histogram_layers, layers) if hist_w else {}
    check_spatial_layers(bundle, list(layers) + list(h_layers))
    t = load_image(texture, min_side=bundle.min_input_side)
    hw = tuple(t.shape[:2]) if size is None else check_size(size)
    transform = net.transform if transform == "default" else transform
    canvas = (hw[0] + MARGIN, hw[1] + MARGIN)
    stage_hws = [_scaled(canvas, f) for f in scales]
    source_hws = [_scaled(t.shape[:2], f) for f in scales]
    every = list(dict.fromkeys(list(layers) + list(h_layers)))
    for s_hw, src_hw in zip(stage_hws, source_hws):
        for side in (s_hw, src_hw):
            _check_side(bundle, side)
            check_fits(bundle, every, side, optimizer, memory_limit)
    colors = color_target(t) if color_w else None
    results, stages, x, offset = [], [], None, 0
    for stage, (s_hw, src_hw, n_steps) in enumerate(zip(stage_hws, source_hws, steps_list)):
        objective = _objective(bundle, resize(t, src_hw) if src_hw != t.shape[:2] else t, every, layers, h_layers,
                               hist_w, transform, colors, color_w, tv)
        spec = _params.pixel(size=s_hw, std=0.1) if x is None else enlarged_start(x, s_hw)
        res, x, done = run_stage(bundle, objective, spec, optimizer, steps=n_steps, seed=seed + stage,
                                 callbacks=callbacks, offset=offset, snapshot_every=snapshot_every)
        results.append(res)
        stages.append({"size": s_hw, "source_size": src_hw, **done})
        offset += n_steps
        if run_ended(res):
            break
    last_h, last_w = _scaled(hw, scales[len(results) - 1])     # a stage cut short by Ctrl-C: its own size
    final = results[-1].image[:last_h, :last_w]
    if match_colors is not None and not run_ended(results[-1]):
        final = _match_colors(final, t, match_colors)
    snaps = stage_snapshots(results, steps_list, crops=[_scaled(hw, f) for f in scales])
    out = merge_results(results, final[None], dict(
        recipe="synthesize_texture", layers=layers, histogram_layers=h_layers, histogram_weight=hist_w,
        color_weight=color_w, match_colors=match_colors, tv_weight=tv, transform=transform, scales=scales,
        size=hw, source_size=tuple(t.shape[:2]), stages=stages, margin=MARGIN), snapshots=snaps)
    out.x = out.x[:, :last_h, :last_w]
    return out


def check_scales(scales) -> tuple:
    """Coarse-to-fine fractions: increasing, positive, ending with 1."""
    try:
        out = tuple(float(f) for f in np.atleast_1d(np.asarray(scales, dtype=np.float64)))
    except (TypeError, ValueError):
        raise SynthesisError(f"scales must be fractions of the size ending with 1, e.g. (0.5, 1); got {scales!r}") \
            from None
    if not out or out[-1] != 1.0 or any(not 0 < f <= 1 for f in out) or any(b <= a for a, b in zip(out, out[1:])):
        raise SynthesisError(f"scales must increase and end with 1 (the output's size), e.g. (0.5, 1); got {scales!r}")
    return out


def _scaled(hw, f) -> tuple[int, int]:
    return tuple(max(1, round(s * f)) for s in hw)


def _check_side(bundle, hw) -> None:
    if min(hw) < bundle.min_input_side:
        raise SynthesisError(f"a coarse stage would be {hw[1]}x{hw[0]} pixels, under the {bundle.min_input_side} "
                             f"pixels the model needs a side: use larger sizes or coarser stages nearer 1")


def _objective(bundle, source, every, layers, h_layers, hist_w, transform, colors, color_w, tv):
    """Minus the texture loss of one stage, its targets read from ``source`` in one
    forward pass to ``every`` layer: Gram matrices at ``layers``, histograms at
    ``h_layers`` (times ``hist_w``), the colour histogram (times ``color_w``) and ``tv``
    times TV."""
    fn_t = obj.feature_transform(transform)
    feats = layer_features(bundle, every, bundle.preprocess(source[None]))
    feats = {n: fn_t(tf.convert_to_tensor(f)) for n, f in feats.items()}
    total = sum(layers.values())
    objective = sum((w / total) * obj.gram_match(n, obj.gram_matrix(feats[n]).numpy()[0], normalize=True,
                                                 transform=transform) for n, w in layers.items())
    if h_layers:
        h_total = sum(h_layers.values())
        objective = objective + sum((hist_w * w / h_total) * obj.histogram_match(
            n, obj.histogram_target(feats[n].numpy()), transform=transform) for n, w in h_layers.items() if w)
    if colors is not None:
        objective = objective + color_w * obj.pixel_histogram_match(colors["target"], colors["basis"], colors["mean"])
    if tv:
        objective = objective + tv_term(bundle, tv)
    return objective
