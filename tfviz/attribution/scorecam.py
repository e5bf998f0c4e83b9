"""Score-CAM (Wang et al. 2020) and Faster Score-CAM: class activation maps without
gradients.

Each channel ``k`` of a conv layer's activations ``A`` is upsampled to the input size
and min-max normalized to a mask ``M_k`` in 0..1; the channel's weight is the target's
softmax probability on the masked input ``baseline + M_k * (x - baseline)`` (the paper
multiplies the input, i.e. a ``"zero"`` baseline in model-input space). The map is
``relu(sum_k w_k A_k)``, upsampled bilinearly. Channels that are constant over the
image (a dead ReLU) have no mask and weight 0, as in the paper's code; they are not
forwarded at all.

All masked copies -- of every image and channel -- are made inside one traced program
from the images and the low-resolution activations and forwarded in batches of one
shape: no Python loop over channels. ``max_channels`` keeps, per image, only the
channels whose activations vary most (Faster Score-CAM, as tf-keras-vis does).

``eigen_smooth`` and ``aug_smooth`` mean what they mean for every CAM method
(:mod:`.cam`): the first principal component of ``w_k A_k`` instead of its channel sum
(:func:`weighted_map`, shared with Ablation-CAM), and the map averaged over flipped and
scaled views of the image and its baseline, each view scored on its own and its map
mapped back (:func:`finish_map`); every view's masked copies go in the same batches.
"""
from __future__ import annotations

import numpy as np
import tensorflow as tf

from ..models.tokens import as_grid
from .cam import (_cam_layers, _check_aug_targets, aug_views, augment, deaugment, score_map_hw,
                  project_first_component, view_selection)
from .core import (batches, check_finite, forward_function, group_by_head, head_scores, padded_batches,
                   score_activation, selection, substitute)
from .errors import AttributionError
from .heads import head
from .registry import attribution_method, method_on_inputs


def _masked_score_function(bundle, head_layer, probability):
    """``f(x, base, a, img, ch, sel) -> scores [B]``: item ``i`` is image
    ``img[i]`` masked by its activation channel ``ch[i]`` (upsampled, min-max normalized)."""
    def build():
        model = head(bundle, head_layer)
        activation = score_activation(bundle, head_layer, probability)

        @tf.function(autograph=False)
        def tfviz_score_cam(x, base, a, img, ch, sel):
            act = tf.gather_nd(tf.transpose(a, [0, 3, 1, 2]), tf.stack([img, ch], axis=1))  # [B, h, w]
            up = tf.image.resize(act[..., None], tf.shape(x)[1:3], method="bilinear")  # [B, H, W, 1]
            lo = tf.reduce_min(up, axis=[1, 2, 3], keepdims=True)
            hi = tf.reduce_max(up, axis=[1, 2, 3], keepdims=True)
            mask = (up - lo) / tf.maximum(hi - lo, 1e-12)
            xb, bb = tf.gather(x, img), tf.gather(base, img)
            return head_scores(model, bb + mask * (xb - bb), activation, sel)
        return tfviz_score_cam
    return bundle.programs.get("attribution.score_cam", head_layer, (bool(probability),), build)


def _copies_per_batch() -> int:
    """Masked copies per forward pass when not given: 16 on CPUs (measured fastest on
    efficientnet_lite0 with 2 cores: 16 s for 1039 copies against 20 s at 32 and 22 s at
    64 -- the activations of a smaller batch stay in cache), 64 on a GPU."""
    return 64 if tf.config.list_logical_devices("GPU") else 16


def weighted_map(acts, w, eigen_smooth: bool = False):
    """``sum_k w_k A_k`` ``[B, h, w]`` of activations ``acts`` ``[B, h, w, C]`` and weights
    ``w`` ``[B, C]`` -- or, with ``eigen_smooth``, the first principal component of ``w_k
    A_k`` (:func:`~tfviz.attribution.cam.project_first_component`, as every CAM method's
    ``eigen_smooth``). TensorFlow or numpy in, numpy out."""
    a = tf.convert_to_tensor(acts, tf.float32)
    w = tf.convert_to_tensor(w, tf.float32)[:, None, None, :]
    cam = project_first_component(a * w) if eigen_smooth else tf.reduce_sum(a * w, axis=-1)
    return cam.numpy()


def finish_map(cam, hw, relu: bool, upsample: bool, views=None):
    """A weighted map ``[B, h, w]`` -> the method's map: its positive part (``relu``),
    upsampled bilinearly to ``hw`` (``upsample``), and with ``views`` (the maps of
    ``[V * N]`` views, view-major) each view's map mapped back and averaged
    (:func:`~tfviz.attribution.cam.deaugment`) -> ``[N, ...]`` -- in the order the CAM
    family does it."""
    if relu:
        cam = np.maximum(cam, 0.0)
    if upsample:
        cam = tf.image.resize(cam[..., None], hw, method="bilinear").numpy()[..., 0]
    if views:
        cam = deaugment(cam, views).numpy()
    return cam.astype(np.float32)


