"""Neural style transfer (Gatys et al. 2016) on :func:`~tfviz.synthesis.optimize`, by
default with L-BFGS (:class:`~tfviz.synthesis.optimize.LBFGS`):
``content_weight * content + style_weight * style + tv_weight * TV``, with several
styles blended by weight, a style scale, luminance-only transfer (Gatys et al. 2017)
and coarse-to-fine sizes. The loss network (layers, feature transform, weights) comes
from :func:`~tfviz.synthesis.lossnet.loss_network`; feature inversion and texture
synthesis, its siblings, are :mod:`.inversion` and :mod:`.texture`.
"""
from __future__ import annotations

import os

import numpy as np
import tensorflow as tf

from ..images import load_image, resize
from . import objectives as obj
from . import params as _params
from .lossnet import check_fits, loss_network
from .recipe import (check_positive_int, check_spatial_layers, check_weight, hw_longer, layer_features, layer_grams,
                     layer_weights, lbfgs_or_adam, merge_results, run_ended, shift_callbacks, tv_term)
from .optimize import Result, SynthesisError, _optimizer, optimize

DEFAULT_SIZE = 384          # longer side of a style transfer when ``sizes`` is not given
PRESERVE_COLORS_STYLE_BOOST = 5   # default style weight x this with preserve_colors (see style_transfer)
STYLE_ADAM_LR = 1.2   # optimizer="adam": grey levels per step (0.02 model-input units on lite0 before)


# ---------------------------------------------------------------------- colour
RGB_TO_YIQ = np.array([[0.299, 0.587, 0.114],
                       [0.595716, -0.274453, -0.321263],
                       [0.211456, -0.522591, 0.311135]], np.float64)
YIQ_TO_RGB = np.linalg.inv(RGB_TO_YIQ)


def to_yiq(img) -> np.ndarray:
    """uint8 or float RGB (0..255) -> YIQ floats (Y in 0..255)."""
    return np.asarray(img, np.float64) @ RGB_TO_YIQ.T


def from_yiq(yiq) -> np.ndarray:
    return np.clip(np.asarray(yiq, np.float64) @ YIQ_TO_RGB.T + 0.5, 0, 255).astype(np.uint8)


def _luminance(img, like=None) -> np.ndarray:
    """The Y channel as a gray RGB image; with ``like``, its mean and spread matched to
    ``like``'s luminance (Gatys et al. 2017's luminance-only transfer)."""
    y = to_yiq(img)[..., 0]
    if like is not None:
        yl = to_yiq(like)[..., 0]
        y = (y - y.mean()) * (yl.std() / max(y.std(), 1e-6)) + yl.mean()
    y = np.clip(y + 0.5, 0, 255).astype(np.uint8)
    return np.repeat(y[..., None], 3, axis=-1)


