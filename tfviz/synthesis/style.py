"""Feature inversion (Mahendran & Vedaldi 2015), Gram-matrix texture synthesis (Gatys et
al. 2015) and neural style transfer (Gatys et al. 2016): recipes over :func:`optimize`.

All three match statistics of a frozen network's activations, starting from noise (or
from the content photo) and optimizing the pixels, by default with L-BFGS
(:class:`~tfviz.synthesis.optimize.LBFGS`), whose box bounds keep the image valid:

* inversion: ``||phi(x) - phi(x0)||^2 / ||phi(x0)||^2 + tv * TV(x)`` at one layer;
* texture: ``sum_l w_l ||G_l(x) - G_l(t)||^2 / mean(G_l(t)^2)`` at several layers,
  at any output size (only the convolutional part of the model runs);
* style: ``content_weight * content + style_weight * style + tv_weight * TV``.

The loss network's layers and feature transform come from :func:`loss_network`, one
entry per model family (:data:`LOSS_NETWORKS`); total variation is measured on the
image in 0..1 units, so its weight means the same for every model.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass, replace

import numpy as np

from ..images import caption, hstack, load_image, resize
from . import objectives as obj
from . import params as _params
from . import regularizers as _reg
from .optimize import LBFGS, Result, SynthesisError, _optimizer, optimize

DEFAULT_SIZE = 384          # longer side of a style transfer when ``sizes`` is not given
PRESERVE_COLORS_STYLE_BOOST = 5   # default style weight x this with preserve_colors (see style_transfer)
MEMORY_HEADROOM = 0.7       # use at most this share of the free memory


@dataclass(frozen=True)
class LossNetwork:
    """Which layers of a model the style methods read, and how.

    ``content_layer``: the layer whose activations the content loss matches;
    ``style_layers``: ``{layer: weight}`` whose Gram matrices the style and texture
    losses match; ``transform``: the feature transform applied before both (see
    :func:`tfviz.synthesis.objectives.feature_transform`); ``inversion_layers``: the
    layers of an inversion strip, first block to last; ``texture_layers``: the texture
    loss's layers when they differ from the style's."""
    family: str
    content_layer: str
    style_layers: dict
    transform: str | None = None
    inversion_layers: tuple = ()
    texture_layers: dict | None = None
    content_weight: float = 1.0
    style_weight: float = 10.0
    tv_weight: float = 5.0
    texture_tv_weight: float = 2.0

    @property
    def texture(self) -> dict:
        return dict(self.texture_layers or self.style_layers)


#: Per-model defaults. VGG's are the papers' (Gatys et al. use conv1_1 ... conv5_1 and
#: conv4_2 on VGG19; Johnson et al. relu1_2 ... relu4_3 and relu3_3 on VGG16). The
#: efficientnet_lite0 entry was chosen by comparing candidates side by side
#: (examples/style_candidates.py, docs/img/style_candidates.png).
LOSS_NETWORKS = {
    "efficientnet_lite0": LossNetwork(
        family="efficientnet_lite0",
        content_layer="block4c_add",
        style_layers={"stem_relu": 1.0, "block2a_expand_relu": 1.0, "block3a_expand_relu": 1.0,
                      "block4a_expand_relu": 1.0, "block5a_expand_relu": 1.0},
        transform=None,
        inversion_layers=("stem_relu", "block2b_add", "block3b_add", "block4c_add", "block5c_add",
                          "block6d_add", "top_relu"),
        content_weight=1.0, style_weight=10.0, tv_weight=5.0, texture_tv_weight=2.0),
    "vgg16": LossNetwork(
        family="vgg16", content_layer="block3_conv3",
        style_layers={"block1_conv2": 1.0, "block2_conv2": 1.0, "block3_conv3": 1.0, "block4_conv3": 1.0},
        inversion_layers=("block1_conv2", "block2_conv2", "block3_conv3", "block4_conv3", "block5_conv3"),
        content_weight=1.0, style_weight=10.0, tv_weight=1.0),
    "vgg19": LossNetwork(
        family="vgg19", content_layer="block4_conv2",
        style_layers={"block1_conv1": 1.0, "block2_conv1": 1.0, "block3_conv1": 1.0, "block4_conv1": 1.0,
                      "block5_conv1": 1.0},
        inversion_layers=("block1_conv2", "block2_conv2", "block3_conv4", "block4_conv4", "block5_conv4"),
        content_weight=1.0, style_weight=10.0, tv_weight=1.0),
}


def _family(bundle) -> str | None:
    names = set(bundle.layer_paths())
    if {"stem_relu", "block4c_add", "block5a_expand_relu", "top_relu"} <= names:
        return "efficientnet_lite0"
    if "block5_conv4" in names and "block4_conv2" in names:
        return "vgg19"
    if "block5_conv3" in names and "block5_conv4" not in names and "block3_conv3" in names:
        return "vgg16"
    return None


def _stage_ends(bundle) -> list[str]:
    """The last spatial layer of each resolution, input to output (any model)."""
    from ..models import _output_shape, iter_layers
    ends, last_hw = [], None
    for path, layer, _ in iter_layers(bundle.model):
        s = _output_shape(layer)
        if s is None or len(s) != 4 or path == bundle.model.layers[0].name:
            continue
        if type(layer).__name__ == "InputLayer":
            continue
        hw = tuple(s[1:3])
        if hw != last_hw:
            ends.append(path)
            last_hw = hw
        else:
            ends[-1] = path
    return ends


def loss_network(bundle) -> LossNetwork:
    """The default :class:`LossNetwork` of ``bundle``'s model: the tuned entry of
    :data:`LOSS_NETWORKS` for efficientnet_lite0, VGG16 and VGG19; for other models the
    last layer of each resolution (style: all but the deepest; content: the middle one)."""
    fam = _family(bundle)
    if fam is not None:
        return LOSS_NETWORKS[fam]
    ends = _stage_ends(bundle)
    if not ends:
        raise SynthesisError(f"model {bundle.name!r} has no spatial layers: style and texture methods match "
                             "statistics of convolutional feature maps")
    style = ends[:-1] if len(ends) > 2 else ends
    return LossNetwork(family="generic", content_layer=ends[len(ends) // 2],
                       style_layers={n: 1.0 for n in style[:5]}, inversion_layers=tuple(ends))


# ---------------------------------------------------------------------- memory
def available_memory() -> int:
    """Bytes this process can still allocate: the smaller of the system's available
    memory and the cgroup's limit minus its usage."""
    avail = None
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    avail = int(line.split()[1]) * 1024
    except OSError:
        pass
    if avail is None:
        try:
            avail = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        except (ValueError, OSError, AttributeError):
            avail = 8 << 30
    try:
        with open("/sys/fs/cgroup/memory.max") as fh:
            lim = fh.read().strip()
        if lim != "max":
            with open("/sys/fs/cgroup/memory.current") as fh:
                used = int(fh.read().strip())
            avail = min(avail, int(lim) - used)
    except (OSError, ValueError):
        pass
    return int(avail)


