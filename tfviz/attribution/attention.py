"""Attention rollout (Abnar & Zuidema 2020) and its gradient-weighted form (after Chefer
et al. 2021): where a vision transformer's class token draws its information from.

Each ``keras.layers.MultiHeadAttention`` block ``b`` has attention weights ``A_b``
``[heads, T, T]`` (softmax rows: how much each query token takes from each key token).
Rollout follows the residual stream through the blocks: ``Â_b = rownorm(I + mean_heads
A_b)``, ``R = Â_L ... Â_2 Â_1``; row ``i`` of ``R`` says how much token ``i`` at the top
is made of each input token. The gradient-weighted form is Chefer et al.'s rule (2021,
"Generic attention-model explainability", eqs. 5-6): ``Ā_b = mean_heads relu(dS/dA_b *
A_b)`` (the target score ``S``'s gradient), ``R_0 = I``, ``R_b = R_(b-1) + Ā_b R_(b-1)``,
no normalization, so heads and tokens that do not raise the score drop out -- it explains
one class, plain rollout the same for every class.
The map is the class token's row of ``R`` over the patch tokens (without a class token,
the mean of all rows), on the patch grid (:func:`tfviz.models.tokens.token_grid`), upsampled bilinearly.

The scores are read without changing the user's model: its graph is re-run
(:class:`tfviz.graph.Rewriter`) with each ``MultiHeadAttention`` called on the same layer
object with ``return_attention_scores=True``, inside one traced program per head.
"""
from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from ..graph import Rewriter
from ..models import iter_layers
from ..models.tokens import token_grid
from .core import DEFAULT_BATCH, check_finite, group_by_head, padded_batches, select_score, selection
from .errors import AttributionError, NoSpatialLayerError, TargetError
from .heads import score_rows, score_source
from .registry import attribution_method


def missing_attention(bundle) -> str | None:
    """Why attention rollout cannot explain the model (one line), or None when it has
    ``keras.layers.MultiHeadAttention`` layers (nested models searched)."""
    layers = [layer for _, layer, _ in iter_layers(bundle.model)]
    if any(isinstance(layer, keras.layers.MultiHeadAttention) for layer in layers):
        return None
    kinds = sorted({type(layer).__name__ for layer in layers if not isinstance(layer, keras.layers.InputLayer)})
    return (f"attention_rollout needs keras.layers.MultiHeadAttention layers (a vision transformer); model "
            f"{bundle.model.name!r} has none (its layers: {', '.join(kinds)}); use a CAM method such as grad_cam")


def check_attention(bundle):
    """Raise :class:`NoSpatialLayerError` (:func:`missing_attention`'s line) for a model
    without ``MultiHeadAttention``."""
    why = missing_attention(bundle)
    if why is not None:
        raise NoSpatialLayerError(why)


def _score_hook(scores: list):
    """A :class:`~tfviz.graph.Rewriter` hook: every ``MultiHeadAttention`` is called as
    before but with ``return_attention_scores=True``; its scores go to ``scores``."""
    def hook(op):
        if not isinstance(op, keras.layers.MultiHeadAttention):
            return None

        def call(*args, **kwargs):
            asked = kwargs.get("return_attention_scores", False)
            out, a = op(*args, **{**kwargs, "return_attention_scores": True})
            scores.append(a)
            return (out, a) if asked else out
        return call
    return hook


def _run(bundle, x, layer):
    """Inside a traced function: the score source (the logits, or ``layer``'s output for a
    unit target) and the attention scores of every block, in the order they ran."""
    scores = []
    unit = layer if isinstance(layer, str) else None
    rw = Rewriter((unit,) if unit else (), replace=_score_hook(scores))
    out = rw.run_model(score_source(bundle, layer), x)
    if unit is not None and unit not in rw.captured:
        raise TargetError(f"layer {unit!r} is not on the path from the input to the model output; pick another")
    main = rw.captured[unit] if unit else (out[0] if isinstance(out, list) else out)
    if layer is not None and unit is None:  # a score function of the logits
        main = score_rows(layer, main)
    return main, scores


