"""TCAV, testing with concept activation vectors (Kim et al. 2018): how much a concept
(striped, dotted, a folder of your own examples) matters to a class, layer by layer.

For each layer and each concept:

1. **CAVs.** The layer's activations (flattened) of the concept's examples and of a random
   set are told apart by a linear classifier (scikit-learn's L2-regularized logistic
   regression, trained on two thirds of the examples, its accuracy measured on the last
   third); the unit normal of its boundary, pointing to the concept, is the concept
   activation vector. One CAV per random set, ``random_sets`` in all.
2. **Scores.** The gradient of the target class's logit with respect to the layer's
   activation, for each class image, dotted with a CAV, is the directional derivative;
   the TCAV score is the fraction of class images where it is positive (nudging the
   activations towards the concept raises the class's logit). One score per CAV.
3. **Significance.** Random sets play the concept against other random sets (set k
   against set k + 1, so each of the null's CAVs has its own random "concept"), giving the
   scores of random directions (the null). A two-sided t-test
   (``scipy.stats.ttest_ind``) between the concept's scores and the null's gives the
   p-value; a concept is significant at a layer when ``p < alpha / m`` with Bonferroni's
   correction over the ``m`` (concept, layer) pairs tested (``bonferroni=False``: ``p <
   alpha``, the rule of the authors' library). Non-significant ones are marked: a score
   alone says nothing when random directions score alike.

The class gradients of all layers come from one traced program (one forward and one
backward pass per batch, :func:`tfviz.attribution.heads.head` with the layers captured);
the activations of the concept and random sets from one forward program for all layers
(:func:`tfviz.inspect.activations.forward_fn`).
"""
from __future__ import annotations

import os
import time
import warnings
from dataclasses import dataclass, field

import numpy as np
import tensorflow as tf
from scipy import stats
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from threadpoolctl import threadpool_limits

from .. import images as _images
from ..attribution.core import check_finite, prepare, select_score, selection
from ..attribution.heads import head
from ..attribution.targets import class_target, top_classes
from ..data import ImageSet, image_set
from ..default_layers import concept_layers
from ..defaults import TCAV_ALPHA, TCAV_EXAMPLES, TCAV_MIN_EXAMPLES, TCAV_RANDOM_SETS
from ..errors import DataError, LayerKindError, OptionError, TargetError
from ..inspect.activations import forward_fn
from ..models import ModelBundle, load_model, output_shape
from ..utils import did_you_mean
from .drawn import TEXTURES, draw_concept, photo_views, random_images
from .render import tcav_picture

MIN_EXAMPLES = TCAV_MIN_EXAMPLES
#: The bundled photo whose views are the class images when neither images nor target are given.
DEFAULT_PHOTO = "chelsea"
#: Images per batch in the forward and gradient programs.
BATCH = 32
#: The share of each concept's and random set's examples kept out of a CAV's training to
#: measure its accuracy (the authors' library: 0.33).
HELD_OUT = 1 / 3
#: Examples of each concept kept in the result (for the picture).
SAMPLES = 4
#: The inverse L2 strength of the CAV's logistic regression, on examples centred and scaled to
#: a mean norm of 1: weak, so the boundary is close to the widest-margin one that separates
#: them (the authors' library fits raw activations, whose large norms make any penalty weak).
CAV_C = 100.0


