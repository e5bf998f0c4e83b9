"""Step sizes and radii are grey levels of the uint8 image on every preprocessing.

The network under test is the same function of the uint8 image on all four
preprocessings: a fixed first layer undoes the preprocessing (model input -> grey levels),
then conv / pool / dense layers with the same seeded random weights. One step of each
recipe must then change the pixels by the same amount, which is computed here by hand
from the gradient of the reference layers with respect to the grey levels. Before, the
learning rates were in model-input units: one Adam step of 0.3 moved a pixel by 0.3 grey
levels on caffe, 17 on torch, 38 on -1-1 and 76 on 0-1."""
import numpy as np
import pytest

import tfviz
from tfviz.models import PREPROCESSINGS
from tfviz.synthesis import class_logit, class_visualization, deepdream, fgsm, fooling_image, optimize, pgd
from tfviz.synthesis import params as P
from tfviz.synthesis import regularizers as R

PREPS = ("caffe", "torch", "0-1", "-1-1")
SIZE = 32          # DeepDream's smallest octave
ADAM_EPS = 1e-9 / np.sqrt(1 - 0.999)   # tfviz's Adam epsilon on pixels after Keras's first-step bias correction


@pytest.fixture(scope="module")
def shared():
    """The reference layers (on grey-level RGB input) and one bundle per preprocessing:
    the preprocessing undone, then copies of those layers."""
    import keras
    keras.utils.set_random_seed(3)
    conv = keras.layers.Conv2D(4, 1, name="conv")   # 1x1: every pixel's gradient is the same size per channel
    gap = keras.layers.GlobalAveragePooling2D(name="gap")
    dense = keras.layers.Dense(3, name="logits")

    class Undo(keras.layers.Layer):
        """Model input -> grey levels (the preprocessing's inverse)."""

        def __init__(self, pre, **kw):
            super().__init__(**kw)
            self.pre = pre

        def call(self, x):
            x = x * np.float32(self.pre.std) + np.float32(self.pre.mean)
            return keras.ops.flip(x, axis=-1) if self.pre.bgr else x

    dense(gap(conv(keras.Input((SIZE, SIZE, 3)))))   # build the reference layers
    bundles = {}
    for name in PREPS:   # the same weights in each model (a layer in several models has no single .output)
        inp = keras.Input((SIZE, SIZE, 3))
        x = Undo(PREPROCESSINGS[name], name="undo")(inp)
        for ref in (conv, gap, dense):
            layer = type(ref).from_config(ref.get_config())
            x = layer(x)
            layer.set_weights(ref.get_weights())
        model = keras.Model(inp, x, name=f"units_{name.replace('-', 'm')}")
        bundles[name] = tfviz.load_model(model, preprocess=name, class_names=["red", "green", "blue"])
    return (conv, gap, dense), bundles


def photo(seed=0):
    """A uint8 image away from 0 and 255, so no step here is clipped."""
    return np.random.default_rng(seed).integers(60, 196, (SIZE, SIZE, 3)).astype(np.uint8)


def grey_gradient(layers, img, fn):
    """d fn(logits) / d pixels, in grey levels, of the reference layers (no preprocessing)."""
    import tensorflow as tf
    conv, gap, dense = layers
    x = tf.Variable(np.asarray(img, np.float32)[None])
    with tf.GradientTape() as tape:
        y = fn(dense(gap(conv(x))))
    return tape.gradient(y, x).numpy()[0]


def adam_first_step(lr, g):
    """Keras Adam's first ascent step: lr * g / (|g| + eps) -- lr times the sign of g."""
    return lr * g / (np.abs(g) + ADAM_EPS)


def moved(bundle, res, img):
    """The float change in grey levels (before rounding to uint8)."""
    return np.asarray(bundle.preprocessing.to_float_rgb(res.x), np.float32)[0] - img.astype(np.float32)


@pytest.mark.parametrize("prep", PREPS)
def test_one_fooling_step_moves_every_pixel_by_lr_grey_levels(shared, prep):
    layers, bundles = shared
    b, img = bundles[prep], photo(1)
    target = int(np.argmin(b.predict(img[None])[0]))
    g = grey_gradient(layers, img, lambda lo: lo[0, target])
    assert np.abs(g).min() > 1e-5   # every pixel has a gradient well above Adam's epsilon
    res = fooling_image(b, img, target, max_steps=1, lr=4.0)
    assert res.steps == 1 and res.result.steps == 1
    d = moved(b, res.result, img)
    np.testing.assert_allclose(d, adam_first_step(4.0, g), atol=2e-3)
    np.testing.assert_allclose(np.abs(d), 4.0, atol=2e-3)   # the sign of the gradient, 4 grey levels
    # the saved uint8 image moved by exactly 4 grey levels everywhere
    np.testing.assert_array_equal(np.abs(res.image.astype(int) - img.astype(int)), 4)
    assert res.linf == 4.0 and res.l2 == pytest.approx(4.0 * np.sqrt(img.size))


@pytest.mark.parametrize("prep", PREPS)
def test_one_pixel_class_visualization_step_moves_pixels_by_lr_grey_levels(shared, prep):
    layers, bundles = shared
    b, img = bundles[prep], photo(2)
    g = grey_gradient(layers, img, lambda lo: lo[0, 1])
    res = class_visualization(b, "green", param=P.pixel(init=img), steps=1, lr=2.5, transforms=[], regularizers=[])
    d = moved(b, res, img)
    np.testing.assert_allclose(d, adam_first_step(2.5, g), atol=2e-3)
    assert np.abs(d).max() == pytest.approx(2.5, abs=2e-3)
    # clipping to the valid range alone changes nothing here: the same step
    res = class_visualization(b, "green", param=P.pixel(init=img), steps=1, lr=2.5, transforms=[],
                              regularizers=[R.ClipRange()])
    np.testing.assert_allclose(moved(b, res, img), adam_first_step(2.5, g), atol=2e-3)


