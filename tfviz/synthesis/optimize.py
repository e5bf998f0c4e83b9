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

from ..images import caption, hstack, png_bytes, resize, tile
from ..utils import TfvizError
from . import params as _params
from . import transforms as _transforms
from .objectives import Context, Objective


class SynthesisError(TfvizError, ValueError):
    """Bad arguments to a synthesis method, or an input it refuses (raised before the
    first step: a usage error, exit 2 on the command line)."""
    exit_code = 2


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
def _report(bundle, i, vals, img, names, snapshot_every, snaps, callbacks) -> bool:
    """Step ``i`` is done: keep a snapshot when one is due, then call the callbacks with
    the images and ``{"objective": v, term: v, ...}``; True when one asks to stop."""
    if snapshot_every and i % snapshot_every == 0:
        snaps.append((i, bundle.deprocess(img.numpy())))
    losses = {"objective": float(vals[0]), **{n: float(v) for n, v in zip(names, vals[1:])}}
    lazy = LazyImages(img, bundle)
    stop = False
    for cb in callbacks:
        stop = bool(cb(i, lazy, losses)) or stop
    return stop


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
    if not isinstance(objective, Objective):
        raise SynthesisError(f"objective must be an Objective (class_logit(...), channel(...), ...); "
                             f"got {type(objective).__name__}")
    if not isinstance(steps, (int, np.integer)) or isinstance(steps, bool) or steps < 1:
        raise SynthesisError(f"steps must be a positive integer, got {steps!r}")
    if snapshot_every is not None and (not isinstance(snapshot_every, (int, np.integer)) or snapshot_every < 1):
        raise SynthesisError(f"snapshot_every must be a positive integer, got {snapshot_every!r}")
    spec = _params.get(param)
    rng = np.random.default_rng(seed)
    p = spec.build(bundle, rng)
    x0 = p.image()
    batch, size = int(x0.shape[0]), tuple(int(s) for s in x0.shape[1:3])
    regularizers = list(regularizers or [])
    if regularizers and p.pixel_variable is None:
        raise SynthesisError(f"regularizers act on pixels: use param='pixel' (got {p.name!r}); "
                             "the fourier and latent parameterizations need none")
    evaluate = objective.bind(bundle, batch)
    names = objective.names()
    run = forward_fn(bundle, objective.layers, objective.needs_logits, flexible_size)
    model_size = None if flexible_size else tuple(int(s) for s in bundle.input_size)
    lo, hi = (np.asarray(v, np.float32) for v in bundle.input_range)
    lo_t, hi_t, center_t = tf.constant(lo), tf.constant(hi), tf.constant((lo + hi) / 2)
    transform = _transforms.compose(transforms)
    opt = _optimizer(DEFAULT_LR.get(p.name, 0.05) if optimizer is None else optimizer,
                     epsilon=PIXEL_ADAM_EPSILON if p.pixel_variable is not None else 1e-7)
    lbfgs = isinstance(opt, LBFGS)
    if lbfgs and (transforms or regularizers):
        raise SynthesisError("L-BFGS needs the same function at every evaluation: random transforms and "
                             "regularizers work with gradient steps (Adam) only; on pixels L-BFGS keeps the "
                             "image in the valid range by itself")
    if not isinstance(opt, (GradientStep, LBFGS)):
        if opt.built:
            raise SynthesisError("this Keras optimizer was already used by another run; pass a new one per run")
        opt.build(p.variables)
    gen = tf.random.Generator.from_seed(int(seed) & 0x7FFFFFFF)
    step_t = tf.Variable(0, dtype=tf.int64, name="step")
    traces = []

    def forward_loss():
        """(loss to minimize, objective per image [N], term values, the image evaluated)
        -- call inside a GradientTape."""
        img = tf.identity(p.image())  # the image this step evaluates (read before the update)
        seen = transform(img - center_t, gen) + center_t if transforms else img
        if model_size is not None and tuple(seen.shape[1:3]) != model_size:
            seen = _transforms.fit(seen - center_t, model_size) + center_t
        logits, feats = run(seen)
        ctx = Context(image=seen, raw_image=img, logits=logits, features=feats,
                      center=center_t, lo=lo_t, hi=hi_t)
        total, values = evaluate(ctx)
        return -tf.reduce_sum(total), total, values, img

    def report(total, values):
        return tf.stack([tf.reduce_mean(total)] + [tf.reduce_mean(v) for v in values])

    if lbfgs:
        def value_and_grads():
            traces.append(1)
            with tf.GradientTape() as tape:
                tape.watch(p.variables)
                loss, total, values, img = forward_loss()
            grads = tape.gradient(loss, p.variables)
            grads = [tf.zeros_like(v) if g is None else g for g, v in zip(grads, p.variables)]
            return loss, tf.concat([tf.reshape(g, [-1]) for g in grads], 0), report(total, values), img
        return _run_lbfgs(bundle, p, opt, tf.function(value_and_grads, autograph=False), steps, snapshot_every, callbacks, names,
                          traces, (lo, hi), dict(param=p.name, size=size, batch=batch))

    def step_fn():
        traces.append(1)  # runs only while tracing
        with tf.GradientTape() as tape:
            tape.watch(p.variables)
            loss, total, values, img = forward_loss()
        watched = p.variables + ([img] if regularizers else [])
        grads = tape.gradient(loss, watched)
        var_grads = grads[:len(p.variables)]
        var_grads = [tf.zeros_like(v) if g is None else g for g, v in zip(var_grads, p.variables)]
        if isinstance(opt, GradientStep):
            opt.apply([(-g, v) for g, v in zip(var_grads, p.variables)])  # ascent
        else:
            opt.apply_gradients(list(zip(var_grads, p.variables)))        # minimizes -objective
        if regularizers:
            img_grad = grads[-1]
            img_grad = -img_grad if img_grad is not None else tf.zeros_like(img)  # d objective / d image
            x = tf.identity(p.image())  # model input: read once after the update, chain, assign once
            ctx_r = Context(image=x, raw_image=x, center=center_t, lo=lo_t, hi=hi_t)
            for r in regularizers:
                every = int(getattr(r, "every", 1))
                if every == 1:
                    x = r(x, img_grad, ctx_r)
                else:
                    x = tf.cond(step_t % every == 0, lambda r=r, x=x: r(x, img_grad, ctx_r), lambda x=x: x)
            p.assign_image(x)  # back to grey levels
        step_t.assign_add(1)
        return report(total, values), img

    step = tf.function(step_fn, autograph=False)
    hist, snaps = [], []
    interrupted, stopped, nan_step = False, None, None
    last_img, last_step = None, 0   # the latest evaluated images and how many updates they had
    t0 = time.perf_counter()
    done = 0
    try:
        for i in range(int(steps)):
            vals_t, img_t = step()
            vals = vals_t.numpy()
            if not np.isfinite(vals[0]):
                nan_step = i
                stopped = f"objective became {vals[0]} at step {i}; stopped and kept the last finite image"
                warnings.warn(stopped, RuntimeWarning, stacklevel=2)
                if bool(tf.reduce_all(tf.math.is_finite(img_t))):
                    last_img, last_step = img_t, i
                break
            last_img, last_step = img_t, i
            hist.append(vals)
            done = i + 1
            if _report(bundle, i, vals, img_t, names, snapshot_every, snaps, callbacks):
                stopped = f"stopped by a callback at step {i}"
                break
        else:
            last_img, last_step = None, done  # completed: the final image is the one after the last update
    except KeyboardInterrupt:
        interrupted = True
        stopped = f"interrupted at step {last_step}"
    seconds = time.perf_counter() - t0
    if last_img is None:
        last_img = p.image()
    x = np.asarray(last_img.numpy(), np.float32)
    if not np.all(np.isfinite(x)):
        x = np.nan_to_num(x)
    h = np.asarray(hist, np.float32).reshape(-1, len(names) + 1)
    return Result(images=bundle.deprocess(x), history=h[:, 0].copy(),
                  losses={n: h[:, k + 1].copy() for k, n in enumerate(names)},
                  snapshots=snaps, steps=last_step, x=x, interrupted=interrupted, stopped=stopped,
                  nan_step=nan_step, seconds=seconds,
                  extra={"traces": len(traces), "param": p.name, "size": size, "batch": batch,
                         "optimizer": type(opt).__name__, "evaluations": len(hist)})


