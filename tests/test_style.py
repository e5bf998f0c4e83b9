"""Feature inversion, texture synthesis, style transfer and the L-BFGS optimizer, on tiny
models built here (answers computed by hand or with numpy)."""
import numpy as np
import pytest

import tfviz
from tfviz.synthesis import (LBFGS, SynthesisError, gram_matrix, invert_features, loss_network, optimize,
                             style_transfer, synthesize_texture, total_variation)
from tfviz.synthesis import objectives as obj
from tfviz.synthesis.inversion import psnr
from tfviz.synthesis.lossnet import check_fits
from tfviz.synthesis.style import from_yiq, to_yiq
from tfviz.utils import LayerKindError, UnknownLayerError


def conv_model(size=32, filters=16, seed=0):
    import keras
    keras.utils.set_random_seed(seed)
    inp = keras.Input((size, size, 3))
    x = keras.layers.Conv2D(filters, 3, padding="same", activation="relu", name="conv1")(inp)
    x = keras.layers.Conv2D(24, 3, strides=2, padding="same", activation="relu", name="conv2")(x)
    x = keras.layers.Conv2D(32, 3, strides=2, padding="same", activation="relu", name="conv3")(x)
    x = keras.layers.GlobalAveragePooling2D(name="gap")(x)
    x = keras.layers.Dense(3, name="logits")(x)
    return keras.Model(inp, x, name="convs")


@pytest.fixture(scope="module")
def net():
    return tfviz.load_model(conv_model(), preprocess="0-1", class_names=["a", "b", "c"])


