"""What an attribution explains: a class score (a logit) or one unit of a layer.

A ``target`` argument is any of

* ``None`` -- the model's top-1 class for each image,
* a class index (``281``) or a class name (``"tabby cat"``, case-insensitive),
* a unit ``"layer:channel"`` or ``"layer:channel:y:x"`` (a string), or a tuple
  ``(layer, channel)`` / ``(layer, channel, y, x)``: "which pixels drive this neuron".
  Without ``y, x`` the unit's score is the channel's mean over all positions,
* a list (or 1-D array) with one of the above per image.

:func:`resolve_targets` turns it into one :class:`Target` per image.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field, replace

import numpy as np
import tensorflow as tf

from ..errors import UnknownLayerError
from .core import forward_scores
from .errors import TargetError, UnitChannelError


@dataclass(frozen=True)
class Target:
    """One image's target. ``kind`` is ``"class"`` (``index`` is the class) or
    ``"unit"`` (``index`` is the channel of ``layer``; ``y, x`` a position or None).

    On a map (a segmentation output, a unit's layer) the score is the mean over all
    positions, one position ``y, x``, or ``region``: ``"box_sum"`` / ``"box_mean"`` over
    ``box`` ``(y0, x0, y1, x1)`` (at the map's resolution, end exclusive), or
    ``"predicted_sum"`` / ``"predicted_mean"`` over the pixels predicted as the class.
    ``negate``: the score's negative ("what lowers it")."""
    kind: str
    index: int
    layer: str | None = None
    y: int | None = None
    x: int | None = None
    label: str = ""
    region: str = "mean"
    box: tuple | None = None
    negate: bool = False

    @property
    def region_mode(self) -> str:
        return "point" if self.y is not None else self.region

    @property
    def region_box(self) -> tuple:
        if self.y is not None:
            return (self.y, self.x, -1, -1)
        return tuple(self.box) if self.box is not None else (-1, -1, -1, -1)

    @property
    def head(self):
        """Which model output the score comes from: ``None`` (logits), a layer name, or a
        :class:`ScoreFunction` of the logits."""
        return self.layer if self.kind in ("unit", "function") else None

    def __str__(self):
        return self.label or (f"class {self.index}" if self.kind == "class" else f"{self.layer}:{self.index}")


_UNIT_RE = re.compile(r"^(?P<layer>.+?):(?P<ch>-?\d+)(?::(?P<y>-?\d+):(?P<x>-?\d+))?$")


def _is_int(v) -> bool:
    return isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_))


def _layer_shape(bundle, name: str):
    """Output shape of ``name`` (nested names too); raises UnknownLayerError listing names."""
    layer = bundle.layer(name)
    try:
        shape = layer.output.shape
    except (AttributeError, ValueError):
        shape = None
    if shape is None or isinstance(layer.output, (list, tuple)):
        raise TargetError(f"layer {name!r} has no single output tensor; pick another layer")
    return tuple(shape)


def unit_target(bundle, layer: str, channel, y=None, x=None) -> Target:
    """A validated unit target (layer found, channel and position in range)."""
    shape = _layer_shape(bundle, layer)
    if not _is_int(channel):
        raise TargetError(f"unit channel must be an integer, got {channel!r}")
    channels = shape[-1]
    if channels is not None and not 0 <= int(channel) < channels:
        raise UnitChannelError(
            f"channel {int(channel)} out of range for layer {layer!r}: it has {channels} channels (0..{channels - 1})")
    if (y is None) != (x is None):
        raise TargetError("give both y and x for a unit position, or neither")
    if y is not None:
        if len(shape) != 4:
            raise TargetError(f"layer {layer!r} has output shape {shape}; a position (y, x) needs a spatial "
                              f"[N, H, W, C] layer")
        h, w = shape[1], shape[2]
        if not (_is_int(y) and _is_int(x)):
            raise TargetError(f"unit position must be integers, got ({y!r}, {x!r})")
        if (h is not None and not 0 <= int(y) < h) or (w is not None and not 0 <= int(x) < w):
            raise UnitChannelError(f"position ({int(y)}, {int(x)}) out of range for layer {layer!r}: its output is "
                                   f"{h}x{w} (y 0..{(h or 1) - 1}, x 0..{(w or 1) - 1})")
        y, x = int(y), int(x)
    label = f"{layer}:{int(channel)}" + (f" at ({y}, {x})" if y is not None else "")
    return Target("unit", int(channel), layer, y, x, label)


