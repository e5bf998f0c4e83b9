"""Pictures in and out: read and validate images, resize, write PNGs atomically, tile
grids, colormaps, heatmap overlays and captions. Numpy and Pillow only -- no TensorFlow.

The figures made here are :class:`Picture` arrays: plain numpy arrays that Jupyter
displays as an image (``_repr_png_``).

Every image handed to a method is ``uint8`` RGB ``[H, W, 3]`` (one) or ``[N, H, W, 3]``.
"""
from __future__ import annotations

import glob
import io
import os
import sys
import time
import warnings

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from .errors import UpscaleWarning  # noqa: F401  (the classes live in tfviz.errors)
from .utils import ImageError, OptionError, TfvizWarning, atomic_path, did_you_mean

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm")
MAX_PIXELS = 178_956_970  # Pillow's own decompression-bomb limit (2x its warning level)
PHOTO_DIR = os.path.join(os.path.dirname(__file__), "assets", "photos")
TEXTURE_DIR = os.path.join(os.path.dirname(__file__), "assets", "textures")
MAX_UPSCALE = 4.0  # blowing an image up more than this gets a warning


def check_size(shape_hw, size, name: str = "image", min_side: int = 1) -> None:
    """Refuse an image smaller than ``min_side`` pixels a side; warn (once per call) when
    resizing it to ``size`` enlarges it more than ``MAX_UPSCALE`` times."""
    ih, iw = int(shape_hw[0]), int(shape_hw[1])
    if min(ih, iw) < min_side:
        raise ImageError(f"{name}: image is {iw}x{ih} pixels, smaller than the {min_side}x{min_side} the model's "
                         f"first convolution needs")
    if size is None:
        return
    h, w = _size_hw(size)
    factor = max(h / ih, w / iw)
    if factor > MAX_UPSCALE:
        warnings.warn(f"{name}: {iw}x{ih} pixels, enlarged {factor:.0f}x to {w}x{h}; details the model "
                      f"sees at that size are not in the image", UpscaleWarning, stacklevel=3)


# ---------------------------------------------------------------------------- reading
def sample_photos() -> dict[str, str]:
    """The photos bundled with tfviz (public-domain / CC0 copies of scikit-image's
    ``chelsea``, ``coffee``, ``rocket`` and ``astronaut``): ``{name: path}``."""
    out = {}
    for p in sorted(glob.glob(os.path.join(PHOTO_DIR, "*.jpg"))):
        out[os.path.splitext(os.path.basename(p))[0]] = p
    return out


def sample_textures() -> dict[str, str]:
    """The texture photos bundled with tfviz (CC0 copies of scikit-image's grey
    ``brick``, ``grass`` and ``gravel``, 512x512): ``{name: path}``."""
    return {os.path.splitext(os.path.basename(p))[0]: p
            for p in sorted(glob.glob(os.path.join(TEXTURE_DIR, "*.jpg")))}


def bundled_images() -> dict[str, str]:
    """Every picture tfviz bundles, by name: the photos (:func:`sample_photos`) and
    the textures (:func:`sample_textures`)."""
    return {**sample_textures(), **sample_photos()}


def sample_photo(name: str = "chelsea") -> np.ndarray:
    photos = sample_photos()
    if name not in photos:
        raise ImageError(did_you_mean("sample photo", name, photos))
    return load_image(photos[name])


