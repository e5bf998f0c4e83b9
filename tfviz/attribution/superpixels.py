"""Superpixels: an image split into a few dozen features for the coalition methods
(:mod:`.coalitions`: feature ablation, LIME, KernelSHAP), what a feature turns into when it
is left out (the baseline), and the picture LIME's paper draws.

``segments``:

* ``"slic"`` (default): SLIC (Achanta et al. 2012, scikit-image) asked for
  :data:`SLIC_SEGMENTS` segments with compactness :data:`SLIC_COMPACTNESS` and a
  Gaussian pre-smoothing of 1 pixel; ``"slic:N"`` asks for ``N``. Connected segments
  are enforced, so the count lands near the asked one, not on it (44-48 of 50 on the
  bundled photos at 224 px; compactness 10, scikit-image's default, gives 31-42 and
  ragged segments).
* ``"quickshift"``: quickshift (Vedaldi & Soatto 2008) with LIME's settings
  (``kernel_size=4, max_dist=200, ratio=0.2``); about 15x slower than SLIC.
* ``"grid"``: a regular grid of 8 x 8 cells; ``"grid:K"`` (K x K) or ``"grid:RxC"``.
* an integer mask ``[H, W]`` (one for every image) or ``[N, H, W]`` at the model's input
  size, or a PNG file of one (grey levels or colours, each value one feature). Labels may
  be any integers; they are renumbered ``0..M-1`` in increasing order.

Segmentation runs on the uint8 RGB image at the model's input size (the image the model
sees). Labels are ``int32 [N, H, W]``; an image may have its own number of features.
"""
from __future__ import annotations

import os
import re

import numpy as np
from PIL import Image
from skimage.segmentation import find_boundaries, quickshift, slic

from ..images import resize
from .core import substitute
from .errors import AttributionError

SLIC_SEGMENTS = 50
SLIC_COMPACTNESS = 20.0
GRID_CELLS = 8
#: LIME's quickshift settings (lime_image.LimeImageExplainer.explain_instance)
QUICKSHIFT = {"kernel_size": 4, "max_dist": 200, "ratio": 0.2}
SEGMENTERS = ("slic", "quickshift", "grid")


class Segmentation:
    """Superpixel labels ``[N, H, W]`` (int32, ``0..M_i-1`` per image) and ``counts[i] = M_i``."""

    def __init__(self, labels: np.ndarray, how: str):
        self.labels = np.ascontiguousarray(labels, dtype=np.int32)
        self.counts = np.asarray([int(lab.max()) + 1 for lab in self.labels], np.int64)
        self.how = how

    def __len__(self):
        return len(self.labels)

    def paint(self, values) -> np.ndarray:
        """Per-superpixel values (one array ``[M_i]`` per image) -> a map ``[N, H, W]``,
        each superpixel's value on its pixels."""
        return np.stack([np.asarray(v, np.float32)[lab] for v, lab in zip(values, self.labels)]).astype(np.float32)


def renumber(labels: np.ndarray) -> np.ndarray:
    """Any integer labels -> ``0..M-1`` in increasing order of the original values."""
    _, inv = np.unique(labels, return_inverse=True)
    return inv.reshape(labels.shape).astype(np.int32)


def _spec_count(text: str, name: str, default):
    """``"slic:100"`` -> 100, ``"grid:4x6"`` -> (4, 6), ``"slic"`` -> the default."""
    rest = text[len(name):]
    if not rest:
        return default
    m = re.fullmatch(r":(\d+)(?:x(\d+))?", rest)
    if not m or (name == "slic" and m.group(2)):
        form = "grid:K or grid:RxC (cells)" if name == "grid" else "slic:N (segments asked for)"
        raise AttributionError(f"segments {text!r} is not {form}")
    a = int(m.group(1))
    b = int(m.group(2)) if m.group(2) else a
    if a < 1 or b < 1:
        raise AttributionError(f"segments {text!r}: the number must be at least 1")
    return a if name == "slic" else (a, b)


