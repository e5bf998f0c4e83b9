"""Inline display in Jupyter: ``_repr_png_`` on the pictures tfviz returns (``Picture``
arrays) and on its result objects; the PNG bytes decode to exactly the pixels, and a
Picture behaves like a plain numpy array everywhere else."""
import io
import pickle

import numpy as np
import pytest
from PIL import Image

import tfviz
from tfviz import images as im
from tfviz.attribution import render
from tfviz.inspect import activation_grid, filter_grid, patch_grid
from tfviz.inspect.embedding import neighbor_strips, thumbnail_map
from tfviz.inspect.patches import ChannelPatches
from tfviz.synthesis.fooling import AdversarialResult, FoolingResult
from tfviz.synthesis.optimize import Result

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _decode(png: bytes) -> np.ndarray:
    assert isinstance(png, bytes) and png.startswith(PNG_SIGNATURE)
    return np.asarray(Image.open(io.BytesIO(png)))


def _shows(pic) -> np.ndarray:
    """``pic`` is a Picture whose PNG decodes to exactly its pixels; returns them."""
    assert isinstance(pic, im.Picture)
    out = _decode(pic._repr_png_())
    np.testing.assert_array_equal(out, np.asarray(pic))
    return out


@pytest.fixture
def rgb():
    return np.random.default_rng(0).integers(0, 256, (7, 5, 3)).astype(np.uint8)


# ------------------------------------------------------------------ png_bytes
def test_png_bytes_decode_to_the_array(rgb):
    out = _decode(im.png_bytes(rgb))
    assert out.dtype == np.uint8 and out.shape == (7, 5, 3)
    np.testing.assert_array_equal(out, rgb)
    grey = rgb[..., 0].copy()
    np.testing.assert_array_equal(_decode(im.png_bytes(grey)), grey)
    np.testing.assert_array_equal(_decode(im.png_bytes(grey[..., None])), grey)   # [H, W, 1] -> grey
    rgba = np.concatenate([rgb, rgb[..., :1]], -1)
    np.testing.assert_array_equal(_decode(im.png_bytes(rgba)), rgba)


def test_png_bytes_scales_floats_and_bools():
    rng = np.random.default_rng(1)
    levels = rng.integers(1, 255, (6, 4, 3))
    x = (levels + rng.uniform(-0.3, 0.3, levels.shape)) / 255.0     # within [0, 1], away from .5 ties
    x[0, 0, 0], x[0, 0, 1] = 0.0, 1.0
    expect = np.round(255 * x).astype(np.uint8)
    assert expect[0, 0, 0] == 0 and expect[0, 0, 1] == 255
    np.testing.assert_array_equal(_decode(im.png_bytes(x)), expect)
    np.testing.assert_array_equal(_decode(im.png_bytes(x.astype(np.float32))), expect)
    wide = np.array([[-2.0, 0.0], [1.0, 2.0]])                          # outside [0, 1]: min-max
    np.testing.assert_array_equal(_decode(im.png_bytes(wide)), [[0, 128], [191, 255]])
    mask = np.array([[True, False], [False, True]])
    np.testing.assert_array_equal(_decode(im.png_bytes(mask)), [[255, 0], [0, 255]])


# ------------------------------------------------------------------ Picture
def test_picture_is_a_plain_array_apart_from_display(rgb):
    pic = im.as_picture(rgb)
    assert isinstance(pic, np.ndarray) and type(pic) is im.Picture
    np.testing.assert_array_equal(_shows(pic), rgb)
    assert type(np.asarray(pic)) is np.ndarray
    assert type(pic * 2) is np.ndarray and type(pic + pic) is np.ndarray and type(pic == rgb) is np.ndarray
    assert type(pic.mean()) is np.float64 and pic.mean() == rgb.mean()
    assert type(pic.max()) is np.uint8 and type(np.sum(pic)) is type(np.sum(rgb))
    assert type(pic.sum(axis=0)) is np.ndarray and type(np.clip(pic, 10, 20)) is np.ndarray
    assert float(pic.mean()) == pytest.approx(float(rgb.mean()))
    assert type(pic[..., 0]) is im.Picture and type(pic[:3]) is im.Picture    # views stay pictures
    assert type(pic[0, 0, 0]) is np.uint8
    again = pickle.loads(pickle.dumps(pic))
    assert type(again) is im.Picture
    np.testing.assert_array_equal(again, rgb)
    inplace = pic.copy()
    inplace += 1
    assert type(inplace) is im.Picture
    np.testing.assert_array_equal(inplace, rgb + 1)


def test_picture_not_image_shaped_falls_back_to_text():
    assert im.as_picture(np.zeros((2, 4, 4, 3), np.uint8))._repr_png_() is None
    assert im.as_picture(np.zeros((4, 4, 5), np.uint8))._repr_png_() is None
    assert im.as_picture(np.zeros(4, np.uint8))._repr_png_() is None
    assert im.as_picture(np.zeros((0, 4, 3), np.uint8))._repr_png_() is None