def _bytes_per_pixel(bundle, layers) -> float:
    """Float32 activation bytes per input pixel of one forward pass up to the deepest
    of ``layers`` (every layer's output counted, at the model's input size)."""
    from ..models import _output_shape, iter_layers
    key = ("style.bytes_per_pixel", tuple(layers))
    if key in bundle._cache:
        return bundle._cache[key]
    h, w = (int(s) for s in bundle.input_size)
    order = [p for p, _, _ in iter_layers(bundle.model)]
    wanted = {p for p, layer, _ in iter_layers(bundle.model) if p in layers or layer.name in layers}
    deepest = max((order.index(p) for p in wanted), default=len(order) - 1)
    total = 0
    for i, (p, layer, _) in enumerate(iter_layers(bundle.model)):
        if i > deepest:
            break
        s = _output_shape(layer)
        if s is None or len(s) != 4 or s[1] is None:
            continue
        total += int(np.prod([int(d) for d in s[1:]]))
    bundle._cache[key] = 4.0 * total / (h * w)
    return bundle._cache[key]


def estimate_memory(bundle, layers, hw, optimizer="lbfgs") -> int:
    """Bytes one optimization step of an ``hw`` image through ``layers`` needs: the
    activations kept for the backward pass and their gradients (3x one forward), plus
    L-BFGS's curvature pairs (float64, ``2 * memory + 6`` copies of the image)."""
    h, w = hw
    act = 3.0 * _bytes_per_pixel(bundle, list(layers)) * h * w
    opt = _optimizer(optimizer) if isinstance(optimizer, str) else optimizer
    copies = 2 * opt.memory + 6 if isinstance(opt, LBFGS) else 4
    return int(act + copies * 8.0 * h * w * 3 + (256 << 20))


