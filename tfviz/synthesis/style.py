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
from dataclasses import dataclass

import numpy as np
import tensorflow as tf

from ..images import load_image, resize
from . import objectives as obj
from . import params as _params
from .color import check_match_colors, match_colors as _match_colors
from .lossnet import check_fits, loss_network
from .recipe import (check_spatial_layers, check_weight, enlarged_start, hw_longer,
                     layer_features, layer_weights, merge_results, run_ended, run_stage, stage_snapshots,
                     stage_steps, tv_term)
from .optimize import Result, SynthesisError, _optimizer

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
@dataclass(frozen=True)
class _Settings:
    """:func:`style_transfer`'s arguments, checked, with the loss network's defaults filled in."""
    style_weights: list
    content_weight: float
    style_weight: float
    tv_weight: float
    style_scale: float
    preserve_colors: bool
    init: str
    content_layer: str
    style_layers: dict
    transform: object
    optimizer: object
    optimizer_name: str
    seed: int
    snapshot_every: int | None
    histogram_weight: float = 0.0
    match_colors: str | None = None

    @property
    def layers(self) -> list:
        return list(self.style_layers) + [self.content_layer]


def style_transfer(bundle, content, styles, *, style_weights=None, content_layer=None, style_layers=None,
                   content_weight: float | None = None, style_weight: float | None = None,
                   tv_weight: float | None = None, style_scale: float = 1.0, preserve_colors: bool = False,
                   init: str = "content", optimizer="lbfgs", sizes=None, steps=300, seed: int = 0,
                   transform="default", histogram_weight: float = 0.0, match_colors: str | None = None,
                   callbacks=(), snapshot_every: int | None = None, memory_limit: int | None = None) -> Result:
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
    histogram_weight: a histogram loss (Risser et al. 2017) at the style layers beside
    the Gram loss, relative to it (0: off; the styles' histograms are blended by weight,
    quantile by quantile). match_colors: ``"histogram"`` or ``"mean_cov"`` gives the
    result the styles' colours after the run (:func:`~tfviz.synthesis.color.match_colors`;
    the opposite of ``preserve_colors``, which keeps the content's).
    """
    net = loss_network(bundle)
    style_list = _style_list(styles)
    style_weights = _check_style_weights(style_weights, len(style_list))
    cw, sw, tv = _loss_weights(net, content_weight, style_weight, tv_weight, preserve_colors)
    style_scale = check_weight("style_scale", style_scale, positive=True)
    if init not in ("content", "style", "noise"):
        raise SynthesisError(f"init must be 'content', 'style' or 'noise', got {init!r}")
    hist_w = check_weight("histogram_weight", histogram_weight)
    if check_match_colors(match_colors) is not None and preserve_colors:
        raise SynthesisError("preserve_colors keeps the content's colours and match_colors gives the styles': "
                             "pick one")
    c_layer, s_layers, transform = _loss_layers(bundle, net, content_layer, style_layers, transform)
    optimizer, opt_name = _stage_optimizer(optimizer)
    st = _Settings(style_weights, cw, sw, tv, style_scale, bool(preserve_colors), init, c_layer, s_layers, transform,
                   optimizer, opt_name, seed, snapshot_every, hist_w, match_colors)
    c_img = load_image(content, min_side=bundle.min_input_side)
    s_imgs = [load_image(s, min_side=bundle.min_input_side) for s in style_list]
    sizes, steps_list = _stage_sizes(sizes, steps, c_img)
    _check_stages_fit(bundle, st, c_img, s_imgs, sizes, memory_limit)
    work_content = c_img
    if preserve_colors:   # gray images in; the content's colours come back at the end
        s_imgs = [_luminance(s, like=c_img) for s in s_imgs]
        work_content = _luminance(c_img)
    results, stages = _run_stages(bundle, st, work_content, s_imgs, sizes, steps_list, callbacks)
    return _merge_stages(results, stages, steps_list, st, c_img, s_imgs)


# ---------------------------------------------------------------------- checking the arguments
def _style_list(styles) -> list:
    style_list = [styles] if isinstance(styles, (str, os.PathLike, np.ndarray)) else list(styles)
    if not style_list:
        raise SynthesisError("give at least one style image")
    return style_list


def _check_style_weights(style_weights, n_styles: int) -> list:
    if style_weights is None:
        style_weights = [1.0] * n_styles
    weights = [check_weight("a style weight", w) for w in np.atleast_1d(style_weights)]
    if len(weights) != n_styles:
        raise SynthesisError(f"{len(weights)} style weights given for {n_styles} style images")
    if sum(weights) <= 0:
        raise SynthesisError("the style weights must not all be zero")
    return weights


def _loss_weights(net, content_weight, style_weight, tv_weight, preserve_colors) -> tuple[float, float, float]:
    """The content, style and TV weights, the loss network's where not given."""
    cw = check_weight("content_weight", net.content_weight if content_weight is None else content_weight)
    if style_weight is None:   # a gray style is closer to the gray content: luminance-only needs more pull
        style_weight = net.style_weight * (PRESERVE_COLORS_STYLE_BOOST if preserve_colors else 1)
    sw = check_weight("style_weight", style_weight, positive=True)
    tv = check_weight("tv_weight", net.tv_weight if tv_weight is None else tv_weight)
    return cw, sw, tv