# --------------------------------------------------------------------------- the result
@dataclass
class TCAVResult:
    """What :func:`tcav` found. Arrays are indexed ``[concept, layer, random set]``.

    ``scores`` ``[C, L, R]``: the TCAV score of each concept's CAV against each random set;
    ``random_scores`` ``[L, R]``: those of random sets against random sets (the null);
    ``accuracies`` / ``random_accuracies``: each CAV's held-out accuracy; ``p_values``
    ``[C, L]``: the two-sided t-test of a concept's scores against the null; ``cavs``:
    ``{(concept, layer): [R, D]}`` unit CAVs in the layer's flattened activation space;
    ``samples``: a few of each concept's images (and ``"random"``: of the random sets).
    ``images_note`` says where the class images came from."""
    model: str
    target: int
    target_name: str
    concepts: list
    layers: list
    scores: np.ndarray
    random_scores: np.ndarray
    accuracies: np.ndarray
    random_accuracies: np.ndarray
    p_values: np.ndarray
    alpha: float
    bonferroni: bool
    n_images: int
    n_examples: dict
    random_sets: int
    seed: int
    images_note: str
    seconds: float
    cavs: dict = field(default_factory=dict, repr=False)
    samples: dict = field(default_factory=dict, repr=False)

    @property
    def tests(self) -> int:
        """How many (concept, layer) pairs were tested: Bonferroni's ``m``."""
        return len(self.concepts) * len(self.layers)

    @property
    def threshold(self) -> float:
        """The p-value under which a score is significant: ``alpha / m`` with Bonferroni."""
        return self.alpha / self.tests if self.bonferroni else self.alpha

    @property
    def significant(self) -> np.ndarray:
        """``[C, L]`` bool: the concept's scores differ from random directions' (p < threshold)."""
        return self.p_values < self.threshold

    @property
    def mean(self) -> np.ndarray:
        """``[C, L]``: the mean TCAV score over the random sets."""
        return self.scores.mean(axis=-1)

    @property
    def std(self) -> np.ndarray:
        """``[C, L]``: the standard deviation of the TCAV scores over the random sets."""
        return self.scores.std(axis=-1)

    def score(self, concept: str, layer: str) -> float:
        """The mean TCAV score of ``concept`` at ``layer``."""
        return float(self.mean[self._index(concept, layer)])

    def is_significant(self, concept: str, layer: str) -> bool:
        return bool(self.significant[self._index(concept, layer)])

    def _index(self, concept, layer):
        if concept not in self.concepts:
            raise OptionError(did_you_mean("concept", concept, self.concepts))
        if layer not in self.layers:
            raise OptionError(did_you_mean("layer", layer, self.layers))
        return self.concepts.index(concept), self.layers.index(layer)

    def rows(self) -> list[dict]:
        """One dict per (concept, layer), then the null per layer (``concept="random"``,
        no p-value): ``concept, layer, score, std, p_value, significant, cav_accuracy``."""
        out = []
        for c, name in enumerate(self.concepts):
            for i, layer in enumerate(self.layers):
                out.append(dict(concept=name, layer=layer, score=float(self.mean[c, i]),
                                std=float(self.std[c, i]), p_value=float(self.p_values[c, i]),
                                significant=bool(self.significant[c, i]),
                                cav_accuracy=float(self.accuracies[c, i].mean())))
        for i, layer in enumerate(self.layers):
            out.append(dict(concept="random", layer=layer, score=float(self.random_scores[i].mean()),
                            std=float(self.random_scores[i].std()), p_value=None, significant=None,
                            cav_accuracy=float(self.random_accuracies[i].mean())))
        return out

    def table(self) -> str:
        """The scores as a plain-text table: concept x layer, score mean +- std over the
        random sets, p-value, significant or not, the CAVs' held-out accuracy; the null
        (random vs random) last."""
        how = (f"Bonferroni over {self.tests} tests: p < {self.alpha:g}/{self.tests} = {self.threshold:.2g}"
               if self.bonferroni else f"p < {self.alpha:g}, no correction")
        head_line = (f"TCAV of class {self.target_name!r} ({self.target}) on {self.model}: {self.n_images} class "
                     f"images ({self.images_note}); {self.random_sets} random sets; significant: two-sided t-test "
                     f"against random directions, {how}")
        cw = max([len("concept")] + [len(c) for c in self.concepts] + [len("random")])
        lw = max([len("layer")] + [len(n) for n in self.layers])
        lines = [head_line, f"  {'concept':<{cw}}  {'layer':<{lw}}  {'score':>13}  {'p-value':>8}  "
                            f"{'significant':<11}  CAV accuracy"]
        for r in self.rows():
            p = "" if r["p_value"] is None else f"{r['p_value']:.2g}"
            sig = "(null)" if r["significant"] is None else ("yes" if r["significant"] else "no *")
            lines.append(f"  {r['concept']:<{cw}}  {r['layer']:<{lw}}  {r['score']:6.2f} +- {r['std']:4.2f}  "
                         f"{p:>8}  {sig:<11}  {r['cav_accuracy']:.2f}")
        return "\n".join(lines)

    def picture(self) -> _images.Picture:
        """Bars of the TCAV scores per concept and layer with their spread, the
        non-significant ones marked (see :func:`tfviz.concepts.tcav_picture`)."""
        return tcav_picture(self)

    def __str__(self):
        return self.table()


