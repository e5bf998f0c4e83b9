"""Layer-wise relevance propagation against hand computations in numpy.

The numpy reference below works in the *relevance* form of the papers (Montavon et al.
2019; zennit's generalized rules for inputs of both signs): each layer is a matrix (a
convolution unrolled by hand), and its rule hands the relevance of its outputs to its
inputs with the formula written out per (input, output) pair. tfviz computes LRP in the
gradient x input form with custom gradients, so agreeing with this reference tests the
derivation, not a copy of it."""
import numpy as np
import pytest

from tfviz import attribution as A
from tfviz.attribution import lrp_rules as LR
from tfviz.errors import AttributionError, TfvizError, UnsupportedModelError

from test_attribution import bundle_of, random_images


def _keras():
    import keras
    return keras


# --------------------------------------------------------------------------- numpy reference
def stab(d, eps=1e-6):
    d = d + np.where(d >= 0, eps, -eps)
    return np.where(d == 0, 1.0, d)


def relu(t):
    return np.maximum(t, 0.0)


def rule_np(rule, a, W, b, R, conn=None, low=None, high=None):
    """Relevance of the inputs ``a [D]`` of ``z = a W + b`` (``W [D, K]``) given the
    relevance ``R [K]`` of its outputs; ``conn``: 1 where input j feeds output k."""
    b = np.zeros(W.shape[1]) if b is None else b
    z = a @ W + b
    name = rule[0]
    if name == "eps":
        zjk = a[:, None] * W
        return (zjk * (R / stab(z, rule[1]))[None]).sum(1)
    if name == "gamma":
        g = rule[1]
        ap, an = relu(a), -relu(-a)
        up, down = W + g * relu(W), W - g * relu(-W)
        num_pos = ap[:, None] * up + an[:, None] * down
        num_neg = ap[:, None] * down + an[:, None] * up
        den_pos = num_pos.sum(0) + b + g * relu(b)
        den_neg = num_neg.sum(0) + b - g * relu(-b)
        cp = np.where(z > 0, R / stab(den_pos), 0.0)
        cn = np.where(z < 0, R / stab(den_neg), 0.0)
        return (num_pos * cp[None] + num_neg * cn[None]).sum(1)
    if name == "ab":
        alpha, beta = rule[1], rule[2]
        zjk = a[:, None] * W
        pos, neg = relu(zjk), -relu(-zjk)
        dp, dn = pos.sum(0) + relu(b), neg.sum(0) - relu(-b)
        return (alpha * pos * (R / stab(dp))[None] - beta * neg * (R / stab(dn))[None]).sum(1)
    if name == "flat":
        c = np.ones_like(W) if conn is None else conn
        return (c * (R / stab(c.sum(0)))[None]).sum(1)
    if name == "w2":
        w2 = W * W
        return (w2 * (R / stab(w2.sum(0)))[None]).sum(1)
    if name == "zb":
        num = a[:, None] * W - low[:, None] * relu(W) + high[:, None] * relu(-W)
        return (num * (R / stab(num.sum(0)))[None]).sum(1)
    raise AssertionError(name)


RULES = {  # tfviz rule -> numpy rule
    "zero": ("eps", 0.0), "epsilon": ("eps", 1e-6), "epsilon=0.5": ("eps", 0.5), "gamma": ("gamma", 0.25),
    "gamma=0.5": ("gamma", 0.5), "zplus": ("ab", 1.0, 0.0), "alpha2beta1": ("ab", 2.0, 1.0),
}