def _run_lbfgs(bundle, p, opt, value_and_grads, steps, snapshot_every, callbacks, names, traces, bounds, info):
    """The L-BFGS driver of :func:`optimize`: scipy's L-BFGS-B asks for the loss and
    gradient at points it chooses; each accepted iterate is one step, reported like a
    gradient step (callbacks, snapshots, history; NaN, callback stops and Ctrl-C end
    the run keeping the latest accepted image)."""
    shapes = [tuple(v.shape) for v in p.variables]
    counts = [int(np.prod(s)) for s in shapes]
    # scipy sees ``z = (variables - shift) / scale``. Pixels (held in grey levels) are
    # given to it in model-input units, as L-BFGS's first trial step has unit length:
    # its runs are those it had before the pixel variable moved to grey levels.
    shift, scale = np.zeros(sum(counts)), np.ones(sum(counts))
    pixels = p.pixel_variable is not None and len(p.variables) == 1
    if pixels:
        pre = bundle.preprocessing
        rgb = slice(None, None, -1) if pre.bgr else slice(None)
        shift = np.broadcast_to(np.asarray(pre.mean, np.float64)[rgb], shapes[0]).reshape(-1)
        scale = np.broadcast_to(np.asarray(pre.std, np.float64)[rgb], shapes[0]).reshape(-1)
    z0 = (np.concatenate([v.numpy().reshape(-1) for v in p.variables]).astype(np.float64) - shift) / scale
    lim = None
    if opt.box and pixels:
        lo, hi = (0.0 - shift) / scale, (255.0 - shift) / scale   # grey levels 0..255
        lim = scipy.optimize.Bounds(lo, hi)
        z0 = np.clip(z0, lo, hi)

    def assign(z):
        k = 0
        for v, shape, n in zip(p.variables, shapes, counts):
            v.assign((z[k:k + n] * scale[k:k + n] + shift[k:k + n]).reshape(shape).astype(np.float32))
            k += n

    state = {"last": None, "evals": 0, "step": 0, "accepted": None}
    hist, snaps = [], []
    stopped, nan_step = None, None

    class _Stop(Exception):
        pass

    def emit(z, vals, img):
        """One step: the image at iterate ``step`` (before the iteration that follows)."""
        nonlocal stopped, nan_step
        i = state["step"]
        if not np.isfinite(vals[0]):
            nan_step = i
            stopped = f"objective became {vals[0]} at step {i}; stopped and kept the last finite image"
            warnings.warn(stopped, RuntimeWarning, stacklevel=4)
            raise _Stop
        state["accepted"] = (z, img, i)
        hist.append(vals)
        stop = _report(bundle, i, vals, img, names, snapshot_every, snaps, callbacks)
        state["step"] = i + 1
        if stop:
            stopped = f"stopped by a callback at step {i}"
            raise _Stop

    def fun(z):
        assign(z)
        loss, grad, vals, img = value_and_grads()
        state["evals"] += 1
        vals = vals.numpy()
        state["last"] = (z.copy(), vals, img)
        if state["evals"] == 1:
            emit(z.copy(), vals, img)  # step 0: the starting image
        g = grad.numpy().astype(np.float64) * scale   # d loss / d z
        if not np.all(np.isfinite(g)) or not np.isfinite(float(loss)):
            return np.inf, np.zeros_like(z)
        return float(loss), g

    def iterate(intermediate_result):
        z = np.asarray(intermediate_result.x)
        last = state["last"]
        if last is None or not np.array_equal(last[0], z):
            fun(z)
            last = state["last"]
        if state["step"] >= steps:   # the final iterate: the result, not a step
            state["accepted"] = (z.copy(), last[2], steps)
            return
        emit(z.copy(), last[1], last[2])

    interrupted = False
    t0 = time.perf_counter()
    res = None
    try:
        res = scipy.optimize.minimize(fun, z0, jac=True, method="L-BFGS-B", bounds=lim, callback=iterate,
                                      options=dict(maxiter=int(steps), maxcor=opt.memory, ftol=0.0, gtol=0.0,
                                                   maxfun=max(int(steps * opt.max_evaluations), int(steps) + 2),
                                                   maxls=20))
    except _Stop:
        pass
    except KeyboardInterrupt:
        interrupted = True
    seconds = time.perf_counter() - t0
    acc = state["accepted"]
    if interrupted:
        stopped = f"interrupted at step {acc[2] if acc else 0}"
    if res is not None and acc is not None and acc[2] < steps and stopped is None:
        stopped = None  # converged early (scipy's own stop): not an error
    if acc is None:   # interrupted before the first evaluation finished
        img, last_step = p.image(), 0
    else:
        assign(acc[0])
        img, last_step = acc[1], acc[2]
    x = np.nan_to_num(np.asarray(img.numpy(), np.float32))
    if p.pixel_variable is not None:   # the result is a valid image whatever the range handling
        x = np.clip(x, *(np.asarray(b, np.float32) for b in bounds))
    h = np.asarray(hist, np.float32).reshape(-1, len(names) + 1)
    extra = dict(info, traces=len(traces), optimizer="LBFGS", evaluations=state["evals"])
    if res is not None:
        extra["final_objective"] = float(-res.fun)
        extra["message"] = str(res.message)
    return Result(images=bundle.deprocess(x), history=h[:, 0].copy(),
                  losses={n: h[:, k + 1].copy() for k, n in enumerate(names)}, snapshots=snaps,
                  steps=last_step, x=x, interrupted=interrupted, stopped=stopped, nan_step=nan_step,
                  seconds=seconds, extra=extra)