def _to_rgb_uint8(arr: np.ndarray, source: str) -> np.ndarray:
    """Any numeric image array -> uint8 RGB [H, W, 3]."""
    arr = np.asarray(arr)
    if arr.ndim == 2:
        arr = arr[..., None]
    if arr.ndim != 3 or arr.shape[-1] not in (1, 2, 3, 4):
        raise ImageError(f"{source}: expected an image of shape [H, W] or [H, W, 1|3|4], got {arr.shape}")
    if arr.shape[0] < 1 or arr.shape[1] < 1:
        raise ImageError(f"{source}: image is empty ({arr.shape})")
    if arr.dtype == np.bool_:
        arr = arr.astype(np.uint8) * 255
    elif arr.dtype == np.uint16 or (arr.dtype.kind in "iu" and arr.max(initial=0) > 255):
        arr = (arr.astype(np.float64) / max(int(np.iinfo(arr.dtype).max), 1) * 255.0 + 0.5).astype(np.uint8)
    elif arr.dtype.kind == "f":
        if not np.all(np.isfinite(arr)):
            raise ImageError(f"{source}: image contains NaN or infinite values")
        hi = float(arr.max(initial=0.0))
        scale = 255.0 if hi <= 1.0 + 1e-6 else 1.0  # floats in 0..1 or 0..255
        arr = np.clip(arr * scale + 0.5, 0, 255).astype(np.uint8)
    else:
        arr = np.clip(arr, 0, 255).astype(np.uint8)
    c = arr.shape[-1]
    if c in (2, 4):  # composite alpha over white, the way a viewer shows it
        alpha = arr[..., -1:].astype(np.float32) / 255.0
        color = arr[..., :-1].astype(np.float32)
        arr = (color * alpha + 255.0 * (1 - alpha) + 0.5).astype(np.uint8)
        c -= 1
    if c == 1:
        arr = np.repeat(arr, 3, axis=-1)
    return np.ascontiguousarray(arr)


def load_image(src, size: tuple[int, int] | int | None = None, *, crop: bool = False,
               min_side: int = 1) -> np.ndarray:
    """Read one image as uint8 RGB ``[H, W, 3]``.

    ``src`` is a path, a bundled picture's name (:func:`bundled_images`), raw bytes, a
    PIL image or an array. Grayscale is repeated to RGB,
    alpha is composited over white, 16-bit and float images are rescaled. ``size``
    (``(h, w)`` or one int) resizes with antialiasing; ``crop=True`` first takes the
    central square-ish crop with the target's aspect ratio. Unreadable, truncated and
    oversized files raise :class:`~tfviz.utils.ImageError` naming the file and why, and so
    do images under ``min_side`` pixels a side; enlarging more than 4x warns."""
    name = "image"
    if isinstance(src, np.ndarray):
        arr = _to_rgb_uint8(src, "array")
    else:
        if isinstance(src, (bytes, bytearray)):
            fh, name = io.BytesIO(src), "bytes"
        elif isinstance(src, Image.Image):
            fh, name = None, "PIL image"
        else:
            name = os.fspath(src)
            if not os.path.exists(name) and isinstance(name, str) and name in bundled_images():
                name = bundled_images()[name]  # a bundled picture's name: chelsea, strokes, gravel, ...
            if not os.path.exists(name):
                raise ImageError(f"{name}: no such file")
            if os.path.isdir(name):
                raise ImageError(f"{name}: is a folder, not an image")
            fh = name
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("error", Image.DecompressionBombWarning)
                img = src if fh is None else Image.open(fh)
                if img.width * img.height > MAX_PIXELS:
                    raise ImageError(f"{name}: image is too large ({img.width}x{img.height} pixels)")
                img.load()
        except ImageError:
            raise
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
            raise ImageError(f"{name}: image is too large to decode safely ({exc})") from None
        except Image.UnidentifiedImageError:
            raise ImageError(f"{name}: not an image file Pillow can read") from None
        except (OSError, SyntaxError, ValueError) as exc:
            raise ImageError(f"{name}: cannot read image ({exc})") from None
        if getattr(img, "n_frames", 1) > 1:
            img.seek(0)
        mode = img.mode
        if mode in ("I;16", "I;16B", "I;16L", "I"):
            arr = np.asarray(img, dtype=np.float64)
            hi = 65535.0 if (mode.startswith("I;16") or arr.max(initial=0) > 255) else 255.0
            arr = (np.clip(arr / hi, 0, 1) * 255 + 0.5).astype(np.uint8)
        elif mode == "F":
            arr = np.asarray(img, dtype=np.float32)
        elif mode in ("P", "PA", "CMYK", "YCbCr", "LAB", "HSV", "1"):
            arr = np.asarray(img.convert("RGBA" if "transparency" in img.info or mode == "PA" else "RGB"))
        else:
            arr = np.asarray(img)
        arr = _to_rgb_uint8(arr, name)
    check_size(arr.shape, size, name, min_side)
    if size is not None:
        arr = resize(arr, size, crop=crop)
    return arr


