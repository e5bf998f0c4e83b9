"""Guided backprop (Springenberg 2015) and deconvnet (Zeiler & Fergus 2014).

Both are the gradient of the target score with one change at every ReLU on the way
back: *guided backprop* passes only positive gradients, and only where the ReLU's
forward input was positive (where the ReLU was "on"); the *deconvnet* passes positive
gradients regardless of the forward input.

Models built on smooth gates instead of ReLUs (SiLU / swish in EfficientNet, GELU in
ConvNeXt, hard-swish in MobileNetV3, Mish) get the same rules at those gates by default
(``activations="relu+smooth"``): guided backprop passes back ``relu(dy) * [z > 0] *
f'(z)`` -- positive gradients, where the gate is on (its input ``z > 0``, where ``f(z) >
0``), times the gate's own slope, which on a ReLU is ``[z > 0]``: the ReLU rule exactly;
the deconvnet passes back ``relu(dy)``, as at a ReLU. ``activations="relu"`` changes
ReLUs only and refuses a model without one (:class:`NoReLUError`).

The change is made (:mod:`.rules`) with ``tf.custom_gradient`` on a copy of the model's graph: every
ReLU-type call -- ``activation="relu"``/``"relu6"`` fused in a Conv/Dense layer, standalone
``ReLU`` layers (``max_value=6`` too), ``Activation("relu")`` / ``Activation("relu6")``,
``keras.ops.relu`` nodes, and all of these inside nested Sequential / Functional models --
and each smooth gate in the same forms is replaced by a wrapper with the identical
forward pass. The copy reuses the user's layers (weights shared, so it stays in sync with
training); the user's model and layers are never modified. The copy is built once per
bundle and rule and cached.
"""
from __future__ import annotations

import numpy as np

from .core import gradients, to_rgb_order
from .registry import attribution_method
from .rules import (GuidedReLU, ReluSpec, check_has_relu, count_relus, guided_rule, guided_rule_reason,  # noqa: F401
                    relu_spec)


def rule_gradients(bundle, x, targets, mode: str, activations: str, batch_size: int) -> np.ndarray:
    """The gradient ``[N, H, W, 3]`` (RGB order) with ``mode``'s rule (``"guided"`` or
    ``"deconvnet"``) at the ``activations`` (``"relu+smooth"`` or ``"relu"``)."""
    rule = guided_rule(mode, activations)
    check_has_relu(bundle, rule)
    return to_rgb_order(bundle, gradients(bundle, x, targets, relu=rule, batch_size=batch_size)[1])


@attribution_method(applies=guided_rule_reason)
def guided_backprop(bundle, x, targets, *, activations: str = "relu+smooth", batch_size: int = 32) -> np.ndarray:
    """Guided backprop: the signed gradient ``[N, H, W, 3]`` (RGB order, model-input
    units) of the target score, with every ReLU passing back only positive gradients
    where its input was positive. Render with :func:`tfviz.attribution.render_gradient`.

    ``activations="relu+smooth"`` (the default): smooth gates (SiLU / swish, GELU,
    hard-swish, Mish) pass back ``relu(dy) * [z > 0] * f'(z)``, the ReLU rule for a gate
    ``f``; ``"relu"``: ReLUs only (a model without one raises :class:`NoReLUError`)."""
    return rule_gradients(bundle, x, targets, "guided", activations, batch_size)


@attribution_method(applies=guided_rule_reason)
def deconvnet(bundle, x, targets, *, activations: str = "relu+smooth", batch_size: int = 32) -> np.ndarray:
    """Deconvnet (Zeiler & Fergus): the signed "gradient" ``[N, H, W, 3]`` with every
    ReLU passing back only positive gradients, whatever its forward input was.
    ``activations``: as for :func:`guided_backprop` (smooth gates pass back ``relu(dy)``
    too by default)."""
    return rule_gradients(bundle, x, targets, "deconvnet", activations, batch_size)
