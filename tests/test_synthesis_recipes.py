"""Synthesis recipes on small models: fooling, FGSM, PGD, neuron grids, multifaceted
visualization and DeepDream, checked against known answers."""
import numpy as np
import pytest

import tfviz
from tfviz.synthesis import (SynthesisError, deepdream, fgsm, fooling_image, multifaceted,
                             neuron_visualization, pgd)
from tfviz.synthesis.fooling import difference_image
from tfviz.utils import ChannelError, LayerKindError, UnknownLayerError

from test_synthesis import noise_image, tiny_model


@pytest.fixture(scope="module")
def tiny():
    return tfviz.load_model(tiny_model(), preprocess="0-1", class_names=["red", "green", "blue"])


@pytest.fixture(scope="module")
def digit_set():
    from tfviz.zoo.digits_cnn import digits_images
    return digits_images()


def test_fooling_reaches_the_target_on_a_trained_model(digits, digit_set):
    x, y = digit_set
    img = x[np.flatnonzero(y == 3)[0]]
    assert int(np.argmax(digits.predict(img[None]))) == 3
    res = fooling_image(digits, img, "8", max_steps=300, lr=2.55)   # grey levels (0.01 of digits_cnn's 0..1)
    assert res.success and res.target == 8 and res.original_class == 3
    assert int(np.argmax(digits.predict(res.image[None]))) == 8  # the saved uint8 image is fooled
    d = res.image.astype(float) - res.original.astype(float)
    assert res.l2 == pytest.approx(np.sqrt((d ** 2).sum())) and res.linf == np.abs(d).max()
    assert 0 < res.steps < 300
    diff, m = difference_image(res.image, res.original)
    np.testing.assert_array_equal(diff, res.difference)
    assert np.abs(diff.astype(int) - 128).max() == pytest.approx(127, abs=1)


def test_fooling_an_image_already_of_the_target_takes_no_steps(digits, digit_set):
    x, y = digit_set
    img = x[np.flatnonzero(y == 5)[0]]
    res = fooling_image(digits, img, 5)
    assert res.success and res.steps == 0 and res.l2 == 0.0


def test_fgsm_moves_every_pixel_by_exactly_eps(tiny):
    imgs = np.stack([noise_image(3), noise_image(4)])
    res = fgsm(tiny, imgs, eps=3.0, clip=False)
    delta = res.float_images - imgs.astype(np.float32)
    np.testing.assert_allclose(np.abs(delta), 3.0, atol=1e-3)
    res_t = fgsm(tiny, imgs, eps=3.0, target="blue", clip=False)
    np.testing.assert_allclose(np.abs(res_t.float_images - imgs), 3.0, atol=1e-3)
    assert not np.array_equal(np.sign(delta), np.sign(res_t.float_images - imgs))
    clipped = fgsm(tiny, imgs, eps=3.0)
    assert clipped.float_images.min() >= -1e-4 and clipped.float_images.max() <= 255 + 1e-3


def test_fgsm_direction_follows_the_gradient_sign(tiny):
    import tensorflow as tf
    img = noise_image(5)
    x = tf.constant(img[None].astype(np.float32))
    label = int(np.argmax(tiny.predict(img[None])))
    with tf.GradientTape() as tape:
        tape.watch(x)
        loss = -tf.nn.log_softmax(tiny.logits(tiny.preprocess(x)))[0, label]
    g = tape.gradient(loss, x).numpy()[0]
    res = fgsm(tiny, img, eps=2.0, clip=False)
    np.testing.assert_array_equal(np.sign(res.float_images[0] - img), np.sign(g))


def test_pgd_stays_in_the_ball_and_beats_fgsm(digits, digit_set):
    x, y = digit_set
    idx = np.flatnonzero(y == 1)[:4]
    res = pgd(digits, x[idx], eps=24, alpha=4, steps=10, target=7)
    delta = res.float_images - x[idx].astype(np.float32)
    assert np.abs(delta).max() <= 24 + 1e-3
    assert res.float_images.min() >= -1e-3 and res.float_images.max() <= 255 + 1e-3
    one = fgsm(digits, x[idx], eps=24, target=7)
    p_pgd = digits.predict(res.images)[:, 7].mean()
    p_fgsm = digits.predict(one.images)[:, 7].mean()
    assert p_pgd > p_fgsm and res.success_rate >= 0.5


