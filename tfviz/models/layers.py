"""Walking a Keras model's layers (nested models included) and what each layer is."""
from __future__ import annotations

import keras

def iter_layers(model, prefix: str = ""):
    """Yield ``(path, layer, parent_model)`` for every layer, descending into nested
    models; ``path`` is ``outer/inner`` for nested layers."""
    for layer in model.layers:
        path = prefix + layer.name
        yield path, layer, model
        if hasattr(layer, "layers") and layer.layers and hasattr(layer, "inputs"):
            yield from iter_layers(layer, path + "/")


def output_shape(layer):
    """A layer's single output shape as a tuple, or None (no output yet, or several)."""
    try:
        out = layer.output
    except (AttributeError, ValueError):
        return None
    if isinstance(out, (list, tuple)):
        return None
    return tuple(out.shape)


def is_softmax(fn) -> bool:
    """``fn`` (an activation function or layer) is a softmax."""
    name = getattr(fn, "__name__", "") or type(fn).__name__
    return name.lower() == "softmax"


def is_conv(layer) -> bool:
    """A convolution layer of any kind (1-3D, depthwise, separable, transposed)."""
    return isinstance(layer, (keras.layers.Conv1D, keras.layers.Conv2D, keras.layers.Conv3D,
                              keras.layers.DepthwiseConv2D, keras.layers.SeparableConv2D,
                              keras.layers.Conv2DTranspose))


def describe_layers(bundle, spatial: bool = False, conv: bool = False) -> list[tuple[str, str, str]]:
    """``(name, layer type, output shape)`` for every layer (nested ones as
    ``outer/inner``), optionally only spatial or convolution layers."""
    names = set(bundle.layer_names(spatial=spatial, conv=conv))
    rows = []
    for path, layer, _ in iter_layers(bundle.model):
        shown = layer.name if bundle.is_unique(layer.name) else path
        if shown in names:
            shape = output_shape(layer)
            rows.append((shown, type(layer).__name__, "?" if shape is None else str(tuple(shape))))
    return rows
