"""Class activation maps from gradients: Grad-CAM and guided Grad-CAM (Selvaraju et al.
2017), Grad-CAM++ (Chattopadhay et al. 2018) and Layer-CAM (Jiang et al. 2021).

Grad-CAM weights each channel ``k`` of a spatial conv layer's activations ``A`` by the
spatial mean of ``d score / d A_k`` and keeps the positive part of the weighted sum,
``relu(sum_k alpha_k A_k)``, upsampled (bilinear) to the input size. Guided Grad-CAM
multiplies it with guided backprop, pixel by pixel. Grad-CAM++ and Layer-CAM change
only the weights (:func:`cam_map`); all three run in one traced program per layer and
head. Score-CAM, which needs no gradient, is in :mod:`.scorecam`.

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
from ..models.tokens import as_grid, find_grid, token_grid
from .core import DEFAULT_BATCH, check_finite, group_by_head, padded_batches, select_score, selection
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
    s = output_shape(bundle.layer(name)) or ()
    if len(s) == 3:
        return s[1] is not None and find_grid(s[1], bundle.input_size) is not None
    return len(s) == 4


CAM_KINDS = ("grad_cam", "grad_cam_plus_plus", "layer_cam")


def cam_map(kind: str, a, da):
    """One layer's class activation map ``[B, h, w]`` from its activations ``a`` and the
    gradient ``da = d score / d a`` (both ``[B, h, w, C]``, TensorFlow):

    * ``grad_cam`` -- ``relu(sum_k mean_ij(da_k) a_k)`` (Selvaraju et al. 2017);
    * ``grad_cam_plus_plus`` -- ``relu(sum_k w_k a_k)``, ``w_k = sum_ij alpha_kij
      relu(da_kij)``, ``alpha = da^2 / (2 da^2 + sum_ab a_kab da^3)`` (Chattopadhay et al.
      2018, eq. 19: the second and third derivatives of ``exp(score)`` written through the
      first, as the paper does; the common factor ``exp(score)`` cancels in ``alpha`` and
      only scales the map, so it is left out and large logits cannot overflow);
    * ``layer_cam`` -- ``relu(sum_k relu(da_k) a_k)``, element-wise (Jiang et al. 2021).
    """
    if kind not in CAM_KINDS:  # pragma: no cover - internal
        raise AttributionError(f"unknown CAM kind {kind!r}; one of {CAM_KINDS}")
    if kind == "grad_cam":
        w = tf.reduce_mean(da, axis=[1, 2], keepdims=True)
    elif kind == "grad_cam_plus_plus":
        g2 = da * da
        denom = 2.0 * g2 + tf.reduce_sum(a, axis=[1, 2], keepdims=True) * g2 * da
        alpha = g2 / tf.where(denom != 0.0, denom, tf.ones_like(denom))
        w = tf.reduce_sum(alpha * tf.nn.relu(da), axis=[1, 2], keepdims=True)
    else:  # layer_cam
        w = tf.nn.relu(da)
    return tf.nn.relu(tf.reduce_sum(w * a, axis=-1))


def _cam_function(bundle, cam_layers: tuple, layer, kind: str = "grad_cam"):
    """``f(x, sel) -> (scores, [upsampled maps per layer], [maps per layer],
    finite)`` for the layers ``cam_layers`` and a head (``layer``)."""
    def build():
        model = head(bundle, layer, None, capture=cam_layers)

        @tf.function(autograph=False)
        def tfviz_grad_cam(x, sel):
            with tf.GradientTape() as tape:
                tape.watch(x)
                *acts, out = model(x, training=False)
                s = select_score(out, sel)
                total = tf.reduce_sum(s)
            das = tape.gradient(total, acts)
            ups, lows, finite = [], [], tf.ones(tf.shape(x)[:1], tf.bool)
            for name, a, da in zip(cam_layers, acts, das):
                if da is None:
                    raise TargetError(f"CAM layer {name!r} does not feed the target "
                                      f"({'the logits' if layer is None else layer!r}); pick a layer before it")
                a, da = as_grid(a, x.shape[1:3]), as_grid(da, x.shape[1:3])
                cam = cam_map(kind, a, da)
                finite = finite & tf.reduce_all(tf.math.is_finite(da), axis=[1, 2, 3])
                lows.append(cam)
                ups.append(tf.image.resize(cam[..., None], tf.shape(x)[1:3], method="bilinear")[..., 0])
            return s, ups, lows, finite
        return tfviz_grad_cam
    return bundle.programs.get("attribution.cam", tuple(cam_layers) + ((layer,) if layer else ()), (kind, layer), build)


def _fuse(maps: list, hw: list, gamma: float) -> np.ndarray:
    """Layer-CAM's multi-layer fusion: each map divided by its maximum (per image);
    maps from layers finer than the coarsest scaled with ``tanh(gamma * m)`` (Jiang et al.
    2021, sec. 3.3), then the element-wise maximum."""
    coarsest = min(h * w for h, w in hw)
    out = None
    for m, (h, w) in zip(maps, hw):
        m = m / np.maximum(m.max(axis=(1, 2), keepdims=True), 1e-12)
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


def _cam(bundle, x, targets, layer=None, batch_size=DEFAULT_BATCH, upsample=True, kind="grad_cam",
                gamma=2.0):
    if not isinstance(layer, (str, type(None))) and kind != "layer_cam":
        raise NoSpatialLayerError(f"layer must be one layer name for {kind}, got {layer!r}")
    n = len(x)
    out = None
    ok = np.ones(n, bool)
    for head_layer, ids in group_by_head(targets).items():
        cam_layers = _cam_layers(bundle, layer, head_layer)
        if len(cam_layers) > 1 and not upsample:
            raise NoSpatialLayerError("upsample=False needs a single layer (fused maps are at the input size)")
        f = _cam_function(bundle, cam_layers, head_layer, kind)
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


@attribution_method
def grad_cam(bundle, x, targets, *, layer: str | None = None, batch_size: int = DEFAULT_BATCH,
             upsample: bool = True) -> np.ndarray:
    """Grad-CAM map ``[N, H, W]`` (>= 0) for ``layer`` (default: the last spatial conv
    layer, see :func:`default_layer`; a vision transformer's last token layer; for a unit
    of a spatial layer, that layer), upsampled bilinearly to the input size
    (``upsample=False``: the layer's own resolution). A token layer ``[N, T, D]`` is put
    on its patch grid first (:func:`as_grid`), for every method of the CAM family."""
    return _cam(bundle, x, targets, layer=layer, batch_size=batch_size, upsample=upsample)


@attribution_method
def grad_cam_plus_plus(bundle, x, targets, *, layer: str | None = None, batch_size: int = DEFAULT_BATCH,
                       upsample: bool = True) -> np.ndarray:
    """Grad-CAM++ map ``[N, H, W]`` (>= 0; Chattopadhay et al. 2018): like
    :func:`grad_cam`, but each channel's weight sums the positive gradients with the
    paper's closed-form pixel weights ``alpha = g^2 / (2 g^2 + sum(A) g^3)`` (``g = d
    score / d A``), so several instances of a class all show. Same ``layer`` default and
    ``upsample`` as :func:`grad_cam`."""
    return _cam(bundle, x, targets, layer=layer, batch_size=batch_size, upsample=upsample,
                       kind="grad_cam_plus_plus")


@attribution_method
def layer_cam(bundle, x, targets, *, layer: str | list | None = None, gamma: float = 2.0,
              batch_size: int = DEFAULT_BATCH, upsample: bool = True) -> np.ndarray:
    """Layer-CAM map ``[N, H, W]`` (>= 0; Jiang et al. 2021): every activation weighted by
    its own positive gradient, ``relu(sum_k relu(d score / d A_k) * A_k)`` -- so it stays
    fine-grained at shallow layers, where Grad-CAM's averaged weights blur.

    ``layer``: one layer (default as :func:`grad_cam`), or several (a list, or
    ``"a,b,c"``) fused as in the paper: each map divided by its maximum, maps finer than
    the coarsest scaled by ``tanh(gamma * m)``, then the element-wise maximum (values in
    0..1)."""
    if isinstance(layer, str) and "," in layer:
        layer = [s.strip() for s in layer.split(",") if s.strip()]
    if not np.isfinite(gamma) or gamma <= 0:
        raise AttributionError(f"gamma must be > 0, got {gamma!r}")
    return _cam(bundle, x, targets, layer=layer, batch_size=batch_size, upsample=upsample,
                       kind="layer_cam", gamma=float(gamma))


@attribution_method(applies=guided_rule_reason)
def guided_grad_cam(bundle, x, targets, *, layer: str | None = None, activations: str = "relu+smooth",
                    batch_size: int = DEFAULT_BATCH) -> np.ndarray:
    """Guided Grad-CAM ``[N, H, W, 3]``: guided backprop times the Grad-CAM map (signed,
    RGB order; render with :func:`tfviz.attribution.render_gradient`). ``activations``:
    guided backprop's (smooth gates too by default, or ``"relu"``)."""
    cam = _cam(bundle, x, targets, layer=layer, batch_size=batch_size)
    gb = guided_backprop.on_inputs(bundle, x, targets, activations=activations, batch_size=batch_size)
    return gb * cam[..., None]


