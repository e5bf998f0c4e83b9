"""Texture synthesis (Gatys et al. 2015): a new image, any size, with the Gram matrices
of a texture's activations, grown from noise on :func:`~tfviz.synthesis.optimize`."""
from __future__ import annotations

from ..images import load_image
from . import objectives as obj
from . import params as _params
from .lossnet import check_fits, loss_network
from .recipe import (check_positive_int, check_size, check_spatial_layers, check_weight, layer_grams, layer_weights,
                     lbfgs_or_adam, tv_term)
from .optimize import Result, optimize

def synthesize_texture(bundle, texture, *, size=None, layers=None, steps: int = 200, seed: int = 0,
                       optimizer="lbfgs", transform="default", tv_weight: float | None = None,
                       callbacks=(), snapshot_every: int | None = None, memory_limit: int | None = None) -> Result:
    """Gatys et al. 2015: a new image with the Gram matrices of ``texture`` (a path or a
    uint8 array, read at its own size) at ``layers`` (``{layer: weight}`` or a list;
    default: the loss network's texture layers), from noise. ``size``: ``(H, W)`` or one
    number, any size including larger than the source and non-square (default: the
    source's). ``transform``: the feature transform before the Gram matrices
    (``"default"``: the loss network's). ``optimizer``: ``"lbfgs"`` (default), ``"adam"``
    (3 grey levels per step), a learning rate for Adam in grey levels per step (whatever
    the model's preprocessing) or a Keras optimizer. Same seed, same image."""
    net = loss_network(bundle)
    steps = check_positive_int("steps", steps)
    tv = check_weight("tv_weight", net.texture_tv_weight if tv_weight is None else tv_weight)
    layers = layer_weights(layers, net.texture)
    check_spatial_layers(bundle, layers)
    t = load_image(texture, min_side=bundle.min_input_side)
    hw = tuple(t.shape[:2]) if size is None else check_size(size)
    transform = net.transform if transform == "default" else transform
    check_fits(bundle, layers, hw, optimizer, memory_limit)
    check_fits(bundle, layers, t.shape[:2], optimizer, memory_limit)
    grams = layer_grams(bundle, list(layers), bundle.preprocess(t[None]), transform)
    total = sum(layers.values())
    objective = sum((w / total) * obj.gram_match(n, grams[n], normalize=True, transform=transform)
                    for n, w in layers.items())
    if tv:
        objective = objective + tv_term(bundle, tv)
    spec = _params.pixel(size=hw, std=0.1)
    opt, regs = lbfgs_or_adam(optimizer, spec)
    res = optimize(bundle, objective, param=spec, regularizers=regs, steps=steps, optimizer=opt, seed=seed,
                   callbacks=callbacks, snapshot_every=snapshot_every, flexible_size=True)
    res.extra.update(recipe="synthesize_texture", layers=layers, transform=transform, size=hw,
                     source_size=tuple(t.shape[:2]))
    return res
