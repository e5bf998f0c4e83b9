"""What to maximize: objectives that compose with ``+``, ``-`` and scalar ``*``.

Every objective is a weighted sum of *terms*. A term knows which layers it needs and
whether it needs the logits, and gives one value per image of the batch (shape ``[N]``).
The optimization loop runs ONE forward pass for all layers (and the logits) that the
terms of an objective need, then maximizes ``sum_k coef_k * term_k`` summed over the
batch::

    obj = class_logit("tabby cat") - 1e-3 * l2() + 0.5 * channel("top_conv", 7)

Targets and channels may be one value (every image of the batch) or a list with one
value per image (``channel("top_conv", [0, 1, 2, 3])`` with a batch of 4 gives each image
its own channel) -- this is how neuron grids and multifaceted runs optimize a batch.

Terms see a :class:`Context`: ``ctx.logits`` ``[N, K]``, ``ctx[layer]`` (activations of a
layer), ``ctx.image`` (the transformed image the model saw, model-input space) and
``ctx.raw_image`` (the parameterized image before transforms). Custom terms:
``Objective.custom(fn, layers=[...], logits=False, name=...)`` with ``fn(ctx) -> [N]``.
"""
from __future__ import annotations

import numbers
from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np
import tensorflow as tf

from ..errors import ObjectiveError  # noqa: F401  (the classes live in tfviz.errors)
from ..utils import ChannelError, LayerKindError, TfvizError, did_you_mean


@dataclass
class Context:
    """What a term sees during one step (all tensors; batch first)."""
    image: object                 # transformed image fed to the model (model-input space)
    raw_image: object             # parameterized image before transforms
    logits: object = None         # [N, K] pre-softmax scores (when a term needs them)
    features: dict = field(default_factory=dict)  # layer name -> activations
    center: object = None         # per-channel middle of the valid input range
    lo: object = None             # per-channel low / high of the valid input range
    hi: object = None

    def __getitem__(self, layer: str):
        return self.features[layer]


@dataclass(frozen=True, eq=False)
class Term:
    """One named, unweighted piece of an objective. ``make(bundle, batch)`` validates
    against the model and returns ``fn(ctx) -> [N]``."""
    name: str
    make: Callable
    layers: tuple = ()
    logits: bool = False


class Objective:
    """A weighted sum of terms; maximized by :func:`tfviz.synthesis.optimize`."""

    def __init__(self, terms: Sequence[tuple[float, Term]]):
        self.terms = [(float(c), t) for c, t in terms]

    # -- construction
    @classmethod
    def custom(cls, fn: Callable, layers: Sequence[str] = (), logits: bool = False, name: str = "custom"):
        """An objective from ``fn(ctx) -> [N]`` (one value per image), reading
        ``ctx[layer]`` for each of ``layers`` and ``ctx.logits`` when ``logits``."""
        return cls([(1.0, Term(name, lambda bundle, batch: fn, tuple(layers), bool(logits)))])

    # -- algebra
    def __add__(self, other):
        if isinstance(other, numbers.Number) and other == 0:
            return self
        if not isinstance(other, Objective):
            return NotImplemented
        return Objective(self.terms + other.terms)

    __radd__ = __add__  # sum([...]) starts from 0

    def __neg__(self):
        return Objective([(-c, t) for c, t in self.terms])

    def __sub__(self, other):
        if not isinstance(other, Objective):
            return NotImplemented
        return self + (-other)

    def __mul__(self, k):
        if not isinstance(k, numbers.Number) or isinstance(k, bool):
            return NotImplemented
        return Objective([(c * float(k), t) for c, t in self.terms])

    __rmul__ = __mul__

    def __truediv__(self, k):
        if not isinstance(k, numbers.Number) or isinstance(k, bool):
            return NotImplemented
        return self * (1.0 / float(k))

    def __repr__(self):
        return " + ".join(f"{c:g}*{t.name}" for c, t in self.terms) or "0"

    # -- what the loop needs
    @property
    def layers(self) -> list[str]:
        """Every layer any term needs, in first-use order (one forward pass for all)."""
        out = []
        for _, t in self.terms:
            for name in t.layers:
                if name not in out:
                    out.append(name)
        return out

    @property
    def needs_logits(self) -> bool:
        return any(t.logits for _, t in self.terms)

    def names(self) -> list[str]:
        """Unique display names of the terms (``loss`` tags in logs)."""
        seen: dict[str, int] = {}
        out = []
        for _, t in self.terms:
            k = seen.get(t.name, 0)
            seen[t.name] = k + 1
            out.append(t.name if k == 0 else f"{t.name}#{k + 1}")
        return out

    def bind(self, bundle, batch: int):
        """Validate every term against ``bundle`` and return ``f(ctx) -> (total [N],
        [term values [N], ...])``."""
        if not self.terms:
            raise ObjectiveError("the objective is empty")
        fns = [(c, t.make(bundle, batch)) for c, t in self.terms]

        def evaluate(ctx):
            values = [tf.cast(tf.reshape(fn(ctx), [-1]), tf.float32) for _, fn in fns]
            values = [v if v.shape[0] != 1 or batch == 1 else tf.repeat(v, batch) for v in values]
            total = tf.add_n([c * v for (c, _), v in zip(fns, values)])
            return total, values
        return evaluate


