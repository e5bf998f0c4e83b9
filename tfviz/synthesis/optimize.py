"""THE optimization loop of tfviz: every synthesis recipe is an objective, a
parameterization, transforms and regularizers handed to :func:`optimize`.

One step, compiled with ``tf.function`` and traced once per run::

    image = param.image()                         # model-input space
    seen  = fit(transforms(image - centre) + centre, input size)
    loss terms = objective(one forward pass of `seen`)
    grads      = d(sum of objective over the batch) / d(variables)
    optimizer update (ascent), then regularizers on the image (pixel parameterization)

Only the loss terms (a few floats) come back to Python each step; the image is copied to
the host only for snapshots, for the final result and when a callback reads it.
"""
from __future__ import annotations

import math
import time
import warnings
from dataclasses import dataclass, field
from typing import Callable, Sequence

import keras
import numpy as np
import scipy.optimize
import tensorflow as tf

from ..errors import SynthesisError  # noqa: F401  (the classes live in tfviz.errors)
from ..images import caption, hstack, png_bytes, resize, tile
from ..utils import TfvizError
from . import params as _params
from . import transforms as _transforms
from .objectives import Context, Objective


@dataclass
class Result:
    """What :func:`optimize` returns.

    ``images``: final uint8 images ``[N, H, W, 3]`` (``image`` is the first);
    ``history``: objective per evaluated step (mean over the batch); ``losses``: per-term
    history ``{name: [...]}``; ``snapshots``: list of ``(step, uint8 images [N,H,W,3])``;
    ``steps``: the number of updates behind ``images`` (all of them after a full run; the
    step at which a callback stopped or Ctrl-C interrupted, whose loss is then the last
    entry of ``history``); ``interrupted``: True
    when Ctrl-C (KeyboardInterrupt) ended the run; ``stopped``: a message when the run
    stopped early (NaN, a callback); ``x``: final model-input float array;
    ``seconds``: wall time of the loop; ``extra``: recipe-specific data."""
    images: np.ndarray
    history: np.ndarray
    losses: dict
    snapshots: list
    steps: int
    x: np.ndarray
    interrupted: bool = False
    stopped: str | None = None
    nan_step: int | None = None
    seconds: float = 0.0
    extra: dict = field(default_factory=dict)

    @property
    def image(self) -> np.ndarray:
        return self.images[0]

    def grid(self, cols: int | None = None, gap: int = 2) -> np.ndarray:
        """The images tiled in a grid."""
        return tile(self.images, cols=cols, gap=gap)

    def _repr_png_(self) -> bytes:
        """Jupyter shows the image (several: :meth:`grid`)."""
        return png_bytes(self.image if len(self.images) == 1 else self.grid())

    def snapshot_strip(self, size: int = 112, gap: int = 4) -> np.ndarray:
        """The snapshots of the first image side by side, each captioned with its step,
        then the final image."""
        frames = [(s, imgs[0]) for s, imgs in self.snapshots] + [(self.steps, self.image)]
        h, w = self.image.shape[:2]
        hw = (size, max(1, round(w * size / h)))
        return hstack([caption(resize(im, hw), f"step {s}", size=12) for s, im in frames], gap=gap)


class LazyImages:
    """The images of one step, copied to the host (uint8 ``[N,H,W,3]``) only when read:
    ``np.asarray(images)`` or ``images.numpy()``."""

    def __init__(self, tensor, bundle):
        self._t, self._bundle, self._np = tensor, bundle, None

    def numpy(self) -> np.ndarray:
        if self._np is None:
            self._np = self._bundle.deprocess(self._t.numpy())
        return self._np

    def __array__(self, dtype=None, copy=None):
        a = self.numpy()
        return a.astype(dtype) if dtype is not None else a

    @property
    def shape(self):
        return tuple(self._t.shape)