def test_neuron_visualization_one_image_per_channel(tiny):
    # image i maximizes the mean of channel channels[i]: from known images, the objective at
    # step 0 is the batch mean of those three channel means
    from tfviz.synthesis import params as P
    starts = np.stack([noise_image(s) for s in (1, 2, 3)])
    mean_act = tiny.features("conv1")(tiny.preprocess(starts)).numpy().mean(axis=(1, 2))   # [image, channel]
    res = neuron_visualization(tiny, "conv1", [0, 2, 3], param=P.pixel(init=starts, batch=3), steps=1, lr=1e-9,
                               transforms=[], regularizers=[])
    assert res.history[0] == pytest.approx(mean_act[[0, 1, 2], [0, 2, 3]].mean(), rel=1e-5)
    res = neuron_visualization(tiny, "conv1", [0, 2, 3], steps=6, cols=3)
    assert res.images.shape == (3, 16, 16, 3)
    assert res.extra["grid"].shape == (16, 3 * 16 + 2 * 2, 3)
    assert res.extra["channels"] == [0, 2, 3]
    with pytest.raises(ChannelError, match="0..3"):
        neuron_visualization(tiny, "conv1", [9], steps=1)
    with pytest.raises(UnknownLayerError):
        neuron_visualization(tiny, "conv9", [0], steps=1)


def test_multifaceted_starts_each_facet_from_its_cluster_mean(tiny):
    from sklearn.cluster import KMeans
    rng = np.random.default_rng(0)
    dark = rng.integers(0, 60, (5, 16, 16, 3))
    light = rng.integers(190, 256, (5, 16, 16, 3))
    imgs = np.concatenate([dark, light]).astype(np.uint8)
    res = multifaceted(tiny, "green", imgs, k=2, steps=2)
    labels = res.extra["labels"]
    assert len(set(labels[:5])) == 1 and len(set(labels[5:])) == 1 and labels[0] != labels[5]
    for c in range(2):
        want = tiny.deprocess(tiny.preprocess(imgs[labels == c]).mean(axis=0))
        np.testing.assert_array_equal(res.extra["mean_images"][c], want)
    feats = tiny.features("hidden")(tiny.preprocess(imgs)).numpy()
    km = KMeans(2, n_init=10, random_state=0).fit(feats)
    np.testing.assert_array_equal(km.labels_, labels)
    assert res.images.shape == (2, 16, 16, 3) and res.extra["layer"] == "hidden"
    with pytest.raises(SynthesisError, match="at least"):
        multifaceted(tiny, "green", imgs[:1], k=2, steps=1)


def test_deepdream_runs_on_an_image_larger_than_the_input(tiny):
    img = np.random.default_rng(1).integers(0, 256, (70, 90, 3)).astype(np.uint8)
    res = deepdream(tiny, img, layers={"conv2": 1.0}, octaves=2, octave_scale=1.5, steps_per_octave=3,
                    step_size=5.0, jitter=4)
    assert res.images.shape == (1, 70, 90, 3)
    assert res.steps == 6 and len(res.history) == 6 and len(res.snapshots) == 1
    assert not np.array_equal(res.image, img)
    assert res.history[2] > res.history[0]   # the layer's energy rises within an octave
    # octaves: 70x90 / 1.5 = 47x60 first, then the full size; with (almost) no step, the
    # upsampled coarse octave plus the detail it lost gives the image back exactly
    shapes = []
    still = deepdream(tiny, img, layers={"conv2": 1.0}, octaves=2, octave_scale=1.5, steps_per_octave=2,
                      step_size=1e-7, jitter=4, callbacks=[lambda s, im, ls: shapes.append(np.shape(im)[1:3])])
    assert shapes == [(47, 60)] * 2 + [(70, 90)] * 2
    np.testing.assert_array_equal(still.image, img)


def test_deepdream_bad_input(tiny):
    img = np.zeros((40, 40, 3), np.uint8)
    with pytest.raises(SynthesisError, match="too small for 4 octaves"):
        deepdream(tiny, img, layers={"conv2": 1.0}, octaves=4)
    with pytest.raises(LayerKindError, match="no spatial output"):
        deepdream(tiny, img, layers={"hidden": 1.0}, octaves=1)
    with pytest.raises(UnknownLayerError):
        deepdream(tiny, img, layers={"conv7": 1.0}, octaves=1)
    with pytest.raises(SynthesisError, match="step_size"):
        deepdream(tiny, img, layers={"conv2": 1.0}, octaves=1, step_size=0)
    with pytest.raises(SynthesisError, match="steps_per_octave"):
        deepdream(tiny, img, layers={"conv2": 1.0}, octaves=1, steps_per_octave=0)


def test_fooling_bad_input(tiny):
    from tfviz.utils import UnknownClassError
    with pytest.raises(UnknownClassError, match="green"):
        fooling_image(tiny, noise_image(), "gren")
    with pytest.raises(SynthesisError, match="max_steps"):
        fooling_image(tiny, noise_image(), "green", max_steps=0)
    with pytest.raises(SynthesisError, match="eps"):
        fgsm(tiny, noise_image(), eps=0)
