"""The layers a method uses when you name none -- every rule in one place, next to the
model bundle (:mod:`tfviz.models`).

* :func:`feature_layer` -- the layer whose output feeds the classifier: nearest
  neighbours, embeddings, multifaceted class visualization;
* :func:`cam_layer` -- Grad-CAM and its family: the last spatial layer at the last
  convolution's resolution;
* :func:`dream_layers` -- DeepDream: mid-level spatial layers;
* :func:`conv_layer_at` -- the inspect commands (activations, patches): the convolution at
  a relative depth of the network.
"""
from __future__ import annotations

import keras

from .errors import ModelError, NoSpatialLayerError, SynthesisError, UnknownLayerError
from .keras_internals import inbound_node, producer
from .models import is_conv, iter_layers, output_shape

#: DeepDream's layers on efficientnet_lite0: the ends of stages 4 and 5, equally weighted.
LITE0_DREAM_LAYERS = {"block4c_add": 1.0, "block5c_add": 1.0}


def feature_layer(bundle) -> str:
    """The layer whose output feeds the classifier (the last layer of the logits view)."""
    def build():
        src = producer(inbound_node(bundle.logits.outputs[0]).input_tensors[0])
        if type(src).__name__ == "InputLayer":
            raise ModelError(f"model {bundle.name!r} has no layer before its classifier; pass layer=")
        name = src.name
        try:
            bundle.layer(name)
        except UnknownLayerError:  # e.g. the output of a nested model
            raise ModelError(f"cannot find the layer before the classifier of {bundle.name!r}; pass layer=") from None
        return name
    return bundle.programs.get("default_layers.feature_layer", build=build)


def cam_layer(bundle) -> str:
    """The last layer with a spatial ``[N, H, W, C]`` output at or after the last
    convolution, at that convolution's resolution (``top_relu`` for efficientnet_lite0,
    ``block5_conv3`` for VGG16, ``conv5_block3_out`` for ResNet50);
    nested models are searched. Raises :class:`NoSpatialLayerError` when the model has
    no convolution with a spatial output."""
    return bundle.programs.get("default_layers.cam_layer", build=lambda: _find_cam_layer(bundle))


def _find_cam_layer(bundle) -> str:
    found, conv_hw = None, None
    outputs = {id(t) for t in bundle.model.outputs}
    for path, layer, _ in iter_layers(bundle.model):
        if isinstance(layer, (keras.layers.InputLayer, keras.Model)):
            continue
        if id(_single_output(layer)) in outputs:  # a segmentation head: what is explained, not a feature map
            continue
        s = output_shape(layer)
        spatial = s is not None and len(s) == 4
        if is_conv(layer) and spatial:
            conv_hw = s[1:3]
        # after the last convolution: its activations (BN, ReLU, residual add...), but not
        # a pooling that changes the resolution (VGG16: block5_conv3, not block5_pool)
        if conv_hw is not None and spatial and s[1:3] == conv_hw:
            found = layer.name if bundle.is_unique(layer.name) else path
    if found is None:
        raise NoSpatialLayerError(
            f"Grad-CAM needs a convolutional layer with a spatial [N, H, W, C] output; model "
            f"{bundle.model.name!r} has none (layers: {', '.join(bundle.layer_paths()[:20])})")
    return found


def _single_output(layer):
    try:
        return layer.output
    except (AttributeError, ValueError):  # not called yet, or called several times
        return None


def dream_layers(bundle) -> dict:
    """Mid-level spatial layers (efficientnet_lite0: the ends of stages 4 and 5)."""
    names = set(bundle.layer_paths())
    if all(n in names for n in LITE0_DREAM_LAYERS):
        return dict(LITE0_DREAM_LAYERS)
    spatial = bundle.layer_names(spatial=True)
    if not spatial:
        raise SynthesisError("the model has no spatial layers to dream with")
    return {spatial[int(len(spatial) * 0.6)]: 1.0}


def conv_layer_at(bundle, depth: float = 0.5) -> str:
    """The spatial convolution layer at relative ``depth`` of the model (0: the first,
    1: the last) -- what the inspect commands show when no layer is named."""
    spatial = set(bundle.layer_names(spatial=True))
    convs = [n for n in bundle.layer_names(conv=True) if n in spatial]
    if not convs:
        raise ModelError(f"model {bundle.name!r} has no convolution layer with a spatial output; pass a layer")
    return convs[min(int(len(convs) * depth), len(convs) - 1)]