# --------------------------------------------------------------------------- the pieces, on arrays
def train_cav(concept_acts, random_acts, seed: int = 0, held_out: float = HELD_OUT) -> tuple[np.ndarray, float]:
    """The concept activation vector of two sets of activations ``[n, ...]`` (flattened):
    the unit normal, pointing to the concept, of an L2-regularized logistic regression
    telling them apart, and its accuracy on the ``held_out`` share of each set (stratified,
    seeded), or on the training examples when ``held_out`` is 0."""
    a = np.asarray(concept_acts, np.float32).reshape(len(concept_acts), -1)
    b = np.asarray(random_acts, np.float32).reshape(len(random_acts), -1)
    if a.shape[1] != b.shape[1]:
        raise OptionError(f"concept activations have {a.shape[1]} values each but random ones {b.shape[1]}")
    if min(len(a), len(b)) < 2:
        raise DataError("a CAV needs at least 2 concept and 2 random examples")
    x = np.concatenate([a, b])
    y = np.concatenate([np.ones(len(a), np.int64), np.zeros(len(b), np.int64)])
    # Centred and scaled to a mean norm of 1: the intercept absorbs the shift, so the normal
    # does not change, and the regularization (CAV_C) weighs the same against the examples'
    # spread on every layer and model, however large the activations' common part.
    x = x - x.mean(axis=0)
    scale = float(np.mean(np.linalg.norm(x, axis=1)))
    x = x / (scale if scale > 0 else 1.0)
    if held_out > 0:
        x_fit, x_test, y_fit, y_test = train_test_split(x, y, test_size=held_out, stratify=y, random_state=seed)
    else:
        x_fit, y_fit, x_test, y_test = x, y, x, y
    # The L2-regularized optimum lies in the span of the training examples (the representer
    # theorem), so the same problem is solved exactly in their coordinates: with the Gram
    # matrix X X^T = U S^2 U^T, x_i = z_i V^T where z = U S and V = X^T U / S is orthonormal,
    # and w = V b has |w| = |b| -- an n x n fit instead of n x D.
    xf = np.ascontiguousarray(x_fit, np.float32)
    evals, u = np.linalg.eigh((xf @ xf.T).astype(np.float64))
    keep = evals > max(float(evals.max()), 0.0) * 1e-12
    if not keep.any() or evals.max() <= 0:
        raise DataError("the concept's and the random examples' activations are all zero at this layer; "
                        "pick another layer")
    u, sv = u[:, keep], np.sqrt(evals[keep])
    clf = LogisticRegression(C=CAV_C, max_iter=1000)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf.fit(u * sv, y_fit)
    w = (xf.T @ (u @ (clf.coef_[0] / sv)).astype(np.float32)).astype(np.float64)
    norm = np.linalg.norm(w)
    cav = (w / norm if norm > 0 else w).astype(np.float32)
    accuracy = float(np.mean(((x_test.astype(np.float64) @ w + clf.intercept_[0]) > 0) == (y_test == 1)))
    return cav, accuracy