def conv_matrix(k, h, w, stride=1, padding="same", depthwise=False):
    """A convolution (NHWC, TensorFlow's padding) as a matrix on the flattened input:
    ``(M [h*w*ci, ho*wo*co], connections, (ho, wo, co))``."""
    kh, kw, ci, co = k.shape
    if padding == "same":
        ho, wo = -(-h // stride), -(-w // stride)
        pt = max((ho - 1) * stride + kh - h, 0) // 2
        pl = max((wo - 1) * stride + kw - w, 0) // 2
    else:
        ho, wo, pt, pl = (h - kh) // stride + 1, (w - kw) // stride + 1, 0, 0
    cout = ci * co if depthwise else co
    M = np.zeros((h * w * ci, ho * wo * cout))
    C = np.zeros_like(M)
    for oy in range(ho):
        for ox in range(wo):
            for dy in range(kh):
                for dx in range(kw):
                    iy, ix = oy * stride + dy - pt, ox * stride + dx - pl
                    if not (0 <= iy < h and 0 <= ix < w):
                        continue
                    for c in range(ci):
                        row = (iy * w + ix) * ci + c
                        base = (oy * wo + ox) * cout
                        cols = base + c * co + np.arange(co) if depthwise else base + np.arange(co)
                        M[row, cols] = k[dy, dx, c, :]
                        C[row, cols] = 1.0
    return M, C, (ho, wo, cout)


def per_image(fn, x, *args):
    return np.stack([fn(xi, *args) for xi in x])


def set_random_weights(model, seed, scale=0.5):
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        ws = layer.get_weights()
        if ws:
            layer.set_weights([rng.normal(0, scale, w.shape).astype("float32") for w in ws])


def model_input(bundle, imgs):
    return np.asarray(bundle.preprocess(imgs), np.float64)


def close(a, b, tol=2e-4):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    scale = max(np.abs(b).max(), 1e-6)
    np.testing.assert_allclose(a, b, atol=tol * scale, rtol=tol)


# --------------------------------------------------------------------------- dense net
def dense_net(seed=0):
    """4x4x3 -> d1 (relu) -> d2 (linear: outputs of both signs) -> d3: the three paths of
    the rules (inputs of both signs, ReLU inputs, a ReLU after)."""
    keras = _keras()
    L = keras.layers
    inp = keras.Input((4, 4, 3))
    x = L.Flatten(name="flat")(inp)
    x = L.Dense(6, activation="relu", name="d1")(x)
    x = L.Dense(5, name="d2")(x)
    out = L.Dense(3, name="d3")(x)
    m = keras.Model(inp, out, name="dense_net")
    set_random_weights(m, seed)
    return m


def dense_hand(m, x, cls, rules):
    """rules: numpy rule per layer name (d1's may be an input-layer rule)."""
    W = {n: m.get_layer(n).get_weights() for n in ("d1", "d2", "d3")}

    def one(xi):
        a0 = xi.reshape(-1)
        z1 = a0 @ W["d1"][0] + W["d1"][1]
        a1 = relu(z1)
        z2 = a1 @ W["d2"][0] + W["d2"][1]
        z3 = z2 @ W["d3"][0] + W["d3"][1]
        R3 = np.eye(3)[cls] * z3
        R2 = rule_np(rules["d3"], z2, *W["d3"], R3)
        R1 = rule_np(rules["d2"], a1, *W["d2"], R2)  # a ReLU passes relevance unchanged
        lo, hi = -np.ones_like(a0), np.ones_like(a0)
        return rule_np(rules["d1"], a0, *W["d1"], R1, low=lo, high=hi).reshape(xi.shape)
    return per_image(one, x)


@pytest.mark.parametrize("rule", ["zero", "epsilon=0.5", "gamma", "gamma=0.5", "zplus", "alpha2beta1"])
def test_each_rule_by_hand_on_a_dense_net(rule):
    m = dense_net()
    b = bundle_of(m, preprocess="-1-1")  # inputs of both signs
    imgs = random_images(2, 4, 4, seed=1)
    x = model_input(b, imgs)
    got = A.lrp(b, imgs, 2, rule=rule, reduce=None)
    want = dense_hand(m, x, 2, {n: RULES[rule] for n in ("d1", "d2", "d3")})
    close(got, want)


@pytest.mark.parametrize("rule, ref", [("flat", ("flat",)), ("wsquare", ("w2",)), ("zbox", ("zb",))])
def test_input_layer_rules_by_hand_on_a_dense_net(rule, ref):
    """Flat, w^2 and z^B (bounds -1..1: the '-1-1' preprocessing of pixels 0..255) on the
    first layer, epsilon elsewhere; these rules do not scale with the input, and hand their
    whole share on (they conserve)."""
    m = dense_net()
    b = bundle_of(m, preprocess="-1-1")
    imgs = random_images(2, 4, 4, seed=2)
    x = model_input(b, imgs)
    got, delta = A.lrp(b, imgs, 0, composite={"d1": rule}, reduce=None, return_delta=True)
    want = dense_hand(m, x, 0, {"d1": ref, "d2": RULES["epsilon"], "d3": RULES["epsilon"]})
    close(got, want)
    assert got.shape == (2, 4, 4, 3) and np.isfinite(delta).all()


def test_epsilon_absorbs_and_zero_is_gradient_times_input():
    """LRP-0 is gradient x input; a larger epsilon takes relevance away (a mutated
    stabilizer fails the hand test above, a sign error this one)."""
    m = dense_net(seed=3)
    b = bundle_of(m, preprocess="-1-1")
    imgs = random_images(3, 4, 4, seed=3)
    close(A.lrp(b, imgs, 1, rule="zero"), A.input_x_gradient(b, imgs, 1), tol=1e-4)
    small = np.abs(A.lrp(b, imgs, 1, rule="epsilon")).sum()
    large = np.abs(A.lrp(b, imgs, 1, rule="epsilon=100")).sum()
    assert large < 0.5 * small


# --------------------------------------------------------------------------- conv net
def conv_net(seed=0, bias=True):
    """6x6x3 -> c1 3x3 same (relu) -> c2 3x3 stride 2 valid -> flatten -> dense."""
    keras = _keras()
    L = keras.layers
    inp = keras.Input((6, 6, 3))
    x = L.Conv2D(4, 3, padding="same", activation="relu", use_bias=bias, name="c1")(inp)
    x = L.Conv2D(5, 3, strides=2, padding="valid", use_bias=bias, name="c2")(x)
    x = L.Flatten(name="flat")(x)
    out = L.Dense(3, use_bias=bias, name="dense")(x)
    m = keras.Model(inp, out, name="conv_net")
    set_random_weights(m, seed)
    return m


def conv_hand(m, x, cls, rules, low=None, high=None):
    bias = m.get_layer("c1").use_bias
    k1, k2 = m.get_layer("c1").get_weights()[0], m.get_layer("c2").get_weights()[0]
    M1, C1, s1 = conv_matrix(k1, 6, 6, 1, "same")
    M2, C2, s2 = conv_matrix(k2, *s1[:2], 2, "valid")
    b1 = np.tile(m.get_layer("c1").get_weights()[1], s1[0] * s1[1]) if bias else None
    b2 = np.tile(m.get_layer("c2").get_weights()[1], s2[0] * s2[1]) if bias else None
    Wd = m.get_layer("dense").get_weights()
    bd = Wd[1] if bias else None

    def one(xi):
        a0 = xi.reshape(-1)
        a1 = relu(a0 @ M1 + (0 if b1 is None else b1))
        z2 = a1 @ M2 + (0 if b2 is None else b2)
        z3 = z2 @ Wd[0] + (0 if bd is None else bd)
        R3 = np.eye(3)[cls] * z3
        R2 = rule_np(rules["dense"], z2, Wd[0], bd, R3)
        R1 = rule_np(rules["c2"], a1, M2, b2, R2, C2)
        lo = None if low is None else np.broadcast_to(low, xi.shape).reshape(-1)
        hi = None if high is None else np.broadcast_to(high, xi.shape).reshape(-1)
        return rule_np(rules["c1"], a0, M1, b1, R1, C1, lo, hi).reshape(xi.shape)
    return per_image(one, x)


@pytest.mark.parametrize("rule", ["zero", "epsilon=0.5", "gamma", "zplus", "alpha2beta1"])
def test_each_rule_by_hand_on_a_conv_net(rule):
    m = conv_net()
    b = bundle_of(m, preprocess="-1-1")
    imgs = random_images(2, 6, 6, seed=4)
    x = model_input(b, imgs)
    got = A.lrp(b, imgs, 1, rule=rule, reduce=None)
    close(got, conv_hand(m, x, 1, {n: RULES[rule] for n in ("c1", "c2", "dense")}))


def test_depthwise_and_separable_convolutions_by_hand():
    """A depthwise convolution (multiplier 2) and a separable one (its two maps each with
    the rule), gamma everywhere."""
    keras = _keras()
    L = keras.layers
    inp = keras.Input((5, 5, 3))
    x = L.DepthwiseConv2D(3, depth_multiplier=2, padding="same", activation="relu", name="dw")(inp)
    x = L.SeparableConv2D(3, 3, padding="valid", depth_multiplier=1, name="sep")(x)
    x = L.Flatten()(x)
    out = L.Dense(2, name="dense")(x)
    m = keras.Model(inp, out)
    set_random_weights(m, 5)
    b = bundle_of(m, preprocess="-1-1")
    imgs = random_images(2, 5, 5, seed=6)
    x = model_input(b, imgs)
    got = A.lrp(b, imgs, 1, rule="gamma", reduce=None)
    kd, bdw = m.get_layer("dw").get_weights()
    Md, Cd, sd = conv_matrix(kd, 5, 5, 1, "same", depthwise=True)
    bdw = np.tile(bdw, sd[0] * sd[1])
    dk, pk, bsep = m.get_layer("sep").get_weights()
    Ms1, _, ss1 = conv_matrix(dk, *sd[:2], 1, "valid", depthwise=True)
    Ms2, _, ss2 = conv_matrix(pk, *ss1[:2], 1, "valid")
    bsep = np.tile(bsep, ss2[0] * ss2[1])
    Wd, bd = m.get_layer("dense").get_weights()
    g = ("gamma", 0.25)

    def one(xi):
        a0 = xi.reshape(-1).astype(np.float64)
        a1 = relu(a0 @ Md + bdw)
        u = a1 @ Ms1
        z2 = u @ Ms2 + bsep
        z3 = z2 @ Wd + bd
        R3 = np.eye(2)[1] * z3
        R2 = rule_np(g, z2, Wd, bd, R3)
        Ru = rule_np(g, u, Ms2, bsep, R2)
        R1 = rule_np(g, a1, Ms1, None, Ru)
        return rule_np(g, a0, Md, bdw, R1).reshape(xi.shape)
    close(got, per_image(one, x))


# --------------------------------------------------------------------------- batch norm
def _bn_net(fold_into_conv: bool, seed=7):
    """c1 (no bias) -> bn1 -> relu -> c2 -> bn2 -> GAP -> dense, or the same net with the
    batch norms folded by hand into c1 / c2 (``fold_into_conv``)."""
    keras = _keras()
    L = keras.layers
    rng = np.random.default_rng(seed)
    k1 = rng.normal(0, 0.5, (3, 3, 3, 4)).astype("float32")
    k2 = rng.normal(0, 0.5, (3, 3, 4, 5)).astype("float32")
    b2 = rng.normal(0, 0.5, 5).astype("float32")
    bns = [[rng.uniform(0.5, 1.5, c), rng.normal(0, 0.5, c), rng.normal(0, 0.5, c), rng.uniform(0.05, 0.5, c)]
           for c in (4, 5)]  # gamma, beta, moving mean, moving variance
    wd, bd = rng.normal(0, 0.5, (5, 3)).astype("float32"), rng.normal(0, 0.5, 3).astype("float32")
    eps = 0.1
    inp = keras.Input((6, 6, 3))
    if fold_into_conv:
        def fold(k, b, p):
            a = p[0] / np.sqrt(p[3] + eps)
            return (k * a).astype("float32"), (a * b + p[1] - a * p[2]).astype("float32")
        fk1, fb1 = fold(k1, 0.0, bns[0])
        fk2, fb2 = fold(k2, b2, bns[1])
        x = L.Conv2D(4, 3, padding="same", name="c1")(inp)
        x = L.ReLU(name="r1")(x)
        x = L.Conv2D(5, 3, padding="same", name="c2")(x)
        weights = {"c1": [fk1, fb1], "c2": [fk2, fb2]}
    else:
        x = L.Conv2D(4, 3, padding="same", use_bias=False, name="c1")(inp)
        x = L.BatchNormalization(epsilon=eps, name="bn1")(x)
        x = L.ReLU(name="r1")(x)
        x = L.Conv2D(5, 3, padding="same", name="c2")(x)
        x = L.BatchNormalization(epsilon=eps, name="bn2")(x)
        weights = {"c1": [k1], "c2": [k2, b2], "bn1": [p.astype("float32") for p in bns[0]],
                   "bn2": [p.astype("float32") for p in bns[1]]}
    x = L.GlobalAveragePooling2D(name="gap")(x)
    out = L.Dense(3, name="dense")(x)
    m = keras.Model(inp, out)
    weights["dense"] = [wd, bd]
    for name, w in weights.items():
        m.get_layer(name).set_weights(w)
    return m


@pytest.mark.parametrize("rule, composite", [("gamma", None), ("zplus", None), ("epsilon=0.5", None),
                                             ("epsilon", "epsilon_gamma_box")])
def test_batch_norm_folding_equals_lrp_on_the_hand_folded_net(rule, composite):
    with_bn, folded = _bn_net(False), _bn_net(True)
    imgs = random_images(2, 6, 6, seed=8)
    b1, b2 = bundle_of(with_bn, preprocess="torch"), bundle_of(folded, preprocess="torch")
    np.testing.assert_allclose(with_bn.predict(b1.preprocess(imgs), verbose=0),
                               folded.predict(b2.preprocess(imgs), verbose=0), rtol=1e-4, atol=1e-4)
    before = [w.copy() for w in with_bn.get_weights()]
    got = A.lrp(b1, imgs, 2, rule=rule, composite=composite, reduce=None)
    want = A.lrp(b2, imgs, 2, rule=rule, composite=composite, reduce=None)
    close(got, want, tol=5e-4)
    for w0, w1 in zip(before, with_bn.get_weights()):  # nothing of the user's model changed
        np.testing.assert_array_equal(w0, w1)


def test_a_batch_norm_that_cannot_fold_is_a_linear_layer_by_hand():
    """conv -> ReLU -> BN (after the ReLU: not foldable) -> GAP -> dense with LRP-0: the
    batch norm hands on ``x a / y`` of each output's relevance (its shift absorbs the rest)."""
    keras = _keras()
    L = keras.layers
    rng = np.random.default_rng(9)
    inp = keras.Input((4, 4, 3))
    x = L.Conv2D(3, 3, padding="same", activation="relu", name="c")(inp)
    x = L.BatchNormalization(epsilon=0.01, name="bn")(x)
    x = L.GlobalAveragePooling2D()(x)
    out = L.Dense(2, use_bias=False, name="dense")(x)
    m = keras.Model(inp, out)
    set_random_weights(m, 9)
    m.get_layer("bn").set_weights([rng.uniform(0.5, 2, 3), rng.normal(size=3), rng.normal(size=3),
                                   rng.uniform(0.5, 2, 3)])
    b = bundle_of(m, preprocess="0-1")
    imgs = random_images(1, 4, 4, seed=9)
    x = model_input(b, imgs)[0]
    kc, bc = m.get_layer("c").get_weights()
    M, _, s = conv_matrix(kc, 4, 4)
    gam, beta, mean, var = m.get_layer("bn").get_weights()
    a = gam / np.sqrt(var + 0.01)
    wd = m.get_layer("dense").get_weights()[0]
    a1 = relu(x.reshape(-1) @ M + np.tile(bc, 16))
    y = a1 * np.tile(a, 16) + np.tile(beta - mean * a, 16)
    gap = np.kron(np.ones((16, 1)), np.eye(3)) / 16
    z = (y @ gap) @ wd
    R = np.eye(2)[1] * z
    R = rule_np(("eps", 0.0), y @ gap, wd, None, R)
    R = rule_np(("eps", 0.0), y, gap, None, R)        # average pooling: LRP-0's z-rule
    R = rule_np(("eps", 0.0), a1, np.diag(np.tile(a, 16)), np.tile(beta - mean * a, 16), R)
    R = rule_np(("eps", 0.0), x.reshape(-1), M, np.tile(bc, 16), R)
    close(A.lrp(b, imgs, 1, rule="zero", reduce=None)[0], R.reshape(4, 4, 3))


# --------------------------------------------------------------------------- residual block, conservation
def residual_net(bias=True, seed=10):
    keras = _keras()
    L = keras.layers
    inp = keras.Input((5, 5, 3))
    a = L.Conv2D(4, 3, padding="same", activation="relu", use_bias=bias, name="c1")(inp)
    y = L.Conv2D(4, 3, padding="same", use_bias=bias, name="c2")(a)
    x = L.Add(name="add")([y, a])
    x = L.ReLU(name="relu")(x)
    x = L.GlobalAveragePooling2D(name="gap")(x)
    out = L.Dense(3, use_bias=bias, name="dense")(x)
    m = keras.Model(inp, out)
    set_random_weights(m, seed)
    return m


@pytest.mark.parametrize("rule", ["epsilon=0.5", "gamma"])
def test_residual_block_by_hand(rule):
    """The sum splits its relevance in proportion to its inputs: ``R_i = x_i / (y + eps sign
    y) R``, as does the average pooling, with the rule's epsilon (else 1e-6)."""
    m = residual_net()
    b = bundle_of(m, preprocess="0-1")
    imgs = random_images(2, 5, 5, seed=11)
    x = model_input(b, imgs)
    ref = RULES[rule]
    eps = ref[1] if ref[0] == "eps" else 1e-6
    (k1, b1), (k2, b2) = m.get_layer("c1").get_weights(), m.get_layer("c2").get_weights()
    M1, _, _ = conv_matrix(k1, 5, 5)
    M2, _, _ = conv_matrix(k2, 5, 5)
    b1, b2 = np.tile(b1, 25), np.tile(b2, 25)
    wd, bd = m.get_layer("dense").get_weights()
    gap = np.kron(np.ones((25, 1)), np.eye(4)) / 25

    def one(xi):
        a0 = xi.reshape(-1)
        a1 = relu(a0 @ M1 + b1)
        y = a1 @ M2 + b2
        s = y + a1
        r = relu(s)
        p = r @ gap
        z = p @ wd + bd
        R = np.eye(3)[0] * z
        R = rule_np(ref, p, wd, bd, R)
        R = rule_np(("eps", eps), r, gap, None, R)    # average pooling: epsilon rule
        R_s = R                                          # ReLU: passed on
        R_y, R_skip = y / stab(s, eps) * R_s, a1 / stab(s, eps) * R_s
        R_a1 = rule_np(ref, a1, M2, b2, R_y) + R_skip
        return rule_np(ref, a0, M1, b1, R_a1).reshape(xi.shape)
    close(A.lrp(b, imgs, 0, rule=rule, reduce=None), per_image(one, x))


def test_relevance_sums_to_the_score_on_bias_free_networks():
    """Conservation: on a bias-free network (batch norm with zero shift, padding,
    max / average pooling, a concatenation, a residual sum, dropout) LRP-0 and epsilon hand
    the whole score to the pixels (epsilon up to its absorption, tiny at 1e-6); so do
    gamma and z+ on ReLU inputs. A rule that lost or doubled relevance anywhere fails."""
    keras = _keras()
    L = keras.layers
    inp = keras.Input((8, 8, 3))
    x = L.ZeroPadding2D(1, name="pad")(inp)
    x = L.Conv2D(6, 3, use_bias=False, name="c1")(x)
    x = L.BatchNormalization(center=False, name="bn1")(x)   # zero shift: moving mean 0
    x = L.ReLU(name="r1")(x)
    x = L.MaxPooling2D(name="max")(x)
    y = L.Conv2D(6, 3, padding="same", use_bias=False, activation="relu", name="c2")(x)
    x = L.Add(name="add")([x, y])
    z = L.AveragePooling2D(2, name="avg")(x)
    z = L.Conv2D(4, 1, use_bias=False, name="c3")(z)
    w = L.GlobalAveragePooling2D(keepdims=True, name="gap")(x)
    w = L.Reshape((1, 1, 6))(w)
    z = L.Concatenate(name="cat")([L.Flatten()(z), L.Flatten()(w)])
    z = L.Dropout(0.5, name="drop")(z)
    out = L.Dense(4, use_bias=False, activation="softmax", name="dense")(z)
    m = keras.Model(inp, out)
    set_random_weights(m, 12)
    bn = m.get_layer("bn1")
    bn.set_weights([np.linspace(0.5, 1.5, 6), np.zeros(6), np.linspace(0.5, 2, 6)])
    b = bundle_of(m, preprocess="0-1")
    imgs = random_images(3, 8, 8, seed=13)
    for rule, tol in [("zero", 1e-5), ("epsilon", 1e-4), ("gamma", 1e-4), ("zplus", 1e-4)]:
        r, delta = A.lrp(b, imgs, [0, 1, 3], rule=rule, return_delta=True)
        scores = r.reshape(3, -1).sum(1) - delta
        assert np.all(np.abs(delta) <= tol * np.abs(scores)), (rule, delta, scores)
    logits = b.logits.predict(b.preprocess(imgs), verbose=0)
    r = A.lrp(b, imgs, [0, 1, 3])
    np.testing.assert_allclose(r.reshape(3, -1).sum(1), logits[[0, 1, 2], [0, 1, 3]], rtol=1e-4)


# --------------------------------------------------------------------------- composites, z^B
def _three_layer(seed=14):
    keras = _keras()
    L = keras.layers
    inp = keras.Input((5, 5, 3))
    x = L.Conv2D(4, 3, padding="same", activation="relu", name="conv1")(inp)
    x = L.Conv2D(3, 3, padding="valid", name="conv2")(x)
    x = L.Flatten()(x)
    out = L.Dense(2, name="dense")(x)
    m = keras.Model(inp, out)
    set_random_weights(m, seed)
    return m


def three_hand(m, x, cls, rules, low, high):
    (k1, b1), (k2, b2) = m.get_layer("conv1").get_weights(), m.get_layer("conv2").get_weights()
    M1, C1, s1 = conv_matrix(k1, 5, 5)
    M2, C2, s2 = conv_matrix(k2, 5, 5, 1, "valid")
    b1, b2 = np.tile(b1, 25), np.tile(b2, s2[0] * s2[1])
    wd, bd = m.get_layer("dense").get_weights()

    def one(xi):
        a0 = xi.reshape(-1)
        a1 = relu(a0 @ M1 + b1)
        z2 = a1 @ M2 + b2
        z = z2 @ wd + bd
        R = np.eye(2)[cls] * z
        R = rule_np(rules["dense"], z2, wd, bd, R)
        R = rule_np(rules["conv2"], a1, M2, b2, R, C2)
        lo = np.broadcast_to(low, xi.shape).reshape(-1)
        hi = np.broadcast_to(high, xi.shape).reshape(-1)
        return rule_np(rules["conv1"], a0, M1, b1, R, C1, lo, hi).reshape(xi.shape)
    return per_image(one, x)


@pytest.mark.parametrize("composite, rule, rules", [
    ("epsilon_gamma_box", "epsilon", {"conv1": ("zb",), "conv2": ("gamma", 0.25), "dense": ("eps", 1e-6)}),
    ("EpsilonPlusFlat", "epsilon", {"conv1": ("flat",), "conv2": ("ab", 1.0, 0.0), "dense": ("eps", 1e-6)}),
    ({"Conv2D": "gamma", "conv2": LR.Gamma(0.5), "dense": "zero"}, "epsilon",
     {"conv1": ("gamma", 0.25), "conv2": ("gamma", 0.5), "dense": ("eps", 0.0)}),
    ({"first": "wsquare", "conv": "alpha2beta1"}, "epsilon=0.5",
     {"conv1": ("w2",), "conv2": ("ab", 2.0, 1.0), "dense": ("eps", 0.5)}),
])
def test_composites_assign_the_expected_rules_by_hand(composite, rule, rules):
    """Named composites as zennit's, and a dict (name over 'first' over class over
    family); z^B's default bounds are the 'torch' preprocessing of pixels 0 and 255, one
    pair per channel."""
    m = _three_layer()
    b = bundle_of(m, preprocess="torch")
    imgs = random_images(2, 5, 5, seed=15)
    x = model_input(b, imgs)
    low, high = b.input_range
    got = A.lrp(b, imgs, 1, rule=rule, composite=composite, reduce=None)
    close(got, three_hand(m, x, 1, rules, low, high))


def test_zbox_bounds_follow_in_model_rescaling_and_padding():
    """The image is rescaled (Rescaling) and zero-padded inside the model before the first
    convolution: z^B's bounds are pixel 0 and 255 taken through the rescaling (-1, 1), and
    0 on the padding (which takes no relevance); the relevance comes back unpadded and the
    first layer hands on all of it. ZBox(0, 255) (bounds in model-input space) is the same;
    other bounds are not."""
    keras = _keras()
    L = keras.layers
    inp = keras.Input((4, 4, 3))
    x = L.Rescaling(1 / 127.5, offset=-1, name="rescale")(inp)
    x = L.ZeroPadding2D(1, name="pad")(x)
    x = L.Conv2D(3, 3, activation="relu", name="c1")(x)
    x = L.GlobalAveragePooling2D()(x)
    out = L.Dense(2, use_bias=False, name="dense")(x)
    m = keras.Model(inp, out)
    set_random_weights(m, 16)
    b = bundle_of(m, preprocess="raw")
    imgs = random_images(2, 4, 4, seed=17)
    got, delta = A.lrp(b, imgs, 0, composite="epsilon_gamma_box", reduce=None, return_delta=True)
    k, bias = m.get_layer("c1").get_weights()
    M, C, s = conv_matrix(k, 6, 6, 1, "valid")
    bias = np.tile(bias, 16)
    wd = m.get_layer("dense").get_weights()[0]
    gap = np.kron(np.ones((16, 1)), np.eye(3)) / 16
    real = np.zeros((6, 6, 3), bool)
    real[1:5, 1:5] = True

    def one(img):
        x1 = np.zeros((6, 6, 3))
        x1[1:5, 1:5] = img / 127.5 - 1
        a0 = x1.reshape(-1)
        a1 = relu(a0 @ M + bias)
        p = a1 @ gap
        z = p @ wd
        R = rule_np(("eps", 1e-6), p, wd, None, np.eye(2)[0] * z)
        R = rule_np(("eps", 1e-6), a1, gap, None, R)
        lo, hi = np.where(real, -1.0, 0.0).reshape(-1), np.where(real, 1.0, 0.0).reshape(-1)
        R = rule_np(("zb",), a0, M, bias, R, C, lo, hi).reshape(6, 6, 3)
        return R[1:5, 1:5]
    want = per_image(one, imgs.astype(np.float64))
    close(got, want)
    same = A.lrp(b, imgs, 0, composite={"first": LR.ZBox(0, 255), "conv": "gamma"}, reduce=None)
    close(same, want)
    other = A.lrp(b, imgs, 0, composite={"first": LR.ZBox(-50, 300), "conv": "gamma"}, reduce=None)
    assert np.abs(other - want).max() > 1e-2 * np.abs(want).max()


def test_in_model_rescaling_hands_relevance_to_black_pixels():
    """Rescaling inside the model maps pixel 0 to -1: LRP gives that value relevance, and
    the pixel keeps it (gradient x input at the model input would give a 0 input none).
    LRP-0 by hand on a bias-free net, and conservation."""
    keras = _keras()
    L = keras.layers
    inp = keras.Input((4, 4, 3))
    x = L.Rescaling(1 / 127.5, offset=-1, name="rescale")(inp)
    x = L.Conv2D(3, 3, padding="same", use_bias=False, activation="relu", name="c1")(x)
    x = L.GlobalAveragePooling2D()(x)
    out = L.Dense(2, use_bias=False, name="dense")(x)
    m = keras.Model(inp, out)
    set_random_weights(m, 24)
    b = bundle_of(m, preprocess="raw")
    imgs = random_images(2, 4, 4, seed=24)
    imgs[:, :2] = 0                                      # black rows: model input 0, rescaled -1
    M, _, _ = conv_matrix(m.get_layer("c1").get_weights()[0], 4, 4)
    wd = m.get_layer("dense").get_weights()[0]
    gap = np.kron(np.ones((16, 1)), np.eye(3)) / 16

    def one(img):
        x1 = (img / 127.5 - 1).reshape(-1)
        a1 = relu(x1 @ M)
        p = a1 @ gap
        R = rule_np(("eps", 0.0), p, wd, None, np.eye(2)[1] * (p @ wd))
        R = rule_np(("eps", 0.0), a1, gap, None, R)
        return rule_np(("eps", 0.0), x1, M, None, R).reshape(img.shape)
    got, delta = A.lrp(b, imgs, 1, rule="zero", reduce=None, return_delta=True)
    want = per_image(one, imgs.astype(np.float64))
    close(got, want)
    assert np.abs(got[:, :2]).max() > 0.1 * np.abs(got).max()
    scores = got.reshape(2, -1).sum(1) - delta
    assert np.all(np.abs(delta) <= 1e-5 * np.abs(scores))


# --------------------------------------------------------------------------- gates, activations, targets
def test_squeeze_excitation_gate_takes_no_relevance_and_swish_passes_it():
    """x * sigmoid(dense(GAP(x))): the signal keeps all the relevance (the gate is a
    constant for LRP); swish / ReLU6 pass relevance unchanged (``g f(z) / z``). By hand,
    LRP-0 on a bias-free net, and conservation."""
    keras = _keras()
    L = keras.layers
    inp = keras.Input((4, 4, 3))
    x = L.Conv2D(4, 3, padding="same", use_bias=False, activation="swish", name="c1")(inp)
    s = L.GlobalAveragePooling2D(keepdims=True)(x)
    s = L.Conv2D(4, 1, activation="sigmoid", name="se")(s)
    x = L.Multiply(name="gate")([x, s])
    x = L.ReLU(max_value=6.0, name="relu6")(x)
    x = L.Flatten()(x)
    out = L.Dense(2, use_bias=False, name="dense")(x)
    m = keras.Model(inp, out)
    set_random_weights(m, 18, scale=0.8)
    b = bundle_of(m, preprocess="-1-1")
    imgs = random_images(2, 4, 4, seed=19)
    x0 = model_input(b, imgs)
    k1 = m.get_layer("c1").get_weights()[0]
    kse, bse = m.get_layer("se").get_weights()
    wd = m.get_layer("dense").get_weights()[0]
    M, _, _ = conv_matrix(k1, 4, 4)

    def one(xi):
        z1 = xi.reshape(-1) @ M
        a1 = z1 / (1 + np.exp(-z1))
        sq = a1.reshape(16, 4).mean(0)
        gate = 1 / (1 + np.exp(-(sq @ kse[0, 0] + bse)))
        g = a1 * np.tile(gate, 16)
        r6 = np.clip(g, 0, 6)
        z = r6 @ wd
        R = rule_np(("eps", 0.0), r6, wd, None, np.eye(2)[1] * z)  # ReLU6 and gate pass it on
        return rule_np(("eps", 0.0), xi.reshape(-1), M, None, R).reshape(xi.shape)
    got, delta = A.lrp(b, imgs, 1, rule="zero", reduce=None, return_delta=True)
    close(got, per_image(one, x0))
    scores = got.reshape(2, -1).sum(1) - delta
    assert np.all(np.abs(delta) <= 1e-4 * np.abs(scores))


def test_layer_normalization_is_linear_with_its_std_held_by_hand():
    """Layer normalization with the standard deviation held constant (Ali et al. 2022's
    LN-rule) is the linear map ``z (I - 1/n) diag(gamma / sd) + beta``: LRP-0 through it by
    hand. Its plain gradient (sd not held) would differ."""
    keras = _keras()
    L = keras.layers
    inp = keras.Input((2, 2, 3))
    x = L.Flatten()(inp)
    x = L.Dense(6, name="d1")(x)
    x = L.LayerNormalization(epsilon=0.01, name="ln")(x)
    x = L.ReLU(name="relu")(x)
    out = L.Dense(3, name="d2")(x)
    m = keras.Model(inp, out)
    set_random_weights(m, 23)
    b = bundle_of(m, preprocess="-1-1")
    imgs = random_images(2, 2, 2, seed=23)
    x0 = model_input(b, imgs)
    W1, b1 = m.get_layer("d1").get_weights()
    gam, beta = m.get_layer("ln").get_weights()
    W2, b2 = m.get_layer("d2").get_weights()

    def one(xi):
        a0 = xi.reshape(-1)
        z1 = a0 @ W1 + b1
        sd = np.sqrt(z1.var() + 0.01)
        M = (np.eye(6) - 1 / 6) @ np.diag(gam / sd)
        y = z1 @ M + beta
        r = relu(y)
        z = r @ W2 + b2
        R = rule_np(("eps", 0.0), r, W2, b2, np.eye(3)[2] * z)
        R = rule_np(("eps", 0.0), z1, M, beta, R)      # through the ReLU unchanged, then the LN
        return rule_np(("eps", 0.0), a0, W1, b1, R).reshape(xi.shape)
    close(A.lrp(b, imgs, 2, rule="zero", reduce=None), per_image(one, x0))


def test_unit_callable_and_negated_targets():
    """A unit's relevance by hand (epsilon); LRP-0 is linear in the score, so a logit
    difference's map is the difference of the maps; a negated target negates the map."""
    m = conv_net()
    b = bundle_of(m, preprocess="-1-1")
    imgs = random_images(2, 6, 6, seed=20)
    x = model_input(b, imgs)
    k1, b1 = m.get_layer("c1").get_weights()
    k2, b2 = m.get_layer("c2").get_weights()
    M1, _, s1 = conv_matrix(k1, 6, 6)
    M2, _, s2 = conv_matrix(k2, 6, 6, 2, "valid")
    b1, b2 = np.tile(b1, 36), np.tile(b2, 4)

    def one(xi):  # unit c2:3, mean over its 2x2 positions
        a0 = xi.reshape(-1)
        a1 = relu(a0 @ M1 + b1)
        z2 = a1 @ M2 + b2
        R = np.zeros_like(z2)
        R[3::5] = z2[3::5] / 4
        R = rule_np(("eps", 1e-6), a1, M2, b2, R)
        return rule_np(("eps", 1e-6), a0, M1, b1, R).reshape(xi.shape)
    close(A.lrp(b, imgs, "c2:3", reduce=None), per_image(one, x))
    diff = A.lrp(b, imgs, lambda logits: logits[:, 0] - logits[:, 2], rule="zero")
    close(diff, A.lrp(b, imgs, 0, rule="zero") - A.lrp(b, imgs, 2, rule="zero"), tol=1e-4)
    t = [A.Target("class", 1, negate=True)] * 2
    close(A.lrp.on_inputs(b, x.astype(np.float32), t), -A.lrp(b, imgs, 1), tol=1e-5)


def test_rewritten_model_runs_eagerly_and_traced_and_leaves_the_model_alone():
    import tensorflow as tf
    from tfviz.attribution.lrp import lrp_head, lrp_key
    m = residual_net()
    b = bundle_of(m, preprocess="0-1")
    imgs = random_images(2, 5, 5, seed=21)
    x = tf.constant(b.preprocess(imgs))
    n_layers, before = len(m.layers), [w.copy() for w in m.get_weights()]
    out_before = m.predict(x, verbose=0)
    traced = A.lrp(b, imgs, 1, rule="gamma", reduce=None)
    head, has_u = lrp_head(b, None, lrp_key("gamma"))
    assert not has_u
    with tf.GradientTape() as tape:  # eager
        tape.watch(x)
        s = head(x, training=False)[:, 1]
    eager = (x * tape.gradient(s, x)).numpy()
    close(eager, traced, tol=1e-5)
    np.testing.assert_allclose(head(x).numpy(), b.logits(x).numpy(), rtol=1e-5, atol=1e-6)
    assert len(m.layers) == n_layers
    for w0, w1 in zip(before, m.get_weights()):
        np.testing.assert_array_equal(w0, w1)
    np.testing.assert_array_equal(m.predict(x, verbose=0), out_before)


# --------------------------------------------------------------------------- options and errors
def test_channels_option_and_bgr_order():
    m = conv_net()
    b = bundle_of(m, preprocess="caffe")
    imgs = random_images(1, 6, 6, seed=22)
    per = A.lrp(b, imgs, 0, reduce=None)
    assert per.shape == (1, 6, 6, 3) and per.dtype == np.float32
    np.testing.assert_allclose(per.sum(-1), A.lrp(b, imgs, 0), rtol=1e-5, atol=1e-6)
    x = b.preprocess(imgs).astype(np.float32)  # BGR model order -> RGB maps
    t = A.resolve_targets(b, 0, 1, x)
    from tfviz.attribution.lrp import lrp_function, lrp_key
    from tfviz.attribution.core import selection
    raw = lrp_function(b, None, lrp_key())(x, selection(t))[0].numpy()
    np.testing.assert_allclose(per, raw[..., ::-1], rtol=1e-6)


def test_stabilizer_adds_epsilon_away_from_zero():
    """``z + eps sign z`` with ``sign 0 = +1`` (zennit's convention), never 0."""
    import tensorflow as tf
    z = tf.constant([-2.0, -1e-9, 0.0, 3.0])
    np.testing.assert_allclose(LR.stabilize(z, 0.5).numpy(), [-2.5, -0.5, 0.5, 3.5], rtol=1e-6)
    np.testing.assert_allclose(LR.stabilize(z, 0.0).numpy(), [-2.0, -1e-9, 1.0, 3.0], rtol=1e-6)
    np.testing.assert_allclose(stab(z.numpy(), 0.5), [-2.5, -0.5, 0.5, 3.5], rtol=1e-6)  # the reference's too


def test_rule_and_composite_names_and_errors():
    assert LR.rule_of("LRP-0") == LR.Epsilon(0.0) and LR.rule_of("z+") == LR.AlphaBeta(1, 0)
    assert LR.rule_of("gamma=0.5") == LR.Gamma(0.5) and LR.rule_of("W^2") == LR.WSquare()
    assert LR.rule_of("epsilon") == LR.Epsilon(1e-6) and LR.rule_of("gamma") == LR.Gamma(0.25)
    assert LR.composite_of("EpsilonGammaBox") == LR.EpsilonGammaBox()
    for bad in ["gama", "alpha3beta1", 3]:
        with pytest.raises(AttributionError):
            LR.rule_of(bad)
    with pytest.raises(AttributionError, match="did you mean 'gamma'"):
        LR.rule_of("gama")
    for bad in [lambda: LR.Gamma(-1), lambda: LR.AlphaBeta(2, 2), lambda: LR.Epsilon(float("nan")),
                lambda: LR.ZBox(0), lambda: LR.composite_of("epsilon_gama_box"), lambda: LR.composite_of(3)]:
        with pytest.raises(AttributionError):
            bad()
    m = _three_layer()
    b = bundle_of(m)
    imgs = random_images(1, 5, 5)
    with pytest.raises(AttributionError, match="input-layer rule.*'conv2'"):
        A.lrp(b, imgs, composite={"conv2": "flat"})
    with pytest.raises(AttributionError, match="'conv3'; did you mean .*'conv2'"):
        A.lrp(b, imgs, composite={"conv3": "gamma"})


def test_a_layer_it_cannot_handle_is_named_in_one_line():
    keras = _keras()
    L = keras.layers
    inp = keras.Input((4, 4, 3))
    x = L.Conv2D(4, 3, padding="same", name="c1")(inp)
    x = L.Lambda(lambda t: t * t, name="square")(x)
    x = L.Flatten()(x)
    out = L.Dense(2, name="dense")(x)
    b = bundle_of(keras.Model(inp, out))
    with pytest.raises(UnsupportedModelError) as err:
        A.lrp(b, random_images(1, 4, 4))
    msg = str(err.value)
    assert "'square' (Lambda)" in msg and "\n" not in msg
    assert isinstance(err.value, TfvizError)
    assert A.lrp.applies(b) == msg
    assert "lrp" not in A.methods_for(b) and "lrp" in A.methods_for(bundle_of(conv_net()))
    assert "lrp" in A.METHODS


def test_cli_lrp_rule_and_composite_reach_the_method(tmp_path, capsys):
    """``tfviz attribute lrp --lrp-rule gamma=0.5`` and ``--composite epsilon_plus_flat``
    write the library's maps; a misspelt rule is one line, exit 2 or 1, no traceback."""
    from PIL import Image

    from cli_helpers import run_cli
    from tfviz import load_model
    path = str(tmp_path / "net.keras")
    conv_net(seed=3).save(path)
    img = random_images(1, seed=4)[0]
    Image.fromarray(img).save(tmp_path / "one.png")
    b = load_model(path, preprocess="0-1")
    args = ["attribute", "lrp", str(tmp_path / "one.png"), "--model", path, "--preprocess", "0-1",
            "--out", str(tmp_path / "out"), "--target", "1"]
    for flags, opts in [(["--lrp-rule", "gamma=0.5"], dict(rule="gamma=0.5")),
                        (["--composite", "epsilon_plus_flat"], dict(composite="epsilon_plus_flat"))]:
        code, _, err = run_cli(args + flags, capsys)
        assert code == 0, err
        close(np.load(tmp_path / "out" / "one_lrp.npy"), A.lrp(b, img[None], 1, **opts)[0])
    plain = A.lrp(b, img[None], 1)[0]
    assert not np.allclose(np.load(tmp_path / "out" / "one_lrp.npy"), plain)  # the option changed the map
    code, _, err = run_cli(args + ["--lrp-rule", "gama"], capsys)
    assert code in (1, 2) and "gama" in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
