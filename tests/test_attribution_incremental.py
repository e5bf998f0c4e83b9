"""Incremental occlusion (Krypton): the exact mode gives the full re-inference map on
several architectures; the multiply-add saving on a tiny stack matches a hand count;
models it cannot follow fall back with one warning; approximate mode stays close.

Every model is built here with random weights and small inputs (no timing assertions:
see bench/bench_occlusion.py for speed)."""
import warnings

import keras
import numpy as np
import pytest
from keras import layers as L

from cli_helpers import run_cli
from tfviz import attribution as A
from tfviz.attribution.errors import AttributionError
from tfviz.attribution.incremental import fidelity, theoretical_saving
from tfviz.models import load_model


def vgg_like(size=32):
    """Plain conv stack: 'same' and 'valid' convs, max and 'same' average pooling, BN."""
    keras.utils.set_random_seed(0)
    i = keras.Input((size, size, 3))
    x = L.Conv2D(8, 3, padding="same", activation="relu")(i)
    x = L.Conv2D(8, 3, padding="same", activation="relu", name="c2")(x)
    x = L.MaxPooling2D(2)(x)
    x = L.Conv2D(12, 3, padding="valid", activation="relu")(x)
    x = L.AveragePooling2D(3, strides=2, padding="same")(x)
    x = L.Conv2D(12, 3, padding="same")(x)
    x = L.BatchNormalization(moving_variance_initializer="ones", beta_initializer="random_normal")(x)
    x = L.ReLU()(x)
    x = L.Flatten()(x)
    return keras.Model(i, L.Dense(5)(x))


def lite_like(size=40):
    """efficientnet-lite-shaped: ZeroPadding + stride-2 'valid' stem, depthwise and
    separable convs, residual Adds, 'same' max pooling, global pooling + dense head."""
    keras.utils.set_random_seed(1)
    i = keras.Input((size, size, 3))
    x = L.ZeroPadding2D(((0, 1), (0, 1)))(i)
    x = L.Conv2D(8, 3, strides=2, padding="valid")(x)
    x = L.BatchNormalization(beta_initializer="random_normal")(x)
    x = L.ReLU(6.0)(x)
    y = L.DepthwiseConv2D(3, padding="same")(x)
    y = L.BatchNormalization()(y)
    y = L.ReLU()(y)
    y = L.Conv2D(8, 1)(y)
    x = L.Add()([x, y])
    x = L.DepthwiseConv2D(5, strides=2, padding="same")(x)
    x = L.Conv2D(12, 1, activation="relu", name="expand")(x)
    y = L.SeparableConv2D(12, 3, padding="same")(x)
    x = L.Add()([x, y])
    x = L.MaxPooling2D(3, strides=2, padding="same")(x)
    x = L.Conv2D(16, 3, strides=2, padding="same", activation="relu")(x)
    x = L.GlobalAveragePooling2D()(x)
    return keras.Model(i, L.Dense(4)(x))


def se_model(size=24):
    """A squeeze-and-excitation gate on an early map: global context before the end."""
    keras.utils.set_random_seed(2)
    i = keras.Input((size, size, 3))
    x = L.Conv2D(8, 3, padding="same", activation="relu")(i)
    g = L.GlobalAveragePooling2D(keepdims=True)(x)
    g = L.Conv2D(8, 1, activation="sigmoid")(g)
    x = L.Multiply()([x, g])
    x = L.Conv2D(8, 3, strides=2, padding="same")(x)
    x = L.GlobalAveragePooling2D()(x)
    return keras.Model(i, L.Dense(3)(x))


def upsampling_model(size=16):
    keras.utils.set_random_seed(3)
    i = keras.Input((size, size, 3))
    x = L.Conv2D(4, 3, padding="same")(i)
    x = L.UpSampling2D()(x)
    x = L.Conv2D(4, 3, strides=2, padding="same")(x)
    return keras.Model(i, L.Dense(3)(L.Flatten()(x)))


class Subclassed(keras.Model):
    def __init__(self):
        super().__init__()
        self.conv = L.Conv2D(4, 3, padding="same")
        self.pool = L.GlobalAveragePooling2D()
        self.dense = L.Dense(3)

    def call(self, x):
        return self.dense(self.pool(self.conv(x)))


def images(size, n=2, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (n, size, size, 3), dtype=np.uint8)


