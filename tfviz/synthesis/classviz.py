"""Class and neuron visualization (Simonyan 2014; Yosinski 2015; Olah 2017) and
multifaceted visualization (Nguyen 2016): recipes over :func:`optimize`."""
from __future__ import annotations

from typing import Sequence

import numpy as np
from sklearn.cluster import KMeans

from ..default_layers import feature_layer
from ..utils import ChannelError
from . import objectives as obj
from . import params as _params
from . import regularizers as _reg
from . import transforms as _tf
from .optimize import Result, SynthesisError, forward_fn, optimize

# Defaults tuned on efficientnet_lite0 at 224 px (probability 1.00 for flamingo, goldfish
# and pizza after 32-64 steps with either parameterization; the rest of the 256 steps
# make the picture). decay_power 1.5 (Lucid: 1.0) favours low frequencies, which this
# depthwise ReLU6 network otherwise fills with fine texture. lr is Adam's learning rate:
# on pixels in grey levels per step whatever the preprocessing (17: what 0.3 model-input
# units were on lite0, whose torch preprocessing spans 57-58 grey levels per unit); on
# fourier in units of the spectrum, which the preprocessing does not scale.
DEFAULTS = {
    "fourier": dict(steps=256, lr=0.05, jitter=8),
    "pixel": dict(steps=256, lr=17.0, jitter=16),
}
MULTIFACETED_LR = 6.0   # grey levels per step (0.1 model-input units on lite0 before)
FOURIER_DECAY_POWER = 1.5


def default_transforms(param: str = "fourier") -> list:
    """Transformation robustness: Lucid's standard set (pad 12, roll, scale 0.9..1.1,
    rotate -10..10 degrees, roll 4; see :func:`tfviz.synthesis.transforms.standard`), with
    a first roll of up to 8 pixels for ``fourier`` and 16 for ``pixel``."""
    return _tf.standard(DEFAULTS.get(param, DEFAULTS["fourier"])["jitter"])


def default_regularizers() -> list:
    """Yosinski's regularizers for the pixel parameterization: L2 decay 0.001, Gaussian
    blur (sigma 1 pixel) every 2 steps, clipping to the valid range. The percentile clips
    (``regularizers.ClipNorm``, ``ClipContribution``) are available but off: on this
    network they wash the image out to gray without helping the class."""
    return _reg.yosinski(decay_rate=0.001, blur_sigma=1.0, blur_every=2)


def _spec(param, batch, size):
    """A parameterization spec from a name, with the recipe's defaults."""
    if not isinstance(param, str):
        return param
    if param == "fourier":
        return _params.fourier(size=size, batch=batch, decay_power=FOURIER_DECAY_POWER)
    spec = _params.get(param)
    spec.batch, spec.size = batch, size
    return spec


def _param_name(param) -> str:
    if isinstance(param, str):
        return param
    return type(param).__name__


def class_visualization(bundle, target, param="fourier", steps: int | None = None, lr: float | None = None,
                        transforms=None, regularizers=None, l2_weight: float = 0.0, batch: int = 1,
                        size=None, seed: int = 0, snapshot_every: int | None = None, callbacks=(),
                        optimizer=None) -> Result:
    """An image the model classifies as ``target`` (index or class name): maximize the
    class logit (minus ``l2_weight`` times the image's L2 norm) over a ``"fourier"`` or
    ``"pixel"`` image with random transforms; the pixel parameterization also gets
    Yosinski's regularizers. ``lr``: Adam's learning rate -- on ``pixel`` in grey levels
    per step, whatever the model's preprocessing (Adam's first step moves every pixel by
    ``lr`` grey levels; default 17), on ``fourier`` in units of the spectrum (default
    0.05). ``transforms`` / ``regularizers`` replace the defaults (``[]`` for none).
    Returns a :class:`Result` whose ``extra`` has ``target`` (index), ``class_name`` and
    ``probability`` of the final image. On a segmentation model the objective is the
    class's mean logit over the pixels (what makes the model paint the image as that
    class), and the probability its mean over the pixels."""
    t = bundle.class_index(target)
    name = _param_name(param)
    d = DEFAULTS.get(name, DEFAULTS["fourier"])
    spec = _spec(param, batch, size)
    objective = obj.class_logit(t)
    if l2_weight:
        objective = objective + obj.l2(l2_weight)
    if regularizers is None:
        regularizers = default_regularizers() if name == "pixel" else []
    if transforms is None:
        transforms = default_transforms(name)
    res = optimize(bundle, objective, param=spec, transforms=transforms, regularizers=regularizers,
                   steps=d["steps"] if steps is None else steps, optimizer=optimizer or (lr or d["lr"]), seed=seed,
                   snapshot_every=snapshot_every, callbacks=callbacks)
    probs = bundle.class_probabilities(res.images)
    res.extra.update(recipe="class_visualization", target=t, class_name=bundle.class_name(t),
                     probability=float(probs[0, t]), probabilities=probs[:, t].tolist())
    return res


