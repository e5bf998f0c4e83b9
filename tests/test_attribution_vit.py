"""Vision transformers: CAM methods on token layers (tokens back on their patch grid), the
default CAM layer of a ViT, and attention rollout -- plain and gradient-weighted -- against
hand computations."""
import keras
import numpy as np
import pytest
import tensorflow as tf

from test_attribution import bundle_of, random_images, small_cnn
from tfviz import attribution as A
from tfviz.models.tokens import as_grid, find_grid
from tfviz.default_layers import cam_layer

L = keras.layers


class ClassToken(keras.layers.Layer):
    """A learned class token put before the patch tokens."""

    def build(self, shape):
        self.cls = self.add_weight(shape=(1, 1, shape[-1]), initializer="random_normal", name="cls")

    def call(self, x):
        return keras.ops.concatenate([keras.ops.broadcast_to(self.cls, (keras.ops.shape(x)[0], 1, x.shape[-1])), x],
                                     axis=1)


def _tokens(inp, patch, dim, cls):
    """Conv2D patchify (stride = patch) -> tokens [N, gh * gw, dim] (-> class token first)."""
    x = L.Conv2D(dim, patch, strides=patch, name="patchify")(inp)
    x = L.Reshape((x.shape[1] * x.shape[2], dim), name="tokens")(x)
    return ClassToken(name="cls")(x) if cls else x


def _head(x, cls_head, classes):
    x = x[:, 0] if cls_head else L.GlobalAveragePooling1D(name="pool")(x)
    return L.Dense(classes, name="predictions")(x)