# ---------------------------------------------------------------------- helpers
def _per_image(value, batch: int, what: str) -> list:
    """One value for all images, or one per image -> a list of length ``batch``."""
    if isinstance(value, (list, tuple, np.ndarray)):
        vals = list(value)
        if len(vals) != batch:
            raise ObjectiveError(f"{len(vals)} {what}s given for a batch of {batch} images")
        return vals
    return [value] * batch


def _check_layer(bundle, layer):
    bundle.layer(layer)  # raises UnknownLayerError listing close names
    shape = tuple(_layer_output(bundle, layer).shape)
    return shape


def _spatial_layer(bundle, layer, what):
    """``layer``'s output shape, refused unless it is ``[N, H, W, C]`` (statistics over positions)."""
    shape = _check_layer(bundle, layer)
    if len(shape) != 4:
        raise ObjectiveError(f"{what} needs a spatial layer; {layer!r} has shape {shape}")
    return shape


def _layer_output(bundle, layer):
    out = bundle.layer(layer).output
    if isinstance(out, (list, tuple)):
        raise ObjectiveError(f"layer {layer!r} has several outputs; pick a layer with one")
    return out


def _channels(bundle, layer, c, batch):
    shape = _check_layer(bundle, layer)
    n = shape[-1]
    cs = _per_image(c, batch, "channel")
    for ci in cs:
        if not isinstance(ci, (numbers.Integral, np.integer)) or not 0 <= int(ci) < n:
            raise ChannelError(f"channel {ci!r} out of range: layer {layer!r} has {n} channels (0..{n - 1})")
    return shape, [int(ci) for ci in cs]


def _pick(values, index_list):
    """values [N, K] -> [N]: values[i, index_list[i]]; a map [N, H, W, K] (a segmentation
    output) -> the class's mean over the pixels: "paint the whole image as this class"."""
    idx = tf.constant(index_list, tf.int32)
    n = tf.shape(values)[0]
    idx = idx[:1] if len(index_list) == 1 else idx
    idx = tf.broadcast_to(idx, [n])
    rank = values.shape.rank
    picked = tf.gather(values, idx, axis=rank - 1, batch_dims=1)
    return picked if rank == 2 else tf.reduce_mean(picked, axis=list(range(1, rank - 1)))


# ---------------------------------------------------------------------- objectives
def class_logit(target) -> Objective:
    """The pre-softmax score of class ``target`` (index or name; or one per image)."""
    def make(bundle, batch):
        idx = [bundle.class_index(t) for t in _per_image(target, batch, "target")]
        return lambda ctx: _pick(ctx.logits, idx)
    return Objective([(1.0, Term(f"logit[{_label(target)}]", make, (), True))])


def class_log_prob(target) -> Objective:
    """``log softmax`` of class ``target`` -- the negative cross-entropy (FGSM / PGD)."""
    def make(bundle, batch):
        idx = [bundle.class_index(t) for t in _per_image(target, batch, "target")]
        return lambda ctx: _pick(tf.nn.log_softmax(ctx.logits), idx)
    return Objective([(1.0, Term(f"log_prob[{_label(target)}]", make, (), True))])