def grid_labels(h: int, w: int, rows: int = GRID_CELLS, cols: int | None = None) -> np.ndarray:
    """A regular grid of ``rows x cols`` cells over ``h x w`` (row-major labels; cells
    differ by at most one pixel in size). More cells than pixels: one cell per pixel."""
    cols = rows if cols is None else cols
    rows, cols = min(rows, h), min(cols, w)
    ys = (np.arange(h) * rows) // h
    xs = (np.arange(w) * cols) // w
    return (ys[:, None] * cols + xs[None, :]).astype(np.int32)


def _mask_from_png(path: str) -> np.ndarray:
    with Image.open(path) as im:
        if im.mode in ("L", "I", "I;16", "P", "1"):
            return np.asarray(im).astype(np.int64)
        rgb = np.asarray(im.convert("RGB")).astype(np.int64)
    return (rgb[..., 0] << 16) | (rgb[..., 1] << 8) | rgb[..., 2]


def _mask(mask, n: int, h: int, w: int) -> np.ndarray:
    """A user's mask ``[H, W]`` or ``[N, H, W]`` -> labels ``[N, H, W]`` renumbered, checked."""
    arr = np.asarray(mask)
    if arr.dtype == bool:
        arr = arr.astype(np.int64)
    if arr.dtype.kind == "f":
        if not (np.all(np.isfinite(arr)) and np.all(arr == np.round(arr))):
            raise AttributionError("a segments mask holds integer labels, one per superpixel; this one has "
                                   "fractional or non-finite values")
        arr = arr.astype(np.int64)
    elif arr.dtype.kind not in "iu":
        raise AttributionError(f"a segments mask holds integer labels, one per superpixel; got dtype {arr.dtype}")
    got = "x".join(map(str, arr.shape))
    if arr.ndim == 2:
        arr = np.broadcast_to(arr, (n,) + arr.shape)
    if arr.ndim != 3 or arr.shape[1:] != (h, w) or len(arr) != n:
        raise AttributionError(f"the segments mask is {got} but the images are {n} x {h}x{w} (the model's input "
                               f"size): give [H, W] for every image or [N, H, W], at {h}x{w}")
    labels = np.stack([renumber(a) for a in arr])
    for i, lab in enumerate(labels):
        if lab.max() < 1:
            raise AttributionError(f"the segments mask of image {i} has a single label: at least two superpixels "
                                   f"are needed to compare them")
    return labels


def segment(u8: np.ndarray, segments="slic") -> Segmentation:
    """Superpixels of uint8 RGB images ``[N, H, W, 3]`` (see the module's docstring for
    ``segments``)."""
    n, h, w = u8.shape[:3]
    if isinstance(segments, (str, os.PathLike)) and not isinstance(segments, np.ndarray):
        text = os.fspath(segments)
        key = text.strip().lower()
        if key.startswith("slic"):
            k = _spec_count(key, "slic", SLIC_SEGMENTS)
            labels = [slic(im, n_segments=k, compactness=SLIC_COMPACTNESS, sigma=1.0, start_label=0,
                           channel_axis=-1) for im in u8]
            return Segmentation(np.stack([renumber(lab) for lab in labels]), f"slic:{k}")
        if key == "quickshift":
            labels = [quickshift(im, **QUICKSHIFT, rng=0) for im in u8]
            return Segmentation(np.stack([renumber(lab) for lab in labels]), "quickshift")
        if key.startswith("grid"):
            r, c = _spec_count(key, "grid", (GRID_CELLS, GRID_CELLS))
            return Segmentation(np.broadcast_to(grid_labels(h, w, r, c), (n, h, w)), f"grid:{r}x{c}")
        if os.path.isfile(text):
            try:
                arr = _mask_from_png(text)
            except OSError as exc:
                raise AttributionError(f"cannot read the segments mask {text!r}: {exc}") from None
            return Segmentation(_mask(arr, n, h, w), os.path.basename(text))
        raise AttributionError(f"unknown segments {text!r}: one of slic, slic:N, quickshift, grid, grid:K, grid:RxC, "
                               f"an integer mask [H, W] or [N, H, W], or a mask PNG file")
    if isinstance(segments, Segmentation):
        return Segmentation(_mask(segments.labels, n, h, w), segments.how)
    return Segmentation(_mask(segments, n, h, w), "mask")


# --------------------------------------------------------------------------- baselines
BASELINE_NAMES = ("mean", "image_mean", "zero", "gray", "black", "white", "blur")


