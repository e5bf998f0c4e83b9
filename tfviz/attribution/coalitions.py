"""Explanations from coalitions of superpixels: feature ablation, LIME and KernelSHAP.

The image is split into ``M`` superpixels (:mod:`.superpixels`). A *coalition* ``z`` in
``{0, 1}^M`` keeps the superpixels where ``z_j = 1`` and replaces the others by the
baseline; the model scores each such copy. The three methods differ in which coalitions
they ask about and what they fit to the answers:

* :func:`feature_ablation` (captum's ``FeatureAblation`` over a feature mask): each
  superpixel alone left out; its value is the score drop ``f(1) - f(1 - e_j)``.
* :func:`lime` (Ribeiro, Singh & Guestrin, KDD 2016, "Why Should I Trust You?"): random
  coalitions, each superpixel kept with probability 1/2; a ridge regression of the
  scores on ``z``, each sample weighted by an exponential kernel on its cosine distance
  to the whole image. Its coefficients are the explanation.
* :func:`kernel_shap` (Lundberg & Lee, NeurIPS 2017, "A Unified Approach to Interpreting
  Model Predictions"): coalitions drawn from the Shapley kernel, each with its
  complement, a weighted least squares whose solution is the Shapley values when every
  coalition is used, under the constraint that the values add up to
  ``f(1) - f(0)`` (efficiency), enforced exactly.

How it runs: every copy is made inside one traced program from the images, their
baselines, their labels and the batch's rows of the coalition matrix (``mask =
gather(z, labels)``; ``copy = baseline + mask * (image - baseline)``) and scored there;
copies of several images share batches. Nothing is copied per coalition on the host.
The program is traced once per image shape (any batch size, any number of superpixels).
"""
from __future__ import annotations

import itertools
import math

import numpy as np
import tensorflow as tf
from sklearn.linear_model import Ridge

from .core import SEL_WIDTH, check_finite, even_batches, group_by_head, head_scores, score_activation, selection
from .errors import AttributionError
from .heads import head
from .registry import attribution_method
from .superpixels import Segmentation, baseline_inputs, segment, top_superpixels

#: LIME's defaults (lime_image.LimeImageExplainer): 1000 samples, kernel width 0.25 on the
#: cosine distance, ridge penalty 1 (lime_base's ``Ridge(alpha=1)``), 5 features shown
LIME_SAMPLES = 1000
LIME_KERNEL_WIDTH = 0.25
LIME_ALPHA = 1.0
TOP_K = 5
#: KernelSHAP's default number of coalitions besides the all-on and all-off ones
#: (see :func:`default_shap_samples`)
SHAP_SAMPLES = 1024


# --------------------------------------------------------------------------- the program
def copies_batch(h: int, w: int, batch_size=None) -> int:
    """Copies per forward pass: ``batch_size`` when given, else sized for the machine -- on
    CPUs about eight 224 x 224 images' worth of pixels (efficientnet_lite0 on 2 cores:
    13 ms a copy at batch 8 against 22 at 1 and 4, 18-32 at 16-64, where batches fall out
    of cache; bench/bench_superpixels.py), on a GPU 64 of them."""
    if batch_size:
        return max(1, int(batch_size))
    per = 64 if tf.config.list_logical_devices("GPU") else 8
    return int(min(1024, max(1, round(per * 224 * 224 / max(1, h * w)))))


def coalition_function(bundle, layer, probability, shape):
    """``f(x [K,H,W,C], base [K,H,W,C], labels [K,H,W], z [B,M], img [B], sel [B,7]) -> scores [B]``:
    item ``i`` is image ``img[i]`` with the superpixels where ``z[i] = 1`` kept and the
    others taken from its baseline. Traced once per image shape: any K, B and M."""
    h, w, c = (int(v) for v in shape)

    def build():
        model = head(bundle, layer)
        activation = score_activation(bundle, layer, probability)
        img4 = tf.TensorSpec([None, h, w, c], tf.float32)
        sig = [img4, img4, tf.TensorSpec([None, h, w], tf.int32), tf.TensorSpec([None, None], tf.float32),
               tf.TensorSpec([None], tf.int32), tf.TensorSpec([None, SEL_WIDTH], tf.int32)]

        @tf.function(autograph=False, input_signature=sig)
        def tfviz_coalitions(x, base, labels, z, img, sel):
            mask = tf.gather(z, tf.gather(labels, img), batch_dims=1)[..., None]   # [B, H, W, 1]
            b = tf.gather(base, img)
            xb = b + mask * (tf.gather(x, img) - b)
            return head_scores(model, xb, activation, sel)
        return tfviz_coalitions
    return bundle.programs.get("attribution.coalitions", layer, (bool(probability), h, w, c), build)


