"""random_multiscale (tfviz.zoo.random_multiscale): one layer of seeded random filters of
eight sizes (and 1 px colour filters) as a texture loss network. The answers are worked
out by hand: seeded weights, zero-mean filters (a flat image gives no response, whatever
the mean subtracted; the colour filters see (colour - mean)), an impulse's response (the
kernel turned by 180 degrees: Conv2D correlates), the grid each size runs on, and the loss
network, texture synthesis and CLI that use it."""
import keras
import numpy as np
import pytest

import tfviz
from cli_helpers import run_cli
from tfviz.errors import ModelError
from tfviz.synthesis import loss_network, synthesize_texture
from tfviz.zoo import random_multiscale as rm

SIZES = rm.SIZES
SPATIAL = SIZES[1:]
SMALL = dict(sizes=(1, 3, 5, 11, 55), filters=(2, 4, 3, 2, 2))   # colour, and one size per grid


@pytest.fixture(scope="module")
def model():
    return rm.build()


def kernels(m):
    return {s: m.get_layer(f"scale{s}_conv").get_weights()[0] for s in SIZES}


def pre_relu(m, size):
    return keras.Model(m.input, m.get_layer(f"scale{size}_conv").output)


def test_same_seed_same_weights_other_seed_other_weights(model):
    again, other = kernels(rm.build(seed=0)), kernels(rm.build(seed=1))
    for s, w in kernels(model).items():
        k, d = rm.plan(s)
        assert w.shape == (k, k, 3, rm.FILTERS[SIZES.index(s)])
        np.testing.assert_array_equal(w, again[s])
        assert not np.allclose(w, other[s])
    # the draws are numpy's default_rng(seed), size by size: colour filters scaled,
    # spatial ones centred and scaled
    rng = np.random.default_rng(0)
    w1 = rng.standard_normal((1, 1, 3, 8)) * np.sqrt(2 / 3)
    w3 = rng.standard_normal((3, 3, 3, 32))
    w3 = (w3 - w3.mean(axis=(0, 1), keepdims=True)) * np.sqrt(2 / (3 * 8))
    np.testing.assert_allclose(kernels(model)[1], w1, rtol=1e-6)
    np.testing.assert_allclose(kernels(model)[3], w3, rtol=1e-6)


def test_every_filter_slice_is_zero_mean_with_he_gain(model):
    for s, w in kernels(model).items():
        if s == 1:
            continue
        np.testing.assert_allclose(w.sum(axis=(0, 1)), 0, atol=1e-5)
        # a filter's squared weights sum to 2 on average (He's ReLU gain): 3 (k^2 - 1)
        # free values of variance 2 / (3 (k^2 - 1)) each
        assert abs(np.mean(np.sum(w.astype(np.float64) ** 2, axis=(0, 1, 2))) - 2) < 0.35, s