def check_fits(bundle, layers, hw, optimizer="lbfgs", memory_limit: int | None = None) -> None:
    """Refuse, before any work, an image too large for the free memory, naming the
    largest size that fits."""
    limit = int((memory_limit if memory_limit is not None else available_memory()) * MEMORY_HEADROOM)
    need = estimate_memory(bundle, layers, hw, optimizer)
    if need <= limit:
        return
    h, w = hw
    scale = math.sqrt(max(limit - (256 << 20), 1) / max(need - (256 << 20), 1))
    side = int(max(h, w) * scale) // 16 * 16
    raise SynthesisError(
        f"a {w}x{h} image needs about {need / 2**30:.1f} GB here and about {limit / 2**30:.1f} GB can be used: "
        f"the largest that fits is about {max(side, 16)} px on the longer side"
        + ("; run coarse-to-fine up to that size" if side >= 64 else ""))


# ---------------------------------------------------------------------- helpers
def _hw_longer(hw, side: int) -> tuple[int, int]:
    h, w = hw
    s = side / max(h, w)
    return max(1, round(h * s)), max(1, round(w * s))


def _check_positive_int(name, v):
    if not isinstance(v, (int, np.integer)) or isinstance(v, bool) or v < 1:
        raise SynthesisError(f"{name} must be a positive integer, got {v!r}")
    return int(v)


def _check_weight(name, v, positive=False):
    try:
        v = float(v)
    except (TypeError, ValueError):
        raise SynthesisError(f"{name} must be a number, got {v!r}") from None
    if not math.isfinite(v) or v < 0 or (positive and v == 0):
        raise SynthesisError(f"{name} must be {'positive' if positive else 'zero or positive'}, got {v}")
    return v


def _size_arg(size, what="size") -> tuple[int, int]:
    if isinstance(size, (int, np.integer)) and not isinstance(size, bool):
        size = (size, size)
    try:
        h, w = (int(s) for s in size)
    except (TypeError, ValueError):
        raise SynthesisError(f"{what} must be (height, width) or one number, got {size!r}") from None
    if h < 1 or w < 1:
        raise SynthesisError(f"{what} must be positive, got {size!r}")
    return h, w


def _features(bundle, layers, x):
    """Activations of ``layers`` for model-input images ``x`` at their own size."""
    import tensorflow as tf
    from .optimize import forward_fn
    _, feats = forward_fn(bundle, list(layers), False, True)(tf.constant(np.asarray(x, np.float32)))
    return feats


def _grams(bundle, layers, x, transform):
    import tensorflow as tf
    fn_t = obj.feature_transform(transform)
    feats = _features(bundle, layers, x)
    return {n: obj.gram_matrix(fn_t(tf.convert_to_tensor(feats[n]))).numpy()[0] for n in layers}


def _spatial_layers(bundle, layers):
    for n in layers:
        bundle.spatial_layer(n)  # unknown or not spatial: one error naming the valid ones


def _tv(bundle, weight):
    """``weight * TV`` of the image in 0..1 units (model-input units divided by the
    width of the valid range)."""
    lo, hi = (np.asarray(v, np.float32) for v in bundle.input_range)
    return obj.total_variation(weight / float(np.mean(hi - lo)) ** 2)


def _lbfgs_or_adam(optimizer, param):
    """The optimizer and regularizers for a recipe: L-BFGS keeps pixels valid by its
    bounds; gradient steps need clipping."""
    opt = _optimizer(optimizer)
    regs = [] if isinstance(opt, LBFGS) or not isinstance(param, _params.pixel) else [_reg.clip_range()]
    return opt, regs


def _shift_callbacks(callbacks, offset):
    return [lambda s, im, ls, cb=cb, off=offset: cb(s + off, im, ls) for cb in callbacks]


def _merge(results, images, extra, snapshots=None):
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


def _ended(res) -> bool:
    return bool(res.interrupted or res.nan_step is not None or (res.stopped and "callback" in res.stopped))