def _size_hw(size) -> tuple[int, int]:
    if isinstance(size, int):
        return (size, size)
    h, w = size
    return (int(h), int(w))


def resize(img: np.ndarray, size, *, crop: bool = False, resample=Image.BICUBIC) -> np.ndarray:
    """Resize uint8 ``[H, W, C]`` (or a batch) to ``size`` = (h, w) with antialiasing."""
    img = np.asarray(img)
    if img.ndim == 4:
        return np.stack([resize(i, size, crop=crop, resample=resample) for i in img])
    h, w = _size_hw(size)
    pil = Image.fromarray(img.squeeze(-1) if img.shape[-1] == 1 else img)
    if crop:
        ih, iw = img.shape[:2]
        scale = min(ih / h, iw / w)
        ch, cw = int(round(h * scale)), int(round(w * scale))
        top, left = (ih - ch) // 2, (iw - cw) // 2
        pil = pil.crop((left, top, left + cw, top + ch))
    if pil.size != (w, h):
        pil = pil.resize((w, h), resample=resample, reducing_gap=3.0)
    out = np.asarray(pil)
    return out[..., None] if img.ndim == 3 and out.ndim == 2 else out


def list_image_files(folder: str, recursive: bool = True) -> list[str]:
    """Image files under ``folder``, sorted, by extension."""
    if not os.path.isdir(folder):
        raise ImageError(f"{folder}: no such folder")
    pattern = os.path.join(folder, "**", "*") if recursive else os.path.join(folder, "*")
    files = sorted(p for p in glob.glob(pattern, recursive=recursive)
                   if os.path.isfile(p) and p.lower().endswith(IMAGE_EXTENSIONS))
    if not files:
        raise ImageError(f"{folder}: no images found (looked for {', '.join(IMAGE_EXTENSIONS)})")
    return files


def load_images(sources, size=None, *, crop: bool = False, min_side: int = 1) -> np.ndarray:
    """Several images (paths, arrays, or one ``[N,H,W,C]`` array) as a uint8 batch.
    With ``size=None`` all images must already share one size. ``min_side``: see
    :func:`load_image`."""
    if isinstance(sources, np.ndarray) and sources.ndim == 4:
        batch = np.stack([_to_rgb_uint8(i, f"image {k}") for k, i in enumerate(sources)])
        check_size(batch.shape[1:3], size, "images", min_side)
        return resize(batch, size, crop=crop) if size is not None else batch
    if isinstance(sources, (str, os.PathLike, bytes, np.ndarray, Image.Image)):
        sources = [sources]
    imgs = [load_image(s, size, crop=crop, min_side=min_side) for s in sources]
    if not imgs:
        raise ImageError("no images given")
    shapes = {i.shape for i in imgs}
    if len(shapes) > 1:
        raise ImageError(f"images have different sizes {sorted(shapes)}; pass size=(h, w)")
    return np.stack(imgs)


# ---------------------------------------------------------------------------- writing
def to_uint8(x, lo=None, hi=None) -> np.ndarray:
    """Min-max (or [lo, hi]) rescale of any array to uint8 0..255."""
    x = np.asarray(x, dtype=np.float32)
    lo = float(np.min(x)) if lo is None else lo
    hi = float(np.max(x)) if hi is None else hi
    if hi - lo < 1e-12:
        return np.zeros(x.shape, np.uint8)
    return (np.clip((x - lo) / (hi - lo), 0, 1) * 255 + 0.5).astype(np.uint8)