def both(bundle, imgs, target=0, **kw):
    full = A.occlusion(bundle, imgs, target, inference="full", **kw)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no fallback on these models
        inc, info = A.occlusion(bundle, imgs, target, inference="incremental", return_info=True, **kw)
    assert info["fallback"] is None and info["inference"] == "incremental"
    assert info["theoretical_saving"] > 1.0  # some layers really ran on windows
    return full, inc


class LayerScale(L.Layer):
    """ConvNeXt's per-channel scale ``x * gamma``."""

    def build(self, shape):
        self.gamma = self.add_weight(shape=(shape[-1],), initializer="random_normal", name="gamma")

    def call(self, x):
        return x * self.gamma


def convnext_like(size=32):
    """ConvNeXt-shaped: a patchify stem, a grouped 7x7 depthwise conv, LayerNorm, the 1x1
    convolutions as Dense layers on the map, a LayerScale and the residual as ``x + y``
    (an operator on Keras tensors, not an Add layer)."""
    keras.utils.set_random_seed(4)
    i = keras.Input((size, size, 3))
    x = L.Conv2D(8, 2, strides=2)(i)
    x = L.LayerNormalization(epsilon=1e-6)(x)
    y = L.Conv2D(8, 7, padding="same", groups=8)(x)
    y = L.LayerNormalization(epsilon=1e-6, beta_initializer="random_normal")(y)
    y = L.Dense(16, activation="gelu")(y)
    y = LayerScale()(L.Dense(8)(y))
    x = x + y
    x = L.Conv2D(12, 2, strides=2)(x)
    return keras.Model(i, L.Dense(3)(L.GlobalAveragePooling2D()(x)))


def nasnet_like(size=32):
    """NASNet's cell entry: zero padding then a crop that shifts the map by one pixel,
    concatenated with the uncropped branch (the crop cuts part of a patch's window)."""
    keras.utils.set_random_seed(6)
    i = keras.Input((size, size, 3))
    x = L.Conv2D(8, 3, strides=2, padding="same", activation="relu")(i)
    p = L.ZeroPadding2D(((0, 1), (0, 1)))(x)
    p = L.Cropping2D(((1, 0), (1, 0)))(p)
    p = L.AveragePooling2D(1, strides=2)(p)
    q = L.AveragePooling2D(1, strides=2)(x)
    x = L.Concatenate()([p, q])
    x = L.Conv2D(8, 3, padding="same")(x)
    return keras.Model(i, L.Dense(3)(L.GlobalAveragePooling2D()(x)))


def segmenter_like(size=32):
    """A segmentation net whose last convolution fuses the softmax: tfviz explains its
    logits through a linear twin of that convolution (BypassActivation)."""
    keras.utils.set_random_seed(5)
    i = keras.Input((size, size, 3))
    x = L.Conv2D(8, 3, padding="same", activation="relu")(i)
    x = L.MaxPooling2D(2)(x)
    x = L.Conv2D(8, 3, padding="same", activation="relu")(x)
    return keras.Model(i, L.Conv2D(3, 3, padding="same", activation="softmax")(x))


@pytest.mark.parametrize("make, size, patch, stride", [(vgg_like, 32, 6, 3), (lite_like, 40, 8, 5),
                                                       (convnext_like, 32, 6, 4), (segmenter_like, 32, 6, 4),
                                                       (nasnet_like, 32, 5, 3)])
def test_incremental_equals_full(make, size, patch, stride):
    bundle = load_model(make(size), preprocess="0-1")
    full, inc = both(bundle, images(size), patch=patch, stride=stride, resample=False)
    assert full.shape == inc.shape and np.abs(full).max() > 1e-4
    np.testing.assert_allclose(inc, full, rtol=1e-4, atol=1e-5 * np.abs(full).max())


def test_incremental_blur_fill_unit_target_and_probability():
    """Per-pixel fill (blur), a unit target inside the graph (its map comes back whole),
    probability scores."""
    bundle = load_model(lite_like(40), preprocess="0-1")
    imgs = images(40, n=1, seed=5)
    full, inc = both(bundle, imgs, "expand:3", patch=7, stride=4, fill="blur", resample=False)
    np.testing.assert_allclose(inc, full, rtol=1e-4, atol=1e-5 * np.abs(full).max())
    full, inc = both(bundle, imgs, 1, patch=7, stride=4, score="probability")
    np.testing.assert_allclose(inc, full, rtol=1e-4, atol=1e-6)


