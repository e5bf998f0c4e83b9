"""tfviz.stylize: instance-norm layers, the transformer and texture networks, inference
(answers computed with numpy; networks with random weights)."""
import numpy as np
import pytest

from tfviz.stylize import (ConditionalInstanceNormalization, InstanceNormalization, StylizeError, generate_texture,
                           style_vector, stylize, texture_network, transformer_network)


def test_instance_norm_zero_mean_unit_variance_per_image_and_channel():
    x = np.random.default_rng(0).normal(3, 5, (2, 6, 7, 4)).astype(np.float32)
    x[1] *= 10
    y = np.asarray(InstanceNormalization(epsilon=1e-6)(x))
    np.testing.assert_allclose(y.mean(axis=(1, 2)), 0, atol=1e-5)
    np.testing.assert_allclose(y.std(axis=(1, 2)), 1, atol=1e-3)
    layer = InstanceNormalization()
    layer.build(x.shape)
    layer.set_weights([np.full(4, 2.0, np.float32), np.full(4, -1.0, np.float32)])
    z = np.asarray(layer(x))
    want = (x - x.mean((1, 2), keepdims=True)) / np.sqrt(x.var((1, 2), keepdims=True) + 1e-5) * 2 - 1
    np.testing.assert_allclose(z, want, rtol=1e-4, atol=1e-4)
    # a nearly flat channel (std 0.01, var 1e-4) shows where epsilon goes: inside the root,
    # 1 / sqrt(1e-4 + 1e-5) -- not 1 / (0.01 + 1e-5), 5 % larger
    flat = x.copy()
    flat[..., 0] = 7 + 0.01 * np.random.default_rng(1).standard_normal((2, 6, 7))
    z = np.asarray(layer(flat))
    want = (flat - flat.mean((1, 2), keepdims=True)) / np.sqrt(flat.var((1, 2), keepdims=True) + 1e-5) * 2 - 1
    np.testing.assert_allclose(z, want, rtol=1e-3, atol=1e-3)


def test_conditional_norm_one_hot_equals_instance_norm_and_mixes_interpolate():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(3, 5, 5, 4)).astype(np.float32)
    cin = ConditionalInstanceNormalization(2)
    cin.build([x.shape, (None, 2)])
    gammas, betas = rng.normal(size=(2, 4)).astype(np.float32), rng.normal(size=(2, 4)).astype(np.float32)
    cin.set_weights([gammas, betas])
    for s in (0, 1):
        inn = InstanceNormalization()
        inn.build(x.shape)
        inn.set_weights([gammas[s], betas[s]])
        onehot = np.eye(2, dtype=np.float32)[[s] * 3]
        np.testing.assert_allclose(np.asarray(cin([x, onehot])), np.asarray(inn(x)), rtol=1e-5, atol=1e-5)
    mix = np.asarray(cin([x, np.full((3, 2), 0.5, np.float32)]))
    halves = 0.5 * (np.asarray(cin([x, np.eye(2, dtype=np.float32)[[0] * 3]])) +
                    np.asarray(cin([x, np.eye(2, dtype=np.float32)[[1] * 3]])))
    np.testing.assert_allclose(mix, halves, rtol=1e-5, atol=1e-5)   # linear in the parameters


def test_transformer_any_size_and_save_load_round_trip(tmp_path):
    import keras
    model = transformer_network(num_styles=3, width=0.25)
    assert [tuple(i.shape[1:]) for i in model.inputs] == [(None, None, 3), (3,)]
    imgs = [np.random.default_rng(2).integers(0, 256, (h, w, 3)).astype(np.uint8) for h, w in ((30, 41), (16, 16))]
    outs = stylize(model, imgs, style={0: 1, 2: 1})
    assert [o.shape for o in outs] == [(30, 41, 3), (16, 16, 3)] and outs[0].dtype == np.uint8
    path = str(tmp_path / "t.keras")
    model.save(path)
    again = keras.models.load_model(path)
    for style in (0, 2, {1: 0.3, 2: 0.7}):
        np.testing.assert_array_equal(stylize(model, imgs[0], style), stylize(again, imgs[0], style))


def test_style_vectors_and_bad_styles():
    model = transformer_network(num_styles=3, width=0.125)
    np.testing.assert_allclose(style_vector(model, 1), [0, 1, 0])
    np.testing.assert_allclose(style_vector(model, {0: 1, 2: 3}), [0.25, 0, 0.75])
    with pytest.raises(StylizeError, match=r"style 3 out of range: this network has 3 styles \(0..2\)"):
        style_vector(model, 3)
    with pytest.raises(StylizeError, match="must sum to a positive number"):
        style_vector(model, {0: 1, 1: -1})
    with pytest.raises(StylizeError, match="num_styles must be a positive integer"):
        transformer_network(num_styles=0)
    single = transformer_network(width=0.125)
    assert len(single.inputs) == 1
    with pytest.raises(StylizeError, match="has 1 style"):
        stylize(single, np.zeros((8, 8, 3), np.uint8), style=1)


def test_texture_network_any_size_and_seeds(tmp_path):
    import keras
    model = texture_network(scales=3, width=0.5)
    a = generate_texture(model, (16, 24), seed=0)
    b = generate_texture(model, 32, seed=0, batch=2)
    assert a.shape == (1, 16, 24, 3) and b.shape == (2, 32, 32, 3)
    np.testing.assert_array_equal(a, generate_texture(model, (16, 24), seed=0))
    with pytest.raises(StylizeError, match="multiples of 4"):
        generate_texture(model, (10, 16))
    path = str(tmp_path / "tex.keras")
    model.save(path)
    np.testing.assert_array_equal(generate_texture(keras.models.load_model(path), (16, 24), seed=0), a)
