"""Checks that tell a user which attribution map to believe.

* **Deletion / insertion** (Petsiuk et al. 2018, RISE): remove the pixels the map ranks
  highest first (replacing them with ``fill``), or insert them into a blurred copy, and
  follow the target's probability; the area under that curve (x = fraction of pixels,
  0..1). A faithful map has a *low* deletion AUC (the score collapses quickly) and a
  *high* insertion AUC.
* **ROAD** (Rong et al. 2022, :mod:`.road`): pixels removed in the map's order are filled
  from their neighbours (noisy linear imputation), not painted black, so the removal draws
  no shape the model could react to; the score after removing most relevant first (MoRF,
  lower is better) and least relevant first (LeRF, higher is better), and their gap.
* **Model randomization** (Adebayo et al. 2018): re-initialize the model's top layers on
  a *clone* -- cascading from the logits down -- recompute the map, and report the
  Spearman rank correlation with the original map (of absolute values). A map that
  explains the model should change (low correlation); one that stays the same shows
  the input's edges whatever the weights.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import keras
import numpy as np
import tensorflow as tf
from scipy.stats import rankdata

from ..models import ModelBundle, iter_layers
from ..utils import UnknownLayerError, did_you_mean
from .core import (as_bundle, check_finite, group_by_head, head_scores, maps_2d, padded_batches, pixel_ranks, prepare,
                   score_activation, selection, substitute)
from .errors import AttributionError, UnsupportedModelError
from .heads import head
from .registry import METHODS, method_on_inputs, methods_for
from .road import DEFAULT_FRACTIONS, road_curves
from .targets import resolve_targets

DEFAULT_CURVE_BATCH = 64


def _curve_function(bundle, layer, probability):
    def build():
        model = head(bundle, layer)
        activation = score_activation(bundle, layer, probability)

        @tf.function(autograph=False)
        def tfviz_curve(a, b, rank, img, k, sel):
            m = tf.cast(tf.gather(rank, img) < k[:, None, None], a.dtype)[..., None]
            xb = tf.gather(a, img) * (1.0 - m) + tf.gather(b, img) * m
            return head_scores(model, xb, activation, sel)
        return tfviz_curve
    return bundle.programs.get("attribution.curve", layer, (bool(probability),), build)


def curves(bundle, x, targets, maps, mode: str, steps: int = 50, substitute_with="black", score="probability",
           batch_size: int = DEFAULT_CURVE_BATCH) -> np.ndarray:
    """Deletion (``mode="deletion"``) or insertion curves ``[N, steps + 1]``: the target's
    score after ``i / steps`` of the pixels, highest-ranked first, are replaced by
    ``substitute_with`` (deletion) or taken from the image into ``substitute_with``
    (insertion)."""
    if not isinstance(steps, (int, np.integer)) or steps < 1:
        raise AttributionError(f"steps must be a positive integer, got {steps!r}")
    if score not in ("probability", "logit"):
        raise AttributionError(f"score must be 'probability' or 'logit', got {score!r}")
    n, h, w, _ = x.shape
    m = maps_2d(maps, n, h, w)
    rank = tf.constant(pixel_ranks(m))
    other = substitute(bundle, x, substitute_with, what="deletion fill" if mode == "deletion" else "insertion start")
    a, b = (x, other) if mode == "deletion" else (other, x)
    a, b = tf.constant(a), tf.constant(b)
    ks = np.round(np.linspace(0, h * w, steps + 1)).astype(np.int32)
    out = np.zeros((n, steps + 1), np.float32)
    for layer, ids in group_by_head(targets).items():
        f = _curve_function(bundle, layer, score == "probability")
        rows = selection([targets[i] for i in ids])
        total = len(ids) * (steps + 1)
        for it, real in padded_batches(total, batch_size):
            k, j = it // (steps + 1), it % (steps + 1)
            img = ids[k].astype(np.int32)
            out[img[:real], j[:real]] = f(a, b, rank, img, ks[j], rows[k]).numpy()[:real]
    return check_finite(out, "deletion/insertion scores", targets)


def auc(curve: np.ndarray) -> np.ndarray:
    """Area under curves sampled evenly on [0, 1] (trapezoid rule), per row."""
    c = np.atleast_2d(curve)
    steps = c.shape[1] - 1
    return ((c.sum(axis=1) - 0.5 * (c[:, 0] + c[:, -1])) / steps).astype(np.float32)


def _curve_auc(bundle, images, target, maps, mode, steps, sub, score, batch_size, return_curves):
    bundle = as_bundle(bundle)
    x = prepare(bundle, images)
    targets = resolve_targets(bundle, target, len(x), x)
    c = curves(bundle, x, targets, maps, mode, steps, sub, score, batch_size)
    return (auc(c), c) if return_curves else auc(c)


def deletion_auc(bundle, images, target, maps, *, steps: int = 50, fill="black", score: str = "probability",
                 batch_size: int = DEFAULT_CURVE_BATCH, return_curves: bool = False):
    """Deletion AUC per image ``[N]`` (lower is better): the target's probability
    (``score="logit"``: its logit; a unit's value for unit targets) while the pixels
    that ``maps`` ranks highest are replaced by ``fill`` (default black), in ``steps``
    equal steps. ``return_curves=True`` also returns the curves ``[N, steps + 1]``."""
    return _curve_auc(bundle, images, target, maps, "deletion", steps, fill, score, batch_size, return_curves)


def insertion_auc(bundle, images, target, maps, *, steps: int = 50, start="blur", score: str = "probability",
                  batch_size: int = DEFAULT_CURVE_BATCH, return_curves: bool = False):
    """Insertion AUC per image ``[N]`` (higher is better): starting from ``start``
    (default: the image blurred), the pixels that ``maps`` ranks highest are put back
    first, and the target's probability is followed."""
    return _curve_auc(bundle, images, target, maps, "insertion", steps, start, score, batch_size, return_curves)


# --------------------------------------------------------------------------- randomization
@dataclass
class RandomizationResult:
    """``spearman[i, n]``: rank correlation for image ``n`` between the original map and
    the map after re-initializing ``layers[: i + 1]`` (cascading from the top)."""
    method: str
    layers: list = field(default_factory=list)
    spearman: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), np.float32))

    @property
    def final(self) -> float:
        """Mean correlation over images after the whole cascade."""
        return float(np.mean(self.spearman[-1])) if len(self.spearman) else float("nan")

    def __str__(self):
        rows = [f"{self.method}: Spearman rank correlation with the original map"]
        for name, r in zip(self.layers, self.spearman):
            rows.append(f"  + re-init {name:<30s} {np.mean(r):+.3f}")
        return "\n".join(rows)


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman rank correlation of two maps (average ranks for ties); 0 when one map
    is constant."""
    ra, rb = rankdata(np.ravel(a)), rankdata(np.ravel(b))
    sa, sb = ra.std(), rb.std()
    if sa == 0 or sb == 0:
        return 0.0
    return float(np.mean((ra - ra.mean()) * (rb - rb.mean())) / (sa * sb))


def _weighted_layers(model):
    return [(p, layer) for p, layer, _ in iter_layers(model) if not isinstance(layer, keras.Model) and layer.weights]


def _randomizable(bundle):
    """A clone of the user's model (new variables) and its bundle, cached; its weights
    are reset to the user's at the start of every check."""
    def build():
        try:
            clone = keras.models.clone_model(bundle.model)
        except Exception as exc:
            raise UnsupportedModelError(f"cannot clone model {bundle.model.name!r} for the randomization check: "
                                        f"{str(exc).splitlines()[0] if str(exc) else type(exc).__name__}") from None
        work = ModelBundle(model=clone, name=bundle.name + "-randomized", preprocessing=bundle.preprocessing,
                           input_size=bundle.input_size, class_names=bundle.class_names, output=bundle.output)
        pairs = dict(_weighted_layers(clone))
        layers = [(p, layer, pairs[p]) for p, layer in _weighted_layers(bundle.model) if p in pairs]
        return work, layers
    return bundle.programs.get("attribution.randomizable", build=build)


