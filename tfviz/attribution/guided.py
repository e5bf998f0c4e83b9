"""Guided backprop (Springenberg 2015) and deconvnet (Zeiler & Fergus 2014).

Both are the gradient of the target score with one change at every ReLU on the way
back: *guided backprop* passes only positive gradients, and only where the ReLU's
forward input was positive (where the ReLU was "on"); the *deconvnet* passes positive
gradients regardless of the forward input.

The change is made (:mod:`.rules`) with ``tf.custom_gradient`` on a copy of the model's graph: every
ReLU-type call -- ``activation="relu"``/``"relu6"`` fused in a Conv/Dense layer, standalone
``ReLU`` layers (``max_value=6`` too), ``Activation("relu")`` / ``Activation("relu6")``,
``keras.ops.relu`` nodes, and all of these inside nested Sequential / Functional models --
is replaced by a wrapper with the identical forward pass. The copy reuses the user's
layers (weights shared, so it stays in sync with training); the user's model and layers
are never modified. The copy is built once per bundle and cached.
"""
from __future__ import annotations

import numpy as np

from .core import gradients, to_rgb_order
from .registry import attribution_method
from .rules import GuidedReLU, ReluSpec, check_has_relu, count_relus, relu_spec  # noqa: F401 (old home)


@attribution_method
def guided_backprop(bundle, x, targets, *, batch_size: int = 32) -> np.ndarray:
    """Guided backprop: the signed gradient ``[N, H, W, 3]`` (RGB order, model-input
    units) of the target score, with every ReLU passing back only positive gradients
    where its input was positive. Render with :func:`tfviz.attribution.render_gradient`."""
    return to_rgb_order(bundle, gradients(bundle, x, targets, relu="guided", batch_size=batch_size)[1])


@attribution_method
def deconvnet(bundle, x, targets, *, batch_size: int = 32) -> np.ndarray:
    """Deconvnet (Zeiler & Fergus): the signed "gradient" ``[N, H, W, 3]`` with every
    ReLU passing back only positive gradients, whatever its forward input was."""
    return to_rgb_order(bundle, gradients(bundle, x, targets, relu="deconvnet", batch_size=batch_size)[1])
