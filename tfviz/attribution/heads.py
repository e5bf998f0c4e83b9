"""Heads: the views of the user's model that the attribution methods differentiate through.

A *head* is a Keras model from the model input to the tensor a target's score comes from
-- the logits (a final softmax bypassed, see :attr:`tfviz.models.ModelBundle.logits`) or
a unit's layer -- optionally also returning the outputs of other layers (Grad-CAM needs
its conv layer) and optionally with a backward rule applied to every matching activation
(:mod:`.rules`: guided backprop, deconvnet, DeepLIFT). Heads are built by re-running the
model's graph of layers with the *same layer objects* (weights shared, nothing copied,
nothing changed in the user's model), expanding nested Functional / Sequential models
inline. Each head is built once per bundle and cached in ``bundle.programs``.
"""
from __future__ import annotations

import keras

from ..errors import TargetError
from ..graph import Rewriter
from .rules import GUIDED_RULES, check_has_relu, rewriter_hook


def head(bundle, layer: str | None = None, relu: str | None = None, capture: tuple = ()):
    """The (cached) Keras model ``input -> [captured layers..., score source]``.

    ``layer=None``: the score source is the logits; otherwise the output of ``layer`` (a
    unit target). ``relu``: the backward rule, ``None``, ``"guided"``, ``"deconvnet"`` or
    ``"deeplift"``. ``capture``: extra layer names whose outputs come first. With nothing
    to capture the model has a single output."""
    capture = tuple(capture)
    return bundle.programs.get("attribution.head", capture + ((layer,) if layer else ()), (layer, relu, capture),
                               lambda: _build_head(bundle, layer, relu, capture))


def _build_head(bundle, layer, relu, capture):
    if layer is not None and not isinstance(layer, str):  # a score function of the logits
        return _score_function_head(bundle, layer, relu, capture)
    if layer is None and relu is None and not capture:
        return bundle.logits
    if relu in GUIDED_RULES:
        check_has_relu(bundle, relu)
    wanted = capture + ((layer,) if layer else ())
    for name in wanted:
        bundle.layer(name)  # unknown names -> UnknownLayerError listing valid ones
    rw = Rewriter(wanted, replace=rewriter_hook(relu))
    inp, out = rw.trace(bundle.logits if layer is None else bundle.model)  # subclassed: UnsupportedModelError
    if isinstance(out, (list, tuple)):
        out = out[0]
    missing = [n for n in wanted if n not in rw.captured]
    if missing:
        raise TargetError(f"layer(s) {', '.join(map(repr, missing))} are not on the path from the input to "
                          f"the {'scores' if layer is None else 'model output'} (an input layer, or a "
                          f"layer after the logits); pick another layer")
    main = rw.captured[layer] if layer else out
    outs = [rw.captured[n] for n in capture] + [main]
    return keras.Model(inp, outs if capture else main, name=f"{bundle.model.name}_{relu or 'plain'}_head")


def _score_function_head(bundle, score, relu, capture):
    """The logits head (with ``relu``'s rule and ``capture``) followed by ``score.fn``:
    ``[B, 1]`` scores, traced with the method's program."""
    base = head(bundle, None, relu, capture)
    outs = list(base.outputs)

    def one_score(t):
        s = score.fn(t)
        return keras.ops.reshape(s, (-1, 1))
    scores = keras.layers.Lambda(one_score, name=f"tfviz_target_{score.name}")(outs[-1])
    return keras.Model(base.inputs, outs[:-1] + [scores] if capture else scores,
                       name=f"{bundle.model.name}_{score.name}_head")
