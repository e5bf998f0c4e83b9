"""The engine shared by every attribution method: images -> model inputs, target scores,
and batched gradient programs (``tf.function``, traced once per input shape and cached
in the bundle, so a second call with the same shape runs without retracing).

Conventions: ``x`` is float32 ``[N, H, W, 3]`` in the model's input space (after
``bundle.preprocess``). Gradients are taken with respect to ``x``; 3-channel results are
returned in RGB order (:func:`to_rgb_order` undoes a caffe-style BGR input).
"""
from __future__ import annotations

import os

import numpy as np
import tensorflow as tf
from scipy.ndimage import gaussian_filter

from ..models import ModelBundle, load_model
from .errors import AttributionError, NonFiniteGradientError
from .heads import head

DEFAULT_BATCH = 32


def as_bundle(bundle):
    """A :class:`~tfviz.models.ModelBundle` from a bundle or a ``load_model`` spec."""
    return bundle if isinstance(bundle, ModelBundle) else load_model(bundle)


def prepare(bundle, images) -> np.ndarray:
    """uint8 RGB images (or anything :mod:`tfviz.images` loads) -> model input at the
    model's input size."""
    u8 = bundle.load_images(images)
    return np.ascontiguousarray(bundle.preprocess(u8), dtype=np.float32)


def to_rgb_order(bundle, g: np.ndarray) -> np.ndarray:
    """Model-input channel order -> RGB (flips caffe-style BGR inputs)."""
    return np.ascontiguousarray(g[..., ::-1]) if bundle.preprocessing.bgr else g


def check_reduce(reduce):
    """``reduce`` of the signed methods: ``"sum"`` (over colour channels) or ``None``."""
    if reduce not in ("sum", None):
        raise AttributionError(f"reduce must be 'sum' or None, got {reduce!r}")


def reduce_channels(bundle, attr: np.ndarray, reduce) -> np.ndarray:
    """Model-order ``[N, H, W, 3]`` attributions -> RGB order, summed over channels
    (``reduce="sum"``) or not (``None``)."""
    check_reduce(reduce)
    attr = to_rgb_order(bundle, attr)
    return attr.sum(axis=-1) if reduce == "sum" else attr


def batches(n: int, batch_size: int):
    batch_size = max(1, int(batch_size or DEFAULT_BATCH))
    for i in range(0, n, batch_size):
        yield slice(i, min(n, i + batch_size))