def tcav_scores(gradients, cavs) -> np.ndarray:
    """The TCAV score of each CAV: the fraction of the rows of ``gradients`` ``[N, D]`` (one
    class image each) whose directional derivative along the CAV (``cavs`` ``[K, D]``, or
    one ``[D]``) is positive."""
    g = np.asarray(gradients, np.float32).reshape(len(gradients), -1)
    c = np.asarray(cavs, np.float32)
    return np.mean((g @ c.reshape(-1, g.shape[1]).T) > 0, axis=0).reshape(c.shape[:-1] or ())


def p_value(scores, null) -> float:
    """The two-sided t-test (``scipy.stats.ttest_ind``) of a concept's scores against the
    null's. Two sets without any spread: 1 when their values are equal, else 0."""
    scores, null = np.asarray(scores, np.float64), np.asarray(null, np.float64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # constant input: the statistic is undefined
        p = float(stats.ttest_ind(scores, null).pvalue)
    if np.isnan(p):
        return 1.0 if np.isclose(scores.mean(), null.mean()) else 0.0
    return p


# --------------------------------------------------------------------------- inputs
def _check_options(random_sets, examples, alpha, views):
    if isinstance(random_sets, bool) or int(random_sets) != random_sets or random_sets < 2:
        raise OptionError(f"random_sets must be a whole number of at least 2 (the t-test needs a spread), "
                          f"got {random_sets!r}")
    if isinstance(examples, bool) or int(examples) != examples or examples < MIN_EXAMPLES:
        raise OptionError(f"examples must be a whole number of at least {MIN_EXAMPLES}, got {examples!r}")
    if views is not None and (isinstance(views, bool) or int(views) != views or views < 1):
        raise OptionError(f"views must be a whole number of at least 1 (or None), got {views!r}")
    if not 0 < float(alpha) < 1:
        raise OptionError(f"alpha must be between 0 and 1, got {alpha!r}")


def check_layers(bundle, layers) -> list[str]:
    """``layers`` (None: :func:`tfviz.default_layers.concept_layers`, a name or a list) as a
    list; an unknown name raises :class:`UnknownLayerError` with the closest names, a layer
    without a spatial ``[N, H, W, C]`` output :class:`LayerKindError` listing spatial ones."""
    if layers is None:
        return concept_layers(bundle)
    names = [layers] if isinstance(layers, str) else list(layers)
    if not names:
        raise OptionError("layers is empty; name at least one spatial layer, or pass None for the defaults")
    for name in names:
        s = output_shape(bundle.layer(name))  # UnknownLayerError listing the closest names
        if s is None or len(s) != 4:
            raise LayerKindError(f"TCAV needs layers with a spatial [N, H, W, C] output; layer {name!r} has shape "
                                 f"{s}; {bundle.spatial_hint(name)}")
    if len(set(names)) != len(names):
        raise OptionError(f"layers named twice: {', '.join(sorted({n for n in names if names.count(n) > 1}))}")
    return names


def _concept_sources(concepts) -> dict:
    """``concepts`` as ``{name: source}``; a source of None is the drawn texture ``name``."""
    if concepts is None:
        return {name: None for name in TEXTURES}
    if isinstance(concepts, str):
        concepts = [concepts]
    if isinstance(concepts, (list, tuple)):
        if not all(isinstance(c, str) for c in concepts):
            raise OptionError("concepts: a list holds names of drawn textures; give other images as "
                              "{name: folder or images}")
        concepts = {c: None for c in concepts}
    if not isinstance(concepts, dict) or not concepts:
        raise OptionError("concepts must be None (the drawn textures), a list of texture names or a non-empty "
                          f"dict {{name: folder or images}}, got {type(concepts).__name__}")
    if "random" in concepts:
        raise OptionError("the name 'random' is kept for the random directions (the null); call the concept "
                          "something else")
    for name, source in concepts.items():
        if source is None and name not in TEXTURES:
            raise OptionError(did_you_mean("drawn concept", name, TEXTURES) +
                              "; or give its images: {name: folder or images}")
    return {str(k): v for k, v in concepts.items()}


def _read_set(bundle, source, what: str, strict: bool) -> np.ndarray:
    """All readable images of ``source`` (a folder, files, an array, an ImageSet) at the
    model's input size; unreadable files are skipped with a warning, or raise with
    ``strict``."""
    if isinstance(source, np.ndarray) and source.ndim == 3 and source.shape[-1] in (1, 3, 4):
        source = source[None]
    if isinstance(source, (str, os.PathLike)) and not os.path.exists(source):
        raise DataError(f"{what}: {os.fspath(source)}: no such folder or file")
    data = source if isinstance(source, ImageSet) else image_set(source, strict=strict)
    parts = [b.images for b in data.batches(BATCH, size=bundle.input_size)]
    if not parts:
        raise DataError(f"{what}: no readable images")
    return np.concatenate(parts)


def _concept_images(bundle, name, source, n, seed, strict) -> np.ndarray:
    if source is None:
        return np.asarray(draw_concept(name, n, bundle.input_size, seed))
    imgs = _read_set(bundle, source, f"concept {name!r}", strict)
    if len(imgs) < MIN_EXAMPLES:
        where = os.fspath(source) if isinstance(source, (str, os.PathLike)) else "its images"
        raise DataError(f"concept {name!r} ({where}) has {len(imgs)} readable image(s); TCAV needs at least "
                        f"{MIN_EXAMPLES} per concept (the paper used 50)")
    if len(imgs) > n:  # a seeded subset of `examples`, in the order given
        keep = np.sort(np.random.default_rng([int(seed) & 0xFFFFFFFF, len(imgs)]).choice(len(imgs), n, False))
        imgs = imgs[keep]
    return imgs


def _class_images(bundle, images, target, views, seed, strict):
    """``(uint8 images, note)``: the user's images (``views`` crops and flips of them when
    given), or ``views`` views of the bundled photos -- those the model assigns to
    ``target``, the cat photo when no target is given, all of them when none is assigned
    to the target."""
    if images is not None:
        imgs = _read_set(bundle, images, "class images", strict)
        if views is None:
            return imgs, f"{len(imgs)} given"
        return photo_views(list(imgs), views, bundle.input_size, seed), f"{views} views of {len(imgs)} given"
    photos = _images.sample_photos()
    if target is None:
        chosen = [DEFAULT_PHOTO]
    else:
        names = list(photos)
        loaded = bundle.load_images([photos[p] for p in names])
        top = top_classes(bundle, bundle.preprocess(loaded))
        chosen = [p for p, t in zip(names, top) if int(t) == target] or names
    pictures = [_images.load_image(photos[p]) for p in chosen]
    note = f"{views} views of the bundled photo{'s' if len(chosen) > 1 else ''} {', '.join(chosen)}"
    return photo_views(pictures, views, bundle.input_size, seed), note


def _majority_class(bundle, imgs) -> int:
    top = top_classes(bundle, prepare(bundle, imgs))
    return int(np.bincount(np.asarray(top, np.int64)).argmax())


# --------------------------------------------------------------------------- the programs
def _activations(bundle, layers, imgs) -> list[np.ndarray]:
    """The flattened activations ``[N, D_l]`` (float32) of ``layers`` for uint8 ``imgs``."""
    fn = forward_fn(bundle, list(layers))
    parts = [[] for _ in layers]
    for i in range(0, len(imgs), BATCH):
        for k, a in enumerate(fn(imgs[i:i + BATCH])):
            parts[k].append(np.asarray(a, np.float32).reshape(len(a), -1))
    return [np.concatenate(p) for p in parts]


def gradient_function(bundle, layers):
    """The cached ``tf.function`` ``f(uint8 images, selection rows) -> [d score / d
    activation, flattened, per layer]``: one forward and one backward pass for all
    ``layers``, the score being the target's logit (a final softmax bypassed)."""
    layers = tuple(layers)

    def build():
        model = head(bundle, None, None, capture=layers)
        pre = bundle.preprocessing

        @tf.function(autograph=False, reduce_retracing=True)
        def tfviz_tcav_gradients(images, sel):
            x = pre(images)
            with tf.GradientTape() as tape:
                *acts, out = model(x, training=False)
                total = tf.reduce_sum(select_score(out, sel))
            grads = tape.gradient(total, acts)
            for name, g in zip(layers, grads):
                if g is None:
                    raise TargetError(f"layer {name!r} does not feed the scores; pick a layer before the logits")
            return [tf.reshape(g, [tf.shape(g)[0], -1]) for g in grads]
        return tfviz_tcav_gradients
    return bundle.programs.get("concepts.gradients", layers, (), build)


def _gradients(bundle, layers, imgs, target) -> list[np.ndarray]:
    fn = gradient_function(bundle, layers)
    t = class_target(bundle, target)
    parts = [[] for _ in layers]
    for i in range(0, len(imgs), BATCH):
        batch = imgs[i:i + BATCH]
        for k, g in enumerate(fn(batch, selection([t] * len(batch)))):
            parts[k].append(g.numpy())
    grads = [np.concatenate(p) for p in parts]
    for name, g in zip(layers, grads):
        check_finite(g, f"the gradient at layer {name!r}")
    return grads


def _cavs_and_scores(layers, names, concept_acts, random_acts, grads, R, seed, step):
    """Every CAV and its TCAV score: each concept against random sets 1..R and, for the
    null, random set k against set k + 1 (a different random "concept" each time, so its
    scores spread as random directions' do), at each layer."""
    C, L = len(names), len(layers)
    scores, accs = np.zeros((C, L, R)), np.zeros((C, L, R))
    null, null_accs = np.zeros((L, R)), np.zeros((L, R))
    cavs = {}
    for i, layer in enumerate(layers):
        for c, name in enumerate(names + [None]):
            vectors = []
            for k in range(R):
                own = concept_acts[name][i] if name is not None else random_acts[k][i]
                counter = random_acts[k + 1][i][:len(own)]  # as many random examples as the concept has
                cav, acc = train_cav(own, counter, seed=seed + k)
                vectors.append(cav)
                if name is None:
                    null_accs[i, k] = acc
                else:
                    accs[c, i, k] = acc
                step()
            vectors = np.stack(vectors)
            s = tcav_scores(grads[i], vectors)
            if name is None:
                null[i] = s
            else:
                scores[c, i] = s
                cavs[(name, layer)] = vectors
    return scores, null, accs, null_accs, cavs


# --------------------------------------------------------------------------- the method
def tcav(bundle, concepts=None, target=None, layers=None, *, images=None, random_sets: int = TCAV_RANDOM_SETS,
         examples: int = TCAV_EXAMPLES, seed: int = 0, progress=None, strict: bool = False, views: int | None = None,
         alpha: float = TCAV_ALPHA, bonferroni: bool = True) -> TCAVResult:
    """How much each concept matters to a class at each layer: TCAV scores with their
    significance (Kim et al. 2018; see the module docstring for what is computed).

    ``bundle``: a :class:`~tfviz.models.ModelBundle` or a ``load_model`` spec.
    ``concepts``: ``{name: source}`` where a source is a folder of example images, a list
    of files, an array ``[N, H, W, 3]`` or ``None`` (the drawn texture of that name); a
    list of texture names; or ``None``: all drawn textures (:data:`TEXTURES`). A concept
    needs at least :data:`MIN_EXAMPLES` readable images; at most ``examples`` are used (a
    seeded subset). Unreadable files are skipped with a warning (``strict=True``: an
    :class:`~tfviz.errors.ImageError` instead).
    ``target``: a class index or name; ``None``: the class most class images are assigned to.
    ``layers``: spatial layer names; ``None``: :func:`tfviz.default_layers.concept_layers`.
    ``images``: the class images (a folder, files, an array); ``None``: ``examples`` views
    (crops and flips) of the bundled photos the model assigns to ``target`` (of the cat
    photo when ``target`` is None; of all bundled photos when it assigns none to it).
    ``views``: use that many views (the first ones whole, the others crops and flips) of the
    class images instead of the images themselves -- for a few photos.
    ``random_sets``: how many random sets each concept is tested against (one CAV and one
    score each); ``examples``: images per drawn concept and per random set; ``seed``:
    draws, subsets and splits. ``alpha``, ``bonferroni``: the significance rule.
    ``progress(done, total)`` is called after each step (a set's forward pass, the class
    gradients, a CAV).

    Returns a :class:`TCAVResult`: ``.table()``, ``.picture()``, ``.scores`` ``[C, L, R]``,
    ``.p_values``, ``.significant`` ``[C, L]``, the CAVs."""
    start = time.perf_counter()
    bundle = bundle if isinstance(bundle, ModelBundle) else load_model(bundle)
    _check_options(random_sets, examples, alpha, views)
    random_sets, examples = int(random_sets), int(examples)
    layers = check_layers(bundle, layers)
    gradient_function(bundle, layers)  # builds the head now: a layer off the path to the scores fails first
    sources = _concept_sources(concepts)
    target_index = None if target is None else class_target(bundle, target).index  # UnknownClassError
    concept_imgs = {name: _concept_images(bundle, name, src, examples, seed, strict) for name, src in sources.items()}
    imgs, note = _class_images(bundle, images, target_index, examples if views is None and images is None else views,
                               seed, strict)
    if target_index is None:
        target_index = _majority_class(bundle, imgs)
    names = list(concept_imgs)
    total = len(names) + random_sets + 1 + 1 + len(layers) * (len(names) + 1) * random_sets
    done = 0

    def step():
        nonlocal done
        done += 1
        if progress is not None:
            progress(done, total)

    concept_acts = {}
    for name in names:
        concept_acts[name] = _activations(bundle, layers, concept_imgs[name])
        step()
    random_acts, samples_random = [], None
    for k in range(random_sets + 1):  # sets 1..R: the counterexamples; 0..R-1: the null's random "concepts"
        r = np.asarray(random_images(examples, bundle.input_size, seed, k))
        samples_random = r[:SAMPLES] if k == 0 else samples_random
        random_acts.append(_activations(bundle, layers, r))
        step()
    grads = _gradients(bundle, layers, imgs, target_index)
    step()

    with threadpool_limits(limits=1, user_api="blas"):  # small fits: one BLAS thread is several times faster
        scores, null, accs, null_accs, cavs = _cavs_and_scores(layers, names, concept_acts, random_acts, grads,
                                                               random_sets, seed, step)
    C, L = len(names), len(layers)
    p = np.array([[p_value(scores[c, i], null[i]) for i in range(L)] for c in range(C)]).reshape(C, L)
    samples = {name: concept_imgs[name][:SAMPLES] for name in names}
    samples["random"] = samples_random
    return TCAVResult(model=bundle.name, target=int(target_index), target_name=bundle.class_name(int(target_index)),
                      concepts=names, layers=list(layers), scores=scores, random_scores=null, accuracies=accs,
                      random_accuracies=null_accs, p_values=p, alpha=float(alpha), bonferroni=bool(bonferroni),
                      n_images=len(imgs), n_examples={n: len(concept_imgs[n]) for n in names},
                      random_sets=random_sets, seed=int(seed), images_note=note,
                      seconds=time.perf_counter() - start, cavs=cavs, samples=samples)


__all__ = ["tcav", "TCAVResult", "train_cav", "tcav_scores", "p_value", "check_layers", "gradient_function",
           "MIN_EXAMPLES", "DEFAULT_PHOTO"]
