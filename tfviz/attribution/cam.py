"""Grad-CAM and guided Grad-CAM (Selvaraju et al. 2017).

Grad-CAM weights each channel ``k`` of a spatial conv layer's activations ``A`` by the
spatial mean of ``d score / d A_k`` and keeps the positive part of the weighted sum,
``relu(sum_k alpha_k A_k)``, upsampled (bilinear) to the input size. Guided Grad-CAM
multiplies it with guided backprop, pixel by pixel.
"""
from __future__ import annotations

import numpy as np

from .core import DEFAULT_BATCH, _fn_cache, check_finite, group_by_head, padded_batches, run, selection
from .errors import NoSpatialLayerError


def _shape(layer):
    try:
        out = layer.output
    except (AttributeError, ValueError):
        return None
    return None if isinstance(out, (list, tuple)) else tuple(out.shape)


def default_layer(bundle) -> str:
    """The last layer with a spatial ``[N, H, W, C]`` output at or after the last
    convolution, at that convolution's resolution (``top_relu`` for efficientnet_lite0,
    ``block5_conv3`` for VGG16, ``conv5_block3_out`` for ResNet50);
    nested models are searched. Raises :class:`NoSpatialLayerError` when the model has
    no convolution with a spatial output."""
    key = ("tfviz.attribution", "cam_layer")
    if key in bundle._cache:
        return bundle._cache[key]
    import keras
    from ..models import _is_conv, iter_layers
    found, conv_hw = None, None
    for path, layer, _ in iter_layers(bundle.model):
        if isinstance(layer, (keras.layers.InputLayer, keras.Model)):
            continue
        s = _shape(layer)
        spatial = s is not None and len(s) == 4
        if _is_conv(layer) and spatial:
            conv_hw = s[1:3]
        # after the last convolution: its activations (BN, ReLU, residual add...), but not
        # a pooling that changes the resolution (VGG16: block5_conv3, not block5_pool)
        if conv_hw is not None and spatial and s[1:3] == conv_hw:
            found = layer.name if bundle._unique(layer.name) else path
    if found is None:
        raise NoSpatialLayerError(
            f"Grad-CAM needs a convolutional layer with a spatial [N, H, W, C] output; model "
            f"{bundle.model.name!r} has none (layers: {', '.join(bundle.layer_paths()[:20])})")
    bundle._cache[key] = found
    return found


def check_layer(bundle, layer: str) -> str:
    if not isinstance(layer, str):
        raise NoSpatialLayerError(f"layer must be a layer name, got {layer!r}")
    lay = bundle.layer(layer)  # UnknownLayerError listing names
    s = _shape(lay)
    if s is None or len(s) != 4:
        spatial = bundle.layer_names(spatial=True)
        raise NoSpatialLayerError(
            f"layer {layer!r} has output shape {s}; Grad-CAM needs a spatial [N, H, W, C] layer"
            + (f", e.g. {', '.join(spatial[-6:])}" if spatial else " and the model has none"))
    return layer


def _cam_function(bundle, cam_layer, layer):
    def build():
        import tensorflow as tf
        from .core import select_score
        from .graph import head
        model = head(bundle, layer, None, capture=(cam_layer,))

        @tf.function
        def tfviz_grad_cam(x, idx, ys, xs):
            with tf.GradientTape() as tape:
                tape.watch(x)
                a, out = model(x, training=False)
                s = select_score(out, idx, ys, xs)
                total = tf.reduce_sum(s)
            da = tape.gradient(total, a)
            if da is None:
                from .errors import TargetError
                raise TargetError(f"Grad-CAM layer {cam_layer!r} does not feed the target "
                                  f"({'the logits' if layer is None else layer!r}); pick a layer before it")
            alpha = tf.reduce_mean(da, axis=[1, 2], keepdims=True)
            cam = tf.nn.relu(tf.reduce_sum(alpha * a, axis=-1))
            finite = tf.reduce_all(tf.math.is_finite(da), axis=[1, 2, 3])
            up = tf.image.resize(cam[..., None], tf.shape(x)[1:3], method="bilinear")[..., 0]
            return s, up, cam, finite
        return tfviz_grad_cam
    return _fn_cache(bundle, ("cam", cam_layer, layer), build)


def _grad_cam_x(bundle, x, targets, layer=None, batch_size=DEFAULT_BATCH, upsample=True):
    if layer is not None:
        check_layer(bundle, layer)
    n = len(x)
    out = None
    ok = np.ones(n, bool)
    for head_layer, ids in group_by_head(targets).items():
        if layer is not None:
            cam_layer = layer
        elif head_layer is not None and len(_shape(bundle.layer(head_layer)) or ()) == 4:
            cam_layer = head_layer  # a unit of a spatial layer: that layer's own activations
        else:
            cam_layer = default_layer(bundle)
        f = _cam_function(bundle, cam_layer, head_layer)
        idx, ys, xs = selection([targets[i] for i in ids])
        for it, real in padded_batches(len(ids), batch_size):
            sel = ids[it][:real]
            _, up, low, fin = f(x[ids[it]], idx[it], ys[it], xs[it])
            m = (up if upsample else low).numpy()[:real]
            if out is None:
                out = np.zeros((n,) + m.shape[1:], np.float32)
            out[sel] = m
            ok[sel] = fin.numpy()[:real]
    if not ok.all():
        check_finite(np.where(ok, 0.0, np.nan), "Grad-CAM gradients", targets)
    return check_finite(out, "Grad-CAM maps", targets)


def grad_cam(bundle, images, target=None, *, layer: str | None = None, batch_size: int = DEFAULT_BATCH,
             upsample: bool = True) -> np.ndarray:
    """Grad-CAM map ``[N, H, W]`` (>= 0) for ``layer`` (default: the last spatial conv
    layer, see :func:`default_layer`; for a unit of a spatial layer, that layer), upsampled bilinearly to the input size
    (``upsample=False``: the layer's own resolution)."""
    return run(_grad_cam_x, bundle, images, target, layer=layer, batch_size=batch_size, upsample=upsample)


grad_cam._on_inputs = _grad_cam_x


def _guided_grad_cam_x(bundle, x, targets, layer=None, batch_size=DEFAULT_BATCH):
    from .guided import _guided_x
    cam = _grad_cam_x(bundle, x, targets, layer=layer, batch_size=batch_size)
    return _guided_x(bundle, x, targets, batch_size=batch_size) * cam[..., None]


def guided_grad_cam(bundle, images, target=None, *, layer: str | None = None,
                    batch_size: int = DEFAULT_BATCH) -> np.ndarray:
    """Guided Grad-CAM ``[N, H, W, 3]``: guided backprop times the Grad-CAM map (signed,
    RGB order; render with :func:`tfviz.attribution.render_gradient`)."""
    return run(_guided_grad_cam_x, bundle, images, target, layer=layer, batch_size=batch_size)


guided_grad_cam._on_inputs = _guided_grad_cam_x
