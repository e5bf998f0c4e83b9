"""Views of the user's model that the attribution methods differentiate through.

A *head* is a Keras model from the model input to the tensor a target's score comes from
-- the logits (a final softmax bypassed, see :attr:`tfviz.models.ModelBundle.logits`) or
a unit's layer -- optionally also returning the outputs of other layers (Grad-CAM needs
its conv layer) and optionally with every ReLU's backward pass replaced (guided backprop,
deconvnet). Heads are built by re-running the model's graph of layers with the *same
layer objects* (weights shared, nothing copied, nothing changed in the user's model),
expanding nested Functional / Sequential models inline. Each head is built once per
bundle and cached in it.
"""
from __future__ import annotations

from ..graph import Rewriter


def _relu_swap(relu_mode):
    """A Rewriter hook wrapping every ReLU-type layer call (see :mod:`.guided`)."""
    if relu_mode is None:
        return None
    if relu_mode == "deeplift":  # every element-wise nonlinearity, rescale rule (see .deeplift)
        from .deeplift import replace_hook
        return replace_hook

    def replace(op):
        spec = _relu_spec(op)
        if spec is None:
            return None
        from .guided import GuidedReLU
        return GuidedReLU(op, spec, relu_mode)

    return replace


def _relu_spec(op):
    from .guided import relu_spec
    return relu_spec(op)


def head(bundle, layer: str | None = None, relu: str | None = None, capture: tuple = ()):
    """The (cached) Keras model ``input -> [captured layers..., score source]``.

    ``layer=None``: the score source is the logits; otherwise the output of ``layer`` (a
    unit target). ``relu``: ``None``, ``"guided"`` or ``"deconvnet"``. ``capture``: extra
    layer names whose outputs come first. With nothing to capture the model has a single
    output."""
    capture = tuple(capture)
    return bundle.programs.get("attribution.head", capture + ((layer,) if layer else ()), (layer, relu, capture),
                               lambda: _build_head(bundle, layer, relu, capture))


def _build_head(bundle, layer, relu, capture):
    import keras
    if layer is None and relu is None and not capture:
        model = bundle.logits
    else:
        if relu is not None and relu != "deeplift":
            from .guided import check_has_relu
            check_has_relu(bundle)
        source = bundle.logits if layer is None else bundle.model
        for name in capture + ((layer,) if layer else ()):
            bundle.layer(name)  # unknown names -> UnknownLayerError listing valid ones
        rw = Rewriter(capture + ((layer,) if layer else ()), replace=_relu_swap(relu))
        inp, out = rw.trace(source)  # a subclassed model: UnsupportedModelError
        if isinstance(out, (list, tuple)):
            out = out[0]
        missing = [n for n in capture + ((layer,) if layer else ()) if n not in rw.captured]
        if missing:
            from .errors import TargetError
            raise TargetError(f"layer(s) {', '.join(map(repr, missing))} are not on the path from the input to "
                              f"the {'scores' if layer is None else 'model output'} (an input layer, or a "
                              f"layer after the logits); pick another layer")
        main = rw.captured[layer] if layer else out
        outs = [rw.captured[n] for n in capture] + [main]
        model = keras.Model(inp, outs if capture else main,
                            name=f"{bundle.model.name}_{relu or 'plain'}_head")
    return model