# ---------------------------------------------------------------------- inversion
def invert_features(bundle, image, layer: str, *, tv_weight: float | None = None, steps: int = 200,
                    param="fourier", optimizer="lbfgs", seed: int = 0, transform=None, callbacks=(),
                    snapshot_every: int | None = None) -> Result:
    """Mahendran & Vedaldi 2015: the image whose activations at ``layer`` match those of
    ``image`` (a path, a bundled photo's array, uint8 ``[H, W, 3]``; resized to the
    model's input), starting from noise. Minimizes
    ``||phi(x) - phi(x0)||^2 / ||phi(x0)||^2 + tv_weight * TV(x)`` with TV on the image
    in 0..1 units (default weight: :data:`INVERSION_TV`). ``param``: ``"fourier"``
    (default: the decorrelated Fourier image with ``decay_power`` 1.5, whose natural
    1/f spectrum lets deep layers' reconstructions keep colour and contrast; plain
    pixels stay gray there) or ``"pixel"``, or a spec; ``optimizer``: ``"lbfgs"`` (default), a learning rate for Adam or a
    Keras optimizer. ``extra["psnr"]`` is the reconstruction's PSNR against the image."""
    steps = _check_positive_int("steps", steps)
    tv = INVERSION_TV if tv_weight is None else _check_weight("tv_weight", tv_weight)
    bundle.layer(layer)
    x0 = bundle.load_images([image])[0]
    target = _features(bundle, [layer], bundle.preprocess(x0[None]))[layer]
    target = obj.feature_transform(transform)(target).numpy()
    objective = obj.feature_match(layer, target, normalize=True, transform=transform) + _tv(bundle, tv)
    spec = _params.get(param)
    if isinstance(spec, _params.pixel) and spec.init is None:
        spec = replace(spec, std=0.02)  # start from faint noise around mid-gray
    if isinstance(spec, _params.fourier):
        spec = replace(spec, decay_power=INVERSION_DECAY if param == "fourier" else spec.decay_power)
    opt, regs = _lbfgs_or_adam(optimizer, spec)
    res = optimize(bundle, objective, param=spec, regularizers=regs, steps=steps, optimizer=opt, seed=seed,
                   callbacks=callbacks, snapshot_every=snapshot_every)
    res.extra.update(recipe="invert_features", layer=layer, tv_weight=tv, psnr=psnr(res.image, x0), original=x0)
    return res


INVERSION_TV = 0.5
INVERSION_DECAY = 1.5


def psnr(a, b) -> float:
    """Peak signal-to-noise ratio of two uint8 images, in dB."""
    d = np.mean((np.asarray(a, np.float64) - np.asarray(b, np.float64)) ** 2)
    return float("inf") if d == 0 else float(10 * np.log10(255.0 ** 2 / d))


def inversion_strip(bundle, image, layers=None, *, steps: int = 200, tv_weight: float | None = None,
                    param="fourier", seed: int = 0, optimizer="lbfgs", callbacks=(), size: int = 160) -> Result:
    """One reconstruction per layer (default: the loss network's inversion layers, first
    conv block to last), side by side after the original: early layers keep the photo,
    deep ones only what matters for the class. ``images``: the reconstructions
    ``[L, H, W, 3]``; ``extra["strip"]``: the captioned strip; ``extra["psnr"]``: one PSNR
    per layer. Callbacks see steps counted over all layers."""
    layers = list(layers or loss_network(bundle).inversion_layers or _stage_ends(bundle))
    if not layers:
        raise SynthesisError("no layers to invert")
    for n in layers:
        bundle.layer(n)
    steps = _check_positive_int("steps", steps)
    results, offset = [], 0
    for n in layers:
        r = invert_features(bundle, image, n, tv_weight=tv_weight, steps=steps, param=param, seed=seed,
                            optimizer=optimizer, callbacks=_shift_callbacks(callbacks, offset))
        results.append(r)
        offset += steps
        if _ended(r):
            break
    original = results[0].extra["original"]
    tiles = [caption(resize(original, (size, size)), "original")]
    tiles += [caption(resize(r.image, (size, size)), f"{n}") for n, r in zip(layers, results)]
    out = _merge(results, np.stack([r.image for r in results]),
                 dict(recipe="inversion_strip", layers=layers[:len(results)], strip=hstack(tiles, gap=4),
                      psnr=[r.extra["psnr"] for r in results], original=original))
    out.snapshots = [(s, im) for r in results for s, im in r.snapshots]
    return out


