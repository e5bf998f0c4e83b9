"""Feature inversion (Mahendran & Vedaldi 2015): the image whose activations at a layer
match a photo's, grown from noise, on :func:`~tfviz.synthesis.optimize`."""
from __future__ import annotations

from dataclasses import replace

import numpy as np

from ..images import caption, hstack, resize
from . import objectives as obj
from . import params as _params
from .lossnet import loss_network, stage_ends
from .recipe import (check_positive_int, check_weight, layer_features, lbfgs_or_adam, merge_results, run_ended,
                     shift_callbacks, tv_term)
from .optimize import Result, SynthesisError, optimize

def invert_features(bundle, image, layer: str, *, tv_weight: float | None = None, steps: int = 200,
                    param="fourier", optimizer="lbfgs", seed: int = 0, transform=None, callbacks=(),
                    snapshot_every: int | None = None) -> Result:
    """Mahendran & Vedaldi 2015: the image whose activations at ``layer`` match those of
    ``image`` (a path, a bundled photo's array, uint8 ``[H, W, 3]``; resized to the
    model's input), starting from noise. Minimizes
    ``||phi(x) - phi(x0)||^2 / ||phi(x0)||^2 + tv_weight * TV(x)`` with TV on the image
    in 0..1 units (default weight: :data:`INVERSION_TV`). ``param``: ``"fourier"``
    (default: the decorrelated Fourier image with ``decay_power`` 1.5, whose natural
    1/f spectrum lets deep layers' reconstructions keep colour and contrast; plain
    pixels stay gray there) or ``"pixel"``, or a spec; ``optimizer``: ``"lbfgs"``
    (default), ``"adam"`` (Adam at 0.05 on fourier, 3 grey levels per step on pixel), a
    learning rate for Adam (grey levels per step on pixel, whatever the model's
    preprocessing) or a Keras optimizer. ``extra["psnr"]`` is the reconstruction's PSNR
    against the image."""
    steps = check_positive_int("steps", steps)
    tv = INVERSION_TV if tv_weight is None else check_weight("tv_weight", tv_weight)
    bundle.layer(layer)
    x0 = bundle.load_images([image])[0]
    target = layer_features(bundle, [layer], bundle.preprocess(x0[None]))[layer]
    target = obj.feature_transform(transform)(target).numpy()
    objective = obj.feature_match(layer, target, normalize=True, transform=transform) + tv_term(bundle, tv)
    spec = _params.get(param)
    if isinstance(spec, _params.pixel) and spec.init is None:
        spec = replace(spec, std=0.02)  # start from faint noise around mid-gray
    if isinstance(spec, _params.fourier):
        spec = replace(spec, decay_power=INVERSION_DECAY if param == "fourier" else spec.decay_power)
    opt, regs = lbfgs_or_adam(optimizer, spec)
    res = optimize(bundle, objective, param=spec, regularizers=regs, steps=steps, optimizer=opt, seed=seed,
                   callbacks=callbacks, snapshot_every=snapshot_every)
    res.extra.update(recipe="invert_features", layer=layer, tv_weight=tv, psnr=psnr(res.image, x0), original=x0)
    return res


INVERSION_TV = 0.5
INVERSION_DECAY = 1.5


def psnr(a, b) -> float:
    """Peak signal-to-noise ratio of two uint8 images, in dB."""
    d = np.mean((np.asarray(a, np.float64) - np.asarray(b, np.float64)) ** 2)
    return float("inf") if d == 0 else float(10 * np.log10(255.0 ** 2 / d))


def inversion_strip(bundle, image, layers=None, *, steps: int = 200, tv_weight: float | None = None,
                    param="fourier", seed: int = 0, optimizer="lbfgs", callbacks=(), size: int = 160) -> Result:
    """One reconstruction per layer (default: the loss network's inversion layers, first
    conv block to last), side by side after the original: early layers keep the photo,
    deep ones only what matters for the class. ``images``: the reconstructions
    ``[L, H, W, 3]``; ``extra["strip"]``: the captioned strip; ``extra["psnr"]``: one PSNR
    per layer. Callbacks see steps counted over all layers."""
    layers = list(layers or loss_network(bundle).inversion_layers or stage_ends(bundle))
    if not layers:
        raise SynthesisError("no layers to invert")
    for n in layers:
        bundle.layer(n)
    steps = check_positive_int("steps", steps)
    results, offset = [], 0
    for n in layers:
        r = invert_features(bundle, image, n, tv_weight=tv_weight, steps=steps, param=param, seed=seed,
                            optimizer=optimizer, callbacks=shift_callbacks(callbacks, offset))
        results.append(r)
        offset += steps
        if run_ended(r):
            break
    original = results[0].extra["original"]
    tiles = [caption(resize(original, (size, size)), "original")]
    tiles += [caption(resize(r.image, (size, size)), f"{n}") for n, r in zip(layers, results)]
    out = merge_results(results, np.stack([r.image for r in results]),
                        dict(recipe="inversion_strip", layers=layers[:len(results)], strip=hstack(tiles, gap=4),
                             psnr=[r.extra["psnr"] for r in results], original=original))
    out.snapshots = [(s, im) for r in results for s, im in r.snapshots]
    return out