def superpixel_means(x: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Each pixel replaced by its superpixel's mean colour (``[N, H, W, C]``, the space of
    ``x``)."""
    out = np.empty_like(x, dtype=np.float32)
    for i, (xi, lab) in enumerate(zip(x, labels)):
        flat = lab.ravel()
        m = int(flat.max()) + 1
        count = np.bincount(flat, minlength=m).astype(np.float64)
        means = np.stack([np.bincount(flat, weights=xi[..., c].ravel().astype(np.float64), minlength=m)
                          for c in range(x.shape[-1])], axis=1) / np.maximum(count, 1)[:, None]
        out[i] = means[lab].astype(np.float32)
    return out


def baseline_inputs(bundle, x: np.ndarray, seg: Segmentation, baseline="mean") -> np.ndarray:
    """What a left-out superpixel shows, ``[N, H, W, 3]`` in model-input space.

    ``"mean"`` (default): each superpixel's mean colour (LIME's ``hide_color=None``): a
    left-out superpixel keeps its average colour and loses its texture and edges, so the
    copies stay close to photographs. ``"image_mean"``: the image's mean colour
    everywhere. ``"blur"``: the image blurred (sigma 1/20 of its side). ``"zero"``,
    ``"gray"``, ``"black"``, ``"white"``, a grey level or RGB triple 0..255, an image
    file, or images (one for all or one per image): as
    :func:`tfviz.attribution.core.substitute`."""
    if isinstance(baseline, str) and baseline.strip().lower() == "mean":
        return superpixel_means(x, seg.labels)
    if isinstance(baseline, str) and baseline.strip().lower() == "image_mean":
        return substitute(bundle, x, "mean", what="baseline")
    if isinstance(baseline, str) and baseline.strip().lower() not in BASELINE_NAMES and not os.path.isfile(baseline):
        raise AttributionError(f"unknown baseline {baseline!r}; one of {', '.join(BASELINE_NAMES)}, a grey level "
                               f"0..255, an RGB triple or an image")
    return substitute(bundle, x, baseline, what="baseline")


# --------------------------------------------------------------------------- LIME's picture
def top_superpixels(values, k: int = 5, sign: str = "positive") -> np.ndarray:
    """The labels of the ``k`` superpixels with the largest positive values
    (``sign="positive"``) or the most negative ones (``"negative"``), strongest first;
    fewer when fewer have that sign."""
    v = np.asarray(values, np.float64)
    if sign not in ("positive", "negative"):
        raise AttributionError(f"sign must be 'positive' or 'negative', got {sign!r}")
    s = v if sign == "positive" else -v
    order = np.argsort(-s, kind="stable")
    return order[s[order] > 0][:max(0, int(k))].astype(np.int64)


def superpixel_picture(image, labels, values, k: int = 5, sign: str = "positive", grey: int = 128,
                       outline=(255, 255, 0)) -> np.ndarray:
    """LIME's explanation picture (Ribeiro et al. 2016, Fig. 4): the ``k`` superpixels that
    support the score most (``sign="positive"``) or oppose it most (``"negative"``) as they
    are, outlined, every other pixel ``grey``. ``image`` uint8 ``[H, W, 3]`` (another size
    is resized to the labels', as the model saw it), ``labels`` ``[H, W]`` and ``values``
    ``[M]`` of one image (``info["segments"][i]`` and ``info["values"][i]`` of a coalition
    method). Returns uint8 ``[H, W, 3]`` at the labels' size."""
    img = np.asarray(image)
    lab = np.asarray(labels)
    if img.ndim != 3 or img.shape[-1] != 3 or lab.ndim != 2:
        raise AttributionError(f"superpixel_picture takes one image [H, W, 3] and its labels [H, W]; got "
                               f"{img.shape} and {lab.shape}")
    if img.shape[:2] != lab.shape:
        img = resize(img.astype(np.uint8), lab.shape)
    keep = np.isin(lab, top_superpixels(values, k, sign))
    out = np.where(keep[..., None], img, np.uint8(grey)).astype(np.uint8)
    if outline is not None:
        edge = find_boundaries(np.where(keep, lab, -1), mode="inner") & keep
        out[edge] = np.asarray(outline, np.uint8)
    return out