def _png_ready(img) -> np.ndarray:
    """Any image array -> uint8 [H,W] or [H,W,3|4] for Pillow: floats within [0,1] times
    255, other floats min-max to 0..255, bool to 0/255, other integers cast."""
    arr = np.asarray(img)
    if arr.dtype != np.uint8:
        if arr.dtype == np.bool_:
            arr = arr.astype(np.uint8) * 255
        elif arr.dtype.kind == "f":
            arr = to_uint8(arr) if arr.size and (arr.min() < 0 or arr.max() > 1) else to_uint8(arr, 0.0, 1.0)
        else:
            arr = arr.astype(np.uint8)
    if arr.ndim == 3 and arr.shape[-1] == 1:
        arr = arr[..., 0]
    return arr


def png_bytes(img) -> bytes:
    """``img`` (uint8 [H,W] or [H,W,1|3|4]; floats and bools as in ``save_png``) encoded
    as PNG in memory."""
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(_png_ready(img))).save(buf, format="PNG")
    return buf.getvalue()


class Picture(np.ndarray):
    """A numpy array that Jupyter/IPython displays as an image (``_repr_png_``); in every
    other respect a plain array. Arithmetic and reductions give plain arrays / numpy
    scalars; slices and views stay Pictures; ``np.asarray(pic)`` is a plain array.
    Make one with :func:`as_picture`."""

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        plain = tuple(np.asarray(i) if isinstance(i, Picture) else i for i in inputs)
        out = kwargs.get("out")
        if out:
            kwargs["out"] = tuple(np.asarray(o) if isinstance(o, Picture) else o for o in out)
        result = getattr(ufunc, method)(*plain, **kwargs)
        if not out:
            return result
        # written into ``out`` (pic += 1): hand back the arrays as given
        result = tuple(o if o is not None else r for o, r in zip(out, result if ufunc.nout > 1 else (result,)))
        return result[0] if len(result) == 1 else result

    def __array_wrap__(self, obj, context=None, return_scalar=False):
        obj = np.asarray(obj)
        return obj[()] if return_scalar else obj

    def _repr_png_(self) -> bytes | None:
        """PNG bytes of an image-shaped array ([H,W] or [H,W,1|3|4]); None otherwise,
        so IPython shows the text repr."""
        if self.ndim not in (2, 3) or (self.ndim == 3 and self.shape[-1] not in (1, 3, 4)) or 0 in self.shape:
            return None
        return png_bytes(self)


def as_picture(arr) -> Picture:
    """``arr`` as a :class:`Picture` (a view, no copy when it is already an array)."""
    return np.asarray(arr).view(Picture)


def save_png(path: str, img) -> str:
    """Write ``img`` (uint8 [H,W], [H,W,1|3|4] or PIL) as PNG, atomically: the file
    either appears whole or not at all. Returns the path."""
    if not isinstance(img, Image.Image):
        img = Image.fromarray(_png_ready(img))
    with atomic_path(path) as tmp:
        img.save(tmp, format="PNG")
    return path


class PictureSaver:
    """``save(name, picture)``: write ``picture`` as ``folder/name`` (atomically, via
    :func:`save_png`) and print ``wrote PATH  (N s)`` with the seconds since the previous
    picture (or since the saver was made) -- the progress line of a script that makes
    several pictures. Returns the path."""

    def __init__(self, folder: str, file=None):
        self.folder, self.file, self._clock = folder, file, time.perf_counter
        self._last = self._clock()

    def __call__(self, name: str, picture) -> str:
        path = save_png(os.path.join(self.folder, name), picture)
        now = self._clock()
        print(f"wrote {path}  ({now - self._last:.1f} s)", file=self.file or sys.stdout, flush=True)
        self._last = now
        return path


def save_npy(path: str, arr) -> str:
    """``numpy.save`` atomically."""
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            np.save(fh, np.asarray(arr))
    return path