# ---------------------------------------------------------------------- optimizers
#: Adam's learning rate when ``optimize`` gets none, per parameterization. On ``pixel`` it
#: is in grey levels per step (3: what 0.05 model-input units were on efficientnet_lite0,
#: whose torch preprocessing spans 57-58 grey levels per unit); on ``fourier`` and
#: ``latent`` in units of the spectrum or code, which the preprocessing does not scale.
DEFAULT_LR = {"pixel": 3.0, "fourier": 0.05, "latent": 0.05}
#: Adam's epsilon when a learning rate is given on pixels (Keras's default, 1e-7, elsewhere).
#: Gradients per grey level are 57-255x smaller than per model-input unit; with 1e-7, Adam
#: would shrink the steps of pixels with small gradients (on efficientnet_lite0, 7 % of a
#: class logit's pixel gradients are below the 3e-6 that 1e-7 amounts to in the first
#: step); 1e-9 is about what 1e-7 per model-input unit was there (1.7e-9 per grey level).
PIXEL_ADAM_EPSILON = 1e-9


class GradientStep:
    """Plain gradient ascent rules that are not Keras optimizers:
    ``"l1"`` -- ``x += step_size * g / mean|g|`` per image (DeepDream);
    ``"sign"`` -- ``x += step_size * sign(g)`` (FGSM / PGD; ``step_size`` may be a
    per-channel vector); ``"sgd"`` -- ``x += step_size * g``. ``x`` is the
    parameterization's variable: on ``pixel`` the image in grey levels, so a sign step of
    ``step_size`` moves every pixel by ``step_size`` grey levels and an l1 step moves them
    by ``step_size`` grey levels on average, whatever the model's preprocessing."""

    def __init__(self, rule: str = "l1", step_size=0.01):
        if rule not in ("l1", "sign", "sgd"):
            raise SynthesisError(f"unknown gradient rule {rule!r}; one of l1, sign, sgd")
        s = np.asarray(step_size, np.float32)
        if not np.all(np.isfinite(s)) or np.any(s <= 0):
            raise SynthesisError(f"step size must be positive, got {step_size}")
        self.rule, self.step_size = rule, s

    def apply(self, grads_and_vars):
        s = tf.constant(self.step_size)
        for g, v in grads_and_vars:
            if self.rule == "l1":
                axes = list(range(1, len(g.shape)))
                g = g / (tf.reduce_mean(tf.abs(g), axis=axes, keepdims=True) + 1e-8)
            elif self.rule == "sign":
                g = tf.sign(g)
            v.assign_add(s * g)

    def __repr__(self):
        return f"GradientStep({self.rule!r}, {self.step_size.tolist()})"


class LBFGS:
    """Limited-memory BFGS (scipy's L-BFGS-B) for :func:`optimize`: the optimizer of
    Gatys et al. and jcjohnson/neural-style. Each step is one L-BFGS iteration; an
    iteration evaluates the loss and its gradient (one forward and one backward pass)
    once, or a few times when its line search needs to.

    On the ``pixel`` parameterization the pixels move freely during the run (the network
    sees them as they are, as in jcjohnson/neural-style) and the result is clipped to
    the valid range; ``box=True`` uses L-BFGS-B's exact box constraints instead. Measured
    on style transfer at 256 px (200 steps): free pixels and box constraints reach the
    same loss (0.517), box constraints take 1.5x the time (scipy's breakpoint search
    over every pixel), and clipping what the network sees stalls at 0.534 (clipped
    pixels get no gradient).

    ``memory``: how many past gradient pairs approximate the curvature (scipy's
    ``maxcor``). ``max_evaluations``: the most loss-and-gradient evaluations per run, as
    a multiple of the steps (line searches that keep failing stop there).

    Why scipy and not TensorFlow Probability: scipy is already installed with
    scikit-learn, its L-BFGS-B also offers box bounds, and its callback gives one Python
    call per iteration for progress bars, snapshots, Ctrl-C and early stops; TensorFlow
    Probability would add a dependency that pins TensorFlow versions. The loss and
    gradient come from one ``tf.function`` traced once."""

    def __init__(self, memory: int = 10, max_evaluations: float = 2.5, box: bool = False):
        if not isinstance(memory, (int, np.integer)) or memory < 1:
            raise SynthesisError(f"L-BFGS memory must be a positive integer, got {memory!r}")
        if not max_evaluations >= 1:
            raise SynthesisError(f"max_evaluations must be >= 1 (a multiple of the steps), got {max_evaluations}")
        self.memory, self.max_evaluations, self.box = int(memory), float(max_evaluations), bool(box)

    def __repr__(self):
        return f"LBFGS(memory={self.memory}, max_evaluations={self.max_evaluations}, box={self.box})"