def class_margin(target) -> Objective:
    """Target logit minus the largest other logit: positive exactly when the target is
    the model's top-1 class. Useful as a zero-weight monitor (``0 * class_margin(t)``)."""
    def make(bundle, batch):
        idx = [bundle.class_index(t) for t in _per_image(target, batch, "target")]

        def fn(ctx):
            own = _pick(ctx.logits, idx)
            k = tf.shape(ctx.logits)[1]
            n = tf.shape(ctx.logits)[0]
            mask = tf.one_hot(tf.broadcast_to(tf.constant(idx[:1] if len(idx) == 1 else idx), [n]), k,
                              on_value=-np.inf, off_value=0.0)
            return own - tf.reduce_max(ctx.logits + mask, axis=1)
        return fn
    return Objective([(1.0, Term(f"margin[{_label(target)}]", make, (), True))])


def channel(layer: str, c) -> Objective:
    """Mean activation of channel ``c`` of ``layer`` over all positions (a Dense layer's
    unit ``c`` when the layer is not spatial). ``c`` may be one per image."""
    def make(bundle, batch):
        shape, cs = _channels(bundle, layer, c, batch)
        if len(shape) == 4:
            return lambda ctx: _pick(tf.reduce_mean(ctx[layer], axis=[1, 2]), cs)
        if len(shape) == 2:
            return lambda ctx: _pick(ctx[layer], cs)
        raise ObjectiveError(f"layer {layer!r} has output shape {shape}; channel() needs [N,H,W,C] or [N,C]")
    return Objective([(1.0, Term(f"channel[{layer}:{_label(c)}]", make, (layer,)))])


def unit(layer: str, c, y: int | None = None, x: int | None = None) -> Objective:
    """One neuron: channel ``c`` of ``layer`` at position ``(y, x)`` (the centre when
    omitted). On a layer without spatial output, ``unit(layer, c)`` is the unit ``c``;
    giving ``y``/``x`` there is an error."""
    def make(bundle, batch):
        shape, cs = _channels(bundle, layer, c, batch)
        if len(shape) != 4:
            if y is not None or x is not None:
                raise LayerKindError(
                    f"layer {layer!r} has no spatial output (shape {shape}), so unit(y, x) has no position; "
                    + bundle.spatial_hint(layer))
            return lambda ctx: _pick(ctx[layer], cs)
        h, w = shape[1], shape[2]

        def fn(ctx):
            a = ctx[layer]
            yy = y if y is not None else tf.shape(a)[1] // 2   # the centre of the map actually seen
            xx = x if x is not None else tf.shape(a)[2] // 2
            return _pick(a[:, yy, xx, :], cs)
        for v, lim, axis in ((y, h, "y"), (x, w, "x")):
            if v is not None and lim is not None and not 0 <= v < lim:
                raise ChannelError(f"{axis}={v} out of range: layer {layer!r} is {h}x{w} (0..{lim - 1})")
        return fn
    where = "" if y is None and x is None else f"@{'c' if y is None else y},{'c' if x is None else x}"
    return Objective([(1.0, Term(f"unit[{layer}:{_label(c)}{where}]", make, (layer,)))])


def layer_l2(layer: str, normalize: bool = False) -> Objective:
    """``0.5 * ||a||^2`` of a layer's activations: its gradient is the activation itself
    (DeepDream). ``normalize=True``: divided by the activation's size (``H * W * C``), i.e.
    half the mean square, so that layers of different sizes weigh alike in a sum -- as the
    keras-io DeepDream example does."""
    def make(bundle, batch):
        _check_layer(bundle, layer)

        def fn(ctx):
            a = tf.reshape(ctx[layer], [tf.shape(ctx[layer])[0], -1])
            total = 0.5 * tf.reduce_sum(tf.square(a), 1)
            return total / tf.cast(tf.shape(a)[1], total.dtype) if normalize else total
        return fn
    return Objective([(1.0, Term(f"{'mean_l2' if normalize else 'l2'}[{layer}]", make, (layer,)))])


