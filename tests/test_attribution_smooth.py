"""Guided backprop, deconvnet and guided Grad-CAM on smooth gates (SiLU / swish, GELU,
hard-swish, Mish) against hand-computed answers: the guided rule at a gate ``f`` passes
back ``relu(dy) * [z > 0] * f'(z)``, the deconvnet rule ``relu(dy)``; on ReLU nets the
default option gives today's maps bit for bit; ``activations="relu"`` keeps the old,
strict behaviour."""
import math

import numpy as np
import pytest

from test_attribution import (H, W, _relu_kind_model, bundle_of, random_images, small_cnn, smooth_model,
                              two_layer_relu_net)
from tfviz import attribution as A
from tfviz.attribution import heads

import keras  # noqa: E402 - after tfviz, which chooses Keras' backend
import tensorflow as tf  # noqa: E402

L = keras.layers


# --------------------------------------------------------------------------- the gates by hand (float64)
def _sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def _phi(z):
    return np.exp(-0.5 * z * z) / math.sqrt(2 * math.pi)


def _Phi(z):  # noqa: N802 - the normal CDF's usual name
    return 0.5 * (1.0 + np.vectorize(math.erf)(z / math.sqrt(2.0)))


def d_silu(z):
    s = _sigmoid(z)
    return s * (1.0 + z * (1.0 - s))


def d_gelu(z):
    return _Phi(z) + z * _phi(z)


def d_gelu_tanh(z):
    c = math.sqrt(2.0 / math.pi)
    u = c * (z + 0.044715 * z ** 3)
    t = np.tanh(u)
    return 0.5 * (1.0 + t) + 0.5 * z * (1.0 - t * t) * c * (1.0 + 3 * 0.044715 * z * z)


def d_hard_silu(z):
    return np.where(z <= -3, 0.0, np.where(z >= 3, 1.0, (2.0 * z + 3.0) / 6.0))


def d_mish(z):
    t = np.tanh(np.log1p(np.exp(z)))
    return t + z * (1.0 - t * t) * _sigmoid(z)


GATES = {  # form -> (how the model applies it, its derivative)
    "fused_silu": (lambda: L.Dense(8, activation="silu"), d_silu),
    "fused_swish": (lambda: L.Dense(8, activation="swish"), d_silu),
    "activation_swish": (lambda: L.Activation("swish"), d_silu),
    "activation_tf_swish": (lambda: L.Activation(tf.nn.swish), d_silu),
    "ops_silu": (lambda: keras.ops.silu, d_silu),
    "activation_gelu": (lambda: L.Activation("gelu"), d_gelu),
    "ops_gelu": (lambda: keras.ops.gelu, d_gelu_tanh),  # keras.ops.gelu: approximate=True
    "fused_hard_swish": (lambda: L.Dense(8, activation="hard_swish"), d_hard_silu),
    "ops_hard_silu": (lambda: keras.ops.hard_silu, d_hard_silu),
    "activation_mish": (lambda: L.Activation("mish"), d_mish),
    "nested_gelu": (lambda: keras.Sequential([L.Activation("gelu")], name="inner"), d_gelu),
}


def gate_model(form, seed=0):
    """input -> Flatten -> Dense(8) with the gate (fused, or its own call) -> Dense(3)."""
    make, _ = GATES[form]
    rng = np.random.default_rng(seed)
    inp = keras.Input((H, W, 3))
    flat = L.Flatten()(inp)
    if form.startswith("fused"):
        d1 = make()
        hidden = d1(flat)
    else:
        d1 = L.Dense(8)
        hidden = make()(d1(flat))
    d2 = L.Dense(3)
    m = keras.Model(inp, d2(hidden), name=form)
    w1, b1 = rng.normal(size=(H * W * 3, 8)) * 0.25, rng.normal(size=8) * 2.0
    w2, b2 = rng.normal(size=(8, 3)), rng.normal(size=3)
    d1.set_weights([w1.astype("float32"), b1.astype("float32")])
    d2.set_weights([w2.astype("float32"), b2.astype("float32")])
    return m, (w1.astype("float32"), b1.astype("float32"), w2.astype("float32"))


