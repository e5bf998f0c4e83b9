"""Which pixels matter: attribution maps for a Keras image model, and checks of which
map to trust.

Every method has the signature ``method(bundle, images, target=None, **options)`` and
returns numpy arrays:

=========================  ================  ==========================================
method                     returns           what
=========================  ================  ==========================================
``saliency``               ``[N, H, W]``     max over channels of ``|d logit / d pixel|``
``guided_backprop``        ``[N, H, W, 3]``  gradient, ReLUs pass positive grads where on
``deconvnet``              ``[N, H, W, 3]``  gradient, ReLUs pass positive grads
``occlusion``              ``[N, H, W]``     score drop under a sliding patch
``smoothgrad``             like ``method``   ``method`` averaged over noisy copies
``integrated_gradients``   ``[N, H, W]``     signed; sums to ``f(x) - f(baseline)``
``grad_cam``               ``[N, H, W]``     class activation map of a conv layer
``guided_grad_cam``        ``[N, H, W, 3]``  guided backprop x Grad-CAM
``grad_cam_plus_plus``     ``[N, H, W]``     Grad-CAM with pixel-weighted gradients
``layer_cam``              ``[N, H, W]``     activations x positive gradients; fuses layers
``score_cam``              ``[N, H, W]``     channels weighted by masked-input scores
``input_x_gradient``       ``[N, H, W]``     signed; model input x gradient
``gradient_shap``          ``[N, H, W]``     signed; expected gradients over baselines
``deeplift``               ``[N, H, W]``     signed; rescale rule, sums to ``f(x) - f(ref)``
=========================  ================  ==========================================

``smoothgrad(..., variant=)`` also gives SmoothGrad squared and VarGrad.

``bundle`` is a :class:`tfviz.models.ModelBundle` (``tfviz.load_model(...)``); images are
uint8 RGB ``[N, H, W, 3]`` or anything :mod:`tfviz.images` loads; ``target`` is ``None``
(top-1 class), a class index or name, ``"layer:channel"`` / ``(layer, channel[, y, x])``,
or a list with one per image. Scores are logits: a final softmax is bypassed without
changing the user's model.

Trust checks: :func:`deletion_auc`, :func:`insertion_auc`, :func:`randomization_check`,
and :func:`trust_report` (all three for several methods). Pictures:
:func:`render_gradient`, :func:`render_map`, :func:`panel`, :func:`comparison_figure`.
"""
from __future__ import annotations

from .cam import grad_cam, grad_cam_plus_plus, guided_grad_cam, layer_cam
from .deeplift import deeplift
from .errors import (AttributionError, NonFiniteGradientError, NoReLUError, NoSpatialLayerError, PatchSizeError,
                     StrideError, TargetError, UnitChannelError, UnknownClassError, UnknownLayerError,
                     UnsupportedModelError)
from .gradients import gradient_shap, input_x_gradient, integrated_gradients, saliency, smoothgrad
from .guided import deconvnet, guided_backprop
from .metrics import RandomizationResult, deletion_auc, insertion_auc, randomization_check
from .occlusion import occlusion
from .render import comparison_figure, overlay, panel, render_gradient, render_map
from .scorecam import score_cam
from .targets import Target, resolve_targets

METHODS = {
    "saliency": saliency,
    "guided_backprop": guided_backprop,
    "deconvnet": deconvnet,
    "occlusion": occlusion,
    "smoothgrad": smoothgrad,
    "integrated_gradients": integrated_gradients,
    "grad_cam": grad_cam,
    "guided_grad_cam": guided_grad_cam,
    "grad_cam_plus_plus": grad_cam_plus_plus,
    "layer_cam": layer_cam,
    "score_cam": score_cam,
    "input_x_gradient": input_x_gradient,
    "gradient_shap": gradient_shap,
    "deeplift": deeplift,
}


def trust_report(bundle, images, target=None, methods=None, *, steps: int = 50, layers: int = 3,
                 method_options: dict | None = None, progress=None) -> list[dict]:
    """For each method: mean deletion AUC (lower is better), insertion AUC (higher is
    better) and randomization rank correlation (lower is better) over ``images``.

    ``methods``: names or functions (default: all of :data:`METHODS`);
    ``method_options``: ``{name: {option: value}}``. ``progress(name, row)`` is called
    after each method with its row (so a caller can show results as they come). Returns one
    dict per method with keys ``method``, ``deletion``,
    ``insertion``, ``randomization``, ``maps``."""
    import numpy as np

    from .core import as_bundle, method_on_inputs, prepare

    bundle = as_bundle(bundle)
    x = prepare(bundle, images)
    targets = resolve_targets(bundle, target, len(x), x)
    u8 = bundle.deprocess(x)
    method_options = method_options or {}
    rows = []
    for m in methods or list(METHODS):
        name = m if isinstance(m, str) else m.__name__
        opts = method_options.get(name, {})
        maps = method_on_inputs(m)(bundle, x, targets, **opts)
        dele = deletion_auc(bundle, u8, targets, maps, steps=steps)
        ins = insertion_auc(bundle, u8, targets, maps, steps=steps)
        rnd = randomization_check(bundle, u8, targets, m, layers=layers, **opts)
        rows.append({"method": name, "deletion": float(np.mean(dele)), "insertion": float(np.mean(ins)),
                     "randomization": rnd.final, "randomized_layers": rnd.layers, "maps": maps})
        if progress:
            progress(name, rows[-1])
    return rows


__all__ = [
    "saliency", "guided_backprop", "deconvnet", "occlusion", "smoothgrad", "integrated_gradients", "grad_cam",
    "guided_grad_cam", "grad_cam_plus_plus", "layer_cam", "score_cam", "input_x_gradient", "gradient_shap",
    "deeplift", "deletion_auc", "insertion_auc", "randomization_check", "RandomizationResult",
    "trust_report", "render_gradient", "render_map", "overlay", "panel", "comparison_figure", "Target",
    "resolve_targets", "METHODS", "AttributionError", "TargetError", "UnitChannelError", "PatchSizeError",
    "StrideError", "NoSpatialLayerError", "NoReLUError", "NonFiniteGradientError", "UnsupportedModelError",
    "UnknownClassError", "UnknownLayerError",
]