def test_theoretical_saving_by_hand():
    """8x8x3 input, patch 2, stride 2 (rows/cols at 0, 2, 4, 6):
    conv a: 3x3 'same', 2 filters: full 8*8 * 2*9*3 = 3456 MACs; a patch [t, t+2) changes
        outputs [t-1, t+3) -> at most 4 per axis -> 4*4 * 54 = 864.
    max pool 2: [t-1, t+3) -> [floor((t-1)/2), ceil((t+3)/2)) -> at most 3 of 4 per axis.
    conv b: 3x3 'valid' on 4x4x2 -> 2x2x4: a 3-wide window covers the whole 2x2 map, so it
        runs in full: 2*2 * 4*9*2 = 288 in both.
    dense: 16 -> 3 = 48 in both.
    full 3456 + 288 + 48 = 3792; incremental 864 + 288 + 48 = 1200."""
    i = keras.Input((8, 8, 3))
    x = L.Conv2D(2, 3, padding="same", use_bias=False)(i)
    x = L.MaxPooling2D(2)(x)
    x = L.Conv2D(4, 3, padding="valid", name="b")(x)
    model = keras.Model(i, L.Dense(3)(L.Flatten()(x)))
    got = theoretical_saving(load_model(model, preprocess="0-1"), patch=2, stride=2)
    assert got["full_macs"] == 3792 and got["incremental_macs"] == 1200
    assert got["saving"] == pytest.approx(3792 / 1200)
    assert got["switch_layer"] == "b"


@pytest.mark.parametrize("make, size, why", [(se_model, 24, "global-context"), (upsampling_model, 16, "UpSampling2D"),
                                             (Subclassed, 16, "subclassed")])
def test_fallback_warns_once_and_matches_full(make, size, why):
    if make is Subclassed:  # wrapped in a Functional model, as tfviz needs one to load it
        inp = keras.Input((size, size, 3))
        model = keras.Model(inp, Subclassed()(inp))
    else:
        model = make(size)
    bundle = load_model(model, preprocess="0-1")
    imgs = images(size, n=1)
    full = A.occlusion(bundle, imgs, 0, patch=6, stride=6, inference="full")
    with pytest.warns(UserWarning, match=why) as rec:
        got, info = A.occlusion(bundle, imgs, 0, patch=6, stride=6, return_info=True)
    assert len([w for w in rec if "falling back" in str(w.message)]) == 1
    assert why in info["fallback"]
    np.testing.assert_allclose(got, full, rtol=1e-5, atol=1e-6)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # once per model and reason
        A.occlusion(bundle, imgs, 0, patch=6, stride=6, inference="incremental")
    assert np.isnan(theoretical_saving(bundle, patch=6, stride=6)["saving"])


@pytest.mark.parametrize("bad", ["fast", "", None, 1, "Incremental-ish"])
def test_bad_inference_values(bad):
    bundle = load_model(vgg_like(32), preprocess="0-1")
    with pytest.raises(AttributionError, match="'incremental', 'approximate', 'full'"):
        A.occlusion(bundle, images(32, n=1), 0, patch=8, inference=bad)


def blob_model(size=32):
    """A smooth toy: positive averaging filters, so the score is a smooth function of where
    the bright blob is and occluding it drops the score most."""
    i = keras.Input((size, size, 3))
    x = L.Conv2D(4, 3, padding="same", activation="relu", kernel_initializer=keras.initializers.Constant(0.05))(i)
    x = L.AveragePooling2D(2)(x)
    x = L.Conv2D(4, 3, padding="same", activation="relu", kernel_initializer=keras.initializers.Constant(0.05))(x)
    x = L.Conv2D(4, 3, strides=2, padding="same", kernel_initializer=keras.initializers.Constant(0.05))(x)
    x = L.GlobalAveragePooling2D()(x)
    return keras.Model(i, L.Dense(2, kernel_initializer="ones")(x))


def test_approximate_fidelity_on_toy():
    size = 32
    yy, xx = np.mgrid[:size, :size]
    blob = np.exp(-((yy - 11) ** 2 + (xx - 20) ** 2) / 30.0)
    img = (255 * np.repeat(blob[..., None], 3, -1))[None].astype(np.uint8)
    bundle = load_model(blob_model(size), preprocess="0-1")
    exact = A.occlusion(bundle, img, 0, patch=4, stride=2, fill="zero")
    approx, info = A.occlusion(bundle, img, 0, patch=4, stride=2, fill="zero", inference="approximate",
                               tau=0.7, return_info=True)
    assert info["evaluated"] < info["positions"]
    f = fidelity(approx, exact)
    assert f["spearman"] >= 0.95 and f["peak_agrees"]
    same = fidelity(exact, exact)
    assert same["spearman"] == pytest.approx(1.0) and same["peak_agrees"] and same["peak_distance"] == [0.0]