def _rules_by_hand(z, w1, g_out, d_f):
    """Guided, deconvnet and the variants a broken rule would give, for one gate layer
    ``z`` feeding a linear read-out with gradient ``g_out``."""
    z, w1, g_out = (np.asarray(a, np.float64) for a in (z, w1, g_out))
    pos = np.maximum(g_out, 0)
    return {"guided": w1 @ (pos * (z > 0) * d_f(z)), "deconvnet": w1 @ pos,
            "no_slope": w1 @ (pos * (z > 0)), "no_mask": w1 @ (pos * d_f(z)), "plain": w1 @ (g_out * d_f(z))}


# --------------------------------------------------------------------------- known answers
@pytest.mark.parametrize("form", list(GATES))
def test_gate_rules_match_hand_answers(form):
    m, (w1, b1, w2) = gate_model(form)
    _, d_f = GATES[form]
    b = bundle_of(m)
    imgs = random_images(3, H, W, seed=2)
    x = b.preprocess(imgs)
    before = m.predict(x, verbose=0)
    for c in (0, 2):
        gb, dc = A.guided_backprop(b, imgs, c), A.deconvnet(b, imgs, c)
        for i in range(len(x)):
            z = x[i].reshape(-1).astype(np.float64) @ w1 + b1
            assert (z > 0).any() and (z < 0).any(), "the test needs gates on and off"
            hand = _rules_by_hand(z, w1, w2[:, c], d_f)
            np.testing.assert_allclose(gb[i].reshape(-1), hand["guided"], rtol=1e-4, atol=1e-5)
            np.testing.assert_allclose(dc[i].reshape(-1), hand["deconvnet"], rtol=1e-4, atol=1e-5)
            for broken in ("no_slope", "no_mask", "plain"):  # the answer tells the rules apart
                assert not np.allclose(hand["guided"], hand[broken], rtol=1e-3, atol=1e-4), broken
    assert np.array_equal(before, m.predict(x, verbose=0))  # the user's model is untouched


def deep_gate_net(first="silu", seed=4):
    """Flatten -> Dense(6, activation=first) -> Dense(5) -> Activation("gelu") -> Dense(3)."""
    rng = np.random.default_rng(seed)
    inp = keras.Input((H, W, 3))
    d1, d2, d3 = L.Dense(6, activation=first, name="h1"), L.Dense(5, name="h2"), L.Dense(3, name="out")
    m = keras.Model(inp, d3(L.Activation("gelu", name="g2")(d2(d1(L.Flatten()(inp))))), name=f"deep_{first}")
    for layer, shape in [(d1, (H * W * 3, 6)), (d2, (6, 5)), (d3, (5, 3))]:
        layer.set_weights([rng.normal(size=shape).astype("float32") * 0.5,
                           rng.normal(size=shape[1]).astype("float32") * 0.5])
    return m


def _deep_by_hand(m, v, c, d_first, guided=True, smooth_first=True):
    """The product of masks and slopes along the path, layer by layer, in float64."""
    (w1, b1), (w2, b2), (w3, _) = [[np.float64(a) for a in m.get_layer(n).get_weights()] for n in ("h1", "h2", "out")]
    f1 = {True: lambda z: z * _sigmoid(z), False: lambda z: np.maximum(z, 0)}[smooth_first]
    z1 = v @ w1 + b1
    z2 = f1(z1) @ w2 + b2
    g2 = np.maximum(w3[:, c], 0)
    d2 = g2 * (z2 > 0) * d_gelu(z2) if guided else g2
    g1 = np.maximum(w2 @ d2, 0)
    d1 = g1 * (z1 > 0) * d_first(z1) if guided else g1
    return w1 @ d1