def _initializer(layer, var_name: str):
    cands = [f"{var_name}_initializer"]
    if var_name == "kernel":
        cands += ["kernel_initializer", "depthwise_initializer"]
    if var_name in ("depthwise_kernel",):
        cands += ["depthwise_initializer"]
    if var_name in ("pointwise_kernel",):
        cands += ["pointwise_initializer"]
    for c in cands:
        init = getattr(layer, c, None)
        if init is not None and callable(init):
            return init
    return None


def reinitialize(layer, seed: int):
    """Re-draw a layer's variables from its own initializers (seeded); variables without
    one get the usual defaults (zeros for biases and means, ones for scales and
    variances, Glorot-uniform otherwise)."""
    rng = np.random.default_rng(seed)
    for k, var in enumerate(layer.weights):
        name = var.name.split("/")[-1].split(":")[0]
        shape, dtype = tuple(var.shape), var.dtype
        init = _initializer(layer, name)
        value = None
        if init is not None:
            try:
                cfg = init.get_config() if hasattr(init, "get_config") else {}  # a plain function works too
                if "seed" in cfg:
                    init = init.__class__.from_config({**cfg, "seed": int(seed) * 1000 + k})
                value = np.asarray(keras.ops.convert_to_numpy(init(shape, dtype=dtype)))
            except (TypeError, ValueError, NotImplementedError) as exc:  # e.g. a custom initializer's signature
                warnings.warn(f"randomization check: the initializer of {layer.name}/{name} failed "
                              f"({type(exc).__name__}: {exc}); drawing that variable from the defaults instead",
                              stacklevel=2)
                value = None
        if value is None:
            if any(t in name for t in ("bias", "beta", "mean")):
                value = np.zeros(shape)
            elif any(t in name for t in ("gamma", "variance", "scale")):
                value = np.ones(shape)
            else:
                fan = np.prod(shape[:-1]) if len(shape) > 1 else shape[0]
                lim = np.sqrt(6.0 / (fan + shape[-1])) if shape else 0.05
                value = rng.uniform(-lim, lim, shape)
        var.assign(np.asarray(value, dtype=np.dtype(str(dtype)) if str(dtype) != "bfloat16" else np.float32))