def coalition_scores(bundle, x, base, seg: Segmentation, targets, coalitions, probability=False, batch_size=None,
                     progress=None) -> list:
    """The target's score on every coalition of every image: ``coalitions[i]`` is
    ``[S_i, M_i]`` (0/1) for image ``i``; returns one ``[S_i]`` array per image.
    ``progress(done, total)`` after each batch (copies scored so far, in all)."""
    n, h, w, c = x.shape
    bs = copies_batch(h, w, batch_size)
    total = int(sum(len(z) for z in coalitions))
    out = [np.zeros(len(z), np.float32) for z in coalitions]
    done = 0
    for layer, ids in group_by_head(targets).items():
        f = coalition_function(bundle, layer, probability, (h, w, c))
        m = int(max(coalitions[i].shape[1] for i in ids))
        z = np.concatenate([np.pad(np.asarray(coalitions[i], np.float32), ((0, 0), (0, m - coalitions[i].shape[1])))
                            for i in ids])
        local = np.concatenate([np.full(len(coalitions[i]), k, np.int32) for k, i in enumerate(ids)])
        rows = selection([targets[i] for i in ids])
        starts = np.cumsum([0] + [len(coalitions[i]) for i in ids])
        xt, bt, lt = tf.constant(x[ids]), tf.constant(base[ids]), tf.constant(seg.labels[ids])
        scores = np.zeros(len(z), np.float32)
        for s in even_batches(len(z), bs):
            scores[s] = f(xt, bt, lt, z[s], local[s], rows[local[s]]).numpy()
            done += s.stop - s.start
            if progress is not None:
                progress(done, total)
        for k, i in enumerate(ids):
            out[i] = scores[starts[k]:starts[k + 1]]
    check_finite(np.concatenate(out), "scores of the perturbed copies", None)
    return out


# --------------------------------------------------------------------------- options
def _check_score(score):
    if score not in ("logit", "probability"):
        raise AttributionError(f"score must be 'logit' or 'probability', got {score!r}")
    return score == "probability"


def _check_samples(samples, least, what):
    if isinstance(samples, bool) or not isinstance(samples, (int, np.integer)) or samples < least:
        raise AttributionError(f"samples must be a whole number of {what}, at least {least}; got {samples!r}")
    return int(samples)


def _rng(seed):
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, (int, np.integer))):
        raise AttributionError(f"seed must be a whole number or None, got {seed!r}")
    return np.random.default_rng(seed)


def _setup(bundle, x, segments, baseline):
    seg = segment(bundle.deprocess(x), segments)
    return seg, baseline_inputs(bundle, x, seg, baseline)


def _finish(seg, values, targets, what):
    return check_finite(seg.paint(values), what, targets)


# --------------------------------------------------------------------------- feature ablation
@attribution_method
def feature_ablation(bundle, x, targets, *, segments="slic", baseline="mean", score: str = "logit",
                     batch_size: int | None = None, progress=None, return_info: bool = False):
    """Feature ablation over superpixels ``[N, H, W]``: each superpixel replaced by the
    baseline, alone, and its pixels given the drop of the target's score,
    ``f(image) - f(image without it)`` -- positive where the superpixel supports the
    target. ``M + 2`` forward passes per image (the image, each superpixel left out, and
    every superpixel left out for ``info["baseline_score"]``).

    ``segments``: ``"slic"`` (default, ~50 SLIC superpixels), ``"slic:N"``,
    ``"quickshift"``, ``"grid"`` (8 x 8), ``"grid:K"``, ``"grid:RxC"``, an integer mask
    ``[H, W]`` or ``[N, H, W]`` at the model's input size, or a mask PNG (see
    :mod:`tfviz.attribution.superpixels`). ``baseline``: what a left-out superpixel shows
    -- ``"mean"`` (default: its own mean colour), ``"image_mean"``, ``"blur"``,
    ``"black"``, ``"gray"``, a grey level or RGB triple 0..255, an image file or images
    (:func:`~tfviz.attribution.superpixels.baseline_inputs`). ``score``: ``"logit"`` or
    ``"probability"``. ``batch_size``: copies per forward pass (default: sized for the
    machine). ``progress(done, total)``: called after each batch of copies.
    ``return_info=True`` returns ``(map, info)``: ``info["values"]`` (one ``[M_i]``
    array per image), ``info["segments"]`` (labels ``[N, H, W]``), ``info["counts"]``
    (``M_i``), ``info["score"]`` and ``info["baseline_score"]`` (``[N]``)."""
    prob = _check_score(score)
    seg, base = _setup(bundle, x, segments, baseline)
    coal = [np.vstack([np.ones((1, m)), np.ones((m, m)) - np.eye(m), np.zeros((1, m))]).astype(np.float32)
            for m in seg.counts]
    s = coalition_scores(bundle, x, base, seg, targets, coal, prob, batch_size, progress)
    values = [si[0] - si[1:-1] for si in s]
    out = _finish(seg, values, targets, "feature ablation maps")
    if not return_info:
        return out
    return out, {"values": values, "segments": seg.labels, "counts": seg.counts, "segmentation": seg.how,
                 "score": np.asarray([si[0] for si in s], np.float32),
                 "baseline_score": np.asarray([si[-1] for si in s], np.float32)}