def _optimizer(opt, epsilon: float = 1e-7):
    """An optimizer from ``opt``; a number makes Adam with that learning rate and
    ``epsilon`` (:data:`PIXEL_ADAM_EPSILON` on pixels)."""
    if isinstance(opt, str) and opt.lower() in ("lbfgs", "l-bfgs", "l-bfgs-b"):
        return LBFGS()
    if opt is None:
        opt = 0.05
    if isinstance(opt, (int, float)) and not isinstance(opt, bool):
        if not opt > 0 or not math.isfinite(opt):
            raise SynthesisError(f"learning rate must be positive, got {opt}")
        return keras.optimizers.Adam(float(opt), epsilon=float(epsilon))
    if isinstance(opt, str):
        try:
            return keras.optimizers.get(opt)
        except ValueError:
            raise SynthesisError(f"unknown optimizer {opt!r}: use a Keras optimizer name or instance, "
                                 "a learning rate for Adam, or GradientStep(...)") from None
    if isinstance(opt, (GradientStep, LBFGS, keras.optimizers.Optimizer)):
        return opt
    raise SynthesisError(f"optimizer must be a learning rate, a Keras optimizer, GradientStep or 'lbfgs'; "
                         f"got {opt!r}")


# ---------------------------------------------------------------------- forward pass
def forward_fn(bundle, layers: Sequence[str], logits: bool, flexible: bool = False):
    """``f(x) -> (logits or None, {layer: activations})`` running ONE pass of one
    Keras model built from ``bundle.logits`` and ``bundle.features(layers)``; cached
    in the bundle. ``flexible``: accept any image size (only for conv layers -- used by
    DeepDream on images larger than the model input)."""
    layers = list(layers)
    return bundle.programs.get("synthesis.forward", tuple(layers), (bool(logits), bool(flexible)),
                               lambda: _build_forward(bundle, layers, bool(logits), bool(flexible)))


def _build_forward(bundle, layers, logits, flexible):
    if flexible and logits:
        raise SynthesisError("images of any size work with layer objectives only, not with class scores")
    if not layers and not logits:  # objectives on the image alone (l2, total variation)
        return lambda x: (None, {})
    outs = []
    feats = bundle.features(layers) if layers else None
    if logits:
        lm = bundle.logits
        outs.append(lm.outputs[0])
    if feats is not None:
        outs.extend(feats.outputs)
    inputs = (bundle.logits if logits else feats).inputs
    if logits and feats is not None and feats.inputs[0] is not bundle.logits.inputs[0]:
        model = None  # nested models: the feature model is a re-traced clone; two calls
    else:
        model = keras.Model(inputs[0], outs, name=f"{bundle.name}_synthesis")
    if flexible:
        model = keras.models.clone_model(model, input_tensors=keras.Input((None, None, 3)),
                                         clone_function=lambda layer: layer)

    def run(x):
        if model is None:
            lo = bundle.logits(x, training=False)
            fs = feats(x, training=False)
            fs = fs if isinstance(fs, (list, tuple)) else [fs]
            return lo, dict(zip(layers, fs))
        ys = model(x, training=False)
        ys = list(ys) if isinstance(ys, (list, tuple)) else [ys]
        lo = ys.pop(0) if logits else None
        return lo, dict(zip(layers, ys))
    return run


