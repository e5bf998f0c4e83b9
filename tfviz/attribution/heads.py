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


def score_source(bundle, layer):
    """The model a head's score comes from: the model itself for a unit target (its layer
    is inside it), else the logits view (a class, a region, a score function of the logits)."""
    return bundle.model if isinstance(layer, str) else bundle.logits


def score_rows(score, out):
    """A score function's scores of the logits ``out``: ``[B, 1]``, what
    :func:`~tfviz.attribution.core.select_score` reads for it (traced with the method)."""
    return keras.ops.reshape(score.fn(out), (-1, 1))


def with_score_function(model, score, name: str):
    """``model`` with its last output (the logits) replaced by ``score``'s rows
    (:func:`score_rows`); other outputs (captured layers) kept in front."""
    outs = list(model.outputs)

    def one_score(t):
        return score_rows(score, t)
    scores = keras.layers.Lambda(one_score, name=f"tfviz_target_{score.name}")(outs[-1])
    return keras.Model(model.inputs, outs[:-1] + [scores] if len(outs) > 1 else scores, name=name)


def traced_graph(bundle, source, wanted, unit=None, replace=None):
    """``(input, main, captured)``: ``source``'s graph re-run layer by layer (nested models
    expanded; ``replace`` as :class:`~tfviz.graph.Rewriter`), ``main`` its output or, for
    a unit target, the output of layer ``unit``; ``captured`` maps each of ``wanted`` (and
    ``unit``) to its symbolic output. Unknown names list the valid ones; names off the path
    to the output are one :class:`TargetError`."""
    names = tuple(wanted) + ((unit,) if unit else ())
    for name in names:
        bundle.layer(name)  # unknown names -> UnknownLayerError listing valid ones
    rw = Rewriter(names, replace=replace)
    inp, out = rw.trace(source)  # subclassed: UnsupportedModelError
    if isinstance(out, (list, tuple)):
        out = out[0]
    missing = [n for n in names if n not in rw.captured]
    if missing:
        raise TargetError(f"layer(s) {', '.join(map(repr, missing))} are not on the path from the input to "
                          f"the {'scores' if unit is None else 'model output'} (an input layer, or a "
                          f"layer after the logits); pick another layer")
    return inp, (rw.captured[unit] if unit else out), rw.captured


def _build_head(bundle, layer, relu, capture):
    if layer is not None and not isinstance(layer, str):  # a score function of the logits
        return _score_function_head(bundle, layer, relu, capture)
    if layer is None and relu is None and not capture:
        return bundle.logits
    if relu in GUIDED_RULES:
        check_has_relu(bundle, relu)
    inp, main, captured = traced_graph(bundle, score_source(bundle, layer), capture, layer, rewriter_hook(relu))
    outs = [captured[n] for n in capture] + [main]
    return keras.Model(inp, outs if capture else main, name=f"{bundle.model.name}_{relu or 'plain'}_head")


def _score_function_head(bundle, score, relu, capture):
    """The logits head (with ``relu``'s rule and ``capture``) followed by ``score.fn``:
    ``[B, 1]`` scores, traced with the method's program."""
    return with_score_function(head(bundle, None, relu, capture), score, f"{bundle.model.name}_{score.name}_head")
