"""Pictures of attribution maps (numpy and Pillow only, no TensorFlow).

* :func:`render_gradient` -- signed ``[H, W, 3]`` gradients (guided backprop, deconvnet,
  guided Grad-CAM) as an RGB image the way the papers show them: gray is zero, each
  image normalized by its own spread.
* :func:`render_map` -- a ``[H, W]`` map as a color image (a sequential colormap, or a
  diverging one centered on zero for signed maps such as Integrated Gradients).
* :func:`panel` -- input | map | overlay with a caption; :func:`comparison_figure` --
  one image under every method.
"""
from __future__ import annotations

import numpy as np

from .. import images as _im
from ..images import is_signed, render_map  # noqa: F401  (in the base: tfviz.summary draws maps too)
from .errors import AttributionError


def render_gradient(grad, mode: str = "signed", contrast: float = 0.15) -> _im.Picture:
    """Signed gradients ``[H, W, 3]`` (or a batch) -> uint8 RGB: :func:`tfviz.images.render_gradient`
    (``mode`` ``"signed"``, ``"positive"`` or ``"abs"``), raising :class:`AttributionError`
    for another mode."""
    if mode not in _im.GRADIENT_MODES:
        raise AttributionError(f"mode must be signed, positive or abs, got {mode!r}")
    return _im.render_gradient(grad, mode, contrast)


def heat(m) -> np.ndarray:
    """A 2-D map from any attribution: 3-channel maps by the max of absolute values."""
    m = np.asarray(m, np.float32)
    return np.abs(m).max(axis=-1) if m.ndim == 3 else m


def overlay(image, m, alpha: float = 0.55) -> _im.Picture:
    """The map over the image: 3-channel maps by their magnitude, signed maps
    (occlusion, integrated gradients) by their positive part -- the evidence for the
    target."""
    h = heat(m)
    if is_signed(h):
        h = np.maximum(h, 0)
    hi = float(np.percentile(h, 99.5)) or float(h.max() or 1.0)
    return _im.overlay(np.asarray(image, np.uint8), np.clip(h, 0, hi), alpha=alpha)


def panel(image, m, caption: str = "", size: int | None = None) -> _im.Picture:
    """input | map | overlay, side by side, with ``caption`` above (uint8 RGB)."""
    image = np.asarray(image, np.uint8)
    tiles = [image, render_map(m) if np.ndim(m) == 2 else render_gradient(m), overlay(image, m)]
    if size:
        tiles = [_im.resize(t, (size, size)) for t in tiles]
    row = _im.hstack(tiles, gap=4)
    return _im.caption(row, caption, size=14) if caption else row


def _blend(image, pic, alpha: float = 0.6) -> np.ndarray:
    image = np.asarray(image, np.float32)
    if pic.shape[:2] != image.shape[:2]:
        pic = _im.resize(pic, image.shape[:2])
    return (image * (1 - alpha) + pic.astype(np.float32) * alpha + 0.5).astype(np.uint8)


LABELS = {
    "saliency": "saliency", "guided_backprop": "guided backprop", "deconvnet": "deconvnet",
    "occlusion": "occlusion", "smoothgrad": "SmoothGrad", "integrated_gradients": "integrated gradients",
    "grad_cam": "Grad-CAM", "guided_grad_cam": "guided Grad-CAM", "grad_cam_plus_plus": "Grad-CAM++",
    "layer_cam": "Layer-CAM", "score_cam": "Score-CAM", "input_x_gradient": "input x gradient",
    "gradient_shap": "GradientSHAP", "deeplift": "DeepLIFT", "hires_cam": "HiResCAM", "xgrad_cam": "XGrad-CAM",
    "eigen_cam": "Eigen-CAM", "eigengrad_cam": "EigenGrad-CAM", "ablation_cam": "Ablation-CAM",
    "full_grad": "FullGrad", "lrp": "LRP", "attention_rollout": "attention rollout",
    "feature_ablation": "feature ablation", "lime": "LIME", "kernel_shap": "KernelSHAP",
}


OVERLAID = ("grad_cam", "grad_cam_plus_plus", "layer_cam", "score_cam", "occlusion", "hires_cam", "xgrad_cam",
            "eigen_cam", "eigengrad_cam", "ablation_cam", "full_grad", "attention_rollout")


def comparison_figure(image, maps: dict, title: str = "", cols: int | None = None, size: int = 224) -> _im.Picture:
    """One image under several methods: the input, then each map (rendered as in the
    papers; the CAM methods and occlusion as overlays of their positive part, signed maps
    by magnitude), each captioned; ``title`` on top. ``cols``: tiles per row (default 3,
    or 5 for more than eight maps)."""
    image = np.asarray(image, np.uint8)
    cols = cols or (3 if len(maps) <= 8 else 5)
    tiles = [_im.caption(_im.resize(image, (size, size)), "input", size=14)]
    for name, m in maps.items():
        m = np.asarray(m)
        if m.ndim == 3:
            pic = render_gradient(m)
        elif name in OVERLAID:
            if is_signed(m):  # occlusion: red where covering the region lowers the score, blue where it raises it
                pic = _blend(image, render_map(m, clip_percentile=100.0))
            else:
                pic = overlay(image, m)
        elif is_signed(m):
            pic = render_map(np.abs(m), clip_percentile=99.0)  # integrated gradients, DeepLIFT...: the magnitude
        else:
            pic = render_map(m)
        tiles.append(_im.caption(_im.resize(pic, (size, size)), LABELS.get(name, name), size=14))
    rows = [_im.hstack(tiles[i:i + cols], gap=6) for i in range(0, len(tiles), cols)]
    fig = _im.vstack(rows, gap=6)
    return _im.caption(fig, title, size=15) if title else fig