# ---------------------------------------------------------------------- texture
def synthesize_texture(bundle, texture, *, size=None, layers=None, steps: int = 200, seed: int = 0,
                       optimizer="lbfgs", transform="default", tv_weight: float | None = None,
                       callbacks=(), snapshot_every: int | None = None, memory_limit: int | None = None) -> Result:
    """Gatys et al. 2015: a new image with the Gram matrices of ``texture`` (a path or a
    uint8 array, read at its own size) at ``layers`` (``{layer: weight}`` or a list;
    default: the loss network's texture layers), from noise. ``size``: ``(H, W)`` or one
    number, any size including larger than the source and non-square (default: the
    source's). ``transform``: the feature transform before the Gram matrices
    (``"default"``: the loss network's). Same seed, same image."""
    net = loss_network(bundle)
    steps = _check_positive_int("steps", steps)
    tv = _check_weight("tv_weight", net.texture_tv_weight if tv_weight is None else tv_weight)
    layers = _layer_weights(layers, net.texture)
    _spatial_layers(bundle, layers)
    t = load_image(texture, min_side=bundle.min_input_side)
    hw = tuple(t.shape[:2]) if size is None else _size_arg(size)
    transform = net.transform if transform == "default" else transform
    check_fits(bundle, layers, hw, optimizer, memory_limit)
    check_fits(bundle, layers, t.shape[:2], optimizer, memory_limit)
    grams = _grams(bundle, list(layers), bundle.preprocess(t[None]), transform)
    total = sum(layers.values())
    objective = sum((w / total) * obj.gram_match(n, grams[n], normalize=True, transform=transform)
                    for n, w in layers.items())
    if tv:
        objective = objective + _tv(bundle, tv)
    spec = _params.pixel(size=hw, std=0.1)
    opt, regs = _lbfgs_or_adam(optimizer, spec)
    res = optimize(bundle, objective, param=spec, regularizers=regs, steps=steps, optimizer=opt, seed=seed,
                   callbacks=callbacks, snapshot_every=snapshot_every, flexible_size=True)
    res.extra.update(recipe="synthesize_texture", layers=layers, transform=transform, size=hw,
                     source_size=tuple(t.shape[:2]))
    return res