def feature_match(layer: str, target_features, normalize: bool = True, transform=None) -> Objective:
    """``-||phi(x) - phi0||^2`` at ``layer`` (divided by ``||phi0||^2`` when
    ``normalize``, as in Mahendran & Vedaldi). ``target_features``: ``[1 or N, ...]``,
    already passed through ``transform`` (a :func:`feature_transform` name or function,
    applied to the activations before the comparison)."""
    fn_t = feature_transform(transform)

    def make(bundle, batch):
        shape = _check_layer(bundle, layer)
        t = np.asarray(target_features, np.float32)
        if t.ndim == len(shape) - 1:
            t = t[None]
        spatial = len(shape) == 4
        # a spatial layer's size follows the image's (images of any size): channels here,
        # the height and width when the step is traced
        _check_shape(t.shape[1:], (None, None, shape[-1]) if spatial else shape[1:], layer)
        target = tf.constant(t)
        denom = float(max(np.sum(t ** 2) / t.shape[0], 1e-12)) if normalize else 1.0

        def fn(ctx):
            a = fn_t(ctx[layer])
            if spatial and a.shape[1] is not None and tuple(a.shape[1:3]) != t.shape[1:3]:
                raise ObjectiveError(f"target features are {t.shape[1]}x{t.shape[2]} at layer {layer!r} but the "
                                     f"image gives {a.shape[1]}x{a.shape[2]}: make them from an image of this size")
            d = tf.square(a - target)
            return -tf.reduce_sum(tf.reshape(d, [tf.shape(d)[0], -1]), 1) / denom
        return fn
    return Objective([(1.0, Term(f"feature_match[{layer}]", make, (layer,)))])


# ---------------------------------------------------------------------- feature transforms
def _softmax_all(f, temperature: float = 1.0):
    """Wang et al. 2021 (SWAG): a softmax over all activations of the layer (every
    position and channel) -- it raises the entropy of the peaky activations of
    residual networks -- rescaled by their count so the mean stays 1 at any image size."""
    f = tf.convert_to_tensor(f, tf.float32)
    n = tf.shape(f)[0]
    flat = tf.reshape(f, [n, -1])
    count = tf.cast(tf.shape(flat)[1], tf.float32)
    return tf.reshape(tf.nn.softmax(flat / temperature, axis=1) * count, tf.shape(f))


def _softmax_channels(f, temperature: float = 1.0):
    """A softmax over the channels at each position, times the channel count."""
    f = tf.convert_to_tensor(f, tf.float32)
    c = tf.cast(tf.shape(f)[-1], tf.float32)
    return tf.nn.softmax(f / temperature, axis=-1) * c


FEATURE_TRANSFORMS = {
    "none": lambda f: f,
    "softmax": _softmax_all,
    "softmax_channels": _softmax_channels,
}


def feature_transform(transform):
    """A function of ``[N, H, W, C]`` activations from ``None``/``"none"``,
    ``"softmax"`` (SWAG, Wang et al. 2021), ``"softmax_channels"``, or a callable."""
    if transform is None:
        return FEATURE_TRANSFORMS["none"]
    if callable(transform):
        return transform
    if isinstance(transform, str) and transform in FEATURE_TRANSFORMS:
        return FEATURE_TRANSFORMS[transform]
    raise ObjectiveError(did_you_mean("feature transform", str(transform), FEATURE_TRANSFORMS))


def gram_matrix(features):
    """Gram matrix ``G = F F^T / (H W)`` of ``[N, H, W, C]`` features (F: C x HW) ->
    ``[N, C, C]``. Works on numpy arrays and tensors."""
    f = tf.convert_to_tensor(features, tf.float32)
    hw = tf.cast(tf.shape(f)[1] * tf.shape(f)[2], tf.float32)
    return tf.einsum("nhwc,nhwd->ncd", f, f) / hw