def tile(images, cols: int | None = None, gap: int = 2, bg: int = 255) -> Picture:
    """Tile same-size uint8 images ``[N,h,w(,C)]`` in a grid with ``gap`` pixels between."""
    images = np.asarray(images)
    if images.ndim == 3:
        images = images[..., None]
    n, h, w, c = images.shape
    if n == 0:
        raise ImageError("nothing to tile: pass at least one image")
    cols = cols or int(np.ceil(np.sqrt(n)))
    rows = int(np.ceil(n / cols))
    out = np.full((rows * h + (rows - 1) * gap, cols * w + (cols - 1) * gap, c), bg, images.dtype)
    for i in range(n):
        r, q = divmod(i, cols)
        out[r * (h + gap):r * (h + gap) + h, q * (w + gap):q * (w + gap) + w] = images[i]
    return as_picture(out[..., 0] if c == 1 else out)


def upsample_nearest(img: np.ndarray, factor: int) -> np.ndarray:
    """Repeat pixels ``factor`` times along both spatial axes ([..., H, W, C] or [H, W])."""
    if factor <= 1:
        return img
    ax = img.ndim - 3 if img.ndim >= 3 else 0
    return np.repeat(np.repeat(img, factor, axis=ax), factor, axis=ax + 1)


# Viridis and a blue-white-red diverging map as control points, interpolated linearly.
_VIRIDIS = np.array([[68, 1, 84], [72, 40, 120], [62, 74, 137], [49, 104, 142], [38, 130, 142],
                     [31, 158, 137], [53, 183, 121], [109, 205, 89], [180, 222, 44], [253, 231, 37]],
                    np.float32)
_INFERNO = np.array([[0, 0, 4], [31, 12, 72], [85, 15, 109], [136, 34, 106], [186, 54, 85],
                     [227, 89, 51], [249, 140, 10], [249, 201, 50], [252, 255, 164]], np.float32)
_BWR = np.array([[5, 48, 97], [67, 147, 195], [247, 247, 247], [214, 96, 77], [103, 0, 31]], np.float32)
COLORMAPS = {"viridis": _VIRIDIS, "inferno": _INFERNO, "bwr": _BWR}


def colormap(values, cmap: str = "inferno", lo=None, hi=None) -> Picture:
    """Map a 2-D (or any) float array to uint8 RGB with a named colormap."""
    pts = COLORMAPS[cmap]
    v = to_uint8(values, lo, hi).astype(np.float32) / 255.0 * (len(pts) - 1)
    i0 = np.clip(np.floor(v).astype(int), 0, len(pts) - 2)
    t = (v - i0)[..., None]
    return as_picture((pts[i0] * (1 - t) + pts[i0 + 1] * t + 0.5).astype(np.uint8))


def overlay(image: np.ndarray, heat: np.ndarray, alpha: float = 0.5, cmap: str = "inferno") -> Picture:
    """Blend a heatmap (any size, resized to the image) over a uint8 RGB image."""
    h, w = image.shape[:2]
    heat = np.asarray(heat, np.float32)
    if heat.shape[:2] != (h, w):
        heat = np.asarray(Image.fromarray(heat).resize((w, h), Image.BILINEAR))
    col = colormap(heat, cmap).astype(np.float32)
    return as_picture((image.astype(np.float32) * (1 - alpha) + col * alpha + 0.5).astype(np.uint8))


# Attribution maps as pictures: here, in the base, because the summary writer draws them
# too; tfviz.attribution.render re-exports them under the same names.
GRADIENT_MODES = ("signed", "positive", "abs")


def render_gradient(grad, mode: str = "signed", contrast: float = 0.15) -> Picture:
    """Signed gradients ``[H, W, 3]`` (or a batch) -> uint8 RGB.

    ``mode="signed"``: each channel zero-centred, divided by the standard deviation and
    scaled by ``contrast`` around mid-gray (Springenberg et al. / the Keras "deprocess"
    recipe);
    ``"positive"``: only the positive part, scaled to its 99.5th percentile;
    ``"abs"``: the magnitude, the same way."""
    g = np.asarray(grad, np.float32)
    if g.ndim == 4:
        return as_picture(np.stack([render_gradient(i, mode, contrast) for i in g]))
    if mode == "signed":
        g = g - g.mean(axis=(0, 1), keepdims=True)  # per channel: no color cast from a constant offset
        g = g / (g.std() + 1e-12) * contrast + 0.5
    elif mode in ("positive", "abs"):
        g = np.maximum(g, 0) if mode == "positive" else np.abs(g)
        hi = np.percentile(g, 99.5)
        g = g / (hi + 1e-12)
    else:
        raise OptionError(f"mode must be signed, positive or abs, got {mode!r}")
    return as_picture((np.clip(g, 0, 1) * 255 + 0.5).astype(np.uint8))