def padded_batches(total: int, batch_size: int):
    """``(item indices, number of real items)`` per batch: the items split into equal
    batches of at most ``batch_size`` (450 items at 64 -> 8 batches of 57), the last one
    padded by repeating its final item, so a program sees one batch shape per call (one
    trace) with fewer padded items than there are batches."""
    bs = max(1, min(int(batch_size or DEFAULT_BATCH), total))
    nb = -(-total // bs)
    bs = -(-total // nb)
    for s in batches(total, bs):
        it = np.arange(s.start, s.stop)
        k = len(it)
        if k < bs:
            it = np.concatenate([it, np.full(bs - k, it[-1])])
        yield it, k


def group_by_head(targets) -> dict:
    """``{head: indices}``: items whose scores come from the same model output."""
    groups: dict = {}
    for i, t in enumerate(targets):
        groups.setdefault(t.head, []).append(i)
    return {k: np.asarray(v) for k, v in groups.items()}


#: Columns of a selection row (see :func:`selection`).
SEL_INDEX, SEL_MODE, SEL_Y0, SEL_X0, SEL_Y1, SEL_X1, SEL_SIGN = range(7)
SEL_WIDTH = 7
#: How a spatial output ``[N, H, W, C]`` becomes one score: the mean over positions (the
#: default of a unit, or the index of a ``[N, C]`` output), one position, the sum or mean over
#: a box ``[y0, y1) x [x0, x1)``, or the sum or mean over the pixels predicted as the class.
MODES = {"mean": 0, "point": 1, "box_sum": 2, "box_mean": 3, "predicted_sum": 4, "predicted_mean": 5}


def selection(targets) -> np.ndarray:
    """One int32 row per item: ``(index, mode, y0, x0, y1, x1, sign)`` (see :data:`MODES`);
    ``sign`` is -1 for a negated target ("what lowers it"). Traced programs take these rows
    as one tensor, so a new kind of target adds a mode, not an argument to every program."""
    rows = np.zeros((len(targets), SEL_WIDTH), np.int32)
    for i, t in enumerate(targets):
        rows[i] = (t.index, MODES[t.region_mode], *t.region_box, -1 if t.negate else 1)
    return rows


def _region_scores(a, out, sel):
    """Inside a traced function: the score over each item's box or predicted region of a
    spatial output ``out`` ``[B, H, W, C]``, ``a`` being its target channel ``[B, H, W]``."""
    mode = sel[:, SEL_MODE]
    ys = tf.range(tf.shape(a)[1])[None, :, None]
    xs = tf.range(tf.shape(a)[2])[None, None, :]
    box = ((ys >= sel[:, SEL_Y0, None, None]) & (ys < sel[:, SEL_Y1, None, None])
           & (xs >= sel[:, SEL_X0, None, None]) & (xs < sel[:, SEL_X1, None, None]))
    predicted = tf.argmax(out, axis=-1, output_type=tf.int32) == sel[:, SEL_INDEX, None, None]
    region = tf.cast(tf.where((mode >= MODES["predicted_sum"])[:, None, None], predicted, box), a.dtype)
    total = tf.reduce_sum(a * region, axis=[1, 2])
    count = tf.maximum(tf.reduce_sum(region, axis=[1, 2]), 1.0)
    by_mean = (mode == MODES["box_mean"]) | (mode == MODES["predicted_mean"])
    return tf.where(by_mean, total / count, total)


def select_score(out, sel):
    """The target score of each item from a head's output ``out`` (TensorFlow); ``sel``:
    the items' :func:`selection` rows."""
    rank = out.shape.rank
    sign = tf.cast(sel[:, SEL_SIGN], out.dtype)
    idx = sel[:, SEL_INDEX]
    if rank == 2:
        return sign * tf.gather(out, idx, batch_dims=1)
    a = tf.gather(out, idx, axis=rank - 1, batch_dims=1)  # [B, ...spatial]
    mean = tf.reduce_mean(a, axis=list(range(1, rank - 1)))
    if rank != 4:
        return sign * mean
    mode = sel[:, SEL_MODE]
    w = tf.shape(a)[2]
    flat = tf.reshape(a, [tf.shape(a)[0], -1])
    point = tf.gather(flat, tf.maximum(sel[:, SEL_Y0], 0) * w + tf.maximum(sel[:, SEL_X0], 0), batch_dims=1)
    region = tf.cond(tf.reduce_any(mode >= MODES["box_sum"]), lambda: _region_scores(a, out, sel),
                     lambda: mean)
    score = tf.where(mode == MODES["mean"], mean, tf.where(mode == MODES["point"], point, region))
    return sign * score


def gradient_function(bundle, layer=None, relu=None):
    """``f(x, sel) -> (scores [B], d score / d x [B, H, W, 3])`` for one head."""
    def build():
        model = head(bundle, layer, relu)

        @tf.function(autograph=False)
        def tfviz_gradient(x, sel):
            with tf.GradientTape() as tape:
                tape.watch(x)
                out = model(x, training=False)
                s = select_score(out, sel)
                total = tf.reduce_sum(s)
            return s, tape.gradient(total, x)
        return tfviz_gradient
    return bundle.programs.get("attribution.gradient", layer, (relu,), build)


def forward_function(bundle, layer=None):
    """``f(x) -> head output`` (logits, or a layer's output)."""
    def build():
        model = head(bundle, layer)
        def tfviz_forward(x):
            return model(x, training=False)
        return tf.function(tfviz_forward, autograph=False)
    return bundle.programs.get("attribution.forward", layer, (), build)


def head_scores(model, x, activation, sel):
    """Inside a traced function: the target scores of a head's output on ``x`` (logits,
    or probabilities when ``activation`` -- see :func:`score_activation` -- is given)."""
    out = model(x, training=False)
    if activation is not None:
        out = activation(out)
    return select_score(out, sel)


def score_activation(bundle, layer, probability):
    """What turns a head's scores into probabilities: the model's own final softmax or
    sigmoid (bypassed in its logits) when ``probability`` and the scores are logits
    (``layer`` None); else None (units, regression heads, plain logits)."""
    if not probability or layer is not None:
        return None
    return bundle.probabilities


def score_function(bundle, layer=None, probability=False):
    """``f(x, sel) -> scores [B]`` (forward only); ``probability`` turns logits into the
    model's probabilities first."""
    def build():
        model = head(bundle, layer)
        activation = score_activation(bundle, layer, probability)

        @tf.function(autograph=False)
        def tfviz_score(x, sel):
            return head_scores(model, x, activation, sel)
        return tfviz_score
    return bundle.programs.get("attribution.score", layer, (bool(probability),), build)


def forward_scores(bundle, x, batch_size=DEFAULT_BATCH) -> np.ndarray:
    """Logits ``[N, classes]`` of model inputs ``x``."""
    f = forward_function(bundle)
    return np.concatenate([f(x[s]).numpy() for s in batches(len(x), batch_size)])


def target_scores(bundle, x, targets, probability=False, batch_size=DEFAULT_BATCH) -> np.ndarray:
    """The score of each image's target ``[N]``: a logit (or probability) or a unit value."""
    out = np.zeros(len(x), np.float32)
    for layer, ids in group_by_head(targets).items():
        f = score_function(bundle, layer, probability)
        sel = selection([targets[i] for i in ids])
        for s in batches(len(ids), batch_size):
            out[ids[s]] = f(x[ids[s]], sel[s]).numpy()
    return out


def maps_2d(maps, n: int, h: int, w: int) -> np.ndarray:
    """Attribution maps as ``[N, H, W]``: 3-channel maps by the sum of absolute values
    over channels, low-resolution maps resized (bilinear)."""
    m = np.asarray(maps, np.float32)
    if m.ndim == 4:
        m = np.abs(m).sum(axis=-1)
    if m.ndim == 2:
        m = m[None]
    if m.ndim != 3 or m.shape[0] != n:
        raise AttributionError(f"maps of shape {np.shape(maps)} do not match {n} image(s); give [N, H, W] or "
                               f"[N, H, W, 3]")
    if not np.all(np.isfinite(m)):
        raise AttributionError("maps contain NaN or infinite values")
    if m.shape[1:] != (h, w):
        m = tf.image.resize(m[..., None], (h, w), method="bilinear").numpy()[..., 0]
    return m


def pixel_ranks(m: np.ndarray) -> np.ndarray:
    """Per image, each pixel's rank (0 = highest value) as ``[N, H, W]`` int32."""
    n, h, w = m.shape
    order = np.argsort(-m.reshape(n, -1), axis=1, kind="stable")
    rank = np.empty_like(order)
    rank[np.arange(n)[:, None], order] = np.arange(h * w)[None]
    return rank.reshape(n, h, w).astype(np.int32)


def check_finite(arr, what: str, targets=None):
    if not np.all(np.isfinite(arr)):
        bad = ""
        if targets is not None and np.ndim(arr) >= 1:
            rows = [i for i in range(len(arr)) if not np.all(np.isfinite(arr[i]))]
            bad = f" for image(s) {rows[:8]} (target {targets[rows[0]]})"
        raise NonFiniteGradientError(
            f"{what} contain NaN or infinite values{bad}: the model's score is not differentiable there "
            f"(e.g. sqrt or log of 0, or an overflow); check the model and its input range")
    return arr


def gradients(bundle, x, targets, relu=None, batch_size=DEFAULT_BATCH, make_x=None, n=None):
    """Scores ``[N]`` and gradients ``[N, H, W, 3]`` (model channel order) of each item's
    target with respect to its input. ``x`` is an array, or ``None`` with ``make_x(ids)``
    building the inputs of the items ``ids`` on demand (``n`` items) -- used by methods that
    evaluate many perturbed copies (SmoothGrad, Integrated Gradients)."""
    n = len(x) if x is not None else n
    scores = np.zeros(n, np.float32)
    grads = None
    for layer, ids in group_by_head(targets).items():
        f = gradient_function(bundle, layer, relu)
        rows = selection([targets[i] for i in ids])
        # Several batches: the last one is padded to the same size (one traced shape).
        for it, real in padded_batches(len(ids), batch_size):
            sel = ids[it]
            xb = x[sel] if x is not None else make_x(sel)
            sb, gb = f(np.asarray(xb, np.float32), rows[it])
            if gb is None:  # pragma: no cover - a score that does not depend on the input
                raise NonFiniteGradientError("the target score does not depend on the input image")
            gb = gb.numpy()
            if grads is None:
                grads = np.zeros((n,) + gb.shape[1:], np.float32)
            scores[sel[:real]] = sb.numpy()[:real]
            grads[sel[:real]] = gb[:real]
    check_finite(scores, "scores", targets)
    check_finite(grads, "gradients", targets)
    return scores, grads


# --------------------------------------------------------------------------- substitutes
FILLS = ("mean", "zero", "gray", "black", "white", "blur")


def blur_sigma(h: int, w: int) -> float:
    """The default Gaussian blur (pixels) for blurred fills and baselines: 1/20 of the
    larger side (11 px at 224)."""
    return max(1.0, max(h, w) / 20.0)


def blur(x: np.ndarray, sigma: float | None = None) -> np.ndarray:
    """Gaussian blur of ``[N, H, W, C]`` over H and W. Preprocessing is per-channel
    affine, so blurring model inputs equals blurring the pixels."""
    sigma = blur_sigma(*x.shape[1:3]) if sigma is None else float(sigma)
    return gaussian_filter(np.asarray(x, np.float32), sigma=(0, sigma, sigma, 0), mode="nearest").astype(np.float32)


def substitute(bundle, x: np.ndarray, fill, what: str = "fill") -> np.ndarray:
    """What replaces pixels (occlusion patches, deleted pixels, IG baselines), in
    model-input space, ``[N, H, W, 3]``.

    ``fill``: ``"mean"`` (each image's mean color), ``"zero"`` (zeros of the model's
    input, e.g. black for 0-1 models, gray for -1..1), ``"gray"`` / ``"black"`` /
    ``"white"`` (those pixel colors), ``"blur"`` (the image blurred), a number (a gray
    level 0..255), an RGB triple (0..255), an image file, or images (anything
    :mod:`tfviz.images` loads, one for all or one per image)."""
    n, h, w, _ = x.shape
    pre = bundle.preprocess

    def pixel(color):
        c = np.asarray(color, np.float32).reshape(1, 1, 1, 3)
        return np.broadcast_to(pre(np.broadcast_to(c, (1, 1, 1, 3))), x.shape).astype(np.float32)

    if isinstance(fill, str):
        f = fill.strip().lower()
        if f == "mean":
            return np.broadcast_to(x.mean(axis=(1, 2), keepdims=True), x.shape).astype(np.float32)
        if f == "zero":
            return np.zeros_like(x)
        if f in ("gray", "grey"):
            return pixel((128, 128, 128))
        if f == "black":
            return pixel((0, 0, 0))
        if f == "white":
            return pixel((255, 255, 255))
        if f == "blur":
            return blur(x)
        if os.path.isfile(fill):  # an image file
            return np.broadcast_to(pre(bundle.load_images([fill], size=(h, w))), x.shape).astype(np.float32)
        raise AttributionError(f"unknown {what} {fill!r}; one of {', '.join(FILLS)}, a gray level 0..255, an RGB "
                               f"triple or an image")
    if isinstance(fill, (int, float, np.integer, np.floating)) and not isinstance(fill, bool):
        if not 0 <= float(fill) <= 255:
            raise AttributionError(f"{what} gray level {fill} is outside 0..255")
        return pixel((float(fill),) * 3)
    if isinstance(fill, (tuple, list)) and len(fill) == 3 and all(np.isscalar(v) for v in fill):
        return pixel(fill)
    arr = np.asarray(fill) if isinstance(fill, np.ndarray) else fill
    if isinstance(arr, np.ndarray) and arr.ndim == 3:
        arr = arr[None]
    imgs = bundle.load_images(arr, size=(h, w))
    if len(imgs) not in (1, n):
        raise AttributionError(f"{what}: {len(imgs)} images given for {n} inputs; give one, or one per image")
    return np.broadcast_to(pre(imgs), x.shape).astype(np.float32)


def image_chunks(n: int, per_image: int, budget: int = 256):
    """Slices of images such that each chunk expands to at most ~``budget`` items."""
    step = max(1, budget // max(1, per_image))
    for i in range(0, n, step):
        yield slice(i, min(n, i + step))


# --------------------------------------------------------------------------- in-graph sums over many copies
def gradient_batch(bundle, h: int, w: int, batch_size=None) -> int:
    """Items per gradient batch for the in-graph sums (SmoothGrad, Integrated
    Gradients): ``batch_size`` when given, else sized for the machine -- on CPUs about
    eight 224 x 224 images' worth of pixels (efficientnet_lite0, 2 cores: 1.3-1.6
    batch-1 forwards per gradient from batch 4 to 20 against 2.4 at batch 1; larger
    batches fall out of cache, see bench/bench_attribution_floor.py), on a GPU 32 of
    them (as :data:`DEFAULT_BATCH`)."""
    if batch_size:
        return max(1, int(batch_size))
    per = 32 if tf.config.list_logical_devices("GPU") else 8
    return int(min(1024, max(1, round(per * 224 * 224 / max(1, h * w)))))


def even_batches(total: int, batch_size: int):
    """Slices of ``total`` items in near-equal batches of at most ``batch_size`` (20 at 8
    -> 7, 7, 6), no padding: the programs that take them accept any batch size."""
    bs = max(1, min(int(batch_size), total))
    nb = -(-total // bs)
    edges = np.linspace(0, total, nb + 1).round().astype(int)
    for a, b in zip(edges[:-1], edges[1:]):
        yield slice(int(a), int(b))


def smoothgrad_step_function(bundle, layer, shape):
    """``f(count [K], mean [K,H,W], m2 [K,H,W], x [K,H,W,C], eps [S,H,W,C], img [B], j [B],
    sel) -> (count, mean, m2)``: item ``i`` is image ``img[i]`` plus noise draw
    ``j[i]``; its saliency map ``max_c |d score / d x|`` joins the running per-image count,
    mean and sum of squared deviations (Chan et al.'s pairwise update, so VarGrad does not
    lose digits to ``E[m^2] - E[m]^2``). Traced once per image shape: any K, S, B."""
    h, w, c = (int(v) for v in shape)

    def build():
        model = head(bundle, layer, None)
        f32, i32 = tf.float32, tf.int32
        sig = [tf.TensorSpec([None], f32), tf.TensorSpec([None, h, w], f32), tf.TensorSpec([None, h, w], f32),
               tf.TensorSpec([None, h, w, c], f32), tf.TensorSpec([None, h, w, c], f32)] + \
            [tf.TensorSpec([None], i32)] * 2 + [tf.TensorSpec([None, SEL_WIDTH], i32)]

        @tf.function(autograph=False, input_signature=sig)
        def tfviz_smoothgrad_step(count, mean, m2, x, eps, img, j, sel):
            xb = tf.gather(x, img) + tf.gather(eps, j)
            with tf.GradientTape() as tape:
                tape.watch(xb)
                s = select_score(model(xb, training=False), sel)
                total = tf.reduce_sum(s)
            g = tape.gradient(total, xb)
            if g is None:  # pragma: no cover - a score that does not depend on the input
                raise NonFiniteGradientError("the target score does not depend on the input image")
            m = tf.reduce_max(tf.abs(g), axis=-1)  # [B, H, W]
            k = tf.shape(x)[0]
            nb = tf.math.unsorted_segment_sum(tf.ones_like(s), img, k)  # [K]
            mb = tf.math.unsorted_segment_sum(m, img, k) / tf.maximum(nb, 1.0)[:, None, None]
            m2b = tf.math.unsorted_segment_sum(tf.square(m - tf.gather(mb, img)), img, k)
            n = count + nb
            inv = 1.0 / tf.maximum(n, 1.0)
            delta = mb - mean
            mean = mean + delta * (nb * inv)[:, None, None]
            m2 = m2 + m2b + tf.square(delta) * (count * nb * inv)[:, None, None]
            return n, mean, m2
        return tfviz_smoothgrad_step
    return bundle.programs.get("attribution.smoothgrad_step", layer, (h, w, c), build)


def path_step_function(bundle, layer, shape):
    """``f(acc [K,H,W,C], x [K,H,W,C], base [K,H,W,C], alpha [S], weight [S], img [B],
    j [B], sel) -> (acc, scores [B])``: item ``i`` is the point ``base + alpha[j]
    (x - base)`` of image ``img[i]``'s path; ``weight[j] * d score / d point`` is added to
    that image's sum. Traced once per image shape: any K, S, B."""
    h, w, c = (int(v) for v in shape)

    def build():
        model = head(bundle, layer, None)
        f32, i32 = tf.float32, tf.int32
        img4 = tf.TensorSpec([None, h, w, c], f32)
        sig = [img4, img4, img4, tf.TensorSpec([None], f32), tf.TensorSpec([None], f32)] + \
            [tf.TensorSpec([None], i32)] * 2 + [tf.TensorSpec([None, SEL_WIDTH], i32)]

        @tf.function(autograph=False, input_signature=sig)
        def tfviz_path_step(acc, x, base, alpha, weight, img, j, sel):
            bb = tf.gather(base, img)
            p = bb + tf.gather(alpha, j)[:, None, None, None] * (tf.gather(x, img) - bb)
            with tf.GradientTape() as tape:
                tape.watch(p)
                s = select_score(model(p, training=False), sel)
                total = tf.reduce_sum(s)
            g = tape.gradient(total, p)
            if g is None:  # pragma: no cover
                raise NonFiniteGradientError("the target score does not depend on the input image")
            g = g * tf.gather(weight, j)[:, None, None, None]
            return acc + tf.math.unsorted_segment_sum(g, img, tf.shape(x)[0]), s
        return tfviz_path_step
    return bundle.programs.get("attribution.path_step", layer, (h, w, c), build)


def image_groups(n: int, h: int, w: int, c: int, targets, max_bytes: int = 1 << 26):
    """``(head, image indices)`` per group of images whose scores come from the same
    head, split so one group's float32 ``[K, H, W, C]`` tensors stay under ``max_bytes``."""
    per = max(1, max_bytes // max(1, 4 * h * w * c))
    for layer, ids in group_by_head(targets).items():
        for i in range(0, len(ids), per):
            yield layer, ids[i:i + per]
