"""The layers a method uses when you name none -- every rule in one place, next to the
model bundle (:mod:`tfviz.models`).

* :func:`feature_layer` -- the layer whose output feeds the classifier: nearest
  neighbours, embeddings, multifaceted class visualization;
* :func:`cam_layer` -- Grad-CAM and its family: the last spatial layer at the last
  convolution's resolution; in a vision transformer, the last token layer whose patch
  tokens reach the score;
* :func:`dream_layers` -- DeepDream: mid-level spatial layers;
* :func:`conv_layer_at` -- the inspect commands (activations, patches): the convolution at
  a relative depth of the network;
* :func:`concept_layers` -- TCAV: block outputs spread over the network, one per resolution.
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
    nested models are searched. A vision transformer (``MultiHeadAttention`` layers after
    the last convolution) gets a token ``[N, T, D]`` layer instead, see
    :func:`transformer_cam_layer`. Raises :class:`NoSpatialLayerError` when the model has
    neither."""
    return bundle.programs.get("default_layers.cam_layer", build=lambda: _find_cam_layer(bundle))


def _named(bundle, path, layer) -> str:
    return layer.name if bundle.is_unique(layer.name) else path


def _find_cam_layer(bundle) -> str:
    token_layer = transformer_cam_layer(bundle)
    if token_layer is not None:
        return token_layer
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
            found = _named(bundle, path, layer)
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


#: Layers that reduce a token sequence over all its tokens: every patch token reaches the score.
TOKEN_POOLS = (keras.layers.GlobalAveragePooling1D, keras.layers.GlobalMaxPooling1D, keras.layers.Flatten)


def transformer_cam_layer(bundle) -> str | None:
    """A vision transformer's CAM layer, or None for a model without ``MultiHeadAttention``
    after its last convolution. With a head that pools all tokens, the last layer with the
    tokens' ``[N, T, D]`` output (the last block's output, or the norm on it); with any
    other head (a class token picked out), the last token layer before the last attention
    (the last block's input, pytorch-grad-cam's ``blocks[-1].norm1``): after the last
    attention only the class token reaches the score, so patch tokens there have zero
    gradients and the map would be empty."""
    layers = [(p, layer) for p, layer, _ in iter_layers(bundle.model)
              if not isinstance(layer, (keras.layers.InputLayer, keras.Model))]
    last_conv = max((i for i, (_, layer) in enumerate(layers) if is_conv(layer)), default=-1)
    attention = [i for i, (_, layer) in enumerate(layers)
                 if i > last_conv and isinstance(layer, keras.layers.MultiHeadAttention)]
    shapes = [output_shape(layer) or () for _, layer in layers]
    before = [i for i in range(last_conv + 1, attention[-1] if attention else 0) if len(shapes[i]) == 3]
    if not before:
        return None
    tokens = shapes[before[-1]][1]
    after = [i for i in range(attention[-1], len(layers)) if len(shapes[i]) == 3 and shapes[i][1] == tokens]
    if after:
        reducers = [layer for (_, layer), s in zip(layers[after[-1] + 1:], shapes[after[-1] + 1:]) if len(s) != 3]
        if reducers and isinstance(reducers[0], TOKEN_POOLS):
            return _named(bundle, *layers[after[-1]])
    return _named(bundle, *layers[before[-1]])


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


#: TCAV's default number of layers (:func:`concept_layers`).
CONCEPT_LAYER_COUNT = 4


def concept_layers(bundle, count: int = CONCEPT_LAYER_COUNT) -> list[str]:
    """TCAV's layers when none are named: block outputs spread over the network, the last
    ``count`` resolutions of its spatial layers, one layer each -- the last residual ``Add``
    at that resolution when the model has residual adds (a block's output: efficientnet_lite0
    gives ``block2b_add``, ``block3b_add``, ``block5c_add``, ``block6d_add``), else its last
    spatial layer there (VGG16: ``block3_conv3`` ... ``block5_pool``). Padding layers and
    the model's own outputs are left out. Raises :class:`NoSpatialLayerError` when the
    model has no spatial layer."""
    def build():
        outputs = {id(t) for t in bundle.model.outputs}
        found = []  # (path, layer, (h, w)) of every candidate, in graph order
        for path, layer, _ in iter_layers(bundle.model):
            if isinstance(layer, (keras.layers.InputLayer, keras.Model, keras.layers.ZeroPadding2D)):
                continue
            if id(_single_output(layer)) in outputs:
                continue
            s = output_shape(layer)
            if s is not None and len(s) == 4:
                found.append((path, layer, tuple(s[1:3])))
        if not found:
            raise NoSpatialLayerError(
                f"TCAV needs layers with a spatial [N, H, W, C] output; model {bundle.model.name!r} has none "
                f"(layers: {', '.join(bundle.layer_paths()[:20])})")
        adds = [f for f in found if isinstance(f[1], keras.layers.Add)]
        last = {}  # resolution -> the last candidate there (dicts keep the order of first appearance)
        for path, layer, hw in (adds or found):
            last.pop(hw, None)
            last[hw] = _named(bundle, path, layer)
        return list(last.values())[-count:]
    return list(bundle.programs.get("default_layers.concept_layers", (), (int(count),), build))