def gram_match(layer: str, target_gram, normalize: bool = False, transform=None) -> Objective:
    """``-mean((G(x) - G0)^2)`` over the C x C entries of the Gram matrices at ``layer``
    (texture and style). ``target_gram``: ``[C, C]`` or ``[1 or N, C, C]``, the Gram
    matrix of features passed through ``transform`` (see :func:`feature_transform`),
    which is applied to the activations here too. ``normalize``: divide by
    ``mean(G0^2)`` so every layer's term starts near 1 whatever its scale (tfviz's style
    and texture recipes weight layers this way)."""
    fn_t = feature_transform(transform)

    def make(bundle, batch):
        shape = _spatial_layer(bundle, layer, "gram_match")
        g = np.asarray(target_gram, np.float32)
        if g.ndim == 2:
            g = g[None]
        c = shape[-1]
        if g.shape[1:] != (c, c):
            raise ObjectiveError(f"target Gram matrix has shape {g.shape[1:]}; layer {layer!r} needs ({c}, {c})")
        target = tf.constant(g)
        denom = float(max(np.mean(np.square(g, dtype=np.float64)), 1e-30)) if normalize else 1.0
        return lambda ctx: -tf.reduce_mean(tf.square(gram_matrix(fn_t(ctx[layer])) - target), axis=[1, 2]) / denom
    return Objective([(1.0, Term(f"gram_match[{layer}]", make, (layer,)))])


# ---------------------------------------------------------------------- histograms
MAX_QUANTILES = 4096   # a histogram target keeps at most this many quantiles per channel


def histogram_target(features, transform=None, max_quantiles: int = MAX_QUANTILES) -> np.ndarray:
    """The target of :func:`histogram_match`: ``[Q, C]``, each channel's values of the
    first image of ``[N, H, W, C]`` (or ``[M, C]``) ``features`` (after ``transform``)
    at ``Q`` evenly spaced quantiles (``(j + 0.5) / Q``; all ``M`` sorted values when
    ``M <= max_quantiles``). Works on numpy arrays and tensors."""
    f = np.asarray(feature_transform(transform)(tf.convert_to_tensor(features, tf.float32))
                   if transform is not None else features, np.float32)
    f = f[0].reshape(-1, f.shape[-1]) if f.ndim == 4 else f.reshape(-1, f.shape[-1])
    srt = np.sort(f, axis=0)
    m = srt.shape[0]
    if m <= max_quantiles:
        return srt
    q = (np.arange(max_quantiles) + 0.5) / max_quantiles * m - 0.5
    lo = np.floor(q).astype(np.int64)
    hi = np.minimum(lo + 1, m - 1)
    frac = (q - lo)[:, None].astype(np.float32)
    return srt[lo] * (1 - frac) + srt[hi] * frac


def _target_at(target, n):
    """``target`` quantiles ``[Q, C]`` read at ``n`` evenly spaced ranks -> ``[n, C]``
    (linear between quantiles): what the ``n`` sorted values of a channel must be for
    its histogram to be the target's."""
    q = tf.shape(target)[0]
    qf = tf.cast(q, tf.float32)
    pos = (tf.range(n, dtype=tf.float32) + 0.5) / tf.cast(n, tf.float32) * qf - 0.5
    pos = tf.clip_by_value(pos, 0.0, qf - 1.0)
    lo = tf.cast(tf.floor(pos), tf.int32)
    hi = tf.minimum(lo + 1, q - 1)
    frac = (pos - tf.cast(lo, tf.float32))[:, None]
    return tf.gather(target, lo) * (1.0 - frac) + tf.gather(target, hi) * frac


def histogram_remap(features, target):
    """Risser et al.'s ``R(O)``: ``features`` ``[N, H, W, C]`` (or ``[N, M, C]``) with each
    image's channel values replaced, rank for rank, by the ``target``'s
    (:func:`histogram_target`) -- the values keep their order and take the target's
    histogram exactly (up to the interpolation between quantiles)."""
    f = tf.convert_to_tensor(features, tf.float32)
    shape = tf.shape(f)
    flat = tf.reshape(f, [shape[0], -1, shape[-1]])
    n = tf.shape(flat)[1]
    order = tf.argsort(flat, axis=1, stable=True)
    want = _target_at(tf.convert_to_tensor(target, tf.float32), n)          # [n, C], ascending
    ranks = tf.argsort(order, axis=1, stable=True)                           # each value's rank
    c = tf.shape(flat)[2]
    out = tf.gather_nd(want, tf.stack([ranks, tf.broadcast_to(tf.range(c), tf.shape(ranks))], -1))
    return tf.reshape(out, shape)


HISTOGRAM_BINS = 256   # bins of the current image's histogram in the histogram losses (Risser et al.'s)


