"""Class activation maps from gradients: Grad-CAM and guided Grad-CAM (Selvaraju et al.
2017), Grad-CAM++ (Chattopadhay et al. 2018), Layer-CAM (Jiang et al. 2021), HiResCAM
(Draelos & Carin 2020), XGrad-CAM (Fu et al. 2020), Eigen-CAM (Muhammad & Yeasin 2020) and
EigenGrad-CAM.

Grad-CAM weights each channel ``k`` of a spatial conv layer's activations ``A`` by the
spatial mean of ``d score / d A_k`` and keeps the positive part of the weighted sum,
``relu(sum_k alpha_k A_k)``, upsampled (bilinear) to the input size. Guided Grad-CAM
multiplies it with guided backprop, pixel by pixel. The other methods change only the
weights (:func:`weighted_activations`) or replace the channel sum by the first principal
component (:func:`project_first_component`); each runs in one traced program per kind,
layer, head and options (:func:`_cam_function`). Score-CAM, which needs no gradient, is in
:mod:`.scorecam`.

Every CAM method takes ``relu`` (the positive part, or the signed map), ``eigen_smooth``
(the first principal component of ``w * A`` instead of its channel sum, as
pytorch-grad-cam) and ``aug_smooth`` (test-time augmentation: the map averaged over the
image and its mirror at scales 1.0, 1.1 and 0.9, each mapped back; :func:`augmented`,
:func:`augment`, :func:`deaugment`, :func:`view_selection` are the pieces, public for other
CAM methods). pytorch-grad-cam's ``aug_smooth`` multiplies the pixel values by 0.9 and 1.1
(ttach's ``Multiply``) instead of resizing; here the views are geometric scales.

A token layer ``[N, T, D]`` (a vision transformer's) is a spatial layer laid out flat:
:func:`as_grid` puts its tokens back on their patch grid ``[N, gh, gw, D]``, found from
the token count and the input size (:func:`token_grid`), leading class and register
tokens dropped -- as pytorch-grad-cam's ``reshape_transform`` does for ViTs.
"""
from __future__ import annotations

import numpy as np
import tensorflow as tf

from ..default_layers import cam_layer as default_layer
from ..models import output_shape
from ..models.tokens import as_grid, is_token_layer, token_grid
from .core import (DEFAULT_BATCH, MODES, SEL_MODE, SEL_X0, SEL_X1, SEL_Y0, SEL_Y1, check_finite, group_by_head,
                   padded_batches, select_score, selection)
from .errors import AttributionError, NoSpatialLayerError, TargetError
from .guided import guided_backprop
from .heads import head
from .registry import attribution_method
from .rules import guided_rule_reason


def check_layer(bundle, layer: str) -> str:
    if not isinstance(layer, str):
        raise NoSpatialLayerError(f"layer must be a layer name, got {layer!r}")
    lay = bundle.layer(layer)  # UnknownLayerError listing names
    s = output_shape(lay)
    if s is not None and len(s) == 3 and s[1] is not None:
        token_grid(s[1], bundle.input_size)  # a count that fits no grid: the one clear error now
        return layer
    if s is None or len(s) != 4:
        spatial = bundle.layer_names(spatial=True)
        raise NoSpatialLayerError(
            f"layer {layer!r} has output shape {s}; Grad-CAM needs a spatial [N, H, W, C] layer or a "
            f"transformer's token [N, T, D] layer"
            + (f", e.g. {', '.join(spatial[-6:])}" if spatial else " and the model has no spatial one"))
    return layer


def _is_map(bundle, name: str) -> bool:
    """The layer's output is spatial ``[N, H, W, C]``, or tokens that fit the input's patch grid."""
    return is_token_layer(bundle, name) or len(output_shape(bundle.layer(name)) or ()) == 4


CAM_KINDS = ("grad_cam", "grad_cam_plus_plus", "layer_cam", "hires_cam", "xgrad_cam", "eigen_cam",
             "eigengrad_cam")
#: The kinds whose map is a first principal component (:func:`project_first_component`) by
#: definition; the others sum their weighted channels unless ``eigen_smooth``.
PROJECTED_KINDS = ("eigen_cam", "eigengrad_cam")
#: Kinds that need no gradient (class-agnostic): the activations alone.
GRADIENT_FREE_KINDS = ("eigen_cam",)