def smooth_image(h=32, w=32, seed=0):
    """A smooth colour image (sums of a few low-frequency waves)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w] / max(h, w)
    chans = []
    for _ in range(3):
        a, b, c, d = rng.uniform(1, 4, 4)
        chans.append(0.5 + 0.25 * np.sin(2 * np.pi * (a * yy + b * xx) + c) + 0.2 * np.cos(2 * np.pi * d * xx))
    return (np.clip(np.stack(chans, -1), 0, 1) * 255).astype(np.uint8)


def stripes(h=32, w=32, period=6, colors=((220, 40, 40), (30, 30, 200))):
    img = np.zeros((h, w, 3), np.uint8)
    band = (np.arange(w) // (period // 2)) % 2
    img[:, band == 0] = colors[0]
    img[:, band == 1] = colors[1]
    return img


# ------------------------------------------------------------------ the maths
def test_gram_matrix_against_numpy_and_by_hand():
    f = np.arange(2 * 2 * 2, dtype=np.float32).reshape(1, 2, 2, 2)  # channels (0,2,4,6) and (1,3,5,7)
    g = gram_matrix(f).numpy()[0]
    by_hand = np.array([[0 + 4 + 16 + 36, 0 + 6 + 20 + 42], [0 + 6 + 20 + 42, 1 + 9 + 25 + 49]]) / 4.0
    np.testing.assert_allclose(g, by_hand)
    x = np.random.default_rng(0).normal(size=(3, 5, 7, 4)).astype(np.float32)
    want = np.einsum("nhwc,nhwd->ncd", x, x) / 35.0
    np.testing.assert_allclose(gram_matrix(x).numpy(), want, rtol=1e-5, atol=1e-5)


def test_total_variation_against_numpy(net):
    x = np.random.default_rng(1).normal(size=(2, 6, 5, 3)).astype(np.float32)
    want = (np.sum((x[:, 1:] - x[:, :-1]) ** 2, axis=(1, 2, 3)) + np.sum((x[:, :, 1:] - x[:, :, :-1]) ** 2,
                                                                         axis=(1, 2, 3))) / 30.0
    ctx = obj.Context(image=x, raw_image=x)
    total, values = total_variation(2.0).bind(net, 2)(ctx)
    np.testing.assert_allclose(values[0].numpy(), -want, rtol=1e-5)
    np.testing.assert_allclose(total.numpy(), -2 * want, rtol=1e-5)
    assert total_variation().bind(net, 1)(obj.Context(image=x[:1] * 0, raw_image=x[:1] * 0))[0].numpy()[0] == 0


def test_gram_match_normalized_starts_at_one_and_transforms_apply(net):
    f = np.random.default_rng(2).uniform(0, 3, (1, 4, 4, 16)).astype(np.float32)
    target = gram_matrix(f).numpy()
    term = obj.gram_match("conv1", target, normalize=True).bind(net, 1)
    zero = obj.Context(image=None, raw_image=None, features={"conv1": np.zeros_like(f)})
    np.testing.assert_allclose(term(zero)[0].numpy(), [-1.0], rtol=1e-5)   # ||0 - G||^2 / ||G||^2
    same = obj.Context(image=None, raw_image=None, features={"conv1": f})
    assert abs(term(same)[0].numpy()[0]) < 1e-6
    soft = obj.feature_transform("softmax")(f).numpy()
    e = np.exp(f.reshape(1, -1) - f.max())
    np.testing.assert_allclose(soft.reshape(1, -1), e / e.sum() * f.size, rtol=1e-4)
    with pytest.raises(obj.ObjectiveError, match="unknown feature transform 'softmx'; did you mean 'softmax'"):
        obj.feature_transform("softmx")


def test_yiq_round_trip():
    img = np.random.default_rng(3).integers(0, 256, (8, 8, 3)).astype(np.uint8)
    assert np.abs(from_yiq(to_yiq(img)).astype(int) - img).max() <= 1
    np.testing.assert_allclose(to_yiq(np.full((1, 1, 3), 200))[0, 0], [200, 0, 0], atol=1e-3)


# ------------------------------------------------------------------ L-BFGS
def test_lbfgs_in_optimize_matches_target_and_stays_in_range(net):
    target = net.preprocess(smooth_image()[None])
    objective = -1.0 * obj.Objective.custom(
        lambda ctx: __import__("tensorflow").reduce_mean((ctx.raw_image - target) ** 2, axis=[1, 2, 3]), name="mse")
    res = optimize(net, objective, param="pixel", optimizer="lbfgs", steps=15)
    # a quadratic: solved in a few iterations, then scipy stops by itself (not an error)
    assert res.extra["optimizer"] == "LBFGS" and 1 < res.steps < 15 and len(res.history) == res.steps + 1
    # zero up to float32 rounding: the pixels are held in grey levels, the target in model input (0..1)
    assert res.history[0] < res.history[-1] == pytest.approx(0, abs=1e-12) and res.stopped is None
    assert res.extra["final_objective"] == pytest.approx(0, abs=1e-12)
    # scipy stopped by itself, not at a limit: CONVERGENCE, or ABNORMAL once float32 rounding
    # leaves its line search nothing to gain
    assert res.extra["message"].startswith(("CONVERGENCE", "ABNORMAL"))
    assert np.abs(res.image.astype(int) - smooth_image()).max() <= 1
    assert res.extra["evaluations"] >= res.steps and res.extra["traces"] == 1
    # the box bounds keep pixels valid while pushing toward an out-of-range target
    push = 1.0 * obj.Objective.custom(lambda ctx: __import__("tensorflow").reduce_mean(ctx.raw_image, [1, 2, 3]))
    for opt in (LBFGS(memory=5), LBFGS(memory=5, box=True)):   # free pixels, clipped result; exact bounds
        r = optimize(net, push, param="pixel", optimizer=opt, steps=5)
        assert r.x.min() >= 0 and r.x.max() == 1 and r.x.mean() > 0.8, opt   # pushed to the bound, not past it


def test_lbfgs_refuses_random_transforms_and_regularizers(net):
    from tfviz.synthesis import regularizers, transforms
    with pytest.raises(SynthesisError, match="same function at every evaluation"):
        optimize(net, obj.channel("conv1", 0), param="pixel", optimizer="lbfgs", transforms=[transforms.Roll(2)])
    with pytest.raises(SynthesisError, match="same function at every evaluation"):
        optimize(net, obj.channel("conv1", 0), param="pixel", optimizer="lbfgs",
                 regularizers=[regularizers.ClipRange()])
    with pytest.raises(SynthesisError, match="memory must be a positive integer"):
        LBFGS(memory=0)


def test_lbfgs_ctrl_c_and_callback_stop_keep_the_latest_image(net):
    seen = []

    def ctrl_c(step, images, losses):
        seen.append(np.asarray(images).copy())
        if step == 3:
            raise KeyboardInterrupt
    res = optimize(net, obj.channel("conv2", 1), param="pixel", optimizer="lbfgs", steps=20, callbacks=[ctrl_c])
    assert res.interrupted and res.steps == 3 and len(res.history) == 4
    np.testing.assert_array_equal(res.image, seen[-1][0])
    res = optimize(net, obj.channel("conv2", 1), param="pixel", optimizer="lbfgs", steps=20,
                   callbacks=[lambda s, im, ls: s == 2])
    assert not res.interrupted and res.steps == 2 and "callback" in res.stopped


# ------------------------------------------------------------------ inversion
def test_inverting_the_first_conv_layer_reconstructs_the_image(net):
    img = smooth_image()
    res = invert_features(net, img, "conv1", steps=150, tv_weight=0.0, snapshot_every=1000)
    assert res.extra["psnr"] >= 25, res.extra["psnr"]
    assert psnr(res.image, img) == res.extra["psnr"]
    # it started from noise, not from the image
    assert res.history[0] < -0.1 and psnr(res.snapshots[0][1][0], img) < 15
    deep = invert_features(net, img, "conv3", steps=40, tv_weight=0.0)
    assert deep.extra["psnr"] < res.extra["psnr"]


def test_inversion_strip_one_reconstruction_per_layer(net):
    from tfviz.synthesis import inversion_strip
    res = inversion_strip(net, smooth_image(), steps=3, size=32)
    assert res.extra["layers"] == ["conv1", "conv2", "conv3"] == list(loss_network(net).inversion_layers)
    assert res.images.shape == (3, 32, 32, 3) and len(res.extra["psnr"]) == 3 and res.steps == 9
    assert res.extra["strip"].shape[1] == 4 * 32 + 3 * 4


# ------------------------------------------------------------------ texture
def test_texture_any_size_same_seed_same_image(net):
    src = stripes(24, 24)
    a = synthesize_texture(net, src, size=(40, 72), steps=12, seed=5)
    b = synthesize_texture(net, src, size=(40, 72), steps=12, seed=5)
    c = synthesize_texture(net, src, size=(40, 72), steps=12, seed=6)
    assert a.image.shape == (40, 72, 3) and a.extra["source_size"] == (24, 24)
    np.testing.assert_array_equal(a.image, b.image)
    assert np.abs(a.image.astype(int) - c.image).mean() > 1
    assert a.history[-1] > a.history[0]          # the Gram loss fell


# ------------------------------------------------------------------ style transfer
def _style_loss(res):
    return sum(v for k, v in res.losses.items() if k.startswith("gram_match"))


def test_style_loss_falls_over_the_first_lbfgs_iterations(net):
    res = style_transfer(net, smooth_image(24, 32), stripes(), steps=8)
    loss = -_style_loss(res)   # terms are maximized: the loss is their negative
    assert loss[0] > loss[3] > loss[-1], loss
    assert res.image.shape == (24, 32, 3) and res.extra["sizes"] == [(24, 32)]


def test_the_loss_is_the_weighted_sum_of_its_terms(net):
    """content_weight * content + style_weight * (the style layers' weighted mean) +
    tv_weight * TV: at step 0 the objective is that sum of the terms' own values."""
    res = style_transfer(net, smooth_image(24, 32), stripes(), steps=1, init="noise", content_weight=3.0,
                         style_weight=2.0, tv_weight=0.5)
    layers = res.extra["style_layers"]                        # {name: weight}
    assert res.extra["content_layer"] == "conv2" and layers == {"conv1": 1.0, "conv2": 1.0}
    first = {k: float(v[0]) for k, v in res.losses.items()}
    assert set(first) == {"gram_match[conv1]", "gram_match[conv2]", "feature_match[conv2]", "total_variation"}
    style = sum(w * first[f"gram_match[{n}]"] for n, w in layers.items()) / sum(layers.values())
    want = 3.0 * first["feature_match[conv2]"] + 2.0 * style + 0.5 * first["total_variation"]
    assert res.history[0] == pytest.approx(want, rel=1e-5)
    assert min(abs(v) for v in first.values()) > 1e-3       # every term counts


def test_style_scale_changes_the_gram_source_size(net):
    a = style_transfer(net, smooth_image(24, 32), stripes(40, 40), steps=1)
    b = style_transfer(net, smooth_image(24, 32), stripes(40, 40), steps=1, style_scale=2.0)
    assert a.extra["style_sizes"] == [[(32, 32)]] and b.extra["style_sizes"] == [[(64, 64)]]
    assert not np.array_equal(a.image, b.image)


def test_blending_with_weights_one_zero_equals_one_style(net):
    content = smooth_image(24, 32)
    s1, s2 = stripes(), stripes(colors=((20, 200, 20), (250, 250, 250)))
    alone = style_transfer(net, content, [s1], steps=6)
    blend = style_transfer(net, content, [s1, s2], style_weights=(1, 0), steps=6)
    np.testing.assert_array_equal(alone.image, blend.image)
    mixed = style_transfer(net, content, [s1, s2], style_weights=(1, 1), steps=6)
    assert not np.array_equal(alone.image, mixed.image)


def test_preserve_colors_keeps_the_content_chroma(net):
    content = smooth_image(24, 32, seed=4)
    res = style_transfer(net, content, stripes(), preserve_colors=True, steps=10, style_weight=100)
    out, c = to_yiq(res.image), to_yiq(content)
    assert np.abs(out[..., 1:] - c[..., 1:]).mean() < 1.5           # I and Q: the content's
    plain = style_transfer(net, content, stripes(), steps=10, style_weight=100)
    assert np.abs(to_yiq(plain.image)[..., 1:] - c[..., 1:]).mean() > 3   # without it the colours move
    assert np.abs(out[..., 0] - c[..., 0]).mean() > 1                # and the luminance did change


def test_coarse_to_fine_and_init(net):
    res = style_transfer(net, smooth_image(30, 40), stripes(), sizes=(20, 40), steps=(3, 2), init="noise")
    assert res.extra["sizes"] == [(15, 20), (30, 40)] and res.image.shape == (30, 40, 3) and res.steps == 5
    res = style_transfer(net, smooth_image(30, 40), stripes(), steps=2, init="style", optimizer="adam")
    assert res.extra["optimizer"] == "Adam"


@pytest.mark.parametrize("kwargs, err, message", [
    (dict(style_layers=["gap"]), LayerKindError, "no spatial output"),
    (dict(style_layers=["conv9"]), UnknownLayerError, "unknown layer 'conv9'"),
    (dict(style_weights=(1, 2)), SynthesisError, "2 style weights given for 1 style images"),
    (dict(style_weights=(-1,)), SynthesisError, "a style weight must be zero or positive"),
    (dict(style_weights=(0,)), SynthesisError, "must not all be zero"),
    (dict(sizes=(0,)), SynthesisError, "sizes must be positive integers"),
    (dict(style_weight=0), SynthesisError, "style_weight must be positive"),
    (dict(style_scale=-1), SynthesisError, "style_scale must be positive"),
    (dict(init="photo"), SynthesisError, "init must be 'content', 'style' or 'noise'"),
    (dict(sizes=(4000,), memory_limit=2 << 30), SynthesisError, "the largest that fits is about"),
])
def test_bad_style_arguments_say_what_is_wrong(net, kwargs, err, message):
    with pytest.raises(err, match=message):
        style_transfer(net, smooth_image(), stripes(), steps=1, **kwargs)


def test_memory_estimate_refuses_and_names_a_size_that_fits(net):
    with pytest.raises(SynthesisError) as e:
        check_fits(net, ["conv3"], (8000, 8000), memory_limit=4 << 30)
    side = int(str(e.value).split("about ")[-1].split(" px")[0])
    check_fits(net, ["conv3"], (side, side), memory_limit=4 << 30)   # the size it names fits
    with pytest.raises(SynthesisError):
        check_fits(net, ["conv3"], (side * 2, side * 2), memory_limit=4 << 30)


# ------------------------------------------------------------------ loss networks
def test_default_loss_network_layers_exist(lite0):
    import keras
    from tfviz.synthesis.lossnet import LOSS_NETWORKS
    net = loss_network(lite0)
    assert net.family == "efficientnet_lite0"
    for n in [net.content_layer, *net.style_layers, *net.inversion_layers]:
        lite0.spatial_layer(n)
    for name, app in (("vgg16", keras.applications.VGG16), ("vgg19", keras.applications.VGG19)):
        b = tfviz.load_model(app(weights=None), preprocess="caffe")
        got = loss_network(b)
        assert got is LOSS_NETWORKS[name]
        for n in [got.content_layer, *got.style_layers, *got.inversion_layers]:
            b.spatial_layer(n)