# --------------------------------------------------------------------------- LIME
def lime_kernel(distances, kernel_width: float = LIME_KERNEL_WIDTH) -> np.ndarray:
    """LIME's sample weights: ``sqrt(exp(-d^2 / width^2))`` (lime_image's kernel)."""
    d = np.asarray(distances, np.float64)
    return np.sqrt(np.exp(-(d ** 2) / kernel_width ** 2))


def cosine_to_all_on(z) -> np.ndarray:
    """Cosine distance of each coalition to the whole image (all ones):
    ``1 - |z| / sqrt(|z| M)``; 1 for the empty coalition (as scikit-learn's
    ``pairwise_distances(metric="cosine")``, which lime uses)."""
    z = np.asarray(z, np.float64)
    k, m = z.sum(axis=1), z.shape[1]
    return 1.0 - np.sqrt(k / m)


def lime_coalitions(m: int, samples: int, rng) -> np.ndarray:
    """LIME's samples: each superpixel on with probability 1/2, the first row all on
    (lime_image's ``data[0, :] = 1``)."""
    z = rng.integers(0, 2, (samples, m)).astype(np.float32)
    z[0] = 1.0
    return z


@attribution_method
def lime(bundle, x, targets, *, segments="slic", baseline="mean", samples: int = LIME_SAMPLES, seed: int | None = 0,
         kernel_width: float = LIME_KERNEL_WIDTH, alpha: float = LIME_ALPHA, score: str = "logit",
         batch_size: int | None = None, progress=None, return_info: bool = False):
    """LIME over superpixels ``[N, H, W]`` (Ribeiro et al. 2016): ``samples`` random
    coalitions (each superpixel kept with probability 1/2, the first one the whole image),
    each scored by the model; a ridge regression (scikit-learn, penalty ``alpha``) of the
    scores on the coalitions, each weighted by ``sqrt(exp(-d^2 / kernel_width^2))``, ``d``
    the coalition's cosine distance to the whole image -- lime_image's defaults (1000
    samples, width 0.25, ``alpha=1``). Each superpixel's pixels get its coefficient:
    positive where it supports the target.

    ``segments``, ``baseline``, ``score``, ``batch_size``, ``progress``: as
    :func:`feature_ablation`. ``seed``: the draws (default 0: the same coalitions every
    call, and for every image with the same number of superpixels; None: fresh ones).
    ``return_info=True`` returns ``(map, info)``: as :func:`feature_ablation`'s
    (``values`` are the coefficients) plus ``intercept``, ``r2`` (the weighted fit's R^2,
    lime's ``score``), ``local_pred`` (the surrogate at the whole image), and
    ``top_positive`` / ``top_negative``: the labels of the 5 superpixels that support /
    oppose the target most, strongest first
    (:func:`~tfviz.attribution.superpixels.superpixel_picture` draws them)."""
    prob = _check_score(score)
    samples = _check_samples(samples, 1, "coalitions (the first is the whole image)")
    if not (isinstance(kernel_width, (int, float)) and kernel_width > 0 and math.isfinite(kernel_width)):
        raise AttributionError(f"kernel_width must be a positive number, got {kernel_width!r}")
    if not (isinstance(alpha, (int, float)) and alpha >= 0 and math.isfinite(alpha)):
        raise AttributionError(f"alpha (the ridge penalty) must be a number >= 0, got {alpha!r}")
    _rng(seed)
    seg, base = _setup(bundle, x, segments, baseline)
    coal = [lime_coalitions(int(m), samples, _rng(seed)) for m in seg.counts]
    s = coalition_scores(bundle, x, base, seg, targets, coal, prob, batch_size, progress)
    values, info = [], {"intercept": [], "r2": [], "local_pred": [], "top_positive": [], "top_negative": []}
    for z, y in zip(coal, s):
        wts = lime_kernel(cosine_to_all_on(z), kernel_width)
        reg = Ridge(alpha=float(alpha), fit_intercept=True).fit(z, y.astype(np.float64), sample_weight=wts)
        coef = reg.coef_.astype(np.float32)
        values.append(coef)
        info["intercept"].append(float(reg.intercept_))
        info["r2"].append(float(reg.score(z, y, sample_weight=wts)) if len(z) > 1 else float("nan"))
        info["local_pred"].append(float(reg.predict(z[:1])[0]))
        info["top_positive"].append(top_superpixels(coef, TOP_K, "positive"))
        info["top_negative"].append(top_superpixels(coef, TOP_K, "negative"))
    out = _finish(seg, values, targets, "LIME maps")
    if not return_info:
        return out
    info = {k: (np.asarray(v, np.float32) if k in ("intercept", "r2", "local_pred") else v) for k, v in info.items()}
    return out, {"values": values, "segments": seg.labels, "counts": seg.counts, "segmentation": seg.how,
                 "score": np.asarray([si[0] for si in s], np.float32), "samples": samples, **info}


