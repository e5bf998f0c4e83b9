"""Exact receptive fields, computed by walking the Keras graph.

Every tensor of the model gets, per spatial axis, four numbers:

* ``n``      its length along the axis (needed for TensorFlow's ``'same'`` padding,
             whose left pad depends on the input length),
* ``size``   how many input pixels one of its units sees,
* ``stride`` how far (in input pixels) neighbouring units' fields are apart,
* ``offset`` the input coordinate of the first pixel seen by unit 0 (negative where
             the field starts in the padding).

Unit ``i`` of a tensor then sees input pixels ``[offset + i * stride, offset + i * stride + size)``.

A layer with kernel ``k``, stride ``s``, dilation ``d`` and left pad ``p`` maps
``(size, stride, offset)`` to ``(size + (d (k - 1)) * stride, stride * s, offset - p * stride)``.
Convolutions (``Conv2D``, ``DepthwiseConv2D``, ``SeparableConv2D``), pooling and
``ZeroPadding2D`` / ``Cropping2D`` are handled exactly; layers that keep the spatial size
(batch norm, activations, dropout, ...) are the identity; merges (``Add``,
``Concatenate``, ``Multiply`` ...) take the union of their inputs' fields, i.e. the
largest. A merge input that is broadcast over space (a squeeze-and-excitation gate, shape
``[1, 1, C]``) is global context and does not widen the field. Nested models are walked.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import keras
import numpy as np

from ..keras_internals import graph_of, has_graph, nodes_in_order
from ..models import output_shape
from ..models.tokens import layer_grid
from ..utils import ModelError


@dataclass(frozen=True)
class ReceptiveField:
    """Receptive field of one layer's units, per axis ``(y, x)``: unit ``(i, j)`` sees
    input rows ``offset[0] + i * stride[0]`` .. ``+ size[0] - 1`` (and likewise columns).
    ``output_shape`` is the layer's spatial size for the model's input size; ``extent``
    the input rows ``[lo, hi)`` and columns any unit of the layer can see (pixels that
    'valid' windows drop at the far edge, and the image border, bound it)."""
    size: tuple
    stride: tuple
    offset: tuple
    output_shape: tuple = (None, None)
    extent: tuple = ((None, None), (None, None))

    def __iter__(self):  # (size, stride, offset) = receptive_field(...)
        return iter((self.size, self.stride, self.offset))

    def box(self, y: int, x: int, clip: bool = False) -> tuple[int, int, int, int]:
        """Input box ``(top, left, bottom, right)`` (bottom/right exclusive) of unit
        ``(y, x)``; it may extend outside the image. ``clip=True``: only the pixels the
        unit really sees (the box cut to :attr:`extent`), i.e. the bounding box of the
        input pixels that can change the unit."""
        top = self.offset[0] + y * self.stride[0]
        left = self.offset[1] + x * self.stride[1]
        box = (top, left, top + self.size[0], left + self.size[1])
        if not clip:
            return box
        (y0, y1), (x0, x1) = self.extent
        return max(box[0], y0), max(box[1], x0), min(box[2], y1), min(box[3], x1)


@dataclass(frozen=True)
class _Axis:
    n: int
    size: int
    stride: int
    offset: int
    lo: int = 0    # the input pixels any real (not padding) unit sees: [lo, hi)
    hi: int = 0

    def clip(self) -> "_Axis":
        """Intersect the extent with the span of this tensor's units."""
        return replace(self, lo=max(self.lo, self.offset),
                       hi=min(self.hi, self.offset + (self.n - 1) * self.stride + self.size))


@dataclass(frozen=True)
class _Fail:
    """A field that cannot be followed (e.g. after upsampling); raised when asked for."""
    message: str


def _pair(v):
    if isinstance(v, int):
        return (v, v)
    return tuple(int(a) for a in v)