# ---------------------------------------------------------------------- style transfer
def style_transfer(bundle, content, styles, *, style_weights=None, content_layer=None, style_layers=None,
                   content_weight: float | None = None, style_weight: float | None = None,
                   tv_weight: float | None = None, style_scale: float = 1.0, preserve_colors: bool = False,
                   init: str = "content", optimizer="lbfgs", sizes=None, steps=300, seed: int = 0,
                   transform="default", callbacks=(), snapshot_every: int | None = None,
                   memory_limit: int | None = None) -> Result:
    """Gatys et al. 2016: ``content`` painted in the style of ``styles``.

    content, styles: paths or uint8 arrays (one style or a list), any sizes and modes.
    style_weights: one non-negative weight per style (default equal); the target Gram
    matrices are their weighted mean, so weights ``(1, 0)`` give the first style alone.
    content_layer, style_layers (a list or ``{layer: weight}``), transform: default from
    :func:`loss_network`. content_weight, style_weight, tv_weight: the loss's terms
    (content and each style layer are normalized to start near 1; TV on 0..1 pixels).
    style_scale: the style images are resized so their longer side is ``style_scale``
    times the output's before their Gram matrices (bigger: larger strokes).
    preserve_colors: luminance-only transfer (Gatys et al. 2017) -- the output keeps the
    content's colours. The gray style's Gram matrices start much closer to the gray
    content's (style terms near 0.01 instead of 0.1-1 on lite0), so the default
    style_weight is then 5x the network's. init: ``"content"``, ``"style"`` (the first style) or ``"noise"``.
    optimizer: ``"lbfgs"`` (default), ``"adam"`` (:data:`STYLE_ADAM_LR`, 1.2 grey levels per
    step), a learning rate for Adam in grey levels per step (whatever the model's
    preprocessing), or a Keras optimizer. sizes: the longer side of each stage, coarse to fine (``(256, 512,
    1024)``); each stage starts from the previous one enlarged (default: one stage at
    the content's size, at most :data:`DEFAULT_SIZE`). steps: per stage (one number or
    one per stage). A size that would not fit in memory is refused before any work.
    """
    net = loss_network(bundle)
    style_list = [styles] if isinstance(styles, (str, os.PathLike, np.ndarray)) else list(styles)
    if not style_list:
        raise SynthesisError("give at least one style image")
    if style_weights is None:
        style_weights = [1.0] * len(style_list)
    style_weights = [check_weight("a style weight", w) for w in np.atleast_1d(style_weights)]
    if len(style_weights) != len(style_list):
        raise SynthesisError(f"{len(style_weights)} style weights given for {len(style_list)} style images")
    if sum(style_weights) <= 0:
        raise SynthesisError("the style weights must not all be zero")
    cw = check_weight("content_weight", net.content_weight if content_weight is None else content_weight)
    if style_weight is None:   # a gray style is closer to the gray content: luminance-only needs more pull
        style_weight = net.style_weight * (PRESERVE_COLORS_STYLE_BOOST if preserve_colors else 1)
    sw = check_weight("style_weight", style_weight, positive=True)
    tv = check_weight("tv_weight", net.tv_weight if tv_weight is None else tv_weight)
    style_scale = check_weight("style_scale", style_scale, positive=True)
    if init not in ("content", "style", "noise"):
        raise SynthesisError(f"init must be 'content', 'style' or 'noise', got {init!r}")
    c_layer = content_layer or net.content_layer
    s_layers = layer_weights(style_layers, net.style_layers)
    transform = net.transform if transform == "default" else transform
    obj.feature_transform(transform)
    bundle.layer(c_layer)
    check_spatial_layers(bundle, list(s_layers) + [c_layer])
    if isinstance(optimizer, str) and optimizer == "adam":
        optimizer = STYLE_ADAM_LR   # a rate that suits style transfer (Keras's "adam" default is 0.001)
    opt_name = type(_optimizer(optimizer)).__name__  # validated here; each stage makes its own (single-use)

    c_img = load_image(content, min_side=bundle.min_input_side)
    s_imgs = [load_image(s, min_side=bundle.min_input_side) for s in style_list]
    if sizes is None:
        sizes = (min(DEFAULT_SIZE, max(c_img.shape[:2])),)
    sizes = [int(s) if isinstance(s, (int, np.integer)) and not isinstance(s, bool) and s >= 1 else
             _bad_size(s) for s in np.atleast_1d(np.asarray(sizes, dtype=object))]
    steps_list = list(np.atleast_1d(np.asarray(steps, dtype=object)))
    if len(steps_list) == 1:
        steps_list = steps_list * len(sizes)
    if len(steps_list) != len(sizes):
        raise SynthesisError(f"{len(steps_list)} step counts given for {len(sizes)} sizes")
    steps_list = [check_positive_int("steps", s) for s in steps_list]
    layers_all = list(s_layers) + [c_layer]
    for side in sizes:  # refuse before any work
        check_fits(bundle, layers_all, hw_longer(c_img.shape[:2], side), optimizer, memory_limit)
        for s in s_imgs:
            check_fits(bundle, layers_all, hw_longer(s.shape[:2], round(side * style_scale)), optimizer,
                       memory_limit)
    if preserve_colors:
        s_imgs = [_luminance(s, like=c_img) for s in s_imgs]
        work_content = _luminance(c_img)
    else:
        work_content = c_img

    results, x, offset = [], None, 0
    stage_info = []
    total_w = sum(s_layers.values())
    for stage, (side, n_steps) in enumerate(zip(sizes, steps_list)):
        hw = hw_longer(c_img.shape[:2], side)
        c_stage = resize(work_content, hw)
        c_x = bundle.preprocess(c_stage[None])
        c_feat = obj.feature_transform(transform)(layer_features(bundle, [c_layer], c_x)[c_layer]).numpy()
        style_hws, grams = [], {n: 0.0 for n in s_layers}
        for s, w in zip(s_imgs, style_weights):
            s_hw = hw_longer(s.shape[:2], max(1, round(side * style_scale)))
            style_hws.append(s_hw)
            if w == 0:
                continue
            g = layer_grams(bundle, list(s_layers), bundle.preprocess(resize(s, s_hw)[None]), transform)
            for n in s_layers:
                grams[n] = grams[n] + w * g[n]
        grams = {n: g / sum(style_weights) for n, g in grams.items()}
        objective = sum((sw * w / total_w) * obj.gram_match(n, grams[n], normalize=True, transform=transform)
                        for n, w in s_layers.items())
        if cw:
            objective = objective + cw * obj.feature_match(c_layer, c_feat, normalize=True, transform=transform)
        if tv:
            objective = objective + tv_term(bundle, tv)
        if x is not None:
            init_x = tf.image.resize(x, hw, method="bicubic").numpy()
            spec = _params.pixel(init=init_x, init_is_model_input=True)
        elif init == "content":
            spec = _params.pixel(init=c_stage)
        elif init == "style":
            first = int(np.argmax(style_weights))
            spec = _params.pixel(init=resize(s_imgs[first], hw))
        else:
            spec = _params.pixel(size=hw, std=0.1)
        opt, regs = lbfgs_or_adam(optimizer, spec)
        res = optimize(bundle, objective, param=spec, regularizers=regs, steps=n_steps, optimizer=opt,
                       seed=seed + stage, callbacks=shift_callbacks(callbacks, offset),
                       snapshot_every=snapshot_every, flexible_size=True)
        lo, hi = (np.asarray(v, np.float32) for v in bundle.input_range)
        x = np.clip(res.x, lo, hi)
        results.append(res)
        stage_info.append({"size": hw, "style_sizes": style_hws, "steps": res.steps,
                           "evaluations": res.extra.get("evaluations"), "seconds": res.seconds})
        offset += n_steps
        if run_ended(res):
            break
    final = results[-1].image
    if preserve_colors:
        final = _recolor(final, c_img)
    snaps, base = [], 0
    for r, n_steps in zip(results, steps_list):
        snaps += [(s + base, im) for s, im in r.snapshots]
        base += n_steps
    out = merge_results(results, final[None], dict(
        recipe="style_transfer", content_layer=c_layer, style_layers=s_layers, transform=transform,
        style_weights=style_weights, content_weight=cw, style_weight=sw, tv_weight=tv, style_scale=style_scale,
        preserve_colors=bool(preserve_colors), init=init, sizes=[st["size"] for st in stage_info],
        style_sizes=[st["style_sizes"] for st in stage_info], stages=stage_info,
        optimizer=opt_name), snapshots=snaps)
    return out


def _bad_size(s):
    raise SynthesisError(f"sizes must be positive integers (the longer side of each stage), got {s!r}")


def _recolor(rgb, content):
    """``rgb``'s luminance with ``content``'s chroma (I and Q of YIQ)."""
    c = resize(content, rgb.shape[:2]) if content.shape[:2] != rgb.shape[:2] else content
    yiq = to_yiq(c)
    yiq[..., 0] = to_yiq(rgb)[..., 0]
    return from_yiq(yiq)