# --------------------------------------------------------------------------- KernelSHAP
def shapley_kernel(m: int, size) -> np.ndarray:
    """The Shapley kernel weight of one coalition of ``size`` of ``m`` features,
    ``(m - 1) / (C(m, size) size (m - size))`` (Lundberg & Lee 2017, Theorem 2); infinite
    at sizes 0 and ``m`` (those two are constraints instead)."""
    s = np.asarray(size, np.float64)
    with np.errstate(divide="ignore"):
        return (m - 1) / (np.vectorize(math.comb)(m, s.astype(np.int64)) * s * (m - s))


def shap_coalitions(m: int, samples: int, rng) -> tuple[np.ndarray, np.ndarray]:
    """``(z [S, m], weights [S])``: KernelSHAP's coalitions besides the all-on and all-off
    ones, at most ``samples`` of them, as the shap library chooses them. Coalition sizes
    are taken in pairs ``(k, m - k)`` from the outside in (their total kernel weight
    ``(m - 1) / (k (m - k))`` is largest there); a pair is enumerated completely -- every
    coalition at its exact kernel weight -- while the samples left would on average draw
    it at least that often; the sizes left are sampled: a size by its share of the
    remaining weight, then a coalition of that size uniformly, always with its complement
    (paired, antithetic sampling), each weighted by the remaining weight over the number
    drawn. With ``2^m - 2 <= samples`` every coalition is enumerated and the values are
    the exact Shapley values."""
    if m < 2 or samples < 1:
        return np.zeros((0, m), np.float32), np.zeros(0)
    pairs = list(range(1, m // 2 + 1))                       # k = 1 .. floor(m/2), with m - k
    mass = np.asarray([(m - 1) / (k * (m - k)) * (1 if 2 * k == m else 2) for k in pairs])
    rows, weights = [], []
    left, left_mass = samples, float(mass.sum())
    p = 0
    while p < len(pairs):
        k = pairs[p]
        count = math.comb(m, k) * (1 if 2 * k == m else 2)
        if left * mass[p] / left_mass < count - 1e-8:
            break
        w = float(shapley_kernel(m, k))
        for on in itertools.combinations(range(m), k):
            z = np.zeros(m, np.float32)
            z[list(on)] = 1.0
            rows.append(z)
            weights.append(w)
            if 2 * k != m:
                rows.append(1.0 - z)
                weights.append(w)
        left -= count
        left_mass -= float(mass[p])
        p += 1
    draws = left // 2
    if p < len(pairs) and draws > 0:
        rest = mass[p:] / mass[p:].sum()
        sizes = np.asarray(pairs[p:])[rng.choice(len(rest), size=draws, p=rest)]
        keys = rng.random((draws, m))
        ranks = np.argsort(np.argsort(keys, axis=1), axis=1)      # a random permutation per draw
        z = (ranks < sizes[:, None]).astype(np.float32)           # its first `size` features on
        z = np.stack([z, 1.0 - z], axis=1).reshape(2 * draws, m)  # each with its complement
        rows.extend(z)
        weights.extend([left_mass / (2 * draws)] * (2 * draws))
    if not rows:
        return np.zeros((0, m), np.float32), np.zeros(0)
    return np.asarray(rows, np.float32), np.asarray(weights, np.float64)


def constrained_wls(z, y, weights, total) -> np.ndarray:
    """``phi`` minimizing ``sum_k w_k (y_k - z_k . phi)^2`` subject to ``sum(phi) =
    total``, exactly: the last value is eliminated (``phi_M = total - sum_{j<M} phi_j``,
    as the shap library does) and the rest solved by least squares (the minimum-norm
    solution where the coalitions do not determine them)."""
    z = np.asarray(z, np.float64)
    m = z.shape[1]
    if m == 1 or len(z) == 0:
        return np.full(m, total / m)
    a = z[:, :-1] - z[:, -1:]
    r = np.asarray(y, np.float64) - z[:, -1] * total
    sw = np.sqrt(np.asarray(weights, np.float64))
    head_, *_ = np.linalg.lstsq(a * sw[:, None], r * sw, rcond=None)
    return np.append(head_, total - head_.sum())


def default_shap_samples(m: int) -> int:
    """The default number of coalitions: every one when there are at most
    :data:`SHAP_SAMPLES` (``m <= 10``), else :data:`SHAP_SAMPLES`."""
    return min(2 ** m - 2, SHAP_SAMPLES) if m < 63 else SHAP_SAMPLES


@attribution_method
def kernel_shap(bundle, x, targets, *, segments="slic", baseline="mean", samples: int | None = None,
                seed: int | None = 0, score: str = "logit", batch_size: int | None = None, progress=None,
                return_info: bool = False):
    """KernelSHAP over superpixels ``[N, H, W]`` (Lundberg & Lee 2017): the Shapley value of
    each superpixel -- its average contribution to the target's score over the orders in
    which the superpixels could be added to the baseline -- estimated from ``samples``
    coalitions besides the whole image and the baseline (default :data:`SHAP_SAMPLES`,
    1024, or all ``2^M - 2`` when fewer), chosen as the shap library does (small and large
    coalitions enumerated while the budget allows, the rest drawn from the Shapley kernel,
    each with its complement: :func:`shap_coalitions`) and fitted by weighted least
    squares with the efficiency constraint exact: the values sum to ``f(image) -
    f(baseline)``. With every coalition the values are exactly the Shapley values.

    ``segments``, ``baseline``, ``score``, ``batch_size``, ``progress``: as
    :func:`feature_ablation`; ``seed``: as :func:`lime`'s. ``return_info=True`` returns
    ``(map, info)``: as :func:`feature_ablation`'s (``values`` the Shapley values) plus
    ``samples`` (coalitions per image, the two fixed ones included)."""
    prob = _check_score(score)
    if samples is not None:
        samples = _check_samples(samples, 1, "coalitions (besides the whole image and the baseline)")
    _rng(seed)
    seg, base = _setup(bundle, x, segments, baseline)
    coal, wts = [], []
    for m in seg.counts:
        m = int(m)
        z, w = shap_coalitions(m, default_shap_samples(m) if samples is None else samples, _rng(seed))
        coal.append(np.vstack([np.ones((1, m), np.float32), np.zeros((1, m), np.float32), z]))
        wts.append(w)
    s = coalition_scores(bundle, x, base, seg, targets, coal, prob, batch_size, progress)
    values = []
    for z, w, y in zip(coal, wts, s):
        f1, f0 = float(y[0]), float(y[1])
        values.append(constrained_wls(z[2:], y[2:].astype(np.float64) - f0, w, f1 - f0).astype(np.float32))
    out = _finish(seg, values, targets, "KernelSHAP maps")
    if not return_info:
        return out
    return out, {"values": values, "segments": seg.labels, "counts": seg.counts, "segmentation": seg.how,
                 "score": np.asarray([si[0] for si in s], np.float32),
                 "baseline_score": np.asarray([si[1] for si in s], np.float32),
                 "samples": np.asarray([len(z) for z in coal])}