def test_each_size_runs_on_its_grid(model):
    assert [rm.plan(s) for s in SIZES] == [(1, 1), (3, 1), (5, 1), (7, 1), (5, 2), (7, 2), (5, 4), (9, 4), (7, 8)]
    relus = keras.Model(model.input, [model.get_layer(f"scale{s}_relu").output for s in SIZES])
    for hw in [(32, 32), (50, 70)]:
        outs = relus(np.random.default_rng(1).random((1, *hw, 3), np.float32))
        for s, o in zip(SIZES, outs):
            d = rm.plan(s)[1]
            assert o.shape[1:3] == (-(-hw[0] // d), -(-hw[1] // d)), (s, hw)
            assert float(np.max(o)) > 0 and float(np.min(o)) == 0   # ReLU, alive
    assert model.output.shape == (None, sum(rm.FILTERS))


def test_a_flat_image_gives_zero_response(model):
    """Each kernel slice sums to zero, so a flat colour gives sum_c v_c * 0 = 0 wherever a
    window holds only image pixels. Mirrored borders hold only image pixels: zero
    everywhere, whatever mean is subtracted. Zero padding ('same') adds a frame of -mean,
    zero only away from the border -- and everywhere when the colour is the mean. The
    colour filters (1 px) answer (colour - 0.5) . w everywhere."""
    colour = np.array([0.9, 0.2, 0.6], np.float32)
    flat = np.ones((1, 40, 40, 3), np.float32) * colour
    noise = np.random.default_rng(0).random((1, 40, 40, 3), np.float32)
    for s in SPATIAL:
        f = pre_relu(model, s)
        assert np.abs(f(noise)).max() > 0.05
        np.testing.assert_allclose(f(flat), 0, atol=1e-5)
    expected = (colour - 0.5) @ kernels(model)[1][0, 0]
    np.testing.assert_allclose(pre_relu(model, 1)(flat), np.broadcast_to(expected, (1, 40, 40, 8)), atol=1e-6)
    zeros = rm.build(**SMALL, padding="same")
    f = pre_relu(zeros, 5)
    r = np.asarray(f(flat))[0]
    np.testing.assert_allclose(r[2:-2, 2:-2], 0, atol=1e-5)        # 5 x 5: 2 pixels of border
    assert np.abs(r[0]).max() > 1e-2
    np.testing.assert_allclose(f(np.full_like(flat, 0.5)), 0, atol=1e-6)


def test_the_mean_only_moves_the_colour_filters():
    """Mirrored borders: subtracting 0.5 or nothing gives the same spatial responses; the
    colour filters' differ by 0.5 * sum_c w_c."""
    x = np.random.default_rng(2).random((2, 36, 44, 3), np.float32)
    a, b = rm.build(**SMALL), rm.build(**SMALL, mean=0.0)
    for s in SMALL["sizes"][1:]:
        np.testing.assert_allclose(pre_relu(a, s)(x), pre_relu(b, s)(x), atol=1e-5)
    w = a.get_layer("scale1_conv").get_weights()[0][0, 0]
    np.testing.assert_allclose(pre_relu(b, 1)(x) - pre_relu(a, 1)(x), np.broadcast_to(0.5 * w.sum(0), (2, 36, 44, 2)),
                               atol=1e-5)


@pytest.mark.parametrize("size", [1, 3, 5, 11, 55])
@pytest.mark.parametrize("background", [0.5, 0.0])
def test_an_impulse_gives_the_turned_kernel(size, background):
    """One pixel of channel c raised by h on a flat image: the flat part gives nothing
    (previous test; colour filters: the same, the flat part taken away), the pixel
    h * w[r - dy, r - dx, c] at offset (dy, dx) from it
    (Conv2D correlates: the kernel turned 180 degrees). On a grid averaged d x d the pixel
    is h / d^2 in its block's cell."""
    m = rm.build(**SMALL)
    k, d = rm.plan(size)
    r, h, c = k // 2, 0.4, 1
    x = np.full((1, 128, 128, 3), background, np.float32)
    y0, x0 = 64, 72                                  # the cell (64 // d, 72 // d) on every grid
    x[0, y0, x0, c] += h
    out = np.asarray(pre_relu(m, size)(x))[0]
    if size == 1:
        out = out - np.asarray(pre_relu(m, 1)(np.full_like(x, background)))[0]
    w = m.get_layer(f"scale{size}_conv").get_weights()[0]
    cy, cx = y0 // d, x0 // d
    expected = np.zeros_like(out)
    expected[cy - r:cy + r + 1, cx - r:cx + r + 1] = h / d ** 2 * w[::-1, ::-1, c, :]
    np.testing.assert_allclose(out, expected, atol=1e-5)


def test_load_model_and_its_loss_network(model):
    b = tfviz.load_model("random_multiscale")
    assert b.name == "random_multiscale" and b.preprocessing.name == "0-1" and b.class_names is None
    np.testing.assert_array_equal(b.model.get_layer("scale55_conv").get_weights()[0], kernels(model)[55])
    other = tfviz.load_model("random_multiscale", seed=3).model.get_layer("scale3_conv").get_weights()[0]
    assert not np.allclose(other, kernels(model)[3])
    net = loss_network(b)
    assert net.family == "random_multiscale"
    assert net.texture == {f"scale{s}_relu": 1.0 for s in SIZES}
    assert net.content_layer in net.texture and set(net.inversion_layers) == set(net.texture)
    for n in [net.content_layer, *net.style_layers, *net.inversion_layers]:
        b.spatial_layer(n)
    assert loss_network(tfviz.load_model(rm.build(sizes=(3, 5)), preprocess="0-1")).family == "generic"
    with pytest.raises(ModelError, match="random_multiscale"):
        tfviz.load_model("random_multiscal")


def test_texture_loss_falls():
    b = tfviz.load_model("random_multiscale")
    res = synthesize_texture(b, "gravel", size=48, steps=15, scales=1, histogram_weight=0, color_weight=0)
    assert res.image.shape == (48, 48, 3) and res.steps == 15
    loss = -np.asarray(res.history)
    assert loss[-1] < 0.1 * loss[0], loss    # about 0.035 at seeds 0-2
    assert set(res.extra["layers"]) == {f"scale{s}_relu" for s in SIZES}
    for name, h in res.losses.items():
        if name.startswith("gram_match"):
            assert -h[-1] < -h[0], name


def test_cli_writes_a_png(tmp_path, capsys):
    out = tmp_path / "t.png"
    code, o, err = run_cli(["texture", "gravel", "--model", "random_multiscale", "--steps", "5", "--size", "64",
                            "--out", str(out)], capsys)
    assert code == 0, err
    assert "64x64 texture from a 512x512 source in 10 steps over 2 scales" in o     # 5 per scale
    from PIL import Image
    with Image.open(out) as im:
        assert im.size == (64, 64) and im.format == "PNG"


def test_saves_and_loads(tmp_path):
    m = rm.build(**SMALL)
    m.save(tmp_path / "rm.keras")
    again = keras.models.load_model(tmp_path / "rm.keras")
    x = np.random.default_rng(4).random((1, 33, 47, 3), np.float32)
    np.testing.assert_allclose(m(x), again(x), atol=1e-6)