def rollout(scores: list, weights: list) -> tf.Tensor:
    """``[B, T, T]`` from each block's scores ``[B, heads, T, T]``. Without weights (plain
    rollout, Abnar & Zuidema): ``R = Â_L ... Â_1``, ``Â = rownorm(I + mean_heads(A))``.
    With a weight ``G`` per block (the score's gradient; Chefer et al.'s rule): ``R_0 = I``,
    ``R_b = R_(b-1) + mean_heads(relu(G * A)) R_(b-1)``."""
    r = None
    for a, g in zip(scores, weights):
        if g is None:
            m = tf.reduce_mean(a, axis=1)
            m = m + tf.eye(tf.shape(m)[-1], dtype=m.dtype)
            m = m / tf.reduce_sum(m, axis=-1, keepdims=True)
            r = m if r is None else tf.matmul(m, r)
        else:
            m = tf.reduce_mean(tf.nn.relu(g * a), axis=1)
            if r is None:
                r = tf.eye(tf.shape(m)[-1], batch_shape=tf.shape(m)[:1], dtype=m.dtype)
            r = r + tf.matmul(m, r)
    return r


def _check_scores(scores, layer):
    shapes = {tuple(a.shape[1:]) for a in scores}
    if not scores:
        where = f"before layer {layer!r}" if layer else "on the path to the scores"
        raise AttributionError(f"no MultiHeadAttention runs {where}; explain a later layer or the classes")
    if len(shapes) != 1 or any(len(s) != 3 or s[1] != s[2] for s in shapes):
        raise AttributionError(f"attention_rollout needs self-attention over one token sequence in every block "
                               f"(scores [heads, T, T]); got scores of shapes {sorted(shapes)}")


def _token_map(r, hw):
    """The class token's row of ``R`` over the patch tokens (no class token: the mean of all
    rows) as ``[B, gh, gw]``."""
    extra, gh, gw = token_grid(r.shape[-1], hw)
    row = r[:, 0] if extra else tf.reduce_mean(r, axis=1)
    return tf.reshape(row[:, extra:], [-1, gh, gw])


def _rollout_function(bundle, layer, gradient: bool):
    """``f(x, sel) -> (maps upsampled [B, H, W], maps [B, gh, gw])`` for one head."""
    def build():
        @tf.function(autograph=False)
        def tfviz_attention_rollout(x, sel):
            with tf.GradientTape() as tape:
                out, scores = _run(bundle, x, layer)
                total = tf.reduce_sum(select_score(out, sel))
            grads = tape.gradient(total, scores) if gradient or layer else [0.0] * len(scores)
            used = [(a, g if gradient else None) for a, g in zip(scores, grads) if g is not None]
            _check_scores([a for a, _ in used], layer)
            low = _token_map(rollout(*zip(*used)), x.shape[1:3])
            return tf.image.resize(low[..., None], tf.shape(x)[1:3], method="bilinear")[..., 0], low
        return tfviz_attention_rollout
    return bundle.programs.get("attribution.attention_rollout", layer, (bool(gradient),), build)


@attribution_method(applies=missing_attention)
def attention_rollout(bundle, x, targets, *, gradient: bool = False, batch_size: int = DEFAULT_BATCH,
                      upsample: bool = True) -> np.ndarray:
    """Attention rollout map ``[N, H, W]`` (>= 0; Abnar & Zuidema 2020) of a vision
    transformer built from ``keras.layers.MultiHeadAttention``: the attention of every
    block, averaged over heads, plus the residual identity, rows normalized, multiplied
    from the first block to the last; the class token's row over the patch tokens (without
    a class token, the mean over tokens), upsampled bilinearly (``upsample=False``: the
    patch grid). ``gradient=True`` is Chefer et al.'s (2021) gradient-weighted relevance:
    each head's attention weighted by the target's gradient, ``relu(dS/dA * A)``, averaged
    over heads, accumulated as ``R += Ā R`` from ``R = I`` (no normalization): a map of the
    target class, not of the image alone. A unit target rolls out the blocks before its layer."""
    check_attention(bundle)  # a model without attention: one clear error first
    n = len(x)
    out = None
    for head_layer, ids in group_by_head(targets).items():
        f = _rollout_function(bundle, head_layer, gradient)
        rows = selection([targets[i] for i in ids])
        for it, real in padded_batches(len(ids), batch_size):
            ups, lows = f(x[ids[it]], rows[it])
            m = (ups if upsample else lows).numpy()[:real]
            if out is None:
                out = np.zeros((n,) + m.shape[1:], np.float32)
            out[ids[it][:real]] = m
    return check_finite(out, "attention rollout maps", targets)
