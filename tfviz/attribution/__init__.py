"""Which pixels matter: attribution maps for a Keras image model, and checks of which
map to trust.

Every method has the signature ``method(bundle, images, target=None, **options)`` and
returns numpy arrays:

=========================  ================  ==========================================
method                     returns           what
=========================  ================  ==========================================
``saliency``               ``[N, H, W]``     max over channels of ``|d logit / d pixel|``
``guided_backprop``        ``[N, H, W, 3]``  gradient, ReLUs (and SiLU, GELU...) pass positive grads where on
``deconvnet``              ``[N, H, W, 3]``  gradient, ReLUs (and SiLU, GELU...) pass positive grads
``occlusion``              ``[N, H, W]``     score drop under a sliding patch
``smoothgrad``             like ``method``   ``method`` averaged over noisy copies
``integrated_gradients``   ``[N, H, W]``     signed; sums to ``f(x) - f(baseline)``
``grad_cam``               ``[N, H, W]``     class activation map of a conv layer
``guided_grad_cam``        ``[N, H, W, 3]``  guided backprop x Grad-CAM
``grad_cam_plus_plus``     ``[N, H, W]``     Grad-CAM with pixel-weighted gradients
``layer_cam``              ``[N, H, W]``     activations x positive gradients; fuses layers
``hires_cam``              ``[N, H, W]``     activations x gradients (not pooled), summed
``xgrad_cam``              ``[N, H, W]``     Grad-CAM, gradients averaged with activation weights
``eigen_cam``              ``[N, H, W]``     first principal component of a layer (class-agnostic)
``eigengrad_cam``          ``[N, H, W]``     first principal component of gradient x activation
``score_cam``              ``[N, H, W]``     channels weighted by masked-input scores
``attention_rollout``      ``[N, H, W]``     a transformer's attention, block by block
``input_x_gradient``       ``[N, H, W]``     signed; model input x gradient
``gradient_shap``          ``[N, H, W]``     signed; expected gradients over baselines
``deeplift``               ``[N, H, W]``     signed; rescale rule, sums to ``f(x) - f(ref)``
``lrp``                    ``[N, H, W]``     signed; layer-wise relevance propagation, sums to the score
``feature_ablation``       ``[N, H, W]``     signed; score drop with each superpixel replaced by a baseline
``lime``                   ``[N, H, W]``     signed; LIME's weighted ridge fit over superpixel coalitions
``kernel_shap``            ``[N, H, W]``     signed; KernelSHAP: superpixels' Shapley values, sum to ``f(x) - f(b)``
=========================  ================  ==========================================

``smoothgrad(..., variant=)`` also gives SmoothGrad squared and VarGrad.

``bundle`` is a :class:`tfviz.models.ModelBundle` (``tfviz.load_model(...)``); images are
uint8 RGB ``[N, H, W, 3]`` or anything :mod:`tfviz.images` loads; ``target`` is ``None``
(top-1 class), a class index or name, ``"layer:channel"`` / ``(layer, channel[, y, x])``,
or a list with one per image. Scores are logits: a final softmax is bypassed without
changing the user's model.

Trust checks: :func:`deletion_auc`, :func:`insertion_auc`, :func:`road` (ROAD: removal
filled from the neighbours), :func:`randomization_check`, and :func:`trust_report` (all of
them for several methods). Pictures:
:func:`render_gradient`, :func:`render_map`, :func:`panel`, :func:`comparison_figure`.
"""
from __future__ import annotations

from .errors import (AttributionError, NonFiniteGradientError, NoReLUError, NoSpatialLayerError, PatchSizeError,
                     StrideError, TargetError, UnitChannelError, UnknownClassError, UnknownLayerError,
                     UnsupportedModelError)
from .targets import Target, resolve_targets
from .registry import METHODS, attribution_method, method_on_inputs, methods_for
# The methods, in the order METHODS lists them: each module declares its methods with @attribution_method.
from .gradients import saliency, input_x_gradient, smoothgrad, integrated_gradients, gradient_shap  # noqa: I001
from .guided import guided_backprop, deconvnet
from .deeplift import deeplift
from .occlusion import occlusion
from .cam import grad_cam, guided_grad_cam, grad_cam_plus_plus, layer_cam
from .cam import hires_cam, xgrad_cam, eigen_cam, eigengrad_cam  # noqa: I001
from .scorecam import score_cam
from .attention import attention_rollout
from .ablation import ablation_cam
from .fullgrad import full_grad
from .lrp import lrp
from . import lrp_rules
from .coalitions import feature_ablation, lime, kernel_shap  # noqa: I001
from .superpixels import superpixel_picture
from .metrics import RandomizationResult, deletion_auc, insertion_auc, randomization_check, trust_report
from .road import RoadResult, road
from .render import comparison_figure, overlay, panel, render_gradient, render_map


__all__ = [
    "saliency", "guided_backprop", "deconvnet", "occlusion", "smoothgrad", "integrated_gradients", "grad_cam",
    "guided_grad_cam", "grad_cam_plus_plus", "layer_cam", "score_cam", "attention_rollout", "input_x_gradient",
    "gradient_shap",
    "hires_cam", "xgrad_cam", "eigen_cam", "eigengrad_cam", "ablation_cam", "full_grad",
    "deeplift", "lrp", "lrp_rules", "deletion_auc", "insertion_auc", "road", "RoadResult", "randomization_check", "RandomizationResult",
    "trust_report", "render_gradient", "render_map", "overlay", "panel", "comparison_figure", "Target",
    "resolve_targets", "METHODS", "attribution_method", "method_on_inputs", "methods_for", "AttributionError", "TargetError", "UnitChannelError", "PatchSizeError",
    "StrideError", "NoSpatialLayerError", "NoReLUError", "NonFiniteGradientError", "UnsupportedModelError",
    "UnknownClassError", "UnknownLayerError",
    "feature_ablation", "lime", "kernel_shap", "superpixel_picture",
]