def test_masks_and_slopes_multiply_along_the_path():
    m = deep_gate_net("silu")
    b = bundle_of(m)
    imgs = random_images(2, H, W, seed=3)
    x = b.preprocess(imgs).astype(np.float64)
    for c in range(3):
        gb, dc = A.guided_backprop(b, imgs, c), A.deconvnet(b, imgs, c)
        assert np.abs(gb).max() > 0.1 and np.abs(dc).max() > 0.1
        for i in range(2):
            v = x[i].reshape(-1)
            np.testing.assert_allclose(gb[i].reshape(-1), _deep_by_hand(m, v, c, d_silu), rtol=1e-4, atol=1e-6)
            np.testing.assert_allclose(dc[i].reshape(-1), _deep_by_hand(m, v, c, d_silu, guided=False),
                                       rtol=1e-4, atol=1e-6)


def test_relu_and_gelu_net_default_and_strict():
    """A net with a ReLU and a GELU (like MobileNetV3's ReLU and hard-swish): by default
    both get the rule; ``activations="relu"`` changes the ReLU only and the GELU keeps
    its ordinary, signed gradient ``dy * f'(z)``."""
    m = deep_gate_net("relu")
    b = bundle_of(m)
    imgs = random_images(2, H, W, seed=4)
    x = b.preprocess(imgs).astype(np.float64)
    (w1, b1), (w2, b2), (w3, _) = [[np.float64(a) for a in m.get_layer(n).get_weights()] for n in ("h1", "h2", "out")]
    c = 1
    gb, strict = A.guided_backprop(b, imgs, c), A.guided_backprop(b, imgs, c, activations="relu")
    assert np.abs(gb).max() > 0.1 and np.abs(strict).max() > 0.1
    for i in range(2):
        v = x[i].reshape(-1)
        relu_on = lambda z: (z > 0).astype(np.float64)  # noqa: E731
        np.testing.assert_allclose(gb[i].reshape(-1), _deep_by_hand(m, v, c, relu_on, smooth_first=False),
                                   rtol=1e-4, atol=1e-6)
        z1 = v @ w1 + b1
        z2 = np.maximum(z1, 0) @ w2 + b2
        d2 = w3[:, c] * d_gelu(z2)  # the GELU's plain backward pass
        expected = w1 @ (np.maximum(w2 @ d2, 0) * (z1 > 0))
        np.testing.assert_allclose(strict[i].reshape(-1), expected, rtol=1e-4, atol=1e-6)
    assert not np.allclose(gb, strict)
    assert heads.head(b, None, "guided") is not heads.head(b, None, "guided_relu")  # one cached head per option


def _vjp(layer, a, dy):
    """``dy`` through a linear layer's transpose (its gradient with respect to its input)."""
    a = tf.constant(a, tf.float32)
    with tf.GradientTape() as tape:
        tape.watch(a)
        out = layer(a)
    return tape.gradient(out, a, output_gradients=tf.constant(dy, tf.float32)).numpy().astype(np.float64)