def weighted_activations(kind: str, a, da):
    """The weighted activations ``w * A`` ``[B, h, w, C]`` whose channel sum (or first
    principal component) is the CAM of ``kind``, from the activations ``a`` and the
    gradient ``da = d score / d a`` (both ``[B, h, w, C]``, TensorFlow; ``da`` unused, may
    be None, for ``eigen_cam``):

    * ``grad_cam`` -- ``w_k = mean_ij(da_kij)`` (Selvaraju et al. 2017);
    * ``grad_cam_plus_plus`` -- ``w_k = sum_ij alpha_kij relu(da_kij)``,
      ``alpha = da^2 / (2 da^2 + sum_ab a_kab da^3)`` (Chattopadhay et al. 2018, eq. 19:
      the second and third derivatives of ``exp(score)`` written through the first, as the
      paper does; the common factor ``exp(score)`` cancels in ``alpha`` and only scales
      the map, so it is left out and large logits cannot overflow);
    * ``layer_cam`` -- ``w_kij = relu(da_kij)``, element-wise (Jiang et al. 2021);
    * ``hires_cam`` -- ``w_kij = da_kij``, element-wise, the gradient not pooled (Draelos &
      Carin 2020);
    * ``xgrad_cam`` -- ``w_k = sum_ij (a_kij / sum_ab a_kab) da_kij`` (Fu et al. 2020; a
      channel whose activations sum to 0 gets the plain sum of its ``a * da``, 0 for a
      dead ReLU channel);
    * ``eigen_cam`` -- ``a`` itself; ``eigengrad_cam`` -- ``da * a`` (their maps are the
      first principal component, :func:`cam_map`).
    """
    if kind not in CAM_KINDS:  # pragma: no cover - internal
        raise AttributionError(f"unknown CAM kind {kind!r}; one of {CAM_KINDS}")
    if kind == "eigen_cam":
        return a
    if kind in ("hires_cam", "eigengrad_cam"):
        return da * a
    if kind == "grad_cam":
        w = tf.reduce_mean(da, axis=[1, 2], keepdims=True)
    elif kind == "grad_cam_plus_plus":
        g2 = da * da
        denom = 2.0 * g2 + tf.reduce_sum(a, axis=[1, 2], keepdims=True) * g2 * da
        alpha = g2 / tf.where(denom != 0.0, denom, tf.ones_like(denom))
        w = tf.reduce_sum(alpha * tf.nn.relu(da), axis=[1, 2], keepdims=True)
    elif kind == "xgrad_cam":
        total = tf.reduce_sum(a, axis=[1, 2], keepdims=True)
        w = tf.reduce_sum(a * da, axis=[1, 2], keepdims=True) / tf.where(total != 0.0, total, tf.ones_like(total))
    else:  # layer_cam
        w = tf.nn.relu(da)
    return w * a


def project_first_component(weighted, center: bool = False):
    """Each image's ``[h, w, C]`` (of ``weighted`` ``[B, h, w, C]``, TensorFlow) projected
    on its first principal direction -> ``[B, h, w]``: the positions as ``h * w`` rows of
    ``C`` features, ``M = U S V^T`` (one batched ``tf.linalg.svd``), the map ``M v_1``.

    As the Eigen-CAM paper (Muhammad & Yeasin 2020, eq. 5), the rows are not centred
    (``center=True`` subtracts each channel's mean over the positions first, as
    pytorch-grad-cam's ``get_2d_projection`` does). The SVD leaves the sign of ``v_1``
    free; it is fixed so the map's value of largest magnitude is positive (``max >=
    -min``, the sign correction of Seg-Eigen-CAM, Chung & Ying 2025, eq. 13): for
    non-negative activations (after a ReLU) the map is then non-negative everywhere. (A
    rule on sums fails on a transformer's LayerNorm output, whose rows sum to ~0.) Used by
    Eigen-CAM, EigenGrad-CAM and every CAM method's ``eigen_smooth``."""
    shape = tf.shape(weighted)
    c = weighted.shape[-1]
    flat = tf.reshape(weighted, [shape[0], shape[1] * shape[2], c])
    rows = flat - tf.reduce_mean(flat, axis=1, keepdims=True) if center else flat
    _, _, v = tf.linalg.svd(rows, full_matrices=False)
    proj = tf.einsum("bpc,bc->bp", rows, v[:, :, 0])
    flip = tf.reduce_max(proj, axis=1, keepdims=True) < -tf.reduce_min(proj, axis=1, keepdims=True)
    proj = tf.where(flip, -proj, proj)
    return tf.reshape(proj, shape[:3])