def tiny_vit(cls=True, cls_head=False, size=16, patch=4, dim=8, heads=2, seed=0):
    """Two pre-norm blocks (LayerNorm, MultiHeadAttention, residual; LayerNorm, GELU MLP,
    residual), a final LayerNorm, a pooled (or class-token) head."""
    keras.utils.set_random_seed(seed)
    inp = keras.Input((size, size, 3))
    x = _tokens(inp, patch, dim, cls)
    for i in range(2):
        y = L.LayerNormalization(name=f"block{i}_norm1")(x)
        x = L.Add(name=f"block{i}_add1")([x, L.MultiHeadAttention(heads, dim // heads, name=f"block{i}_attn")(y, y)])
        y = L.LayerNormalization(name=f"block{i}_norm2")(x)
        y = L.Dense(dim, name=f"block{i}_mlp2")(L.Dense(2 * dim, activation="gelu", name=f"block{i}_mlp1")(y))
        x = L.Add(name=f"block{i}_out")([x, y])
    x = L.LayerNormalization(name="norm")(x)
    return keras.Model(inp, _head(x, cls_head, 3), name="tiny_vit")


def attention_stack(cls=True, h=8, w=12, patch=4, dim=4, heads=2, seed=0):
    """Two blocks ``x + MultiHeadAttention(x, x)`` on a 2 x 3 patch grid: small enough to
    run by hand. With a class token the head reads it, else the mean of the tokens."""
    keras.utils.set_random_seed(seed)
    inp = keras.Input((h, w, 3))
    x = _tokens(inp, patch, dim, cls)
    for i in range(2):
        x = L.Add(name=f"add{i}")([x, L.MultiHeadAttention(heads, 2, name=f"attn{i}")(x, x)])
    return keras.Model(inp, _head(x, cls, 3), name="attention_stack")


# --------------------------------------------------------------------------- the token reshape
def test_token_k_lands_on_its_patch():
    """Token ``extra + k`` goes to row ``k // gw``, column ``k % gw``; the class and register
    tokens in front are dropped; a non-square input keeps its orientation (3 x 4, not 4 x 3)."""
    for extra in (0, 1, 5):
        t = np.arange(extra + 12, dtype=np.float32)[None, :, None] * np.ones((2, 1, 3), np.float32)
        g = as_grid(tf.constant(t), (12, 16)).numpy()
        assert g.shape == (2, 3, 4, 3)
        np.testing.assert_array_equal(g[1, :, :, 2], extra + np.arange(12).reshape(3, 4))
    # and it undoes what a ViT does: Conv2D patches -> Reshape to tokens -> class token first
    keras.utils.set_random_seed(1)
    conv = np.random.default_rng(1).normal(size=(2, 3, 4, 5)).astype(np.float32)
    tokens = L.Reshape((12, 5))(conv)
    np.testing.assert_array_equal(as_grid(ClassToken()(tokens), (24, 32)).numpy(), conv)


def test_grid_found_from_token_count_and_input_size():
    assert find_grid(197, (224, 224)) == (1, 14, 14)       # ViT-B/16: a class token
    assert find_grid(201, (224, 224)) == (5, 14, 14)       # a class token and four registers
    assert find_grid(196, (224, 224)) == (0, 14, 14)       # pooled, no class token
    assert find_grid(7, (8, 12)) == (1, 2, 3)
    assert find_grid(21, (30, 36)) == (1, 4, 5)            # 8-pixel patches, "same" padding: sides rounded up
    assert find_grid(300, (16, 16)) is None                # more tokens than a 16 x 16 grid has


def test_token_layer_that_fits_no_grid_is_one_clear_error():
    keras.utils.set_random_seed(0)
    inp = keras.Input((16, 16, 3))
    x = L.Reshape((300, 2), name="seq")(L.Dense(600, name="proj")(L.Flatten()(inp)))
    out = L.Dense(3, name="predictions")(L.GlobalAveragePooling1D()(L.Dense(4, name="mix")(x)))
    b = bundle_of(keras.Model(inp, out))
    with pytest.raises(A.NoSpatialLayerError) as err:
        A.grad_cam(b, random_images(1), 0, layer="mix")
    msg = str(err.value)
    assert "300 tokens" in msg and "16x16" in msg and "\n" not in msg


# --------------------------------------------------------------------------- CAM on a ViT
def _hand_grad_cam(m, layer, x, target, extra, gh, gw):
    probe = keras.Model(m.input, [m.get_layer(layer).output, m.outputs[0]])
    with tf.GradientTape() as tape:
        a, out = probe(x)
        score = tf.reduce_sum(out[:, target])
    g = tape.gradient(score, a).numpy()[:, extra:].reshape(len(x), gh, gw, -1)
    a = a.numpy()[:, extra:].reshape(len(x), gh, gw, -1)
    return np.maximum((a * g.mean(axis=(1, 2), keepdims=True)).sum(-1), 0.0)


def test_grad_cam_of_a_vit_reads_its_last_token_layer():
    """The default CAM layer of a pooled ViT is its last token layer (the final norm on the
    last block), not the patchify conv; the maps are the hand computation on the 4 x 4 grid
    (class token dropped), and the CAM family runs on it."""
    m = tiny_vit()
    b, imgs = bundle_of(m), random_images(2, seed=3)
    assert cam_layer(b) == "norm"
    peak = 0.0
    for target in range(3):
        want = _hand_grad_cam(m, "norm", imgs / 255.0, target, 1, 4, 4)
        got = A.grad_cam(b, imgs, target, upsample=False)
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-6 * (want.max() + 1e-3))
        peak = max(peak, want.min(axis=(1, 2)).max(), 0.0)
    assert peak > 0   # some class's map is positive everywhere on an image: not 0 == 0
    for name in ("grad_cam", "grad_cam_plus_plus", "layer_cam", "score_cam"):
        maps = A.METHODS[name](b, imgs, 1)
        assert maps.shape == (2, 16, 16) and np.isfinite(maps).all(), name


def test_class_token_head_defaults_to_the_last_block_input():
    """With a class-token head, the last block's output reaches the score only through the
    class token: Grad-CAM there is 0 everywhere. The default is the last attention's input."""
    m = tiny_vit(cls_head=True)
    b, imgs = bundle_of(m), random_images(2, seed=4)
    assert cam_layer(b) == "block1_norm1"
    assert np.all(A.grad_cam(b, imgs, 0, layer="norm") == 0)
    assert A.layer_cam(b, imgs, 0).max() > 0


# --------------------------------------------------------------------------- attention rollout
def _hand_forward(m, x, cls):
    """The attention stack run by hand: logits and each block's attention ``[B, heads, T, T]``."""
    h = tf.constant(keras.Model(m.input, m.get_layer("cls" if cls else "tokens").output)(x))
    attn = []
    for i in range(2):
        wq, bq, wk, bk, wv, bv, wo, bo = m.get_layer(f"attn{i}").get_weights()
        q, k, v = (tf.einsum("btd,dnh->btnh", h, w) + b for w, b in ((wq, bq), (wk, bk), (wv, bv)))
        a = tf.nn.softmax(tf.einsum("btnh,bsnh->bnts", q, k) / np.sqrt(wq.shape[-1]), axis=-1)
        attn.append(a)
        h = h + tf.einsum("btnh,nhd->btd", tf.einsum("bnts,bsnh->btnh", a, v), wo) + bo
    wd, bd = m.get_layer("predictions").get_weights()
    return (h[:, 0] if cls else tf.reduce_mean(h, axis=1)) @ wd + bd, attn


def _hand_rollout(attn, grads, cls):
    t = attn[0].shape[-1]
    r = np.eye(t)
    for a, g in zip(attn, grads):
        if g is None:                      # Abnar & Zuidema: rownorm(I + mean_heads A), multiplied
            m = a.mean(axis=1) + np.eye(t)
            r = (m / m.sum(-1, keepdims=True)) @ r
        else:                              # Chefer et al. 2021: R += mean_heads relu(dS/dA * A) @ R
            r = r + np.maximum(g * a, 0.0).mean(axis=1) @ r
    row = r[:, 0, 1:] if cls else r.mean(axis=1)
    return row.reshape(-1, 2, 3)


@pytest.mark.parametrize("cls", [True, False])
def test_attention_rollout_is_the_product_by_hand(cls):
    """Plain rollout: ``rownorm(I + mean_heads A)`` multiplied from the first block to the
    last; the class token's row over the patches (without one, the mean row) on the 2 x 3
    grid. The attention is computed by hand from the layers' weights."""
    m = attention_stack(cls=cls)
    b, imgs = bundle_of(m), random_images(2, 8, 12, seed=5)
    logits, attn = _hand_forward(m, imgs / 255.0, cls)
    np.testing.assert_allclose(logits, m(imgs / 255.0), rtol=1e-4, atol=1e-5)  # the hand forward is the model
    want = _hand_rollout([a.numpy() for a in attn], [None, None], cls)
    got = A.attention_rollout(b, imgs, [2, 0], upsample=False)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-7)
    up = A.attention_rollout(b, imgs, [2, 0])
    np.testing.assert_allclose(up, tf.image.resize(want[..., None], (8, 12), method="bilinear")[..., 0],
                               rtol=1e-5, atol=1e-7)
    # a unit after the first block: only that block's attention reaches it
    unit = A.attention_rollout(b, imgs, "add0:1", upsample=False)
    np.testing.assert_allclose(unit, _hand_rollout([attn[0].numpy()], [None], cls), rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("cls", [True, False])
def test_gradient_rollout_weights_heads_by_the_class_gradient(cls):
    """``gradient=True``: Chefer et al.'s rule, ``R = I``, ``R += mean_heads relu(dS/dA * A) R``
    per block (no normalization), with ``dS/dA`` the target logit's gradient from a
    GradientTape over the hand-run stack."""
    m = attention_stack(cls=cls, seed=2)
    b, imgs = bundle_of(m), random_images(2, 8, 12, seed=6)
    targets = [1, 2]
    with tf.GradientTape() as tape:
        logits, attn = _hand_forward(m, imgs / 255.0, cls)
        score = tf.reduce_sum(tf.gather(logits, targets, batch_dims=1))
    grads = tape.gradient(score, attn)
    want = _hand_rollout([a.numpy() for a in attn], [g.numpy() for g in grads], cls)
    got = A.attention_rollout(b, imgs, targets, gradient=True, upsample=False)
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-6 * np.abs(want).max())
    assert not np.allclose(got, A.attention_rollout(b, imgs, targets, upsample=False))
    # a target given as a function of the logits: the same map as the class it picks
    picked = A.attention_rollout(b, imgs, lambda out: out[:, 1], gradient=True, upsample=False)
    np.testing.assert_allclose(picked[0], got[0], rtol=1e-5, atol=1e-7)


def test_model_without_attention_is_refused_in_one_line():
    with pytest.raises(A.NoSpatialLayerError) as err:
        A.attention_rollout(bundle_of(small_cnn()), random_images(1), 0)
    msg = str(err.value)
    assert "MultiHeadAttention" in msg and "Conv2D" in msg and "small_cnn" in msg and "\n" not in msg


def test_activation_grid_of_a_token_layer_is_on_the_patch_grid():
    # the maps of a token layer are its patch tokens put back where their patches are
    from tfviz.inspect import activation_maps
    m = tiny_vit(cls=True)
    b = bundle_of(m)
    img = np.random.default_rng(0).integers(0, 256, (16, 16, 3)).astype(np.uint8)
    maps = activation_maps(b, img, "norm")
    raw = keras.Model(m.inputs[0], m.get_layer("norm").output)(b.preprocess(img[None])).numpy()[0]
    assert maps.shape == (4, 4, 8)
    for k in range(16):                       # token 1 + k (after the class token) at row k // 4, column k % 4
        np.testing.assert_allclose(maps[k // 4, k % 4], raw[1 + k], rtol=1e-5, atol=1e-6)


def test_max_activating_patches_of_a_token_layer_are_the_tokens_patches():
    """A token layer is scanned on its patch grid: each channel's best unit is the token
    with the highest activation over the data set (found here by hand from the raw
    tokens), at row k // gw, column k % gw, and its crop is that token's 4 x 4 patch."""
    from tfviz.inspect import max_activating_patches
    from tfviz.inspect.receptive import patch_field
    m = tiny_vit(cls=True)
    b = bundle_of(m)
    imgs = np.random.default_rng(3).integers(0, 256, (6, 16, 16, 3)).astype(np.uint8)
    rf = patch_field(b, "norm")
    assert (rf.size, rf.stride, rf.offset, rf.output_shape) == ((4, 4), (4, 4), (0, 0), (4, 4))
    raw = keras.Model(m.inputs[0], m.get_layer("norm").output)(b.preprocess(imgs)).numpy()[:, 1:]  # [6, 16, 8]
    res = max_activating_patches(b, imgs, "norm", channels=[0, 5], k=3, per_image=None)
    for r, c in zip(res, [0, 5]):
        order = np.argsort(-raw[..., c].ravel(), kind="stable")[:3]
        np.testing.assert_allclose(r.scores, raw[..., c].ravel()[order], rtol=1e-5, atol=1e-6)
        for (i, y, x), patch, o in zip(r.locations, r.patches, order):
            assert (i, y * 4 + x) == divmod(int(o), 16)
            np.testing.assert_array_equal(patch, imgs[i, 4 * y:4 * y + 4, 4 * x:4 * x + 4])