@attribution_method
def score_cam(bundle, x, targets, *, layer: str | None = None, max_channels: int | None = None,
              baseline="zero", probability: bool = True, batch_size: int | None = None, upsample: bool = True,
              return_weights: bool = False, relu: bool = True, aug_smooth: bool | tuple = False,
              eigen_smooth: bool = False):
    """Score-CAM map ``[N, H, W]`` (>= 0; Wang et al. 2020): each channel of ``layer``
    (default: the last spatial conv layer, as :func:`grad_cam`) weighted by the target's
    softmax probability when only the region that channel sees is shown.

    ``max_channels``: keep only that many channels per image, those whose activations
    vary most (Faster Score-CAM; ``None``: every non-constant channel, the paper's
    method -- one forward pass per channel). ``baseline``: what replaces the hidden
    part of the input (``"zero"`` in model-input space, as the paper; or ``"black"``,
    ``"blur"``, ... see :func:`tfviz.attribution.core.substitute`). ``probability=False``
    weights by the logit instead. ``return_weights=True`` also returns the channel
    weights ``[N, C]`` (0 for skipped channels; with ``aug_smooth``, each view's: ``[N,
    V, C]``). ``relu=False``: the signed map (the weighted sum before its positive part).
    ``eigen_smooth``: the first principal component of ``w_k A_k`` instead of their sum.
    ``aug_smooth``: as every CAM method's (:func:`grad_cam`): Score-CAM of each view of the
    image and of its baseline (its mirror, scales 1.1 and 0.9; or your ``(flip, scale)``
    pairs), each view's map mapped back and averaged -- ``V`` times the masked copies, all
    views' copies batched together."""
    batch_size = int(batch_size) if batch_size else _copies_per_batch()
    if not isinstance(layer, (str, type(None))):
        raise AttributionError(f"layer must be one layer name for score_cam, got {layer!r}")
    if max_channels is not None and (not isinstance(max_channels, (int, np.integer)) or max_channels < 1):
        raise AttributionError(f"max_channels must be a positive integer or None (all), got {max_channels!r}")
    views = aug_views(aug_smooth)
    if views:
        _check_aug_targets(bundle, targets)
    nv = len(views) if views else 1
    n, hh, ww, _ = x.shape
    base = substitute(bundle, x, baseline, what="baseline")
    out, weights_out = None, [None] * n
    for head_layer, ids in group_by_head(targets).items():
        (cam_layer,) = _cam_layers(bundle, layer, head_layer)
        xg, bg, rows = x[ids], base[ids], selection([targets[i] for i in ids])
        if views:  # every view of every image is an image here, view-major (view v of image i at v * k + i)
            xg, bg = augment(xg, views).numpy(), augment(bg, views).numpy()
            rows = view_selection(rows, views, score_map_hw(head(bundle, head_layer).outputs[-1])).numpy()
        fwd = forward_function(bundle, cam_layer)
        a = np.concatenate([fwd(xg[s]).numpy() for s in batches(len(xg), batch_size)])
        a = np.asarray(as_grid(a, (hh, ww)))  # [k, h, w, C]; tokens on their patch grid
        k, h, w, c = a.shape
        spread = a.max(axis=(1, 2)) - a.min(axis=(1, 2))  # [k, C]: 0 for constant channels
        keep = spread > 0
        if max_channels is not None and max_channels < c:
            var = a.reshape(k, h * w, c).var(axis=1)
            top = np.argsort(-var, axis=1, kind="stable")[:, :max_channels]
            chosen = np.zeros_like(keep)
            np.put_along_axis(chosen, top, True, axis=1)
            keep &= chosen
        img_local, ch = np.nonzero(keep)  # items: (image within the group, channel)
        w_all = np.zeros((k, c), np.float32)
        if len(ch):
            f = _masked_score_function(bundle, head_layer, probability)
            xt, bt, at = tf.constant(xg), tf.constant(bg), tf.constant(a)
            for it, real in padded_batches(len(ch), batch_size):
                im_i = img_local[it].astype(np.int32)
                sc = f(xt, bt, at, im_i, ch[it].astype(np.int32), rows[im_i]).numpy()
                w_all[img_local[it][:real], ch[it][:real]] = sc[:real]
        w_all = w_all.reshape(nv, len(ids), c).swapaxes(0, 1)  # [images, views, C]
        check_finite(w_all, "Score-CAM scores", [targets[i] for i in ids])
        cam = weighted_map(a, w_all.swapaxes(0, 1).reshape(k, c), eigen_smooth)
        cam = finish_map(cam, (hh, ww), relu, upsample, views)
        if out is None:
            out = np.zeros((n,) + cam.shape[1:], np.float32)
        out[ids] = cam
        for j, i in enumerate(ids):
            weights_out[i] = w_all[j] if views else w_all[j, 0]
    return (out, np.stack(weights_out)) if return_weights else out