# ---------------------------------------------------------------------- the loop
def optimize(bundle, objective: Objective, param="fourier", transforms=None, regularizers=None,
             steps: int = 256, optimizer=None, seed: int = 0, snapshot_every: int | None = None,
             callbacks: Sequence[Callable] = (), flexible_size: bool = False) -> Result:
    """Maximize ``objective`` over the image given by ``param``.

    bundle: a :class:`~tfviz.models.ModelBundle`. objective: an
    :class:`~tfviz.synthesis.objectives.Objective`. param: ``"pixel"``, ``"fourier"`` or a
    spec (``pixel(batch=4, init=...)``, ``fourier(...)``, ``latent(generator)``).
    transforms: callables ``t(x, rng)`` applied before each forward pass (see
    :mod:`~tfviz.synthesis.transforms`). regularizers: callables applied to the image after
    each update (pixel parameterization only; see :mod:`~tfviz.synthesis.regularizers`).
    steps: positive number of steps. optimizer: a learning rate for Adam (default
    :data:`DEFAULT_LR`: on ``pixel`` in grey levels per step, whatever the model's
    preprocessing -- Adam's first step moves every pixel by exactly ``lr`` grey levels;
    on ``fourier`` and ``latent`` in units of the spectrum or code), a Keras optimizer,
    :class:`GradientStep` or ``"lbfgs"``. seed: same seed, same image.
    snapshot_every: keep the images every so many steps (and at step 0). callbacks:
    ``cb(step, images, losses)`` after each step with the images that step evaluated
    (a :class:`LazyImages`) and ``losses`` ``{"objective": v, term: v, ...}`` (batch
    means); a callback returning True stops the run (the result then holds the images
    that step evaluated). Ctrl-C (KeyboardInterrupt, also from a callback) ends the loop
    and returns the latest images. A NaN objective stops the run, warns naming the step,
    and keeps the last finite images. flexible_size: run the model on the image's own
    size (layer objectives only; DeepDream).
    """
    _check_run(objective, steps, snapshot_every)
    problem = _Problem(bundle, objective, param, transforms, regularizers, optimizer, seed, flexible_size)
    progress = _Progress(bundle, problem.names, snapshot_every, callbacks)
    if isinstance(problem.opt, LBFGS):
        extra = _run_lbfgs(problem, progress, int(steps))
        clip = problem.p.pixel_variable is not None   # pixels moved freely: the result is made a valid image
    else:
        extra = _run_steps(problem, progress, int(steps))
        clip = False
    return progress.result(problem, extra, clip)


def _check_run(objective, steps, snapshot_every) -> None:
    if not isinstance(objective, Objective):
        raise SynthesisError(f"objective must be an Objective (class_logit(...), channel(...), ...); "
                             f"got {type(objective).__name__}")
    if not isinstance(steps, (int, np.integer)) or isinstance(steps, bool) or steps < 1:
        raise SynthesisError(f"steps must be a positive integer, got {steps!r}")
    if snapshot_every is not None and (not isinstance(snapshot_every, (int, np.integer)) or snapshot_every < 1):
        raise SynthesisError(f"snapshot_every must be a positive integer, got {snapshot_every!r}")


def _means(total, values):
    """The batch means of the objective and of each term: ``[1 + terms]``."""
    return tf.stack([tf.reduce_mean(total)] + [tf.reduce_mean(v) for v in values])