def is_signed(m, tol: float = 0.05) -> bool:
    """Whether a 2-D map has meaningful negative values (then a diverging colormap)."""
    m = np.asarray(m, np.float32)
    big = float(np.abs(m).max()) if m.size else 0.0
    return big > 0 and float(m.min()) < -tol * big


def render_map(m, cmap: str | None = None, clip_percentile: float = 99.5) -> Picture:
    """A 2-D map -> uint8 RGB. Signed maps use a blue-white-red colormap symmetric around
    zero; others ``inferno`` from 0 (or the minimum). Values beyond ``clip_percentile``
    of the magnitude saturate, so a few extreme pixels do not wash out the rest.
    ``[H, W, 3]`` maps (signed gradients) are drawn by :func:`render_gradient`."""
    m = np.asarray(m, np.float32)
    if m.ndim == 3 and m.shape[-1] == 3:
        return render_gradient(m)
    mag = np.abs(m)
    hi = float(np.percentile(mag, clip_percentile)) if m.size else 0.0
    hi = hi if hi > 0 else float(mag.max() or 1.0)
    if cmap is None:
        cmap = "bwr" if is_signed(m) else "inferno"
    if cmap == "bwr":
        return colormap(np.clip(m, -hi, hi), "bwr", -hi, hi)
    lo = min(0.0, float(m.min()))
    return colormap(np.clip(m, lo, hi), cmap, lo, hi)


def font(size: int = 14):
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1
        return ImageFont.load_default()


def caption(img: np.ndarray, text: str, size: int = 14, bg=(255, 255, 255), fg=(20, 20, 20)) -> Picture:
    """Add a text strip above an image (uint8 RGB)."""
    img = np.asarray(img)
    if img.ndim == 2:
        img = np.repeat(img[..., None], 3, -1)
    f = font(size)
    lines = str(text).split("\n")
    strip = (size + 6) * len(lines) + 4
    canvas = Image.new("RGB", (img.shape[1], img.shape[0] + strip), bg)
    canvas.paste(Image.fromarray(img), (0, strip))
    d = ImageDraw.Draw(canvas)
    for k, line in enumerate(lines):
        d.text((4, 3 + k * (size + 6)), line, fill=fg, font=f)
    return as_picture(canvas)


def _stack(images, axis: int, gap: int, bg: int) -> np.ndarray:
    """uint8 RGB images placed along ``axis`` (1: side by side, 0: one above another),
    ``gap`` pixels apart, aligned at the top-left, padded with ``bg``."""
    images = [np.repeat(i[..., None], 3, -1) if i.ndim == 2 else i for i in map(np.asarray, images)]
    across = 1 - axis
    shape = [0, 0, 3]
    shape[axis] = sum(i.shape[axis] for i in images) + gap * (len(images) - 1)
    shape[across] = max(i.shape[across] for i in images)
    out = np.full(shape, bg, np.uint8)
    at = 0
    for i in images:
        if axis == 1:
            out[:i.shape[0], at:at + i.shape[1]] = i
        else:
            out[at:at + i.shape[0], :i.shape[1]] = i
        at += i.shape[axis] + gap
    return out


def hstack(images, gap: int = 4, bg: int = 255) -> Picture:
    """Place uint8 RGB images side by side, top-aligned, padding heights."""
    return as_picture(_stack(images, 1, gap, bg))


def vstack(images, gap: int = 4, bg: int = 255) -> Picture:
    """Place uint8 RGB images one above another, left-aligned, padding widths."""
    return as_picture(_stack(images, 0, gap, bg))