@dataclass(frozen=True, eq=False)
class ScoreFunction:
    """A target given as a function: ``fn(output) -> one score per image``, where ``output``
    is the explained output's logits (its final softmax or sigmoid bypassed) as a TensorFlow
    tensor; traced with the rest of the method. Equal functions share traced programs."""
    fn: object
    name: str

    def __hash__(self):
        return hash(self.fn)

    def __eq__(self, other):
        return isinstance(other, ScoreFunction) and other.fn is self.fn

    def __str__(self):
        return self.name


@dataclass(frozen=True)
class Region:
    """A class over a region of a segmentation map: ``Region(cls)`` -- the pixels predicted
    as ``cls`` (in the image being scored: for occlusion, in each occluded copy);
    ``box=(x0, y0, x1, y1)`` -- a box in input pixels instead; ``mask=`` -- a mask
    ``[H, W]`` (input pixels, weights in 0..1) for every image, or ``[N, H, W]`` one per
    image (pytorch-grad-cam's semantic-segmentation target, with the mask of the original
    prediction); ``reduce="mean"`` -- the (mask-weighted) mean of the class's logits there
    instead of their sum. ``cls=None``: each image's top-1 class."""
    cls: object = None
    box: tuple | None = None
    reduce: str = "sum"
    mask: object = field(default=None, compare=False)


@dataclass(frozen=True)
class Negate:
    """The negated score of ``target`` (default: the top-1 class, or a regression's value):
    the attribution shows what lowers it."""
    target: object = None


def _map_shape(bundle):
    """``(H, W)`` of the explained output when it is a map (segmentation), else None."""
    shape = bundle.logits.outputs[0].shape
    return (shape[1], shape[2]) if len(shape) == 4 else None


def class_target(bundle, value, region: str | None = None, box=None) -> Target:
    idx = bundle.class_index(value)  # UnknownClassError (with suggestions) on bad input
    label = bundle.class_name(idx) if not bundle.is_regression else bundle.output_name
    if _map_shape(bundle) is None:
        return Target("class", idx, label=label)
    return Target("class", idx, label=label, region=region or "predicted_sum", box=box)


def region_target(bundle, spec: Region) -> Target:
    """A :class:`Region` -> a class target over a box or the predicted pixels of a map."""
    hw = _map_shape(bundle)
    if hw is None:
        raise TargetError(f"a region target needs a map output [N, H, W, C]; the output {bundle.output_name!r} "
                          f"of {bundle.name!r} is {tuple(bundle.logits.outputs[0].shape)}")
    if spec.reduce not in ("sum", "mean"):
        raise TargetError(f"a region's reduce is 'sum' or 'mean', got {spec.reduce!r}")
    if spec.mask is not None:
        return _mask_target(bundle, spec, hw)
    if spec.box is None:
        return class_target(bundle, spec.cls, f"predicted_{spec.reduce}")
    return class_target(bundle, spec.cls, f"box_{spec.reduce}", _box_on_map(bundle, spec.box, hw))


def _mask_target(bundle, spec: Region, hw) -> Target:
    """A class over a mask: a function target of the logits, ``sum(logits[..., c] * m)``
    (or the weighted mean), ``m`` the mask resized to the map."""
    mask = np.asarray(spec.mask, np.float32)
    if mask.ndim != 2 or mask.shape != tuple(bundle.input_size):
        raise TargetError(f"a region's mask is [H, W] = {tuple(bundle.input_size)} (the input size) or one per "
                          f"image [N, H, W]; got shape {mask.shape}")
    idx = bundle.class_index(spec.cls)
    m = tf.constant(tf.image.resize(mask[None, ..., None], hw, method="area")[0, ..., 0])
    total = float(np.sum(m))
    if total <= 0:
        raise TargetError("a region's mask is empty (all zeros)")
    norm = total if spec.reduce == "mean" else 1.0

    def over_mask(logits):
        return tf.reduce_sum(logits[..., idx] * m, axis=[1, 2]) / norm
    label = f"{bundle.class_name(idx)} over a mask"
    return Target("function", 0, ScoreFunction(over_mask, f"mask_{idx}"), label=label)