def _layer_weights(layers, default) -> dict:
    if layers is None:
        return dict(default)
    if isinstance(layers, str):
        layers = [layers]
    if isinstance(layers, dict):
        out = {str(k): _check_weight(f"weight of layer {k!r}", v) for k, v in layers.items()}
    else:
        out = {str(n): 1.0 for n in layers}
    if not out:
        raise SynthesisError("give at least one layer")
    if sum(out.values()) <= 0:
        raise SynthesisError("the layer weights must not all be zero")
    return out


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
    optimizer: ``"lbfgs"`` (default), ``"adam"``, a learning rate for Adam, or a Keras
    optimizer. sizes: the longer side of each stage, coarse to fine (``(256, 512,
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
    style_weights = [_check_weight("a style weight", w) for w in np.atleast_1d(style_weights)]
    if len(style_weights) != len(style_list):
        raise SynthesisError(f"{len(style_weights)} style weights given for {len(style_list)} style images")
    if sum(style_weights) <= 0:
        raise SynthesisError("the style weights must not all be zero")
    cw = _check_weight("content_weight", net.content_weight if content_weight is None else content_weight)
    if style_weight is None:   # a gray style is closer to the gray content: luminance-only needs more pull
        style_weight = net.style_weight * (PRESERVE_COLORS_STYLE_BOOST if preserve_colors else 1)
    sw = _check_weight("style_weight", style_weight, positive=True)
    tv = _check_weight("tv_weight", net.tv_weight if tv_weight is None else tv_weight)
    style_scale = _check_weight("style_scale", style_scale, positive=True)
    if init not in ("content", "style", "noise"):
        raise SynthesisError(f"init must be 'content', 'style' or 'noise', got {init!r}")
    c_layer = content_layer or net.content_layer
    s_layers = _layer_weights(style_layers, net.style_layers)
    transform = net.transform if transform == "default" else transform
    obj.feature_transform(transform)
    bundle.layer(c_layer)
    _spatial_layers(bundle, list(s_layers) + [c_layer])
    opt0 = _optimizer(optimizer if optimizer != "adam" else 0.02)
    del opt0  # validated; a new optimizer is made per stage (Keras optimizers are single-use)

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
    steps_list = [_check_positive_int("steps", s) for s in steps_list]
    layers_all = list(s_layers) + [c_layer]
    for side in sizes:  # refuse before any work
        check_fits(bundle, layers_all, _hw_longer(c_img.shape[:2], side), optimizer, memory_limit)
        for s in s_imgs:
            check_fits(bundle, layers_all, _hw_longer(s.shape[:2], round(side * style_scale)), optimizer,
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
        hw = _hw_longer(c_img.shape[:2], side)
        c_stage = resize(work_content, hw)
        c_x = bundle.preprocess(c_stage[None])
        c_feat = obj.feature_transform(transform)(_features(bundle, [c_layer], c_x)[c_layer]).numpy()
        style_hws, grams = [], {n: 0.0 for n in s_layers}
        for s, w in zip(s_imgs, style_weights):
            s_hw = _hw_longer(s.shape[:2], max(1, round(side * style_scale)))
            style_hws.append(s_hw)
            if w == 0:
                continue
            g = _grams(bundle, list(s_layers), bundle.preprocess(resize(s, s_hw)[None]), transform)
            for n in s_layers:
                grams[n] = grams[n] + w * g[n]
        grams = {n: g / sum(style_weights) for n, g in grams.items()}
        objective = sum((sw * w / total_w) * obj.gram_match(n, grams[n], normalize=True, transform=transform)
                        for n, w in s_layers.items())
        if cw:
            objective = objective + cw * obj.feature_match(c_layer, c_feat, normalize=True, transform=transform)
        if tv:
            objective = objective + _tv(bundle, tv)
        if x is not None:
            import tensorflow as tf
            init_x = tf.image.resize(x, hw, method="bicubic").numpy()
            spec = _params.pixel(init=init_x, init_is_model_input=True)
        elif init == "content":
            spec = _params.pixel(init=c_stage)
        elif init == "style":
            first = int(np.argmax(style_weights))
            spec = _params.pixel(init=resize(s_imgs[first], hw))
        else:
            spec = _params.pixel(size=hw, std=0.1)
        stage_opt = optimizer if optimizer != "adam" else 0.02
        opt, regs = _lbfgs_or_adam(stage_opt, spec)
        res = optimize(bundle, objective, param=spec, regularizers=regs, steps=n_steps, optimizer=opt,
                       seed=seed + stage, callbacks=_shift_callbacks(callbacks, offset),
                       snapshot_every=snapshot_every, flexible_size=True)
        lo, hi = (np.asarray(v, np.float32) for v in bundle.input_range)
        x = np.clip(res.x, lo, hi)
        results.append(res)
        stage_info.append({"size": hw, "style_sizes": style_hws, "steps": res.steps,
                           "evaluations": res.extra.get("evaluations"), "seconds": res.seconds})
        offset += n_steps
        if _ended(res):
            break
    final = results[-1].image
    if preserve_colors:
        final = _recolor(final, c_img)
    snaps, base = [], 0
    for r, n_steps in zip(results, steps_list):
        snaps += [(s + base, im) for s, im in r.snapshots]
        base += n_steps
    out = _merge(results, final[None], dict(
        recipe="style_transfer", content_layer=c_layer, style_layers=s_layers, transform=transform,
        style_weights=style_weights, content_weight=cw, style_weight=sw, tv_weight=tv, style_scale=style_scale,
        preserve_colors=bool(preserve_colors), init=init, sizes=[st["size"] for st in stage_info],
        style_sizes=[st["style_sizes"] for st in stage_info], stages=stage_info,
        optimizer=type(_optimizer(optimizer if optimizer != "adam" else 0.02)).__name__), snapshots=snaps)
    return out


def _bad_size(s):
    raise SynthesisError(f"sizes must be positive integers (the longer side of each stage), got {s!r}")


def _recolor(rgb, content):
    """``rgb``'s luminance with ``content``'s chroma (I and Q of YIQ)."""
    c = resize(content, rgb.shape[:2]) if content.shape[:2] != rgb.shape[:2] else content
    yiq = to_yiq(c)
    yiq[..., 0] = to_yiq(rgb)[..., 0]
    return from_yiq(yiq)


__all__ = ["LossNetwork", "LOSS_NETWORKS", "loss_network", "invert_features", "inversion_strip",
           "synthesize_texture", "style_transfer", "estimate_memory", "check_fits", "available_memory", "psnr",
           "to_yiq", "from_yiq"]