def binned_remap(features, target, bins: int = HISTOGRAM_BINS):
    """:func:`histogram_remap` without sorting, as Risser et al. compute it: each
    channel's cumulative histogram in ``bins`` equal bins between its min and max
    (linear within a bin) gives every value its rank ``F``, and the value becomes the
    target's quantile at ``F``. It costs a few passes over the activations, where a sort
    of a large layer costs more than the network's forward pass; at a bin's edges the
    result's histogram is the target's exactly. ``[N, ..., C]`` in, the same shape out;
    no gradient (the losses hold ``R(a)`` fixed)."""
    f = tf.stop_gradient(tf.convert_to_tensor(features, tf.float32))
    shape = tf.shape(f)
    flat = tf.reshape(f, [shape[0], -1, shape[-1]])                      # [N, n, C]
    n_img, n, c = tf.shape(flat)[0], tf.shape(flat)[1], tf.shape(flat)[2]
    lo = tf.reduce_min(flat, axis=1, keepdims=True)
    width = (tf.reduce_max(flat, axis=1, keepdims=True) - lo) / bins + 1e-12
    pos = (flat - lo) / width
    k = tf.clip_by_value(tf.cast(pos, tf.int32), 0, bins - 1)           # pos >= 0: the cast floors
    frac = tf.clip_by_value(pos - tf.cast(k, tf.float32), 0.0, 1.0)
    seg = (tf.range(n_img)[:, None, None] * c + tf.range(c)[None, None, :]) * bins + k   # [N, n, C]
    counts = tf.math.bincount(tf.reshape(seg, [-1]), minlength=n_img * c * bins, maxlength=n_img * c * bins,
                              dtype=tf.float32)
    counts = tf.reshape(counts, [n_img, c, bins]) / tf.cast(n, tf.float32)
    edges = tf.concat([tf.zeros_like(counts[..., :1]), tf.math.cumsum(counts, axis=-1)], -1)   # F at bin edges
    # the target's quantile at every bin edge of every channel: a small table, then one
    # linear piece per bin (the rank F is linear within a bin)
    t = tf.transpose(tf.convert_to_tensor(target, tf.float32))                          # [C, Q]
    q = tf.shape(t)[1]
    u = tf.clip_by_value(edges * tf.cast(q, tf.float32) - 0.5, 0.0, tf.cast(q - 1, tf.float32))
    i0 = tf.cast(u, tf.int32)
    w = u - tf.cast(i0, tf.float32)
    t_b = tf.broadcast_to(t[None], [n_img, c, q])
    table = tf.gather(t_b, i0, batch_dims=2) * (1.0 - w) + tf.gather(t_b, tf.minimum(i0 + 1, q - 1), batch_dims=2) * w
    start = tf.reshape(table[..., :-1], [-1])
    step = tf.reshape(table[..., 1:] - table[..., :-1], [-1])
    out = tf.gather(start, seg) + frac * tf.gather(step, seg)
    return tf.reshape(out, shape)


def histogram_match(layer: str, target, normalize: bool = True, transform=None, bins: int = HISTOGRAM_BINS) \
        -> Objective:
    """Risser, Wilmot & Barnes 2017's histogram loss at ``layer``: ``-mean((a -
    R(a))^2)`` with ``R`` the remap of every channel of the activations ``a`` onto the
    target's histogram (:func:`binned_remap`, ``bins`` bins), ``R(a)`` held fixed, so the
    gradient pulls each value toward its remapped one. ``target``: ``[Q, C]`` from
    :func:`histogram_target` (after ``transform``, which is applied to the activations
    here too). ``normalize``: divided by the target's mean square, so the term starts
    near 1 whatever the layer's scale. The Gram matrix keeps the channels' second
    moments; this keeps their whole distribution: contrast, sparsity, the dark lines."""
    fn_t = feature_transform(transform)

    def make(bundle, batch):
        shape = _spatial_layer(bundle, layer, "histogram_match")
        t = np.asarray(target, np.float32)
        if t.ndim != 2 or t.shape[1] != shape[-1]:
            raise ObjectiveError(f"histogram target has shape {t.shape}; layer {layer!r} needs (quantiles, "
                                 f"{shape[-1]})")
        tt = tf.constant(t)
        denom = float(max(np.mean(np.square(t, dtype=np.float64)), 1e-30)) if normalize else 1.0

        def fn(ctx):
            a = fn_t(ctx[layer])
            d = tf.square(a - binned_remap(a, tt, bins))
            return -tf.reduce_mean(tf.reshape(d, [tf.shape(d)[0], -1]), axis=1) / denom
        return fn
    return Objective([(1.0, Term(f"histogram_match[{layer}]", make, (layer,)))])


