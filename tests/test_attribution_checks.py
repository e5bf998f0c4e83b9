"""Trust checks (deletion / insertion AUC, model randomization), bad input, rendering."""
import numpy as np
import pytest

from test_attribution import H, W, bundle_of, linear_model, random_images, region_model, small_cnn
from tfviz import attribution as A
from tfviz.utils import ImageError, UnknownClassError, UnknownLayerError


# --------------------------------------------------------------------------- deletion / insertion
def test_deletion_and_insertion_reward_the_right_map():
    b = bundle_of(region_model((2, 6, 2, 6)))
    img = np.full((2, 12, 12, 3), 220, np.uint8)
    good = np.zeros((2, 12, 12), np.float32)
    good[:, 2:6, 2:6] = 1.0                     # the region the score depends on
    bad = 1.0 - good                            # everything else first
    kw = dict(steps=24, score="logit")
    d_good, c_good = A.deletion_auc(b, img, 0, good, return_curves=True, **kw)
    d_bad = A.deletion_auc(b, img, 0, bad, **kw)
    assert np.all(d_good < d_bad)
    assert c_good.shape == (2, 25)
    assert c_good[0, 0] == pytest.approx(220 / 255, rel=1e-4)   # nothing deleted yet
    assert c_good[0, -1] == pytest.approx(0.0, abs=1e-6)        # all black
    # the score falls linearly while the region's 16 pixels go (16 of 144 = first 1/9)
    assert c_good[0, 3] == pytest.approx(0.0, abs=1e-5)
    i_good = A.insertion_auc(b, img, 0, good, start="black", **kw)
    i_bad = A.insertion_auc(b, img, 0, bad, start="black", **kw)
    assert np.all(i_good > i_bad)
    # probabilities by default: after k of the 144 pixels (the region's 16 first), both scores
    # are known -- score 0 from the region's pixels left, score 1 from all pixels left
    p, c = A.deletion_auc(b, img, 0, good, return_curves=True)
    k = np.round(np.linspace(0, 144, 51))
    s0 = 220 / 255 * (16 - np.minimum(k, 16)) / 16
    s1 = 220 / 255 * (144 - k) / 144
    want = 1 / (1 + np.exp(s1 - s0))
    np.testing.assert_allclose(c, np.broadcast_to(want, c.shape), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(p, ((want.sum() - (want[0] + want[-1]) / 2) / 50), rtol=1e-5)  # trapezoid on [0, 1]
    # 3-channel maps and low-resolution maps are accepted
    A.deletion_auc(b, img, 0, np.repeat(good[..., None], 3, -1), steps=4)
    A.insertion_auc(b, img, 0, good[:, ::3, ::3], steps=4)
    with pytest.raises(A.AttributionError, match="do not match"):
        A.deletion_auc(b, img, 0, good[:1].repeat(3, 0))


def test_maps_of_a_trained_like_model_beat_random_maps():
    """On the small CNN, a saliency ranking deletes the score faster than a random one."""
    b = bundle_of(small_cnn(seed=4))
    imgs = random_images(4, seed=12)
    sal = A.integrated_gradients(b, imgs, 1, steps=16)
    rnd = np.random.default_rng(0).random(sal.shape).astype(np.float32)
    d_ig = A.deletion_auc(b, imgs, 1, sal, score="logit", steps=20)
    d_rnd = A.deletion_auc(b, imgs, 1, rnd, score="logit", steps=20)
    assert d_ig.mean() < d_rnd.mean()


# --------------------------------------------------------------------------- randomization
def test_randomization_check_works_on_a_clone():
    m = small_cnn(seed=2)
    b = bundle_of(m)
    imgs = random_images(3, seed=13)
    before = [w.copy() for w in m.get_weights()]
    out = m.predict(b.preprocess(imgs), verbose=0)
    res = A.randomization_check(b, imgs, 2, A.saliency, layers=3)
    assert res.layers == ["predictions", "conv2", "conv1"]
    assert res.spearman.shape == (3, 3)
    from scipy.stats import spearmanr

    from tfviz.attribution.metrics import spearman
    a, b2 = np.random.default_rng(1).random((2, 16, 16))
    b2[:4] = 0.5                                                      # ties: average ranks
    assert spearman(a, b2) == pytest.approx(spearmanr(a.ravel(), b2.ravel())[0], abs=1e-12)
    assert res.final < 0.9                                  # saliency depends on the weights
    assert all(np.array_equal(p, q) for p, q in zip(before, m.get_weights()))
    assert np.array_equal(out, m.predict(b.preprocess(imgs), verbose=0))
    # repeatable (seeded initializers), and the clone is reset for every check
    again = A.randomization_check(b, imgs, 2, "saliency", layers=3)
    np.testing.assert_allclose(again.spearman, res.spearman, atol=1e-6)
    # by layer names, with method options passed through
    named = A.randomization_check(b, imgs, 2, "smoothgrad", layers=["predictions"], samples=2)
    assert named.layers == ["predictions"] and named.spearman.shape == (1, 3)
    assert "re-init predictions" in str(named)
    with pytest.raises(UnknownLayerError, match="conv"):
        A.randomization_check(b, imgs, 2, "saliency", layers=["nope"])
    with pytest.raises(A.AttributionError, match="method"):
        A.randomization_check(b, imgs, 2, "salency")


def test_randomization_of_an_edge_detector_stays_correlated():
    """A map that does not depend on the top layer's weights (here: gradient of a unit
    below it) keeps a rank correlation of 1 -- the check is able to say "not this"."""
    b = bundle_of(small_cnn(seed=3))
    imgs = random_images(2, seed=14)
    res = A.randomization_check(b, imgs, "conv1:1", "saliency", layers=1)
    assert res.layers == ["predictions"]
    np.testing.assert_allclose(res.spearman, 1.0, atol=1e-6)


def test_trust_report_rows():
    b = bundle_of(small_cnn(seed=5))
    imgs = random_images(2, seed=15)
    opts = {"occlusion": {"patch": 4, "stride": 4}}
    rows = A.trust_report(b, imgs, None, ["saliency", "grad_cam", A.occlusion], steps=8, layers=2,
                          method_options=opts)
    assert [r["method"] for r in rows] == ["saliency", "grad_cam", "occlusion"]
    top = list(b.predict(imgs).argmax(1))
    for r in rows:   # each figure is the check's own: mean deletion / insertion AUC, the cascade's last row
        kw = opts.get(r["method"], {})
        maps = A.METHODS[r["method"]](b, imgs, top, **kw)
        np.testing.assert_allclose(r["maps"], maps, rtol=1e-6, atol=1e-9)
        assert r["deletion"] == pytest.approx(A.deletion_auc(b, imgs, top, maps, steps=8).mean(), rel=1e-5)
        assert r["insertion"] == pytest.approx(A.insertion_auc(b, imgs, top, maps, steps=8).mean(), rel=1e-5)
        rnd = A.randomization_check(b, imgs, top, r["method"], layers=2, **kw)
        assert r["randomization"] == pytest.approx(rnd.final, abs=1e-6) and r["randomized_layers"] == rnd.layers


# --------------------------------------------------------------------------- bad input
def test_bad_targets():
    b = bundle_of(small_cnn(), classes=["tabby cat", "tiger cat", "espresso", "rocket"])
    imgs = random_images(2)
    with pytest.raises(UnknownClassError, match=r"class index 7 out of range.*0\.\.3"):
        A.saliency(b, imgs, 7)
    with pytest.raises(UnknownClassError, match="did you mean 'tabby cat'"):
        A.saliency(b, imgs, "taby cat")
    with pytest.raises(UnknownLayerError, match="conv1"):
        A.saliency(b, imgs, "conv9:1")
    with pytest.raises(UnknownLayerError, match="valid: .*relu2"):
        A.saliency(b, imgs, ("nosuchlayer", 0))
    with pytest.raises(A.UnitChannelError, match="channel 6 out of range.*6 channels"):
        A.saliency(b, imgs, "conv1:6")
    with pytest.raises(A.UnitChannelError, match="position"):
        A.saliency(b, imgs, ("conv1", 0, 16, 0))
    with pytest.raises(A.TargetError, match="3 targets given for 2 images"):
        A.saliency(b, imgs, [0, 1, 2])
    with pytest.raises(A.TargetError, match="spatial"):
        A.saliency(b, imgs, ("gap", 0, 1, 1))
    with pytest.raises(A.TargetError):
        A.saliency(b, imgs, 1.5)
    # all are IndexError / KeyError / ValueError too
    assert issubclass(A.UnitChannelError, IndexError)


def test_bad_occlusion_parameters():
    b = bundle_of(small_cnn())
    imgs = random_images(1)
    with pytest.raises(A.PatchSizeError, match="larger than the image 16x16"):
        A.occlusion(b, imgs, 0, patch=17)
    with pytest.raises(A.PatchSizeError):
        A.occlusion(b, imgs, 0, patch=0)
    with pytest.raises(A.StrideError, match="positive"):
        A.occlusion(b, imgs, 0, patch=4, stride=0)
    with pytest.raises(A.StrideError):
        A.occlusion(b, imgs, 0, patch=4, stride=-2)
    with pytest.raises(A.AttributionError, match="unknown fill"):
        A.occlusion(b, imgs, 0, patch=4, fill="purple")
    with pytest.raises(A.AttributionError, match="unknown baseline"):
        A.integrated_gradients(b, imgs, 0, baseline="purple")
    with pytest.raises(A.AttributionError, match="steps"):
        A.integrated_gradients(b, imgs, 0, steps=0)
    with pytest.raises(A.AttributionError, match="samples"):
        A.smoothgrad(b, imgs, 0, samples=0)


def test_grad_cam_without_spatial_conv_layer():
    b = bundle_of(linear_model())
    with pytest.raises(A.NoSpatialLayerError, match="no convolutional layer|has none"):
        A.grad_cam(b, random_images(1, H, W), 0)
    b2 = bundle_of(small_cnn())
    with pytest.raises(A.NoSpatialLayerError, match="e.g. .*relu2"):
        A.grad_cam(b2, random_images(1), 0, layer="gap")
    with pytest.raises(UnknownLayerError):
        A.grad_cam(b2, random_images(1), 0, layer="nope")


def sqrt_model():
    """Score = sum of sqrt(pixel): the gradient at a black pixel is infinite."""
    import keras
    inp = keras.Input((H, W, 3))
    x = keras.layers.Lambda(lambda t: keras.ops.sqrt(t), name="sqrt")(inp)
    out = keras.layers.Dense(2)(keras.layers.Flatten()(x))
    return keras.Model(inp, out, name="sqrt_model")


def test_non_finite_gradients_are_an_error():
    b = bundle_of(sqrt_model())
    black = np.zeros((2, H, W, 3), np.uint8)
    with pytest.raises(A.NonFiniteGradientError, match="NaN or infinite"):
        A.saliency(b, black, 0)
    with pytest.raises(A.NonFiniteGradientError):
        A.integrated_gradients(b, np.full((1, H, W, 3), 100, np.uint8), 0, baseline="black", steps=4)
    assert issubclass(A.NonFiniteGradientError, FloatingPointError)
    A.saliency(b, np.full((1, H, W, 3), 100, np.uint8), 0)   # fine away from 0


def test_bad_images():
    b = bundle_of(small_cnn())
    with pytest.raises(ImageError, match="no such file"):
        A.saliency(b, ["/no/such/image.png"], 0)


def test_subclassed_models_need_a_graph_for_guided_backprop():
    import keras

    class Net(keras.Model):
        def __init__(self):
            super().__init__()
            self.d = keras.layers.Dense(3, activation="relu")

        def call(self, x):
            return self.d(keras.ops.reshape(x, (-1, H * W * 3)))

    net = Net()
    net(np.zeros((1, H, W, 3), np.float32))
    b = bundle_of(_functional_wrapper(net))
    with pytest.raises(A.UnsupportedModelError, match="subclassed"):
        A.guided_backprop(b, random_images(1, H, W), 0)
    assert A.saliency(b, random_images(1, H, W), 0).shape == (1, H, W)


def _functional_wrapper(net):
    import keras
    inp = keras.Input((H, W, 3))
    return keras.Model(inp, net(inp), name="wrapper")


# --------------------------------------------------------------------------- rendering
def test_render_helpers():
    b = bundle_of(small_cnn())
    imgs = random_images(2)
    gb = A.guided_backprop(b, imgs, 1)
    pics = A.render_gradient(gb)
    assert pics.shape == (2, 16, 16, 3) and pics.dtype == np.uint8
    np.testing.assert_array_equal(pics[1], A.render_gradient(gb[1]))
    # zero gradient renders mid-gray
    assert np.all(A.render_gradient(np.zeros((4, 4, 3)))[..., 0] == 128)
    # by hand: each channel centred (channel 1's constant 5 goes), divided by the std of all
    # six values (sqrt(2/6)), times the contrast 0.15, around 0.5
    g = np.array([[[1.0, 5.0, 0.0], [-1.0, 5.0, 0.0]]])
    hi = int((0.5 + 0.15 / np.sqrt(2 / 6)) * 255 + 0.5)
    np.testing.assert_array_equal(A.render_gradient(g), [[[hi, 128, 128], [255 - hi, 128, 128]]])
    np.testing.assert_array_equal(A.render_gradient(g, mode="positive")[0, 1], [0, 255, 0])   # 5 at the 99.5th pct
    for mode in ("positive", "abs"):
        assert A.render_gradient(gb[0], mode=mode).shape == (16, 16, 3)
    sal = A.saliency(b, imgs, 1)
    assert A.render_map(sal[0]).shape == (16, 16, 3)
    signed = np.linspace(-1, 1, 16 * 16).reshape(16, 16)
    mid = A.render_map(signed)[8, 0]
    assert tuple(mid) == pytest.approx((247, 247, 247), abs=10)   # zero is white in the diverging map
    pan = A.panel(imgs[0], sal[0], "caption")
    assert pan.ndim == 3 and pan.shape[1] >= 3 * 16
    fig = A.comparison_figure(imgs[0], {"saliency": sal[0], "guided_backprop": gb[0],
                                        "grad_cam": A.grad_cam(b, imgs, 1)[0]}, title="t", size=32)
    assert fig.dtype == np.uint8 and fig.shape[2] == 3


def test_grad_cam_default_layer_is_the_last_conv_resolution():
    """VGG-style: conv -> pool -> classifier; the default is the conv's output, not the
    smaller pooled map (and not a dense layer)."""
    import keras
    from tfviz.attribution.cam import default_layer
    L = keras.layers
    inp = keras.Input((16, 16, 3))
    x = L.Conv2D(4, 3, padding="same", activation="relu", name="block1_conv")(inp)
    x = L.Conv2D(4, 3, padding="same", activation="relu", name="block2_conv")(x)
    x = L.BatchNormalization(name="block2_bn")(x)
    x = L.MaxPooling2D(2, name="block2_pool")(x)
    out = L.Dense(3)(L.Flatten()(x))
    b = bundle_of(keras.Model(inp, out))
    assert default_layer(b) == "block2_bn"
    assert A.grad_cam(b, random_images(1), 0).shape == (1, 16, 16)


def test_reinitialize_uses_the_layers_initializer_and_says_when_it_cannot():
    import warnings

    import keras

    from tfviz.attribution.metrics import reinitialize

    def sevens(shape, dtype=None):  # a plain function initializer (no get_config)
        return np.full(shape, 7.0, "float32")

    def broken(shape, dtype=None, extra_required=None):
        raise TypeError("needs extra_required")

    good = keras.layers.Dense(3, kernel_initializer=sevens, bias_initializer="ones")
    good.build((None, 4))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        reinitialize(good, seed=1)
    np.testing.assert_array_equal(good.kernel.numpy(), np.full((4, 3), 7.0))
    np.testing.assert_array_equal(good.bias.numpy(), np.ones(3))
    bad = keras.layers.Dense(3, kernel_initializer="zeros")
    bad.build((None, 4))
    bad.kernel_initializer = broken  # fails only when the check re-draws the weights
    with pytest.warns(UserWarning, match=r"initializer of .*kernel failed .*TypeError.*defaults"):
        reinitialize(bad, seed=1)
    k = bad.kernel.numpy()
    assert np.abs(k).max() <= np.sqrt(6.0 / 7) and k.std() > 0.1  # Glorot-uniform, not the old values