def _loss_layers(bundle, net, content_layer, style_layers, transform):
    """The content layer, ``{style layer: weight}`` and feature transform, the loss
    network's where not given, each checked against the model."""
    c_layer = content_layer or net.content_layer
    s_layers = layer_weights(style_layers, net.style_layers)
    transform = net.transform if transform == "default" else transform
    obj.feature_transform(transform)   # an unknown transform is refused here
    bundle.layer(c_layer)
    check_spatial_layers(bundle, list(s_layers) + [c_layer])
    return c_layer, s_layers, transform


def _stage_optimizer(optimizer):
    """The optimizer argument each stage gets and its class name (checked here; each
    stage makes its own, as a Keras optimizer serves one run)."""
    if isinstance(optimizer, str) and optimizer == "adam":
        optimizer = STYLE_ADAM_LR   # a rate that suits style transfer (Keras's "adam" default is 0.001)
    return optimizer, type(_optimizer(optimizer)).__name__


def _stage_sizes(sizes, steps, content) -> tuple[list, list]:
    """The longer side and the number of steps of each stage."""
    if sizes is None:
        sizes = (min(DEFAULT_SIZE, max(content.shape[:2])),)
    sizes = [int(s) if isinstance(s, (int, np.integer)) and not isinstance(s, bool) and s >= 1 else
             _bad_size(s) for s in np.atleast_1d(np.asarray(sizes, dtype=object))]
    return sizes, stage_steps(steps, len(sizes), "sizes")


def _bad_size(s):
    raise SynthesisError(f"sizes must be positive integers (the longer side of each stage), got {s!r}")


def _check_stages_fit(bundle, st: _Settings, content, styles, sizes, memory_limit) -> None:
    """Refuse, before any work, a stage whose content or style images would not fit in memory."""
    for side in sizes:
        check_fits(bundle, st.layers, hw_longer(content.shape[:2], side), st.optimizer, memory_limit)
        for s in styles:
            check_fits(bundle, st.layers, hw_longer(s.shape[:2], round(side * st.style_scale)), st.optimizer,
                       memory_limit)


# ---------------------------------------------------------------------- the stages
def _run_stages(bundle, st: _Settings, content, styles, sizes, steps_list, callbacks):
    """One optimize run per stage, coarse to fine, each starting from the last one's
    image enlarged; stops after a stage that was interrupted, hit a NaN or was stopped
    by a callback. Returns the results and what each stage did."""
    results, stages, x, offset = [], [], None, 0
    for stage, (side, n_steps) in enumerate(zip(sizes, steps_list)):
        hw = hw_longer(content.shape[:2], side)
        c_stage = resize(content, hw)
        objective, style_hws = _stage_objective(bundle, st, c_stage, styles, side)
        spec = _stage_start(st, c_stage, styles, hw, x)
        res, x, done = run_stage(bundle, objective, spec, st.optimizer, steps=n_steps, seed=st.seed + stage,
                                 callbacks=callbacks, offset=offset, snapshot_every=st.snapshot_every)
        results.append(res)
        stages.append({"size": hw, "style_sizes": style_hws, **done})
        offset += n_steps
        if run_ended(res):
            break
    return results, stages