def test_ipython_formats_a_picture_as_png(rgb):
    formatters = pytest.importorskip("IPython.core.formatters")
    data, _ = formatters.DisplayFormatter().format(im.as_picture(rgb))
    np.testing.assert_array_equal(_decode(data["image/png"]), rgb)
    data, _ = formatters.DisplayFormatter().format(im.as_picture(np.zeros((2, 2, 2, 3))))
    assert "image/png" not in data and "text/plain" in data


def test_image_helpers_return_pictures(rgb):
    assert _shows(im.tile(np.stack([rgb, rgb]), cols=2, gap=1)).shape == (7, 11, 3)
    assert _shows(im.hstack([rgb, rgb], gap=4)).shape == (7, 14, 3)
    assert _shows(im.vstack([rgb, rgb], gap=4)).shape == (18, 5, 3)
    assert _shows(im.caption(rgb, "x")).shape[1] == 5
    heat = np.linspace(0, 1, 35, dtype=np.float32).reshape(7, 5)
    _shows(im.colormap(heat))
    _shows(im.overlay(rgb, heat))
    m = heat - 0.5
    for pic in (render.render_map(m), render.render_gradient(rgb.astype(np.float32) - 128), render.overlay(rgb, m),
                render.panel(rgb, m, "panel"), render.comparison_figure(rgb, {"saliency": heat}, "t", size=16)):
        _shows(pic)


def test_inspect_pictures(rgb):
    pics = np.stack([rgb] * 4)
    canvas, cells = thumbnail_map(np.arange(8.0).reshape(4, 2), pics, cell=8, return_cells=True)
    assert cells.shape == (4, 2)
    _shows(canvas)
    _shows(thumbnail_map(np.arange(8.0).reshape(4, 2), pics, cell=8))
    _shows(neighbor_strips(pics[:2], [pics[:2], pics[:2]], size=8))
    cp = ChannelPatches("l", 3, pics[:2], np.ones(2), np.zeros((2, 3), int), np.zeros((2, 4), int))
    grid = _shows(patch_grid([cp]))
    np.testing.assert_array_equal(_decode(cp._repr_png_()), grid)


# ------------------------------------------------------------------ models
@pytest.fixture(scope="module")
def tiny():
    """RGB input -> one 2x2 convolution with known weights, 2 filters."""
    import keras
    from keras import layers as L
    inp = keras.Input((6, 6, 3))
    conv = L.Conv2D(2, 2, use_bias=False, name="conv")
    out = L.Dense(2, name="out")(L.Flatten()(conv(inp)))
    model = keras.Model(inp, out)
    conv.set_weights([np.arange(24, dtype=np.float32).reshape(2, 2, 3, 2)])
    return tfviz.load_model(model, preprocess="raw")


def test_filter_and_activation_grids_display(tiny):
    pic = filter_grid(tiny, upsample=1, gap=1)
    out = _shows(pic)
    k = np.arange(24, dtype=np.float32).reshape(2, 2, 3, 2)
    assert out.shape == (2, 5, 3)                                       # 2 tiles of 2x2 side by side
    k0 = k[..., 0]
    np.testing.assert_array_equal(out[:, :2], np.floor((k0 - k0.min()) / (k0.max() - k0.min()) * 255 + 0.5))
    img = np.random.default_rng(2).integers(0, 256, (6, 6, 3)).astype(np.uint8)
    _shows(activation_grid(tiny, img, "conv", upsample=1))


# ------------------------------------------------------------------ results
def test_result_shows_its_image_or_grid(rgb):
    one = Result(images=rgb[None], history=np.zeros(1), losses={}, snapshots=[], steps=1, x=None)
    np.testing.assert_array_equal(_decode(one._repr_png_()), rgb)
    two = Result(images=np.stack([rgb, 255 - rgb]), history=np.zeros(1), losses={}, snapshots=[], steps=1, x=None)
    np.testing.assert_array_equal(_decode(two._repr_png_()), two.grid())
    assert _decode(two._repr_png_()).shape == (7, 12, 3)


def test_fooling_and_adversarial_results(rgb):
    fooled = 255 - rgb
    diff = np.full((7, 5, 3), 128, np.uint8)
    r = FoolingResult(image=fooled, original=rgb, target=1, success=True, steps=3, l2=1.0, linf=1.0,
                      difference=diff, magnification=1.0, probability=0.9, original_class=0)
    out = _decode(r._repr_png_())
    assert out.shape == (7, 3 * 5 + 2 * 4, 3)                           # three images, two 4-pixel gaps
    np.testing.assert_array_equal(out[:, :5], rgb)
    np.testing.assert_array_equal(out[:, 9:14], fooled)
    np.testing.assert_array_equal(out[:, 18:], diff)
    adv = AdversarialResult(images=np.stack([rgb] * 3), float_images=None, original_classes=np.zeros(3),
                            classes=np.ones(3), targets=None)
    np.testing.assert_array_equal(_decode(adv._repr_png_()), im.tile(adv.images))