def test_conv_net_with_silu_and_gelu_by_hand():
    """conv(activation=silu) -> conv -> Activation(gelu) -> GAP -> Dense; the convs'
    transposes come from TensorFlow (a linear map's gradient), masks and slopes by hand."""
    keras.utils.set_random_seed(14)  # a seed with about half of each layer's gates on
    c1, c2, dense = L.Conv2D(4, 3, padding="same", activation="silu"), L.Conv2D(5, 3, padding="same"), L.Dense(3)
    inp = keras.Input((H, W, 3))
    m = keras.Model(inp, dense(L.GlobalAveragePooling2D()(L.Activation("gelu")(c2(c1(inp))))), name="conv_gates")
    lin1 = L.Conv2D(4, 3, padding="same")
    lin1.build((None, H, W, 3))
    lin1.set_weights(c1.get_weights())
    b = bundle_of(m)
    imgs = random_images(2, H, W, seed=8)
    x = b.preprocess(imgs)
    z1 = lin1(x).numpy().astype(np.float64)
    z2 = c2(tf.constant(z1 * _sigmoid(z1), tf.float32)).numpy().astype(np.float64)
    for c in range(3):
        g2 = np.broadcast_to(dense.get_weights()[0][:, c] / (H * W), z2.shape)
        d2 = np.maximum(g2, 0) * (z2 > 0) * d_gelu(z2)
        d1 = np.maximum(_vjp(c2, z1 * _sigmoid(z1), d2), 0) * (z1 > 0) * d_silu(z1)
        assert (d1 > 0).mean() > 0.1, "the test needs gradients through the first gates"
        np.testing.assert_allclose(A.guided_backprop(b, imgs, c), _vjp(lin1, x, d1), rtol=1e-4, atol=1e-6)
        dd = np.maximum(_vjp(c2, z1, np.maximum(g2, 0)), 0)
        np.testing.assert_allclose(A.deconvnet(b, imgs, c), _vjp(lin1, x, dd), rtol=1e-4, atol=1e-6)


# --------------------------------------------------------------------------- ReLU nets: nothing changes
@pytest.mark.parametrize("build", ["small_cnn", "two_layer", "relu6_layer", "ops_relu", "nested_functional"])
def test_relu_nets_give_todays_maps_bit_for_bit(build):
    m = {"small_cnn": lambda: small_cnn(softmax=False), "two_layer": two_layer_relu_net,
         "relu6_layer": lambda: _relu_kind_model("relu6_layer")[0], "ops_relu": lambda: _relu_kind_model("ops_relu")[0],
         "nested_functional": lambda: _relu_kind_model("nested_functional")[0]}[build]()
    b = bundle_of(m)
    h, w = m.inputs[0].shape[1:3]
    imgs = random_images(3, h, w, seed=9)
    for method in (A.guided_backprop, A.deconvnet):
        assert np.array_equal(method(b, imgs, 1), method(b, imgs, 1, activations="relu")), method.__name__
    if build == "small_cnn":
        assert np.array_equal(A.guided_grad_cam(b, imgs, 1), A.guided_grad_cam(b, imgs, 1, activations="relu"))


# --------------------------------------------------------------------------- models as keras.applications build them
def _mbconv(x, name, act):
    """An EfficientNet-style block: expand, depthwise, squeeze-and-excitation, project."""
    ch = x.shape[-1]
    y = L.Activation(act, name=f"{name}_expand_act")(L.BatchNormalization()(L.Conv2D(ch * 2, 1, use_bias=False)(x)))
    y = L.Activation(act, name=f"{name}_act")(L.BatchNormalization()(L.DepthwiseConv2D(3, padding="same")(y)))
    se = L.Reshape((1, 1, ch * 2))(L.GlobalAveragePooling2D()(y))
    se = L.Conv2D(ch * 2, 1, activation="sigmoid")(L.Conv2D(2, 1, activation=act)(se))
    y = L.BatchNormalization()(L.Conv2D(ch, 1, use_bias=False)(L.Multiply()([y, se])))
    return L.Add()([x, y])


def applications_style_model(seed=0):
    """Stem conv + BN + swish, an MBConv with SE (swish), a ConvNeXt-style block (depthwise
    7x7, LayerNorm, Dense, GELU), a MobileNetV3-style hard-swish, a top conv, GAP,
    softmax."""
    keras.utils.set_random_seed(seed)
    inp = keras.Input((32, 32, 3))
    x = L.Activation("swish", name="stem_act")(L.BatchNormalization()(L.Conv2D(8, 3, strides=2, padding="same")(inp)))
    x = _mbconv(x, "block1", "swish")
    y = L.LayerNormalization(epsilon=1e-6)(L.DepthwiseConv2D(7, padding="same")(x))
    y = L.Dense(8)(L.Activation("gelu", name="cnx_gelu")(L.Dense(32)(y)))
    x = L.Add()([x, y])
    x = L.Activation("hard_swish", name="hs")(L.BatchNormalization()(L.Conv2D(16, 3, strides=2, padding="same")(x)))
    x = L.Conv2D(24, 1, activation="swish", name="top_conv")(x)
    out = L.Dense(5, activation="softmax", name="predictions")(L.GlobalAveragePooling2D()(x))
    return keras.Model(inp, out, name="applications_style")