def cam_map(kind: str, a, da, relu: bool = True, eigen_smooth: bool = False):
    """One layer's class activation map ``[B, h, w]`` from its activations ``a`` and the
    gradient ``da = d score / d a`` (both ``[B, h, w, C]``, TensorFlow): the channel sum
    of :func:`weighted_activations` -- or, for ``eigen_cam`` / ``eigengrad_cam`` and
    whenever ``eigen_smooth``, their first principal component
    (:func:`project_first_component`) -- then its positive part (``relu=False``: signed)."""
    wa = weighted_activations(kind, a, da)
    cam = project_first_component(wa) if eigen_smooth or kind in PROJECTED_KINDS else tf.reduce_sum(wa, axis=-1)
    return tf.nn.relu(cam) if relu else cam


# --------------------------------------------------------------------------- augmentation smoothing
#: ``aug_smooth``'s views ``(horizontal flip, scale)``: the image and its mirror, each at
#: scales 1.0, 1.1 and 0.9 about the centre (the identity first).
AUG_VIEWS = tuple((flip, scale) for flip in (False, True) for scale in (1.0, 1.1, 0.9))


def _warp(images, views, hw, inverse: bool, fill_mode: str):
    """``images`` ``[V * B, h, w, C]`` (view-major: view ``v`` of image ``b`` at ``v * B +
    b``) each warped by its view, bilinearly, in pixel-index coordinates centred at
    ``c = (n - 1) / 2``. Forward (the image): output ``p`` reads the original at
    ``c + (flip(p) - c) / s``; inverse (a map back to the original geometry): original
    ``q`` reads the view at ``c + s (flip(q) - c)``. ``flip(x) = w - 1 - x``."""
    h, w = hw
    cy, cx = (h - 1) / 2.0, (w - 1) / 2.0
    rows = []
    for flip, s in views:
        f = -1.0 if flip else 1.0
        k = s if inverse else 1.0 / s   # input = k * f * x + c (1 - k f) along x; k * y + c (1 - k) along y
        rows.append([k * f, 0.0, cx * (1.0 - k * f), 0.0, k, cy * (1.0 - k), 0.0, 0.0])
    n = tf.shape(images)[0] // len(views)
    t = tf.repeat(tf.constant(rows, tf.float32), n, axis=0)
    return tf.raw_ops.ImageProjectiveTransformV3(images=images, transforms=t, output_shape=tf.constant([h, w]),
                                                 fill_value=0.0, interpolation="BILINEAR", fill_mode=fill_mode)


def augment(x, views=AUG_VIEWS):
    """The views of images ``x`` ``[B, H, W, C]`` -> ``[V * B, H, W, C]`` (view-major):
    each mirrored and/or scaled about its centre at the same size (bilinear; a zoomed-out
    view repeats the border pixels). TensorFlow, traceable."""
    x = tf.convert_to_tensor(x, tf.float32)
    xs = tf.tile(x, [len(views), 1, 1, 1])
    return _warp(xs, views, x.shape[1:3], inverse=False, fill_mode="NEAREST")


def deaugment(maps, views=AUG_VIEWS):
    """Maps ``[V * B, h, w]`` of the views (view-major, as :func:`augment` makes them) ->
    ``[B, h, w]``: each mapped back to the original geometry (bilinear) and averaged over
    the views that see each position -- a zoomed-in view does not see the border, so there
    the mean is over fewer views (weights: the warped coverage)."""
    maps = tf.convert_to_tensor(maps, tf.float32)
    hw = maps.shape[1:3]
    back = _warp(maps[..., None], views, hw, inverse=True, fill_mode="CONSTANT")[..., 0]
    seen = _warp(tf.ones_like(maps)[..., None], views, hw, inverse=True, fill_mode="CONSTANT")[..., 0]
    v = len(views)
    back = tf.reshape(back, [v, -1, hw[0], hw[1]])
    seen = tf.reshape(seen, [v, -1, hw[0], hw[1]])
    return tf.reduce_sum(back, axis=0) / tf.maximum(tf.reduce_sum(seen, axis=0), 1e-6)