def randomization_check(bundle, images, target, method, *, layers=3, seed: int = 0,
                        **method_options) -> RandomizationResult:
    """Model-randomization sanity check (Adebayo et al. 2018), cascading.

    ``method``: a tfviz.attribution function or name; ``method_options`` pass through.
    ``layers``: how many weighted layers to re-initialize, from the top (an int; or a
    list of layer names/paths, re-initialized cumulatively in the given order). Works on
    a clone: the user's model and weights are never touched. Targets are fixed on the
    original model (``None`` means its top-1 class)."""
    bundle = as_bundle(bundle)
    on = method_on_inputs(method)
    name = method if isinstance(method, str) else getattr(method, "__name__", str(method))
    x = prepare(bundle, images)
    targets = resolve_targets(bundle, target, len(x), x)
    n, h, w, _ = x.shape
    original = np.abs(maps_2d(on(bundle, x, targets, **method_options), n, h, w))
    work, weighted = _randomizable(bundle)
    if isinstance(layers, (int, np.integer)) and not isinstance(layers, bool):
        if layers < 1:
            raise AttributionError(f"layers must be >= 1, got {layers}")
        chosen = list(reversed(weighted))[: int(layers)]
    else:
        by_name = {}
        for p, lo, lw in weighted:
            by_name.setdefault(p, (p, lo, lw))
            by_name.setdefault(lo.name, (p, lo, lw))
        chosen = []
        for nm in layers:
            if nm not in by_name:
                raise UnknownLayerError(did_you_mean("layer with weights", nm, [p for p, _, _ in weighted]))
            chosen.append(by_name[nm])
    for _, lo, lw in weighted:  # start from the user's weights
        for vo, vw in zip(lo.weights, lw.weights):
            vw.assign(vo)
    rows = []
    for k, (_, _, lw) in enumerate(chosen):
        reinitialize(lw, seed + k)
        m = np.abs(maps_2d(on(work, x, targets, **method_options), n, h, w))
        rows.append([spearman(original[i], m[i]) for i in range(n)])
    return RandomizationResult(name, [p for p, _, _ in chosen], np.asarray(rows, np.float32))


def trust_report(bundle, images, target=None, methods=None, *, steps: int = 50, layers: int = 3,
                 method_options: dict | None = None, progress=None, road: bool = True,
                 road_fractions=DEFAULT_FRACTIONS) -> list[dict]:
    """For each method: mean deletion AUC (lower is better), insertion AUC (higher is
    better), ROAD (:mod:`.road`: ``road_morf`` lower is better, ``road_lerf`` higher is
    better, ``road`` their gap, higher is better) and randomization rank correlation
    (lower is better) over ``images``.

    ``methods``: names or functions (default: every method that can explain the model,
    :func:`~tfviz.attribution.methods_for`);
    ``method_options``: ``{name: {option: value}}``; ``road=False`` leaves ROAD out (its
    rows hold None), ``road_fractions`` its removal fractions. ``progress(name, row)`` is
    called after each method with its row (so a caller can show results as they come).
    Returns one dict per method with keys ``method``, ``deletion``, ``insertion``,
    ``road_morf``, ``road_lerf``, ``road``, ``randomization``, ``maps`` and ``note`` (None,
    or one line on how to read the method's figures: Eigen-CAM's map is class-agnostic)."""
    bundle = as_bundle(bundle)
    x = prepare(bundle, images)
    targets = resolve_targets(bundle, target, len(x), x)
    u8 = bundle.deprocess(x)
    method_options = method_options or {}
    rows = []
    for m in methods or methods_for(bundle):
        name = m if isinstance(m, str) else m.__name__
        opts = method_options.get(name, {})
        maps = method_on_inputs(m)(bundle, x, targets, **opts)
        dele = deletion_auc(bundle, u8, targets, maps, steps=steps)
        ins = insertion_auc(bundle, u8, targets, maps, steps=steps)
        rd = road_curves(bundle, x, targets, maps, road_fractions) if road else None
        rnd = randomization_check(bundle, u8, targets, m, layers=layers, **opts)
        rows.append({"method": name, "deletion": float(np.mean(dele)), "insertion": float(np.mean(ins)),
                     "road_morf": None if rd is None else float(np.mean(rd.morf_mean)),
                     "road_lerf": None if rd is None else float(np.mean(rd.lerf_mean)),
                     "road": None if rd is None else float(np.mean(rd.gap)),
                     "randomization": rnd.final, "randomized_layers": rnd.layers, "maps": maps,
                     "note": getattr(METHODS.get(name.strip().lower().replace("-", "_"), m), "note", None)})
        if progress:
            progress(name, rows[-1])
    return rows