def test_applications_style_blocks_run_every_guided_method():
    m = applications_style_model()
    b = bundle_of(m)
    imgs = random_images(2, 32, 32, seed=10)
    x = b.preprocess(imgs)
    before = m.predict(x, verbose=0)
    sal = A.saliency(b, imgs, 3)
    maps = {"guided_backprop": A.guided_backprop(b, imgs, 3), "deconvnet": A.deconvnet(b, imgs, 3),
            "guided_grad_cam": A.guided_grad_cam(b, imgs, 3)}
    for name, g in maps.items():
        assert g.shape == (2, 32, 32, 3) and np.isfinite(g).all() and np.abs(g).max() > 0, name
    assert not np.allclose(np.abs(maps["guided_backprop"]).max(-1), sal, rtol=1e-3), "the rule changed nothing"
    np.testing.assert_allclose(maps["guided_grad_cam"], maps["guided_backprop"] * A.grad_cam(b, imgs, 3)[..., None],
                               rtol=1e-5, atol=1e-12)
    assert np.array_equal(before, m.predict(x, verbose=0))
    with pytest.raises(A.NoReLUError):
        A.guided_grad_cam(b, imgs, 3, activations="relu")


@pytest.mark.slow
def test_efficientnet_b0_untrained_runs_every_guided_method():
    m = keras.applications.EfficientNetB0(weights=None, input_shape=(64, 64, 3))
    b = bundle_of(m)
    imgs = random_images(1, 64, 64, seed=11)
    for method in (A.guided_backprop, A.deconvnet, A.guided_grad_cam):
        g = method(b, imgs, 3)
        assert np.isfinite(g).all() and np.abs(g).max() > 0, method.__name__


# --------------------------------------------------------------------------- errors
def silu_only_model():
    return gate_model("fused_silu")[0]


def test_strict_option_refuses_a_model_without_relu():
    b = bundle_of(silu_only_model())
    imgs = random_images(1, H, W)
    for method in (A.guided_backprop, A.deconvnet):
        with pytest.raises(A.NoReLUError, match=r"no ReLU \(activations found: silu\).*activations='relu\+smooth'"):
            method(b, imgs, 0, activations="relu")
    assert np.isfinite(A.guided_backprop(b, imgs, 0)).all()  # the default takes it


def test_no_relu_and_no_gate_is_still_refused():
    b = bundle_of(smooth_model())  # tanh and softplus only
    with pytest.raises(A.NoReLUError, match="no ReLU and no smooth gate.*activations found: tanh, softplus"):
        A.guided_backprop(b, random_images(1, H, W), 0)
    with pytest.raises(A.NoReLUError):
        A.deconvnet(b, random_images(1, H, W), 0, activations="relu")


def test_unknown_activations_value():
    b = bundle_of(silu_only_model())
    with pytest.raises(A.AttributionError, match="activations must be one of 'relu\\+smooth', 'relu'"):
        A.guided_backprop(b, random_images(1, H, W), 0, activations="smooth")


def test_smoothgrad_passes_the_option_through():
    b = bundle_of(deep_gate_net("relu"))
    imgs = random_images(2, H, W, seed=12)
    for act in ("relu", "relu+smooth"):
        g = A.smoothgrad(b, imgs, 1, method="guided_backprop", samples=2, noise=0.0, activations=act)
        np.testing.assert_allclose(g, A.guided_backprop(b, imgs, 1, activations=act), rtol=1e-5, atol=1e-8)