class _Problem:
    """What one run optimizes, built and checked before the first step: the
    parameterization ``p`` and its optimizer ``opt``, the objective bound to the bundle
    and the one forward pass. :meth:`update` (one gradient step, then the regularizers)
    and :meth:`value_and_grads` (L-BFGS's evaluation) are traced once per run."""

    def __init__(self, bundle, objective, param, transforms, regularizers, optimizer, seed, flexible_size):
        self.bundle = bundle
        spec = _params.get(param)
        self.p = spec.build(bundle, np.random.default_rng(seed))
        x0 = self.p.image()
        self.batch, self.size = int(x0.shape[0]), tuple(int(s) for s in x0.shape[1:3])
        self.regularizers = list(regularizers or [])
        if self.regularizers and self.p.pixel_variable is None:
            raise SynthesisError(f"regularizers act on pixels: use param='pixel' (got {self.p.name!r}); "
                                 "the fourier and latent parameterizations need none")
        self.evaluate = objective.bind(bundle, self.batch)
        self.names = objective.names()
        self.run = forward_fn(bundle, objective.layers, objective.needs_logits, flexible_size)
        self.model_size = None if flexible_size else tuple(int(s) for s in bundle.input_size)
        self.bounds = tuple(np.asarray(v, np.float32) for v in bundle.input_range)
        lo, hi = self.bounds
        self.lo_t, self.hi_t, self.center_t = tf.constant(lo), tf.constant(hi), tf.constant((lo + hi) / 2)
        self.transform, self.transformed = _transforms.compose(transforms), bool(transforms)
        self.opt = self._make_optimizer(optimizer)
        self.gen = tf.random.Generator.from_seed(int(seed) & 0x7FFFFFFF)
        self.step_t = tf.Variable(0, dtype=tf.int64, name="step")
        self.traces = 0   # how many times a step was traced

    def _make_optimizer(self, optimizer):
        opt = _optimizer(DEFAULT_LR.get(self.p.name, 0.05) if optimizer is None else optimizer,
                         epsilon=PIXEL_ADAM_EPSILON if self.p.pixel_variable is not None else 1e-7)
        if isinstance(opt, LBFGS) and (self.transformed or self.regularizers):
            raise SynthesisError("L-BFGS needs the same function at every evaluation: random transforms and "
                                 "regularizers work with gradient steps (Adam) only; on pixels L-BFGS keeps the "
                                 "image in the valid range by itself")
        if not isinstance(opt, (GradientStep, LBFGS)):
            if opt.built:
                raise SynthesisError("this Keras optimizer was already used by another run; pass a new one per run")
            opt.build(self.p.variables)
        return opt

    def forward_loss(self):
        """(loss to minimize, objective per image [N], term values, the image evaluated)
        -- call inside a GradientTape."""
        img = tf.identity(self.p.image())  # the image this step evaluates (read before the update)
        seen = self.transform(img - self.center_t, self.gen) + self.center_t if self.transformed else img
        if self.model_size is not None and tuple(seen.shape[1:3]) != self.model_size:
            seen = _transforms.fit(seen - self.center_t, self.model_size) + self.center_t
        logits, feats = self.run(seen)
        ctx = Context(image=seen, raw_image=img, logits=logits, features=feats,
                      center=self.center_t, lo=self.lo_t, hi=self.hi_t)
        total, values = self.evaluate(ctx)
        return -tf.reduce_sum(total), total, values, img

    def _gradients(self, of_image: bool):
        """The image as it is now, evaluated: (loss, objective per image, term values, the
        image, d loss / d each variable (zeros where none), d loss / d image when
        ``of_image``)."""
        self.traces += 1  # runs only while tracing
        with tf.GradientTape() as tape:
            tape.watch(self.p.variables)
            loss, total, values, img = self.forward_loss()
        grads = tape.gradient(loss, self.p.variables + ([img] if of_image else []))
        var_grads = [tf.zeros_like(v) if g is None else g for g, v in zip(grads, self.p.variables)]
        return loss, total, values, img, var_grads, (grads[-1] if of_image else None)

    def value_and_grads(self):
        """L-BFGS's evaluation: (loss, its gradient as one flat vector, the batch means of
        the objective and its terms, the image)."""
        loss, total, values, img, grads, _ = self._gradients(of_image=False)
        return loss, tf.concat([tf.reshape(g, [-1]) for g in grads], 0), _means(total, values), img

    def update(self):
        """One gradient step (ascent on the objective), then the regularizers on the
        image: (the batch means of the objective and its terms, the image evaluated)."""
        _, total, values, img, grads, img_grad = self._gradients(of_image=bool(self.regularizers))
        if isinstance(self.opt, GradientStep):
            self.opt.apply([(-g, v) for g, v in zip(grads, self.p.variables)])  # ascent
        else:
            self.opt.apply_gradients(list(zip(grads, self.p.variables)))        # minimizes -objective
        if self.regularizers:
            self._regularize(-img_grad if img_grad is not None else tf.zeros_like(img))  # d objective / d image
        self.step_t.assign_add(1)
        return _means(total, values), img

    def _regularize(self, img_grad):
        x = tf.identity(self.p.image())  # model input: read once after the update, chain, assign once
        ctx = Context(image=x, raw_image=x, center=self.center_t, lo=self.lo_t, hi=self.hi_t)
        for r in self.regularizers:
            every = int(getattr(r, "every", 1))
            if every == 1:
                x = r(x, img_grad, ctx)
            else:
                x = tf.cond(self.step_t % every == 0, lambda r=r, x=x: r(x, img_grad, ctx), lambda x=x: x)
        self.p.assign_image(x)  # back to grey levels