def _channel_list(bundle, layer, channels) -> list[int]:
    shape = tuple(bundle.layer(layer).output.shape)
    n = shape[-1]
    if channels is None:
        channels = range(min(n, 16))
    elif isinstance(channels, (int, np.integer)):
        channels = [channels]
    chans = [int(c) for c in channels]
    if not chans:
        raise SynthesisError("no channels given")
    bad = [c for c in chans if not 0 <= c < n]
    if bad:
        raise ChannelError(f"channels {bad} out of range: layer {layer!r} has {n} channels (0..{n - 1})")
    return chans


def neuron_visualization(bundle, layer: str, channels: Sequence[int] | int | None = None, param="fourier",
                         steps: int = 128, lr: float | None = None, size=None, transforms=None, regularizers=None,
                         seed: int = 0, snapshot_every: int | None = None, callbacks=(), cols: int | None = None,
                         ) -> Result:
    """One image per channel of ``layer`` ("what each filter wants"), optimized together
    as one batch: image ``i`` maximizes the mean activation of ``channels[i]`` (default:
    the first 16). ``lr`` as in :func:`class_visualization` (grey levels per step on
    ``pixel``). ``Result.images`` holds one image per channel, ``extra["grid"]`` the
    tiled grid and ``extra["channels"]`` the channel list."""
    chans = _channel_list(bundle, layer, channels)
    name = _param_name(param)
    spec = _spec(param, len(chans), size)
    if regularizers is None:
        regularizers = default_regularizers() if name == "pixel" else []
    if transforms is None:
        transforms = default_transforms(name)
    res = optimize(bundle, obj.channel(layer, chans), param=spec, transforms=transforms,
                   regularizers=regularizers, steps=steps,
                   optimizer=lr or DEFAULTS.get(name, DEFAULTS["fourier"])["lr"],
                   seed=seed,
                   snapshot_every=snapshot_every, callbacks=callbacks)
    res.extra.update(recipe="neuron_visualization", layer=layer, channels=chans, grid=res.grid(cols))
    return res


def multifaceted(bundle, target, images, k: int = 4, layer: str | None = None, steps: int = 128,
                 lr: float = MULTIFACETED_LR, transforms=None, regularizers=None, seed: int = 0,
                 snapshot_every: int | None = None, callbacks=()) -> Result:
    """Nguyen et al. 2016: cluster the ``images`` of class ``target`` by their features
    at ``layer`` (default: the layer feeding the classifier) with k-means, start a pixel
    visualization of ``target`` from each cluster's mean image, one facet per cluster
    (Adam, ``lr`` grey levels per step).
    ``extra`` holds ``labels`` (cluster of each image), ``mean_images`` (uint8 starts),
    ``counts`` and the facet ``probability`` list."""
    t = bundle.class_index(target)
    imgs = bundle.load_images(images)
    if not isinstance(k, (int, np.integer)) or k < 1:
        raise SynthesisError(f"k must be a positive integer, got {k!r}")
    if len(imgs) < k:
        raise SynthesisError(f"k={k} facets need at least {k} images; got {len(imgs)}")
    layer = layer or feature_layer(bundle)
    run = forward_fn(bundle, [layer], logits=False)
    x = bundle.preprocess(imgs)
    feats = np.concatenate([np.asarray(run(x[i:i + 64])[1][layer]) for i in range(0, len(x), 64)])
    feats = feats.reshape(len(feats), -1) if feats.ndim == 2 else feats.mean(axis=(1, 2))
    km = KMeans(n_clusters=int(k), n_init=10, random_state=seed).fit(feats)
    labels = km.labels_
    means = np.stack([x[labels == c].mean(axis=0) for c in range(k)]).astype(np.float32)
    spec = _params.pixel(init=means, init_is_model_input=True, batch=int(k))
    res = optimize(bundle, obj.class_logit(t), param=spec,
                   transforms=default_transforms("pixel") if transforms is None else transforms,
                   regularizers=default_regularizers() if regularizers is None else regularizers,
                   steps=steps, optimizer=lr, seed=seed, snapshot_every=snapshot_every, callbacks=callbacks)
    probs = bundle.predict(res.images)
    res.extra.update(recipe="multifaceted", target=t, class_name=bundle.class_name(t), layer=layer,
                     labels=labels, counts=np.bincount(labels, minlength=k).tolist(),
                     mean_images=bundle.deprocess(means), probability=probs[:, t].tolist())
    return res