@pytest.mark.parametrize("prep", PREPS)
def test_sign_and_l1_steps_and_the_linf_radius_are_grey_levels(shared, prep):
    layers, bundles = shared
    b, img = bundles[prep], photo(3)
    import tensorflow as tf
    t = int(np.argmin(b.predict(img[None])[0]))   # the least likely class: its log-probability is not flat
    # FGSM, targeted: one sign step of eps grey levels up log p(t)
    g_logp = grey_gradient(layers, img, lambda lo: tf.nn.log_softmax(lo)[0, t])
    assert np.all(g_logp != 0)
    adv = fgsm(b, img[None], eps=3.0, target=t, clip=False)
    np.testing.assert_allclose(adv.float_images[0] - img, 3.0 * np.sign(g_logp), atol=2e-3)
    # PGD: sign steps of alpha = 2 inside an L-inf ball of 3 grey levels. The model is
    # linear in the pixels and sure of another class, so the gradient's sign stays: 2 after
    # the first step, then 4 projected back to the ball's surface, 3
    for steps, want in ((1, 2.0), (2, 3.0)):
        adv = pgd(b, img[None], eps=3.0, alpha=2.0, steps=steps, target=t, random_start=False)
        np.testing.assert_allclose(adv.float_images[0] - img, want * np.sign(g_logp), atol=2e-3)
    # DeepDream: one L1-normalized step: the mean |change| of a pixel is step_size grey levels
    img_big = photo(4)
    res = deepdream(b, img_big, layers={"conv": 1.0}, octaves=1, steps_per_octave=1, step_size=2.0, jitter=0)
    d = moved(b, res, img_big)
    assert np.abs(d).mean() == pytest.approx(2.0, rel=1e-3)
    # ... in the direction of the grey-level gradient of 0.5 mean(conv^2)
    conv = layers[0]
    x = tf.Variable(img_big.astype(np.float32)[None])
    with tf.GradientTape() as tape:
        e = 0.5 * tf.reduce_mean(tf.square(conv(x)))
    g = tape.gradient(e, x).numpy()[0]
    np.testing.assert_allclose(d, 2.0 * g / np.abs(g).mean(), atol=2e-3)


def test_project_linf_radius_is_grey_levels_on_each_range():
    """ProjectLinf(c, eps) keeps each pixel within eps grey levels of c, whatever the
    model-input scale: eps = 25.5 is 0.1 on a 0..1 range, 0.2 on -1..1, 25.5 on caffe."""
    import tensorflow as tf
    from tfviz.synthesis.objectives import Context
    for prep, want_radius in (("0-1", 0.1), ("-1-1", 0.2), ("caffe", 25.5)):
        lo, hi = PREPROCESSINGS[prep].input_range
        ctx = Context(image=None, raw_image=None, center=tf.constant((lo + hi) / 2), lo=tf.constant(lo),
                      hi=tf.constant(hi))
        c = np.zeros((1, 1, 1, 3), np.float32)
        x = np.array([[[[-1000.0, 0.0, 1000.0]]]], np.float32)
        y = R.ProjectLinf(c, 25.5)(x, None, ctx).numpy()
        np.testing.assert_allclose(y, [[[[-want_radius, 0.0, want_radius]]]], rtol=1e-6)
    # torch: per channel, 25.5 grey levels / (255 * std_c)
    pre = PREPROCESSINGS["torch"]
    lo, hi = pre.input_range
    ctx = Context(image=None, raw_image=None, center=tf.constant((lo + hi) / 2), lo=tf.constant(lo), hi=tf.constant(hi))
    y = R.ProjectLinf(np.zeros((1, 1, 1, 3), np.float32), 25.5)(np.full((1, 1, 1, 3), 9.0, np.float32), None, ctx)
    np.testing.assert_allclose(y.numpy()[0, 0, 0], 25.5 / np.float32(pre.std), rtol=1e-5)


def test_default_noise_start_is_the_same_grey_levels_on_every_rgb_preprocessing(shared):
    """pixel()'s noise start is mid-gray plus std * 255 grey levels, drawn in RGB: the
    same image on every preprocessing (the model input differs, the picture does not)."""
    _, bundles = shared
    starts = {}
    for prep in PREPS:
        res = optimize(bundles[prep], class_logit(0), param=P.pixel(std=0.05), steps=1,
                       optimizer=1e-9, seed=5)
        starts[prep] = bundles[prep].preprocessing.to_float_rgb(res.x)
    want = 127.5 + 0.05 * 255 * np.random.default_rng(5).standard_normal((1, SIZE, SIZE, 3)).astype(np.float32)
    for prep in PREPS:
        np.testing.assert_allclose(starts[prep], want, atol=2e-3)


def test_cli_defaults_are_the_librarys():
    # one value in tfviz.defaults serves both: the commands' option defaults are the functions'
    import inspect

    from tfviz.cli import synthesis as cli
    from tfviz.synthesis.deepdream import deepdream
    from tfviz.synthesis.fooling import fooling_image

    def option_default(command, name):
        return next(p.default for p in command.params if p.name == name)
    assert option_default(cli.fool_cmd, "lr") == inspect.signature(fooling_image).parameters["lr"].default == 0.6
    assert option_default(cli.dream_cmd, "step_size") == inspect.signature(deepdream).parameters["step_size"].default