class _Stop(Exception):
    """Raised by :meth:`_Progress.step` to end a run (a NaN objective, a callback)."""


class _Progress:
    """What a run has done, the same for gradient steps and L-BFGS: the losses of each
    step, the snapshots, the callbacks, the image the result holds and why the run
    ended early (a NaN objective, a callback, Ctrl-C); :meth:`result` makes the
    :class:`Result`."""

    def __init__(self, bundle, names, snapshot_every, callbacks):
        self.bundle, self.names = bundle, names
        self.snapshot_every, self.callbacks = snapshot_every, callbacks
        self.history, self.snapshots = [], []
        self.image, self.steps, self.point = None, 0, None
        self.stopped, self.nan_step, self.interrupted, self.seconds = None, None, False, 0.0

    def keep(self, image, steps, point=None) -> None:
        """The result holds ``image`` (None: the parameterization's image when the run
        ends), made by ``steps`` updates; ``point``: L-BFGS's iterate behind it."""
        self.image, self.steps, self.point = image, steps, point

    def step(self, i, vals, img, point=None) -> None:
        """Step ``i`` evaluated ``img`` to ``vals`` (the objective, then each term): keep
        it, record the losses, a snapshot when one is due, and call the callbacks. Raises
        _Stop on a NaN objective (keeping ``img`` only if it is finite) and when a
        callback returns True."""
        if not np.isfinite(vals[0]):
            self.nan_step = i
            self.stopped = f"objective became {vals[0]} at step {i}; stopped and kept the last finite image"
            if bool(tf.reduce_all(tf.math.is_finite(img))):
                self.keep(img, i, point)
            raise _Stop
        self.keep(img, i, point)
        self.history.append(vals)
        if self.snapshot_every and i % self.snapshot_every == 0:
            self.snapshots.append((i, self.bundle.deprocess(img.numpy())))
        losses = {"objective": float(vals[0]), **{n: float(v) for n, v in zip(self.names, vals[1:])}}
        lazy = LazyImages(img, self.bundle)
        stop = False
        for cb in self.callbacks:
            stop = bool(cb(i, lazy, losses)) or stop
        if stop:
            self.stopped = f"stopped by a callback at step {i}"
            raise _Stop

    def run(self, loop) -> None:
        """Call ``loop()``, timed; _Stop and Ctrl-C (KeyboardInterrupt) end it."""
        t0 = time.perf_counter()
        try:
            loop()
        except _Stop:
            pass
        except KeyboardInterrupt:
            self.interrupted = True
            self.stopped = f"interrupted at step {self.steps}"
        self.seconds = time.perf_counter() - t0

    def result(self, problem, extra: dict, clip: bool) -> Result:
        """The :class:`Result` (a NaN objective warns, naming its step); ``clip``: the
        image is clipped into the valid input range."""
        if self.nan_step is not None:
            warnings.warn(self.stopped, RuntimeWarning, stacklevel=3)   # at the caller of optimize
        img = problem.p.image() if self.image is None else self.image
        x = np.nan_to_num(np.asarray(img.numpy(), np.float32))
        if clip:
            x = np.clip(x, *problem.bounds)
        h = np.asarray(self.history, np.float32).reshape(-1, len(self.names) + 1)
        extra = {"traces": problem.traces, "param": problem.p.name, "size": problem.size, "batch": problem.batch,
                 "optimizer": type(problem.opt).__name__, "evaluations": len(self.history), **extra}
        return Result(images=problem.bundle.deprocess(x), history=h[:, 0].copy(),
                      losses={n: h[:, k + 1].copy() for k, n in enumerate(self.names)}, snapshots=self.snapshots,
                      steps=self.steps, x=x, interrupted=self.interrupted, stopped=self.stopped,
                      nan_step=self.nan_step, seconds=self.seconds, extra=extra)


def _run_steps(problem, progress, steps: int) -> dict:
    """Gradient steps (Adam, any Keras optimizer, :class:`GradientStep`): one traced
    update per step; after the last one the result is the updated image."""
    update = tf.function(problem.update, autograph=False)

    def loop():
        for i in range(steps):
            means, img = update()
            progress.step(i, means.numpy(), img)
        progress.keep(None, steps)
    progress.run(loop)
    return {}