def _box_on_map(bundle, box, hw) -> tuple:
    """``(x0, y0, x1, y1)`` in input pixels -> ``(y0, x0, y1, x1)`` at the map's resolution."""
    try:
        x0, y0, x1, y1 = (float(v) for v in box)
    except (TypeError, ValueError):
        raise TargetError(f"a box is (x0, y0, x1, y1) in pixels, got {box!r}") from None
    h, w = bundle.input_size
    if not (0 <= x0 < x1 <= w and 0 <= y0 < y1 <= h):
        raise TargetError(f"box {box!r} is not inside the {w}x{h} input with x0 < x1 and y0 < y1")
    mh, mw = hw
    return (int(y0 * mh // h), int(x0 * mw // w), max(int(-(-y1 * mh // h)), 1), max(int(-(-x1 * mw // w)), 1))


def parse_target(bundle, value) -> Target:
    """One target (not a per-image list) -> :class:`Target`."""
    if isinstance(value, Target):
        return value
    if isinstance(value, Region):
        return region_target(bundle, value)
    if callable(value) and not isinstance(value, type):
        name = getattr(value, "__name__", type(value).__name__)
        safe = re.sub(r"[^A-Za-z0-9_]", "", name) or "score"  # a Keras layer name ("<lambda>": "lambda")
        return Target("function", 0, ScoreFunction(value, safe), label=f"{name}(output)")
    if _is_int(value):
        return class_target(bundle, int(value))
    if isinstance(value, tuple):
        if len(value) in (2, 4) and isinstance(value[0], str):
            return unit_target(bundle, value[0], *value[1:])
        raise TargetError(f"a unit target is (layer, channel) or (layer, channel, y, x); got {value!r}")
    if isinstance(value, str):
        s = value.strip()
        names = [c.lower() for c in (bundle.class_names or [])]
        if s.lower() in names or s.lstrip("-").isdigit():
            return class_target(bundle, s)
        m = _UNIT_RE.match(s)
        if m and _layer_exists(bundle, m.group("layer")):
            y = m.group("y")
            return unit_target(bundle, m.group("layer"), int(m.group("ch")),
                               None if y is None else int(y), None if y is None else int(m.group("x")))
        if m:  # looks like a unit but the layer is unknown: list the layers
            bundle.layer(m.group("layer"))
        return class_target(bundle, s)
    raise TargetError(f"cannot use {value!r} as a target: give a class index, a class name, "
                      f"'layer:channel' or (layer, channel[, y, x])")


def _layer_exists(bundle, name) -> bool:
    try:
        bundle.layer(name)
        return True
    except UnknownLayerError:
        return False


def top_classes(bundle, x) -> np.ndarray:
    """Each image's top-1 class: the largest logit (a multi-label head's too: the logit
    before its sigmoid), or, on a segmentation map, the class predicted on most pixels."""
    logits = forward_scores(bundle, x)
    if logits.ndim == 4:
        votes = np.argmax(logits, axis=-1).reshape(len(logits), -1)
        return np.asarray([np.bincount(v, minlength=logits.shape[-1]).argmax() for v in votes])
    return np.argmax(logits, axis=1)


def _is_top(target) -> bool:
    return target is None or (isinstance(target, str) and target.strip().lower() in ("top", "top1", "top-1"))


def resolve_targets(bundle, target, n: int, x=None) -> list[Target]:
    """``target`` -> one :class:`Target` per image. ``None`` needs the model inputs ``x``
    (float32, model-input space) to find each image's top-1 class. A :class:`Negate`
    negates what it holds (for each image)."""
    if isinstance(target, Negate):
        return [replace(t, negate=not t.negate, label=f"-({t.label})") for t in
                resolve_targets(bundle, target.target, n, x)]
    if isinstance(target, Region) and target.mask is not None and np.ndim(target.mask) == 3:
        masks = np.asarray(target.mask)
        if len(masks) != n:
            raise TargetError(f"{len(masks)} masks given for {n} images; give one mask, or one per image")
        return [resolve_targets(bundle, replace(target, mask=masks[i]), 1, None if x is None else x[i:i + 1])[0]
                for i in range(n)]
    if isinstance(target, Region) and _is_top(target.cls):
        if x is None:
            raise TargetError("a region of the top-1 class needs the images")
        return [region_target(bundle, replace(target, cls=int(i))) for i in top_classes(bundle, x)]
    if _is_top(target):
        if x is None:
            raise TargetError("target=None (top-1 class) needs the images")
        return [class_target(bundle, int(i)) for i in top_classes(bundle, x)]
    if isinstance(target, np.ndarray):
        target = target.tolist() if target.ndim else target.item()
    if isinstance(target, list):
        if len(target) == 1 and n != 1:
            target = target * n
        if len(target) != n:
            raise TargetError(f"{len(target)} targets given for {n} images; give one target, or one per image")
        return [parse_target(bundle, t) for t in target]
    t = parse_target(bundle, target)
    return [t] * n