def pixel_histogram_match(target, basis=None, mean=None, normalize: bool = True,
                          bins: int = HISTOGRAM_BINS) -> Objective:
    """The image's colours matched to a target's, channel by channel in a decorrelated
    colour space: ``-mean((y - R(y))^2)`` (``R``: :func:`binned_remap`) with ``y = (x01 - mean) @ basis`` the pixels in
    0..1 units projected on the target's principal colour axes (``basis`` ``[3, 3]``,
    ``mean`` ``[3]``; from :func:`tfviz.synthesis.color.color_basis`) and ``target``
    ``[Q, 3]`` their quantiles (:func:`histogram_target` of the target's projected
    pixels). A grey target has no spread on the two chroma axes, so this pulls every
    colour to grey. ``normalize``: divided by the target's total variance."""
    t = np.asarray(target, np.float32)
    if t.ndim != 2 or t.shape[1] != 3:
        raise ObjectiveError(f"pixel histogram target has shape {t.shape}; it needs (quantiles, 3)")
    b = np.eye(3, dtype=np.float32) if basis is None else np.asarray(basis, np.float32)
    m = np.zeros(3, np.float32) if mean is None else np.asarray(mean, np.float32)
    denom = float(max(np.sum(np.var(t, axis=0, dtype=np.float64)), 1e-6)) if normalize else 1.0

    def make(bundle, batch):
        tt, bb, mm = tf.constant(t), tf.constant(b), tf.constant(m)

        def fn(ctx):
            x01 = (ctx.raw_image - ctx.lo) / (ctx.hi - ctx.lo)
            y = tf.einsum("nhwc,cd->nhwd", x01 - mm, bb)
            return -tf.reduce_mean(tf.square(y - binned_remap(y, tt, bins)), axis=[1, 2, 3]) / denom
        return fn
    return Objective([(1.0, Term("pixel_histogram_match", make))])


def l2(weight: float = 1.0) -> Objective:
    """``-weight * mean((x - centre)^2)`` of the image in model-input space, the centre
    being the middle of the valid range (Simonyan's L2 penalty)."""
    def make(bundle, batch):
        return lambda ctx: -tf.reduce_mean(tf.square(ctx.raw_image - ctx.center), axis=[1, 2, 3])
    return Objective([(float(weight), Term("l2", make))])


def total_variation(weight: float = 1.0) -> Objective:
    """``-weight * TV`` with TV the sum of squared differences of neighbouring pixels
    (left-right and up-down, all channels) divided by the number of pixels ``H*W``."""
    def make(bundle, batch):
        def fn(ctx):
            x = ctx.raw_image
            dy = tf.reduce_sum(tf.square(x[:, 1:] - x[:, :-1]), axis=[1, 2, 3])
            dx = tf.reduce_sum(tf.square(x[:, :, 1:] - x[:, :, :-1]), axis=[1, 2, 3])
            hw = tf.cast(tf.shape(x)[1] * tf.shape(x)[2], tf.float32)
            return -(dx + dy) / hw
        return fn
    return Objective([(float(weight), Term("total_variation", make))])


def _check_shape(got, want, layer):
    for g, w in zip(got, want):
        if w is not None and g != w:
            raise ObjectiveError(f"target features have shape {tuple(got)}; layer {layer!r} gives {tuple(want)}")
    if len(got) != len(want):
        raise ObjectiveError(f"target features have shape {tuple(got)}; layer {layer!r} gives {tuple(want)}")


def _label(v):
    if isinstance(v, (list, tuple, np.ndarray)):
        v = list(v)
        return ",".join(map(str, v[:3])) + (",..." if len(v) > 3 else "")
    return str(v)