def _run_lbfgs(problem, progress, steps: int) -> dict:
    """L-BFGS: scipy's L-BFGS-B asks for the loss and gradient at points it chooses;
    the starting point is step 0 and each accepted iterate the next step, reported like
    a gradient step; the final iterate is the result."""
    space = _LbfgsSpace(problem.bundle, problem.p, problem.opt.box)
    value_and_grads = tf.function(problem.value_and_grads, autograph=False)
    evals, last, res = 0, None, None   # last: the latest evaluation (z, means, image)

    def fun(z):
        nonlocal evals, last
        space.assign(z)
        loss, grad, means, img = value_and_grads()
        evals += 1
        last = (z.copy(), means.numpy(), img)
        if evals == 1:
            progress.step(0, last[1], img, z.copy())  # step 0: the starting image
        g = grad.numpy().astype(np.float64) * space.scale   # d loss / d z
        if not np.all(np.isfinite(g)) or not np.isfinite(float(loss)):
            return np.inf, np.zeros_like(z)
        return float(loss), g

    def iterate(intermediate_result):
        z = np.asarray(intermediate_result.x)
        if last is None or not np.array_equal(last[0], z):
            fun(z)
        i = len(progress.history)
        if i >= steps:
            progress.keep(last[2], steps, z.copy())
        else:
            progress.step(i, last[1], last[2], z.copy())

    def minimize():
        nonlocal res
        opt = problem.opt
        res = scipy.optimize.minimize(fun, space.z0, jac=True, method="L-BFGS-B", bounds=space.bounds,
                                      callback=iterate,
                                      options=dict(maxiter=steps, maxcor=opt.memory, ftol=0.0, gtol=0.0,
                                                   maxfun=max(int(steps * opt.max_evaluations), steps + 2),
                                                   maxls=20))
    progress.run(minimize)
    if progress.point is not None:
        space.assign(progress.point)
    extra = {"optimizer": "LBFGS", "evaluations": evals}
    if res is not None:
        extra.update(final_objective=float(-res.fun), message=str(res.message))
    return extra


class _LbfgsSpace:
    """The variables as scipy's one float64 vector ``z = (variables - shift) / scale``.
    Pixels (held in grey levels) are given to it in model-input units, as L-BFGS's first
    trial step has unit length: its runs are those it had before the pixel variable moved
    to grey levels. ``box`` (pixels only): L-BFGS-B's bounds keep them in 0..255."""

    def __init__(self, bundle, p, box: bool):
        self.variables = p.variables
        self.shapes = [tuple(v.shape) for v in p.variables]
        self.counts = [int(np.prod(s)) for s in self.shapes]
        self.shift, self.scale = np.zeros(sum(self.counts)), np.ones(sum(self.counts))
        pixels = p.pixel_variable is not None and len(p.variables) == 1
        if pixels:
            pre = bundle.preprocessing
            rgb = slice(None, None, -1) if pre.bgr else slice(None)
            self.shift = np.broadcast_to(np.asarray(pre.mean, np.float64)[rgb], self.shapes[0]).reshape(-1)
            self.scale = np.broadcast_to(np.asarray(pre.std, np.float64)[rgb], self.shapes[0]).reshape(-1)
        z0 = np.concatenate([v.numpy().reshape(-1) for v in p.variables]).astype(np.float64)
        self.z0, self.bounds = (z0 - self.shift) / self.scale, None
        if box and pixels:
            lo, hi = (0.0 - self.shift) / self.scale, (255.0 - self.shift) / self.scale   # grey levels 0..255
            self.bounds = scipy.optimize.Bounds(lo, hi)
            self.z0 = np.clip(self.z0, lo, hi)

    def assign(self, z) -> None:
        k = 0
        for v, shape, n in zip(self.variables, self.shapes, self.counts):
            v.assign((z[k:k + n] * self.scale[k:k + n] + self.shift[k:k + n]).reshape(shape).astype(np.float32))
            k += n