def _window(ax: _Axis, k: int, s: int, d: int, padding: str) -> _Axis:
    ke = d * (k - 1) + 1
    if padding == "valid":
        pad, n_out = 0, (ax.n - ke) // s + 1
    elif padding == "same":
        n_out = -(-ax.n // s)
        pad = max((n_out - 1) * s + ke - ax.n, 0) // 2
    else:
        raise ModelError(f"padding {padding!r} is not supported for receptive fields")
    if n_out < 1:
        raise ModelError(f"window of {ke} does not fit an input of length {ax.n}")
    return _Axis(n_out, ax.size + (ke - 1) * ax.stride, ax.stride * s, ax.offset - pad * ax.stride,
                 ax.lo, ax.hi).clip()


def _union(axes: list[_Axis], n: int) -> _Axis:
    start = min(a.offset for a in axes)
    end = max(a.offset + a.size for a in axes)
    return _Axis(n, end - start, max(a.stride for a in axes), start, min(a.lo for a in axes),
                 max(a.hi for a in axes))


def _spatial(t):
    shape = tuple(getattr(t, "shape", ()) or ())
    return shape[1:3] if len(shape) == 4 else None


def _layer_rf(layer, ins: list, in_tensors, out_tensor):
    """Field of ``layer``'s output from its inputs' fields (a list of (ay, ax) or None)."""
    L = keras.layers
    name = f"{layer.name!r} ({type(layer).__name__})"
    if getattr(layer, "data_format", "channels_last") == "channels_first":
        raise ModelError(f"layer {name} uses channels_first; receptive fields need channels_last")
    fails = [rf for rf in ins if isinstance(rf, _Fail)]
    if fails:
        return fails[0]
    spatial_ins = [(rf, t) for rf, t in zip(ins, in_tensors) if rf is not None]
    if not spatial_ins:
        return None
    if isinstance(layer, (L.Conv2D, L.DepthwiseConv2D, L.SeparableConv2D, L.MaxPooling2D, L.AveragePooling2D)):
        if isinstance(layer, (L.MaxPooling2D, L.AveragePooling2D)):
            k, s, d = _pair(layer.pool_size), _pair(layer.strides), (1, 1)
        else:
            k, s, d = _pair(layer.kernel_size), _pair(layer.strides), _pair(layer.dilation_rate)
        rf = spatial_ins[0][0]
        return tuple(_window(rf[a], k[a], s[a], d[a], layer.padding.lower()) for a in range(2))
    if isinstance(layer, (L.GlobalAveragePooling2D, L.GlobalMaxPooling2D)):
        return None  # global: every unit sees the whole image
    if isinstance(layer, (L.Conv2DTranspose, L.UpSampling2D)):
        raise ModelError(f"receptive fields through the upsampling layer {name} are not supported")
    if isinstance(layer, L.ZeroPadding2D):
        (t, b), (lft, r) = layer.padding
        rf = spatial_ins[0][0]
        # padding units are not real: the extent stays
        return (replace(rf[0], n=rf[0].n + t + b, offset=rf[0].offset - t * rf[0].stride),
                replace(rf[1], n=rf[1].n + lft + r, offset=rf[1].offset - lft * rf[1].stride))
    if isinstance(layer, L.Cropping2D):
        (t, b), (lft, r) = layer.cropping
        rf = spatial_ins[0][0]
        return (replace(rf[0], n=rf[0].n - t - b, offset=rf[0].offset + t * rf[0].stride).clip(),
                replace(rf[1], n=rf[1].n - lft - r, offset=rf[1].offset + lft * rf[1].stride).clip())
    out_sp = _spatial(out_tensor)
    if out_sp is None:
        return None  # flattened / globally pooled: no longer spatial
    # Identity-like and merge layers: the output keeps its inputs' spatial size.
    full = [rf for rf, _ in spatial_ins if (rf[0].n, rf[1].n) != (1, 1) or len(spatial_ins) == 1]
    full = full or [spatial_ins[0][0]]
    ns = {(rf[0].n, rf[1].n) for rf in full}
    known = tuple(v for v in out_sp)
    if len(ns) != 1 or (None not in known and known != next(iter(ns))):
        raise ModelError(f"cannot follow the receptive field through layer {name}: it changes the "
                         f"spatial size ({sorted(ns)} -> {known})")
    n = next(iter(ns))
    return (_union([rf[0] for rf in full], n[0]), _union([rf[1] for rf in full], n[1]))


def _graph(model):
    return graph_of(model)


def _walk(model, input_rfs: list, out: dict):
    """Propagate fields through ``model`` (its inputs get ``input_rfs``); records every
    layer's output field in ``out[id(layer)]`` and returns the model outputs' fields."""
    g = _graph(model)
    if not has_graph(g):
        raise ModelError(f"cannot walk the graph of model {model.name!r} ({type(model).__name__}); "
                         "receptive fields need a Functional or Sequential model")
    rfs = {id(t): rf for t, rf in zip(g.inputs, input_rfs)}
    for node in nodes_in_order(g):
        layer = node.operation
        in_tensors = list(node.input_tensors)
        outs = list(node.output_tensors)
        if not in_tensors:  # InputLayer
            continue
        ins = [rfs.get(id(t)) for t in in_tensors]
        if has_graph(graph_of(layer)):  # a nested Functional or Sequential model
            results = _walk(layer, ins, out)
        else:
            try:
                results = [_layer_rf(layer, ins, in_tensors, outs[0])] * len(outs)
            except ModelError as exc:
                results = [_Fail(str(exc))] * len(outs)
        for t, rf in zip(outs, results):
            rfs[id(t)] = rf
        if id(layer) not in out:
            out[id(layer)] = results[0]
    return [rfs.get(id(t)) for t in g.outputs]


def receptive_fields(bundle) -> dict:
    """``{id(layer): ((ay, ax) or None)}`` for every layer of the model, cached."""
    def build():
        h, w = bundle.input_size
        start = (_Axis(int(h), 1, 1, 0, 0, int(h)), _Axis(int(w), 1, 1, 0, 0, int(w)))
        out = {}
        _walk(bundle.model, [start], out)
        return out
    return bundle.programs.get("inspect.receptive_fields", build=build)


def receptive_field(bundle, layer) -> ReceptiveField:
    """The exact receptive field of ``layer``'s units: ``(size, stride, offset)``, each a
    ``(y, x)`` pair, for the model's input size. Raises for layers that are not spatial
    (listing those that are) and for layers whose field cannot be followed (upsampling)."""
    lay = bundle.spatial_layer(layer) if isinstance(layer, str) else layer
    rf = receptive_fields(bundle).get(id(lay))
    if isinstance(rf, _Fail):
        raise ModelError(f"no receptive field for layer {lay.name!r}: {rf.message}")
    if rf is None:
        raise ModelError(f"layer {getattr(lay, 'name', lay)!r} has no spatial receptive field; "
                         + bundle.spatial_hint(getattr(lay, "name", str(lay))))
    ay, ax = rf
    return ReceptiveField((ay.size, ax.size), (ay.stride, ax.stride), (ay.offset, ax.offset), (ay.n, ax.n),
                          ((ay.lo, ay.hi), (ax.lo, ax.hi)))


def patch_field(bundle, layer: str) -> ReceptiveField:
    """What a maximally activating patch of ``layer`` shows: its units' exact receptive
    field, or, for a vision transformer's token layer ``[N, T, D]``, each token's own patch
    of the grid (:mod:`tfviz.models.tokens`). Attention lets every token see the whole
    image, so a token's exact field is the image; its patch is where it sits. The patch
    side is the input side over the grid side (rounded), at that stride, from the corner."""
    grid = layer_grid(output_shape(bundle.layer(layer)), bundle.input_size)
    if grid is None:
        return receptive_field(bundle, layer)
    _, gh, gw = grid
    h, w = (int(v) for v in bundle.input_size)
    ph, pw = max(1, round(h / gh)), max(1, round(w / gw))
    return ReceptiveField((ph, pw), (ph, pw), (0, 0), (gh, gw), ((0, h), (0, w)))


def crop_box(image, box, fill) -> np.ndarray:
    """Crop ``box = (top, left, bottom, right)`` from ``image [H, W, C]``, filling the part
    outside the image with ``fill`` (a value or a per-channel vector)."""
    top, left, bottom, right = box
    h, w = image.shape[:2]
    out = np.empty((bottom - top, right - left) + image.shape[2:], image.dtype)
    out[...] = fill
    y0, y1 = max(top, 0), min(bottom, h)
    x0, x1 = max(left, 0), min(right, w)
    if y1 > y0 and x1 > x0:
        out[y0 - top:y1 - top, x0 - left:x1 - left] = image[y0:y1, x0:x1]
    return out


__all__ = ["ReceptiveField", "receptive_field", "receptive_fields", "crop_box"]