def test_cli_inference_option(capsys, tmp_path):
    code, out, _ = run_cli(["attribute", "--help"], capsys)
    assert code == 0 and "--inference" in out and "incremental" in out
    code, _, err = run_cli(["attribute", "occlusion", "--inference", "sometimes"], capsys)
    assert code == 2 and "incremental" in err
    path = str(tmp_path / "m.keras")
    vgg_like(32).save(path)
    args = ["attribute", "occlusion", "--model", path, "--preprocess", "0-1", "--patch", "8", "--out", str(tmp_path)]
    maps = {}
    for mode in ("full", "incremental"):
        code, out, err = run_cli(args + ["--inference", mode], capsys)
        assert code == 0, err
        npy = [ln for ln in out.splitlines() if ln.endswith(".npy")][0]
        maps[mode] = np.load(npy)
    np.testing.assert_allclose(maps["incremental"], maps["full"], rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("bad, why", [(dict(coarse=0), "coarse must be a positive integer"),
                                      (dict(coarse="two"), "coarse an integer"),
                                      (dict(refine=1.5), "refine must be a fraction"),
                                      (dict(tau=float("nan")), "tau must be a finite")])
def test_bad_approximate_settings(bad, why):
    """Settings approximate mode cannot work with are one AttributionError (still a
    ValueError), not a crash deep inside (range() with step 0, np.quantile ...)."""
    bundle = load_model(vgg_like(32), preprocess="0-1")
    with pytest.raises(AttributionError, match=why):
        A.occlusion(bundle, images(32, n=1), 0, patch=8, inference="approximate", **bad)
    A.occlusion(bundle, images(32, n=1), 0, patch=8, inference="incremental", **bad)  # ignored there


def test_a_model_of_any_input_size_falls_back_with_its_warning():
    # keras.applications' MobileNetV3 is built for (None, None, 3): no plan for one size
    from tfviz.attribution import occlusion
    inp = keras.Input((None, None, 3))
    h = keras.layers.Conv2D(4, 3, padding="same", activation="relu")(inp)
    m = keras.Model(inp, keras.layers.Dense(3)(keras.layers.GlobalAveragePooling2D()(h)))
    b = load_model(m, preprocess="0-1", input_size=(32, 32))
    img = np.random.default_rng(0).integers(0, 256, (1, 32, 32, 3)).astype(np.uint8)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        inc = occlusion(b, img, 0, patch=8)
    assert any("takes images of any size" in str(w.message) for w in caught)
    np.testing.assert_allclose(inc, occlusion(b, img, 0, patch=8, inference="full"), rtol=1e-6)


def test_auto_runs_full_where_incremental_would_save_too_little():
    """``inference="auto"`` (the default): incremental on a plain conv stack (it saves
    several times the multiply-adds), full -- without a warning, the reason in the info --
    where a first 15x15 kernel makes every window cover its map (saving ~1x)."""
    wide_in = keras.Input((16, 16, 3))
    wide = keras.Model(wide_in, L.Dense(3)(L.GlobalAveragePooling2D()(L.Conv2D(4, 15, padding="same")(wide_in))))
    for model, size, want in [(vgg_like(32), 32, "incremental"), (wide, 16, "full")]:
        bundle = load_model(model, preprocess="0-1")
        imgs = images(size, n=1)
        saving = theoretical_saving(bundle, patch=6, stride=3)["saving"]
        assert (saving >= A.incremental.MIN_SAVING) == (want == "incremental"), saving
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            got, info = A.occlusion(bundle, imgs, 0, patch=6, stride=3, return_info=True)
        assert info["inference"] == want
        assert (info["fallback"] is None) == (want == "incremental")
        if want == "full":
            assert "would save only" in info["fallback"]
        full = A.occlusion(bundle, imgs, 0, patch=6, stride=3, inference="full")
        np.testing.assert_allclose(got, full, rtol=1e-4, atol=1e-5 * np.abs(full).max())