def view_selection(sel, views=AUG_VIEWS, map_hw=None):
    """:func:`~tfviz.attribution.core.selection` rows ``[B, 7]`` for the ``[V * B]`` views:
    a position or a box on a map output (``map_hw``, its ``(h, w)``; None: the score is no
    map and rows are only repeated) moves with its view's flip and scale (a box's edges
    rounded, at least one pixel kept); the mean and the predicted region need no change."""
    sel = tf.convert_to_tensor(sel, tf.int32)
    if map_hw is None:
        return tf.tile(sel, [len(views), 1])
    mh, mw = int(map_hw[0]), int(map_hw[1])
    mode = sel[:, SEL_MODE:SEL_MODE + 1]
    point = mode == MODES["point"]
    box = (mode == MODES["box_sum"]) | (mode == MODES["box_mean"])
    y0, x0, y1, x1 = (tf.cast(sel[:, i:i + 1], tf.float32) for i in (SEL_Y0, SEL_X0, SEL_Y1, SEL_X1))
    out = []
    for flip, s in views:
        # a point (pixel index, centre (n - 1) / 2)
        px = (mw - 1) - x0 if flip else x0
        py_ = tf.clip_by_value(tf.round((mh - 1) / 2 + s * (y0 - (mh - 1) / 2)), 0, mh - 1)
        px_ = tf.clip_by_value(tf.round((mw - 1) / 2 + s * (px - (mw - 1) / 2)), 0, mw - 1)
        # a box (edges, centre n / 2), end exclusive
        bx0, bx1 = (mw - x1, mw - x0) if flip else (x0, x1)
        by0_ = tf.clip_by_value(tf.round(mh / 2 + s * (y0 - mh / 2)), 0, mh - 1)
        bx0_ = tf.clip_by_value(tf.round(mw / 2 + s * (bx0 - mw / 2)), 0, mw - 1)
        by1_ = tf.clip_by_value(tf.round(mh / 2 + s * (y1 - mh / 2)), by0_ + 1, mh)
        bx1_ = tf.clip_by_value(tf.round(mw / 2 + s * (bx1 - mw / 2)), bx0_ + 1, mw)
        moved = [tf.where(point, py_, tf.where(box, by0_, y0)), tf.where(point, px_, tf.where(box, bx0_, x0)),
                 tf.where(box, by1_, y1), tf.where(box, bx1_, x1)]
        out.append(tf.concat([sel[:, :SEL_Y0]] + [tf.cast(m, tf.int32) for m in moved] + [sel[:, SEL_X1 + 1:]],
                             axis=1))
    return tf.concat(out, axis=0)


def augmented(fn, x, sel=None, views=AUG_VIEWS, map_hw=None):
    """Test-time augmentation of a map method: ``fn(views)`` (or ``fn(views, view_sel)``
    with ``sel``, moved by :func:`view_selection` for a map output of size ``map_hw``) on
    all views of ``x`` ``[B, H, W, C]`` at once (``[V * B, ...]``, one call), each map it
    returns (``[V * B, h, w]``, or a list / tuple of them) mapped back and averaged
    (:func:`deaugment`) -> ``[B, h, w]`` (or a list). TensorFlow; works eagerly and traced."""
    xv = augment(x, views)
    out = fn(xv) if sel is None else fn(xv, view_selection(sel, views, map_hw))
    if isinstance(out, (list, tuple)):
        return [deaugment(m, views) for m in out]
    return deaugment(out, views)


def score_map_hw(scores):
    """``(h, w)`` of a head's score output (a symbolic tensor) when it is a map ``[B, h, w,
    C]`` (a segmentation's logits, a unit's spatial layer), else None: where ``aug_smooth``
    moves a position or box target."""
    shape = scores.shape
    return (int(shape[1]), int(shape[2])) if len(shape) == 4 else None


