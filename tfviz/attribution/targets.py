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
from dataclasses import dataclass

import numpy as np

from ..errors import UnknownLayerError
from .core import forward_scores
from .errors import TargetError, UnitChannelError


@dataclass(frozen=True)
class Target:
    """One image's target. ``kind`` is ``"class"`` (``index`` is the class) or
    ``"unit"`` (``index`` is the channel of ``layer``; ``y, x`` a position or None)."""
    kind: str
    index: int
    layer: str | None = None
    y: int | None = None
    x: int | None = None
    label: str = ""

    @property
    def head(self):
        """Which model output the score comes from: ``None`` (logits) or a layer name."""
        return self.layer if self.kind == "unit" else None

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


def class_target(bundle, value) -> Target:
    idx = bundle.class_index(value)  # UnknownClassError (with suggestions) on bad input
    return Target("class", idx, label=bundle.class_name(idx))


def parse_target(bundle, value) -> Target:
    """One target (not a per-image list) -> :class:`Target`."""
    if isinstance(value, Target):
        return value
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


def resolve_targets(bundle, target, n: int, x=None) -> list[Target]:
    """``target`` -> one :class:`Target` per image. ``None`` needs the model inputs ``x``
    (float32, model-input space) to find each image's top-1 class."""
    if target is None or (isinstance(target, str) and target.strip().lower() in ("top", "top1", "top-1")):
        if x is None:
            raise TargetError("target=None (top-1 class) needs the images")
        logits = forward_scores(bundle, x)
        return [class_target(bundle, int(i)) for i in np.argmax(logits, axis=1)]
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