def _stage_objective(bundle, st: _Settings, c_stage, styles, side):
    """What a stage maximizes: minus the weighted style, content and TV losses, with the
    content ``c_stage`` at the stage's size; and the sizes the styles are read at."""
    c_feat = layer_features(bundle, [st.content_layer], bundle.preprocess(c_stage[None]))[st.content_layer]
    c_feat = obj.feature_transform(st.transform)(c_feat).numpy()
    grams, hists, style_hws = _style_grams(bundle, st, styles, side)
    total_w = sum(st.style_layers.values())
    objective = sum((st.style_weight * w / total_w) * obj.gram_match(n, grams[n], normalize=True,
                                                                      transform=st.transform)
                    for n, w in st.style_layers.items())
    if st.histogram_weight:
        objective = objective + sum((st.style_weight * st.histogram_weight * w / total_w) * obj.histogram_match(
            n, hists[n], transform=st.transform) for n, w in st.style_layers.items() if w)
    if st.content_weight:
        objective = objective + st.content_weight * obj.feature_match(st.content_layer, c_feat, normalize=True,
                                                                      transform=st.transform)
    if st.tv_weight:
        objective = objective + tv_term(bundle, st.tv_weight)
    return objective, style_hws


def _style_grams(bundle, st: _Settings, styles, side):
    """The targets ``{layer: Gram matrix}`` and, with a histogram loss, ``{layer:
    quantiles}``: the styles' weighted means (for the histograms, quantile by quantile:
    their Wasserstein barycentre), each style read with its longer side ``style_scale``
    times the stage's; and those sizes."""
    style_hws, grams, hists = [], {n: 0.0 for n in st.style_layers}, {n: 0.0 for n in st.style_layers}
    fn_t = obj.feature_transform(st.transform)
    for s, w in zip(styles, st.style_weights):
        s_hw = hw_longer(s.shape[:2], max(1, round(side * st.style_scale)))
        style_hws.append(s_hw)
        if w == 0:
            continue
        feats = layer_features(bundle, list(st.style_layers), bundle.preprocess(resize(s, s_hw)[None]))
        for n in st.style_layers:
            f = fn_t(tf.convert_to_tensor(feats[n]))
            grams[n] = grams[n] + w * obj.gram_matrix(f).numpy()[0]
            if st.histogram_weight:
                hists[n] = hists[n] + w * obj.histogram_target(f.numpy(), max_quantiles=1024)
    total = sum(st.style_weights)
    return ({n: g / total for n, g in grams.items()}, {n: h / total for n, h in hists.items()}, style_hws)


def _stage_start(st: _Settings, c_stage, styles, hw, x):
    """Where a stage starts: the last stage's image ``x`` enlarged, else the content,
    the most weighted style, or noise (``init``)."""
    if x is not None:
        return enlarged_start(x, hw)
    if st.init == "content":
        return _params.pixel(init=c_stage)
    if st.init == "style":
        return _params.pixel(init=resize(styles[int(np.argmax(st.style_weights))], hw))
    return _params.pixel(size=hw, std=0.1)


def _merge_stages(results, stages, steps_list, st: _Settings, content, styles) -> Result:
    """One Result: the last stage's image (with ``content``'s colours back when
    ``preserve_colors``, the styles' with ``match_colors``), the snapshots counted over
    all stages, what each stage did."""
    final = results[-1].image
    if st.preserve_colors:
        final = _recolor(final, content)
    if st.match_colors is not None:
        final = _match_colors(final, _pooled_pixels(styles, st.style_weights), st.match_colors)
    return merge_results(results, final[None], dict(
        recipe="style_transfer", content_layer=st.content_layer, style_layers=st.style_layers,
        transform=st.transform, style_weights=st.style_weights, content_weight=st.content_weight,
        style_weight=st.style_weight, tv_weight=st.tv_weight, style_scale=st.style_scale,
        preserve_colors=st.preserve_colors, histogram_weight=st.histogram_weight, match_colors=st.match_colors,
        init=st.init, sizes=[stage["size"] for stage in stages],
        style_sizes=[stage["style_sizes"] for stage in stages], stages=stages,
        optimizer=st.optimizer_name), snapshots=stage_snapshots(results, steps_list))


def _pooled_pixels(styles, weights, n: int = 65536) -> np.ndarray:
    """The styles' pixels pooled in proportion to their weights, ``[n, 1, 3]`` uint8 (a
    colour target for several styles)."""
    total = sum(weights)
    parts = []
    for s, w in zip(styles, weights):
        k = int(round(n * w / total))
        if k:
            px = s.reshape(-1, 3)
            parts.append(px[np.linspace(0, len(px) - 1, k).astype(np.int64)])
    return np.concatenate(parts)[:, None, :]


def _recolor(rgb, content):
    """``rgb``'s luminance with ``content``'s chroma (I and Q of YIQ)."""
    c = resize(content, rgb.shape[:2]) if content.shape[:2] != rgb.shape[:2] else content
    yiq = to_yiq(c)
    yiq[..., 0] = to_yiq(rgb)[..., 0]
    return from_yiq(yiq)