def _cam_function(bundle, cam_layers: tuple, layer, kind: str = "grad_cam", relu: bool = True,
                  eigen_smooth: bool = False, views: tuple | None = None):
    """``f(x, sel) -> (scores, [upsampled maps per layer], [maps per layer], finite)`` for
    the layers ``cam_layers`` and a head (``layer``). With ``views`` (``aug_smooth``) every
    map is the mean over those views of each image (all views in one batch, in the same
    program) and the scores are the first view's."""
    def build():
        model = head(bundle, layer, None, capture=cam_layers)
        map_hw = score_map_hw(model.outputs[-1])

        def maps(x, sel):
            hw = x.shape[1:3]
            if kind in GRADIENT_FREE_KINDS:  # class-agnostic: the activations only
                *acts, out = model(x, training=False)
                s = select_score(out, sel)
                das = [None] * len(acts)
            else:
                with tf.GradientTape() as tape:
                    tape.watch(x)
                    *acts, out = model(x, training=False)
                    s = select_score(out, sel)
                    total = tf.reduce_sum(s)
                das = tape.gradient(total, acts)
            ups, lows, finite = [], [], tf.ones(tf.shape(x)[:1], tf.bool)
            for name, a, da in zip(cam_layers, acts, das):
                if da is None and kind not in GRADIENT_FREE_KINDS:
                    raise TargetError(f"CAM layer {name!r} does not feed the target "
                                      f"({'the logits' if layer is None else layer!r}); pick a layer before it")
                a = as_grid(a, hw)
                da = None if da is None else as_grid(da, hw)
                cam = cam_map(kind, a, da, relu=relu, eigen_smooth=eigen_smooth)
                finite = finite & tf.reduce_all(tf.math.is_finite(a if da is None else da), axis=[1, 2, 3])
                lows.append(cam)
                ups.append(tf.image.resize(cam[..., None], hw, method="bilinear")[..., 0])
            return s, ups, lows, finite

        @tf.function(autograph=False)
        def tfviz_cam(x, sel):
            if not views:
                return maps(x, sel)
            s, ups, lows, finite = maps(augment(x, views), view_selection(sel, views, map_hw))
            n = tf.shape(x)[0]
            finite = tf.reduce_all(tf.reshape(finite, [len(views), n]), axis=0)
            return (s[:n], [deaugment(u, views) for u in ups], [deaugment(lo, views) for lo in lows], finite)
        return tfviz_cam
    key = tuple(cam_layers) + ((layer,) if layer else ())
    return bundle.programs.get("attribution.cam", key, (kind, layer, bool(relu), bool(eigen_smooth), views), build)


def _fuse(maps: list, hw: list, gamma: float) -> np.ndarray:
    """Layer-CAM's multi-layer fusion: each map divided by its largest magnitude (per
    image; its maximum for maps >= 0); maps from layers finer than the coarsest scaled with
    ``tanh(gamma * m)`` (Jiang et al. 2021, sec. 3.3), then the element-wise maximum."""
    coarsest = min(h * w for h, w in hw)
    out = None
    for m, (h, w) in zip(maps, hw):
        m = m / np.maximum(np.abs(m).max(axis=(1, 2), keepdims=True), 1e-12)
        if h * w > coarsest:
            m = np.tanh(gamma * m)
        out = m if out is None else np.maximum(out, m)
    return out.astype(np.float32)


def _cam_layers(bundle, layer, head_layer) -> tuple:
    if layer is not None:
        names = [layer] if isinstance(layer, str) else list(layer)
        if not names:
            raise NoSpatialLayerError("layer: give at least one layer name")
        return tuple(check_layer(bundle, n) for n in names)
    if isinstance(head_layer, str) and _is_map(bundle, head_layer):
        return (head_layer,)  # a unit of a spatial or token layer: that layer's own activations
    return (default_layer(bundle),)


def aug_views(aug_smooth) -> tuple | None:
    """``aug_smooth`` -> its views: None (off), :data:`AUG_VIEWS` (True), or the given
    ``(flip, scale)`` pairs checked."""
    if aug_smooth is None or aug_smooth is False:
        return None
    if aug_smooth is True:
        return AUG_VIEWS
    try:
        views = tuple((bool(f), float(s)) for f, s in aug_smooth)
    except (TypeError, ValueError):
        views = ()
    if not views or not all(np.isfinite(s) and s > 0 for _, s in views):
        raise AttributionError(f"aug_smooth is True, False or a tuple of (flip, scale) views with scales > 0, "
                               f"got {aug_smooth!r}")
    return views


