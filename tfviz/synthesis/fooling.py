"""Fooling images and adversarial examples (Szegedy 2014; Goodfellow 2015; Madry 2018):
recipes over :func:`optimize` with the pixel parameterization.

Sizes are in grey levels of the uint8 image (0..255), whatever the model's
preprocessing: ``eps=2`` moves a pixel by two grey levels, and so does one step of
``fooling_image(lr=2)`` or ``pgd(alpha=2)``."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import defaults
from ..images import hstack, png_bytes, tile
from . import objectives as obj
from . import params as _params
from . import regularizers as _reg
from .optimize import GradientStep, SynthesisError, optimize


#: ``fooling_image``'s Adam learning rate, grey levels per step: about what 0.01
#: model-input units were on efficientnet_lite0 (torch preprocessing, 57-58 grey levels
#: per unit): the README's cat still becomes a goldfish in 7 steps, changed by 4 grey levels.
FOOLING_LR = defaults.FOOLING_LR


@dataclass
class FoolingResult:
    """``image`` (uint8, classified as ``target`` when ``success``), ``original``,
    ``steps`` taken, ``l2`` and ``linf`` size of the change in grey levels,
    ``difference`` (the change magnified ``magnification`` times around mid-gray),
    ``probability`` of the target, ``original_class``, and the optimization ``result``."""
    image: np.ndarray
    original: np.ndarray
    target: int
    success: bool
    steps: int
    l2: float
    linf: float
    difference: np.ndarray
    magnification: float
    probability: float
    original_class: int
    result: object = None

    def _repr_png_(self) -> bytes:
        """Jupyter shows original | fooled image | difference, side by side."""
        return png_bytes(hstack([self.original, self.image, self.difference]))


def difference_image(a, b, magnification: float | None = None):
    """``128 + m * (a - b)`` as uint8 (``m`` so that the largest change spans 127 grey
    levels when not given). Returns ``(image, m)``."""
    d = a.astype(np.float32) - b.astype(np.float32)
    m = magnification or (127.0 / max(float(np.abs(d).max()), 1.0))
    return np.clip(np.round(128 + m * d), 0, 255).astype(np.uint8), float(m)


def _one_image(bundle, image):
    batch = bundle.load_images(image)
    if len(batch) != 1:
        raise SynthesisError("fooling_image takes one image; use fgsm/pgd for batches")
    return batch[0]


def fooling_image(bundle, image, target, max_steps: int = 200, lr: float = FOOLING_LR, seed: int = 0,
                  callbacks=(), snapshot_every: int | None = None) -> FoolingResult:
    """Start from ``image``, ascend the logit of ``target`` (Adam on the pixels, clipped
    to the valid range) until the model's top-1 class of the *saved uint8* image is
    ``target``, at most ``max_steps`` steps. ``lr``: Adam's learning rate in grey levels,
    whatever the model's preprocessing -- the first step moves every pixel by ``lr``
    grey levels along the gradient's sign, later ones by about ``lr`` at most (default
    :data:`FOOLING_LR`)."""
    t = bundle.class_index(target)
    if not isinstance(max_steps, (int, np.integer)) or max_steps < 1:
        raise SynthesisError(f"max_steps must be a positive integer, got {max_steps!r}")
    if not lr > 0:
        raise SynthesisError(f"lr must be positive, got {lr}")
    img = _one_image(bundle, image)
    orig_class = int(np.argmax(bundle.predict(img[None])[0]))
    monitor = obj.class_margin(t)
    margin_name = (obj.class_logit(t) + 0 * monitor).names()[1]

    def stop_when_fooled(step, images, losses):
        if losses[margin_name] > 0:
            u8 = np.asarray(images)
            if int(np.argmax(bundle.predict(u8)[0])) == t:
                return True  # the result then holds this step's (saved, uint8) image
        return False

    if orig_class == t:
        res, steps = None, 0
        final = img
    else:
        res = optimize(bundle, obj.class_logit(t) + 0 * monitor, param=_params.pixel(init=img),
                       transforms=[], regularizers=[_reg.ClipRange()], steps=int(max_steps),
                       optimizer=lr, seed=seed, callbacks=[stop_when_fooled, *callbacks],
                       snapshot_every=snapshot_every)
        final, steps = res.image, res.steps
    probs = bundle.predict(final[None])[0]
    d = final.astype(np.float32) - img.astype(np.float32)
    diff, m = difference_image(final, img)
    return FoolingResult(image=final, original=img, target=t, success=int(np.argmax(probs)) == t, steps=int(steps),
                         l2=float(np.sqrt(np.sum(d * d))), linf=float(np.abs(d).max()), difference=diff,
                         magnification=m, probability=float(probs[t]), original_class=orig_class, result=res)


@dataclass
class AdversarialResult:
    """``images`` (uint8), ``float_images`` (float32 0..255, before rounding),
    ``original_classes`` / ``classes`` (top-1 before / after), ``targets`` (or None)."""
    images: np.ndarray
    float_images: np.ndarray
    original_classes: np.ndarray
    classes: np.ndarray
    targets: np.ndarray | None

    @property
    def success_rate(self) -> float:
        if self.targets is not None:
            return float(np.mean(self.classes == self.targets))
        return float(np.mean(self.classes != self.original_classes))

    def _repr_png_(self) -> bytes:
        """Jupyter shows the adversarial images tiled in a grid."""
        return png_bytes(tile(self.images))


def _objective(bundle, x, target, n):
    if target is None:
        labels = np.argmax(bundle.predict(x), axis=1)
        return -1.0 * obj.class_log_prob([int(i) for i in labels]), labels, None
    targets = [bundle.class_index(t) for t in (target if isinstance(target, (list, tuple, np.ndarray))
                                               else [target] * n)]
    return obj.class_log_prob(targets), None, np.asarray(targets)


def _finish(bundle, res, originals, labels, targets):
    rgb = np.asarray(bundle.preprocessing.to_float_rgb(res.x), np.float32)
    imgs = np.clip(np.round(rgb), 0, 255).astype(np.uint8)
    if labels is None:
        labels = np.argmax(bundle.predict(originals), axis=1)
    return AdversarialResult(images=imgs, float_images=rgb, original_classes=labels,
                             classes=np.argmax(bundle.predict(imgs), axis=1), targets=targets)


def fgsm(bundle, images, eps: float, target=None, clip: bool = True) -> AdversarialResult:
    """Fast gradient sign method: one step of ``eps`` grey levels along the sign of the
    gradient -- up the loss of the model's own prediction (``target=None``, untargeted),
    or down the loss of ``target`` (one class or one per image). ``clip`` keeps the valid
    range; without it every pixel moves by exactly ``eps`` (where the gradient is not 0)."""
    if not eps > 0:
        raise SynthesisError(f"eps must be positive, got {eps}")
    x = bundle.load_images(images)
    objective, labels, targets = _objective(bundle, x, target, len(x))
    res = optimize(bundle, objective, param=_params.pixel(init=x, batch=len(x)), transforms=[],
                   regularizers=[_reg.ClipRange()] if clip else [], steps=1,
                   optimizer=GradientStep("sign", eps))   # the pixel variable is in grey levels
    return _finish(bundle, res, x, labels, targets)


def pgd(bundle, images, eps: float, alpha: float, steps: int = 10, target=None, random_start: bool = True,
        seed: int = 0) -> AdversarialResult:
    """Projected gradient descent (Madry et al.): ``steps`` sign steps of ``alpha`` grey
    levels, each followed by projection into the L-inf ball of radius ``eps`` around the
    images and into the valid range; optionally from a uniform random start in the ball."""
    if not eps > 0 or not alpha > 0:
        raise SynthesisError(f"eps and alpha must be positive, got eps={eps}, alpha={alpha}")
    x = bundle.load_images(images)
    objective, labels, targets = _objective(bundle, x, target, len(x))
    start = x.astype(np.float32)   # grey levels
    if random_start:
        rng = np.random.default_rng(seed)
        start = start + rng.uniform(-1, 1, x.shape).astype(np.float32) * np.float32(eps)
    res = optimize(bundle, objective, param=_params.pixel(init=start, batch=len(x)), transforms=[],
                   regularizers=[_reg.ProjectLinf(bundle.preprocess(x), eps), _reg.ClipRange()], steps=steps,
                   optimizer=GradientStep("sign", alpha), seed=seed)
    return _finish(bundle, res, x, labels, targets)