def _check_aug_targets(bundle, targets):
    """``aug_smooth`` moves positions and boxes with each view; a target given as a function
    of a map output (a mask region) cannot be moved: one clear error."""
    if len(bundle.logits.outputs[0].shape) == 4 and any(t.kind == "function" for t in targets):
        raise TargetError("aug_smooth cannot move a target given as a function of the map (a mask region) with "
                          "the flipped and scaled views; give a box region, or aug_smooth=False")


def _cam(bundle, x, targets, layer=None, batch_size=DEFAULT_BATCH, upsample=True, kind="grad_cam",
         gamma=2.0, relu=True, eigen_smooth=False, aug_smooth=False):
    if not isinstance(layer, (str, type(None))) and kind != "layer_cam":
        raise NoSpatialLayerError(f"layer must be one layer name for {kind}, got {layer!r}")
    if kind in PROJECTED_KINDS:
        eigen_smooth = False  # already a projection: one program
    views = aug_views(aug_smooth)
    if views:
        _check_aug_targets(bundle, targets)
        batch_size = max(1, int(batch_size or DEFAULT_BATCH) // len(views))  # every image is len(views) copies
    n = len(x)
    out = None
    ok = np.ones(n, bool)
    for head_layer, ids in group_by_head(targets).items():
        cam_layers = _cam_layers(bundle, layer, head_layer)
        if len(cam_layers) > 1 and not upsample:
            raise NoSpatialLayerError("upsample=False needs a single layer (fused maps are at the input size)")
        f = _cam_function(bundle, cam_layers, head_layer, kind, bool(relu), bool(eigen_smooth), views)
        rows = selection([targets[i] for i in ids])
        for it, real in padded_batches(len(ids), batch_size):
            sel = ids[it][:real]
            _, ups, lows, fin = f(x[ids[it]], rows[it])
            if len(cam_layers) == 1:
                m = (ups if upsample else lows)[0].numpy()[:real]
            else:
                m = _fuse([u.numpy()[:real] for u in ups], [tuple(lo.shape[1:3]) for lo in lows], gamma)
            if out is None:
                out = np.zeros((n,) + m.shape[1:], np.float32)
            out[sel] = m
            ok[sel] = fin.numpy()[:real]
    if not ok.all():
        check_finite(np.where(ok, 0.0, np.nan), "CAM gradients", targets)
    return check_finite(out, "CAM maps", targets)


_SMOOTHING_DOC = """

    Every CAM method takes ``relu`` (default True: the map's positive part, as the papers;
    False: the signed map), ``aug_smooth`` (True: the map averaged over the image and its
    mirror, each at scales 1.0, 1.1 and 0.9 about the centre, every view's map mapped
    back to the image before the mean -- six times the work, in one batch; or a tuple of
    ``(flip, scale)`` views of your own) and
    ``eigen_smooth`` (the first principal component of the weighted activations ``w * A``
    instead of their channel sum, :func:`project_first_component`)."""


def _smoothing_doc(fn):
    fn.__doc__ = (fn.__doc__ or "") + _SMOOTHING_DOC
    return fn


@attribution_method
@_smoothing_doc
def grad_cam(bundle, x, targets, *, layer: str | None = None, batch_size: int = DEFAULT_BATCH,
             upsample: bool = True, relu: bool = True, aug_smooth: bool | tuple = False,
             eigen_smooth: bool = False) -> np.ndarray:
    """Grad-CAM map ``[N, H, W]`` (>= 0) for ``layer`` (default: the last spatial conv
    layer, see :func:`default_layer`; a vision transformer's last token layer; for a unit
    of a spatial layer, that layer), upsampled bilinearly to the input size
    (``upsample=False``: the layer's own resolution). A token layer ``[N, T, D]`` is put
    on its patch grid first (:func:`as_grid`), for every method of the CAM family."""
    return _cam(bundle, x, targets, layer=layer, batch_size=batch_size, upsample=upsample, relu=relu,
                aug_smooth=aug_smooth, eigen_smooth=eigen_smooth)


@attribution_method
@_smoothing_doc
def grad_cam_plus_plus(bundle, x, targets, *, layer: str | None = None, batch_size: int = DEFAULT_BATCH,
                       upsample: bool = True, relu: bool = True, aug_smooth: bool | tuple = False,
                       eigen_smooth: bool = False) -> np.ndarray:
    """Grad-CAM++ map ``[N, H, W]`` (>= 0; Chattopadhay et al. 2018): like
    :func:`grad_cam`, but each channel's weight sums the positive gradients with the
    paper's closed-form pixel weights ``alpha = g^2 / (2 g^2 + sum(A) g^3)`` (``g = d
    score / d A``), so several instances of a class all show. Same ``layer`` default and
    ``upsample`` as :func:`grad_cam`."""
    return _cam(bundle, x, targets, layer=layer, batch_size=batch_size, upsample=upsample,
                kind="grad_cam_plus_plus", relu=relu, aug_smooth=aug_smooth, eigen_smooth=eigen_smooth)


@attribution_method
@_smoothing_doc
def layer_cam(bundle, x, targets, *, layer: str | list | None = None, gamma: float = 2.0,
              batch_size: int = DEFAULT_BATCH, upsample: bool = True, relu: bool = True,
              aug_smooth: bool | tuple = False, eigen_smooth: bool = False) -> np.ndarray:
    """Layer-CAM map ``[N, H, W]`` (>= 0; Jiang et al. 2021): every activation weighted by
    its own positive gradient, ``relu(sum_k relu(d score / d A_k) * A_k)`` -- so it stays
    fine-grained at shallow layers, where Grad-CAM's averaged weights blur.

    ``layer``: one layer (default as :func:`grad_cam`), or several (a list, or
    ``"a,b,c"``) fused as in the paper: each map divided by its maximum, maps finer than
    the coarsest scaled by ``tanh(gamma * m)``, then the element-wise maximum (values in
    0..1; with ``relu=False`` each map is divided by its largest magnitude, -1..1)."""
    if isinstance(layer, str) and "," in layer:
        layer = [s.strip() for s in layer.split(",") if s.strip()]
    if not np.isfinite(gamma) or gamma <= 0:
        raise AttributionError(f"gamma must be > 0, got {gamma!r}")
    return _cam(bundle, x, targets, layer=layer, batch_size=batch_size, upsample=upsample,
                kind="layer_cam", gamma=float(gamma), relu=relu, aug_smooth=aug_smooth, eigen_smooth=eigen_smooth)


@attribution_method(applies=guided_rule_reason)
def guided_grad_cam(bundle, x, targets, *, layer: str | None = None, activations: str = "relu+smooth",
                    batch_size: int = DEFAULT_BATCH) -> np.ndarray:
    """Guided Grad-CAM ``[N, H, W, 3]``: guided backprop times the Grad-CAM map (signed,
    RGB order; render with :func:`tfviz.attribution.render_gradient`). ``activations``:
    guided backprop's (smooth gates too by default, or ``"relu"``)."""
    cam = _cam(bundle, x, targets, layer=layer, batch_size=batch_size)
    gb = guided_backprop.on_inputs(bundle, x, targets, activations=activations, batch_size=batch_size)
    return gb * cam[..., None]


@attribution_method
@_smoothing_doc
def hires_cam(bundle, x, targets, *, layer: str | None = None, batch_size: int = DEFAULT_BATCH,
              upsample: bool = True, relu: bool = True, aug_smooth: bool | tuple = False,
              eigen_smooth: bool = False) -> np.ndarray:
    """HiResCAM map ``[N, H, W]`` (>= 0; Draelos & Carin 2020): the element-wise product of
    the gradient and the activations summed over channels, ``relu(sum_k d score / d A_k *
    A_k)`` -- the gradient is not averaged over positions as in Grad-CAM, so the map shows
    where the layer's activations actually raise the score.

    For a network that ends in ``A -> global average pooling -> dense`` (or any score that
    is linear in ``A``) the signed map at the layer's resolution (``upsample=False,
    relu=False``) sums exactly to the score minus what does not come through ``A``: the
    logit minus the dense layer's bias (``sum_ij map_ij = sum_k W_kc mean_ij A_kij =
    logit_c - b_c``); there Grad-CAM and HiResCAM are the same map. Same ``layer``
    default and ``upsample`` as :func:`grad_cam`. ``eigen_smooth`` or ``aug_smooth``
    give up that sum."""
    return _cam(bundle, x, targets, layer=layer, batch_size=batch_size, upsample=upsample, kind="hires_cam",
                relu=relu, aug_smooth=aug_smooth, eigen_smooth=eigen_smooth)


@attribution_method
@_smoothing_doc
def xgrad_cam(bundle, x, targets, *, layer: str | None = None, batch_size: int = DEFAULT_BATCH,
              upsample: bool = True, relu: bool = True, aug_smooth: bool | tuple = False,
              eigen_smooth: bool = False) -> np.ndarray:
    """XGrad-CAM map ``[N, H, W]`` (>= 0; Fu et al. 2020, "Axiom-based Grad-CAM"): each
    channel weighted by its gradient averaged with the channel's own activations as
    weights, ``w_k = sum_ij (A_kij / sum_ab A_kab) * d score / d A_kij``, then
    ``relu(sum_k w_k A_k)`` (a channel whose activations sum to 0 -- a dead ReLU --
    gets ``sum_ij A_kij d score / d A_kij``, i.e. 0). Same ``layer`` default and
    ``upsample`` as :func:`grad_cam`."""
    return _cam(bundle, x, targets, layer=layer, batch_size=batch_size, upsample=upsample, kind="xgrad_cam",
                relu=relu, aug_smooth=aug_smooth, eigen_smooth=eigen_smooth)


@attribution_method
@_smoothing_doc
def eigen_cam(bundle, x, targets, *, layer: str | None = None, batch_size: int = DEFAULT_BATCH,
              upsample: bool = True, relu: bool = True, aug_smooth: bool | tuple = False,
              eigen_smooth: bool = False) -> np.ndarray:
    """Eigen-CAM map ``[N, H, W]`` (>= 0; Muhammad & Yeasin 2020): the layer's
    activations projected on their first principal component -- per image, the ``h * w``
    positions as rows of ``C`` channels, ``A = U S V^T``, the map ``A v_1`` (not centred,
    as the paper; the sign fixed so its largest value is positive, hence >= 0 everywhere
    after a ReLU; see :func:`project_first_component`).

    **Class-agnostic**: it uses no gradient, so the map is the same whatever the target
    (a class, a unit of a later layer, a region): it shows what the layer responds to
    most, not why the model chose a class; use :func:`eigengrad_cam` for a class. Same
    ``layer`` default and ``upsample`` as :func:`grad_cam`; ``eigen_smooth`` changes
    nothing (the map already is a projection)."""
    return _cam(bundle, x, targets, layer=layer, batch_size=batch_size, upsample=upsample, kind="eigen_cam",
                relu=relu, aug_smooth=aug_smooth, eigen_smooth=eigen_smooth)


#: one line the trust report prints with the method's figures (:func:`~tfviz.attribution.trust_report`)
eigen_cam.note = ("class-agnostic: the same map whatever the target (no gradient), so its figures rate the "
                  "layer's main pattern, not the evidence for the class")


@attribution_method
@_smoothing_doc
def eigengrad_cam(bundle, x, targets, *, layer: str | None = None, batch_size: int = DEFAULT_BATCH,
                  upsample: bool = True, relu: bool = True, aug_smooth: bool | tuple = False,
                  eigen_smooth: bool = False) -> np.ndarray:
    """EigenGrad-CAM map ``[N, H, W]`` (>= 0; pytorch-grad-cam's class-discriminative
    Eigen-CAM): the first principal component of the gradient times the activations,
    ``d score / d A * A`` (HiResCAM's terms, before their channel sum), the sign fixed so
    its largest value is positive (:func:`project_first_component`). Same ``layer``
    default and ``upsample`` as :func:`grad_cam`; ``eigen_smooth`` changes nothing."""
    return _cam(bundle, x, targets, layer=layer, batch_size=batch_size, upsample=upsample, kind="eigengrad_cam",
                relu=relu, aug_smooth=aug_smooth, eigen_smooth=eigen_smooth)
