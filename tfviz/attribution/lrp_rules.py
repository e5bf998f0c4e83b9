"""The rules of layer-wise relevance propagation (Montavon et al. 2019, "Layer-wise
relevance propagation: an overview") and the composites that assign them to layers.

Each rule is the backward pass of one linear map ``z = lin(x, W) + b`` (a dense or
convolution layer, with a following batch norm folded in) in the *gradient x input*
formulation that :mod:`.lrp` uses everywhere: the relevance of a tensor ``t`` is ``t * g``,
``g`` being what flows backwards in its place. Given ``g`` at the output, ``R = z * g`` is
the output's relevance (``a * g`` when an element-wise activation ``a = f(z)`` follows: LRP
passes relevance through activations unchanged), and a rule returns ``g_x`` such that
``x * g_x`` is the relevance the rule gives each input:

========================  =====================================================================
rule                      ``R_j`` (``a_j``: input, ``w_jk``: weight, sums over ``k`` outputs)
========================  =====================================================================
``Epsilon(eps)``          ``a_j w_jk / (z_k + eps sign z_k) R_k`` -- ``eps=0``: LRP-0
``Gamma(gamma)``          ``a_j (w_jk + gamma w_jk^+) / sum_j' (same) R_k`` (bias too: ``b + gamma b^+``)
``AlphaBeta(a, b)``       ``(a (a_j w_jk)^+ / z_k^+  -  b (a_j w_jk)^- / z_k^-) R_k`` -- ``ZPlus``: a=1, b=0
``Flat()``                ``1 / (number of inputs of k) R_k``  (input layer)
``WSquare()``             ``w_jk^2 / sum_j' w_j'k^2 R_k``  (input layer)
``ZBox(low, high)``       ``(a_j w_jk - l_j w_jk^+ - h_j w_jk^-) / sum_j' (same) R_k``  (input layer)
========================  =====================================================================

The stabilizer ``eps sign z`` (``sign 0 = +1``) is the one zennit uses; ``Epsilon``'s default
``eps = 1e-6`` is zennit's too (and iNNvestigate's 1e-7 is as small): it only keeps the
division finite, so ``Epsilon()`` conserves relevance to float precision on a bias-free
network, and a larger ``eps`` (Montavon et al. use about a quarter of the layer's standard
deviation) is a choice about the model's scale that no default can make. The other rules
divide by their own denominators stabilized by :data:`STABILIZER` (1e-6).

``Gamma`` and ``AlphaBeta`` follow zennit for inputs of both signs (Andeol et al. 2021):
for ReLU outputs (all ``a_j >= 0``) they are the paper's rules; negative inputs take the
weights of the opposite sign, and for ``Gamma`` negative outputs are explained by the
negative contributions. ``Flat``, ``WSquare`` and ``ZBox`` are input-layer rules: their
relevance is not proportional to the input, so they apply only to a layer that reads the
image (through in-model rescaling and padding at most). ``ZBox``'s ``low`` / ``high`` are
the lowest and highest input values in model-input space (a number or one per channel);
``None`` takes the bundle's preprocessing: pixel 0 and 255 mapped to model space.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import tensorflow as tf

from ..errors import AttributionError
from ..utils import did_you_mean

#: What keeps every rule's division finite: ``z + STABILIZER * sign(z)`` (``sign 0 = +1``).
STABILIZER = 1e-6


def stabilize(z, eps: float = STABILIZER):
    """``z + eps * sign(z)`` with ``sign(0) = +1``; never 0 (with ``eps = 0`` zeros become 1:
    their numerators are 0 too)."""
    if eps > 0:
        return tf.where(z >= 0, z + eps, z - eps)
    return tf.where(tf.equal(z, 0), tf.ones_like(z), z)


def _relevance(z, g, a):
    """The relevance ``out * g`` of a map's output: ``a`` after its activation, else ``z``."""
    return (z if a is None else a) * g


@dataclass(frozen=True)
class Linear:
    """One linear map of a layer: ``z = fn(x, kernel) + bias`` (``bias`` None or
    broadcastable to ``z``); ``fn`` is linear in both arguments."""
    fn: object
    kernel: object
    bias: object = None

    def __call__(self, x, kernel=None, bias=False):
        z = self.fn(x, self.kernel if kernel is None else kernel)
        if bias is not False and bias is not None:
            z = _add_bias(z, bias)
        return z

    def vjp(self, kernel, like, v):
        """``fn(., kernel)^T v``: the backward pass of the map with ``kernel`` (``like``: a
        tensor of the input's shape; the map is linear, its value does not matter)."""
        with tf.GradientTape() as tape:
            tape.watch(like)
            out = self.fn(like, kernel)
        g = tape.gradient(out, like, output_gradients=v)
        return tf.zeros_like(like) if g is None else g


def _add_bias(z, bias):
    """``z + bias``; a bias of one value per channel is a ``BiasAdd``, which the graph
    optimizer fuses into the convolution or matmul before it (a pass over ``z`` saved)."""
    if getattr(bias, "shape", None) is not None and len(bias.shape) == 1 and len(z.shape) >= 2 \
            and bias.shape[0] is not None and bias.shape[0] == z.shape[-1]:
        return tf.nn.bias_add(z, tf.cast(bias, z.dtype))
    return z + bias


def _shifted(b, extra, eps):
    """The bias ``b + extra`` plus the constant ``eps`` (None terms left out)."""
    out = _plus(b, extra)
    return eps if out is None else out + eps


def _pos(t):
    return tf.maximum(t, 0.0)


def _neg(t):
    return tf.minimum(t, 0.0)


def _bias(b, f):
    return None if b is None else f(b)


def _plus(*terms):
    """The sum of the terms that are not None (a bias may be)."""
    out = None
    for t in terms:
        if t is not None:
            out = t if out is None else out + t
    return out


class Rule:
    """A rule for a layer's linear map. ``input_layer``: the rule returns relevance itself
    (not a gradient) and applies only to a layer that reads the image."""
    input_layer = False
    name = "rule"

    def backward(self, lin: Linear, x, z, g, *, a=None, nonneg=False, relu_out=False, bounds=None):
        """``g_x`` (or, for an input-layer rule, the relevance of ``x``) from ``g`` at the
        map's output: ``z``, or ``a = f(z)`` when an element-wise activation follows (LRP
        passes relevance through it: the output's relevance is ``a g``). ``nonneg``: ``x >=
        0`` everywhere (a ReLU's output); ``relu_out``: ``a`` is a ReLU's (``a = 0`` where
        ``z <= 0``, so those outputs carry no relevance)."""
        raise NotImplementedError


@dataclass(frozen=True)
class Epsilon(Rule):
    """LRP-epsilon: ``R_j = sum_k a_j w_jk / (z_k + eps sign z_k) R_k``; ``epsilon=0``
    is LRP-0 (relevance times gradient). The bias absorbs its share of relevance."""
    epsilon: float = 1e-6
    name = "epsilon"

    def __post_init__(self):
        if not np.isfinite(self.epsilon) or self.epsilon < 0:
            raise AttributionError(f"Epsilon's epsilon must be a finite number >= 0, got {self.epsilon!r}")

    def backward(self, lin, x, z, g, *, a=None, nonneg=False, relu_out=False, bounds=None):
        eps = float(self.epsilon)
        if a is None:  # z g / (z + eps sign z), in fewer operations on large tensors
            v = g if eps == 0 else g * (tf.abs(z) / (tf.abs(z) + eps))
        elif relu_out:  # a g = 0 wherever z <= 0
            v = tf.math.divide_no_nan(a * g, z + eps)
        else:
            v = tf.math.divide_no_nan(a * g, z + eps * tf.sign(z))
        return lin.vjp(lin.kernel, x, v)


@dataclass(frozen=True)
class Gamma(Rule):
    """LRP-gamma: positive weights (and bias) count ``1 + gamma`` times:
    ``R_j = sum_k a_j (w_jk + gamma w_jk^+) / sum_j' a_j' (w_j'k + gamma w_j'k^+) R_k``."""
    gamma: float = 0.25
    name = "gamma"

    def __post_init__(self):
        if not np.isfinite(self.gamma) or self.gamma < 0:
            raise AttributionError(f"Gamma's gamma must be a finite number >= 0, got {self.gamma!r}")

    def backward(self, lin, x, z, g, *, a=None, nonneg=False, relu_out=False, bounds=None):
        # Written for few passes over the layer's output (on CPU each costs about as much as
        # a light convolution): the denominators are one map each, bias and stabilizer in
        # the map's fused bias. Where z > 0 the positive denominator zp >= z > 0 and where z
        # < 0 the negative one zn <= z < 0, so the stabilizer's sign is known there.
        gm, eps = float(self.gamma), STABILIZER
        W, b = lin.kernel, lin.bias
        up = W + gm * _pos(W)        # positive contributions favoured
        down = W + gm * _neg(W)      # negative contributions favoured
        R = _relevance(z, g, a)
        bp = None if b is None else gm * _pos(b)
        bn = None if b is None else gm * _neg(b)
        if nonneg:  # zp = sum_j a_j (w + gamma w+) + b + gamma b+: the map with `up`
            zp = lin(x, up, _shifted(b, bp, eps))
            if relu_out:  # a ReLU's outputs with z <= 0 carry no relevance (R = 0 there)
                return lin.vjp(up, x, tf.math.divide_no_nan(R, zp))
            # up + down = (2 + gamma) W and the biases alike, so zn = (2 + gamma) z - zp: no
            # second map (zp's +eps turns into zn's -eps)
            zn = (2.0 + gm) * z - zp
        else:  # sum_j (a_j w_jk)^+ = (x W + |x| |W|) / 2 and x W = z - b
            c = lin(tf.abs(x), 0.5 * gm * tf.abs(W))
            s = (1.0 + 0.5 * gm) * z
            half = None if b is None else -0.5 * gm * b
            zp = _add_bias(s + c, _shifted(half, bp, eps))
            if relu_out:
                v = tf.math.divide_no_nan(R, zp)
                return tf.where(x > 0, lin.vjp(up, x, v), lin.vjp(down, x, v))
            zn = _add_bias(s - c, _shifted(half, bn, -eps))
        pos = z > 0
        v = tf.math.divide_no_nan(R, tf.where(pos, zp, zn))
        vp, vn = tf.where(pos, v, 0.0), tf.where(z < 0, v, 0.0)
        if nonneg:
            return lin.vjp(up, x, vp) + lin.vjp(down, x, vn)
        return tf.where(x > 0, lin.vjp(up, x, vp) + lin.vjp(down, x, vn),
                        lin.vjp(down, x, vp) + lin.vjp(up, x, vn))


@dataclass(frozen=True)
class AlphaBeta(Rule):
    """LRP-alpha-beta: ``R_j = sum_k (alpha (a_j w_jk)^+ / sum_j' (a_j' w_j'k)^+ - beta
    (a_j w_jk)^- / sum_j' (a_j' w_j'k)^-) R_k`` (the sums include the bias' part);
    ``alpha - beta = 1``. ``AlphaBeta(1, 0)`` is the z+ rule (:func:`ZPlus`)."""
    alpha: float = 1.0
    beta: float = 0.0
    name = "alpha_beta"

    def __post_init__(self):
        if self.alpha < 0 or self.beta < 0 or abs(self.alpha - self.beta - 1.0) > 1e-9:
            raise AttributionError(f"AlphaBeta needs alpha, beta >= 0 with alpha - beta = 1, got alpha={self.alpha}, "
                                   f"beta={self.beta}")

    def backward(self, lin, x, z, g, *, a=None, nonneg=False, relu_out=False, bounds=None):
        # The denominators in one map each, bias and stabilizer in the map's fused bias:
        # sum_j (a_j w_jk)^+ + b+ >= 0 takes +eps, the negative sum -eps (when it is 0 its
        # numerators are all 0 too).
        eps = STABILIZER
        W, b = lin.kernel, lin.bias
        wp, wn = _pos(W), _neg(W)
        R = _relevance(z, g, a)
        bp, bn = _bias(b, _pos), _bias(b, _neg)
        if nonneg:
            dp = lin(x, wp, _shifted(bp, None, eps))
            dn = lin(x, wn, _shifted(bn, None, -eps)) if self.beta else None
        else:  # sum_j (a_j w_jk)^+ = (x W + |x| |W|) / 2 and x W = z - b
            c = lin(tf.abs(x), 0.5 * tf.abs(W))
            h = 0.5 * z
            half = None if b is None else -0.5 * b
            dp = _add_bias(h + c, _shifted(half, bp, eps))
            dn = _add_bias(h - c, _shifted(half, bn, -eps)) if self.beta else None
        vp = R / dp
        if self.alpha != 1.0:
            vp = float(self.alpha) * vp
        gx = _share(lin, x, vp, wp, wn, nonneg)
        if self.beta:
            gx = gx - _share(lin, x, float(self.beta) * (R / dn), wn, wp, nonneg)
        return gx


def _share(lin, x, v, w_on_pos, w_on_neg, nonneg):
    """``g`` such that ``x g`` is each input's share ``x+ w_on_pos v + x- w_on_neg v``."""
    if nonneg:
        return lin.vjp(w_on_pos, x, v)
    return tf.where(x > 0, lin.vjp(w_on_pos, x, v), lin.vjp(w_on_neg, x, v))


def ZPlus() -> AlphaBeta:  # noqa: N802 - named as the rule it makes
    """The z+ rule: LRP-alpha1-beta0, positive contributions only."""
    return AlphaBeta(1.0, 0.0)


@dataclass(frozen=True)
class Flat(Rule):
    """Input layer: each output's relevance spread evenly over the inputs it reads
    (``R_j = sum_k R_k / n_k``; zero padding excluded)."""
    name = "flat"
    input_layer = True

    def backward(self, lin, x, z, g, *, a=None, nonneg=False, relu_out=False, bounds=None):
        ones_w = tf.ones_like(lin.kernel)
        zd = lin(tf.ones_like(x), ones_w)
        return lin.vjp(ones_w, x, _relevance(z, g, a) / stabilize(zd))


@dataclass(frozen=True)
class WSquare(Rule):
    """Input layer, unbounded inputs: ``R_j = sum_k w_jk^2 / sum_j' w_j'k^2 R_k``
    (the paper's rule, without the bias)."""
    name = "wsquare"
    input_layer = True

    def backward(self, lin, x, z, g, *, a=None, nonneg=False, relu_out=False, bounds=None):
        w2 = tf.square(lin.kernel)
        zd = lin(tf.ones_like(x), w2)
        return lin.vjp(w2, x, _relevance(z, g, a) / stabilize(zd))


def _bound(v, what):
    if v is None:
        return None
    arr = np.asarray(v, np.float64).reshape(-1)
    if arr.size not in (1, 3) or not np.all(np.isfinite(arr)):
        raise AttributionError(f"ZBox's {what} must be a number or one number per channel, got {v!r}")
    return tuple(float(a) for a in arr)


@dataclass(frozen=True)
class ZBox(Rule):
    """Input layer, inputs bounded by ``low <= x <= high`` (the z^B rule):
    ``R_j = sum_k (x_j w_jk - l_j w_jk^+ - h_j w_jk^-) / sum_j' (same) R_k``. ``low`` /
    ``high``: model-input values (a number or one per channel); None: the bundle's
    preprocessing of pixels 0 and 255."""
    low: object = field(default=None)
    high: object = field(default=None)
    name = "zbox"
    input_layer = True

    def __post_init__(self):
        object.__setattr__(self, "low", _bound(self.low, "low"))
        object.__setattr__(self, "high", _bound(self.high, "high"))
        if (self.low is None) != (self.high is None):
            raise AttributionError("ZBox needs both low and high, or neither (the preprocessing's range)")

    def backward(self, lin, x, z, g, *, a=None, nonneg=False, relu_out=False, bounds=None):
        lo, hi = bounds
        W = lin.kernel
        wp, wn = _pos(W), _neg(W)
        # x W is the forward pass's z - b; the bounds are the same for every image, so
        # their maps are made once and broadcast
        lo1, hi1 = lo[:1], hi[:1]
        xw = z if lin.bias is None else _add_bias(z, -lin.bias)
        zd = xw - (lin(lo1, wp) + lin(hi1, wn))
        v = _relevance(z, g, a) / stabilize(zd)
        return x * lin.vjp(W, x, v) - lo * lin.vjp(wp, x, v) - hi * lin.vjp(wn, x, v)


# --------------------------------------------------------------------------- names
def _key(s: str) -> str:
    return "".join(ch for ch in str(s).strip().lower() if ch not in " -_^")


_RULE_NAMES = {
    "zero": lambda: Epsilon(0.0), "lrp0": lambda: Epsilon(0.0), "0": lambda: Epsilon(0.0),
    "epsilon": Epsilon, "eps": Epsilon,
    "gamma": Gamma,
    "alpha1beta0": ZPlus, "zplus": ZPlus, "z+": ZPlus,
    "alpha2beta1": lambda: AlphaBeta(2.0, 1.0),
    "flat": Flat,
    "wsquare": WSquare, "w2": WSquare,
    "zbox": ZBox, "zb": ZBox, "box": ZBox,
}
#: The rule names :func:`rule_of` accepts (``"gamma=0.5"`` / ``"epsilon=0.25"`` set the parameter).
RULE_NAMES = ("zero", "epsilon", "gamma", "alpha1beta0", "zplus", "alpha2beta1", "flat", "wsquare", "zbox")


def rule_of(spec) -> Rule:
    """A :class:`Rule` from a rule object or a name (:data:`RULE_NAMES`, case and ``-_^``
    ignored; ``"epsilon=0.25"`` / ``"gamma=0.5"`` set the parameter)."""
    if isinstance(spec, Rule):
        return spec
    if not isinstance(spec, str):
        raise AttributionError(f"an LRP rule is a name ({', '.join(RULE_NAMES)}) or a rule object such as "
                               f"Gamma(0.5), got {spec!r}")
    name, _, value = spec.partition("=")
    key = _key(name)
    if value:
        try:
            number = float(value)
        except ValueError:
            raise AttributionError(f"LRP rule {spec!r}: {value!r} is not a number") from None
        if key in ("epsilon", "eps"):
            return Epsilon(number)
        if key == "gamma":
            return Gamma(number)
        raise AttributionError(f"LRP rule {spec!r}: only epsilon= and gamma= take a value")
    if key not in _RULE_NAMES:
        raise AttributionError(did_you_mean("LRP rule", spec, RULE_NAMES))
    return _RULE_NAMES[key]()


# --------------------------------------------------------------------------- composites
#: Layer families a composite can name (besides layer names and class names).
FAMILIES = ("conv", "dense", "batchnorm")


@dataclass(frozen=True)
class Composite:
    """Which rule each layer with weights gets. ``entries``: ``(key, rule)`` pairs, a key
    being a layer name, a layer class name (``"Conv2D"``, ``"Dense"``...), a family
    (``"conv"``: every convolution, depthwise and separable too; ``"dense"``;
    ``"batchnorm"``: a batch norm not folded into a layer before it) or ``"first"``.
    ``first``: the families whose first layer (in the model's order) is "the first layer".
    A layer takes the rule of its name, else ``"first"``'s if it is the first layer, else
    its class name's, else its family's, else the method's ``rule``."""
    name: str
    entries: tuple = ()
    first: tuple = ("conv", "dense")

    def lookup(self, layer_name: str, class_name: str, family: str, is_first: bool):
        table = self.entries
        for key, rule in table:
            if key == layer_name:
                return rule
        if is_first:
            for key, rule in table:
                if key == "first":
                    return rule
        for key, rule in table:
            if key.lower() == class_name.lower():
                return rule
        for key, rule in table:
            if key.lower() == family:
                return rule
        return None

    def __str__(self):
        return self.name


def EpsilonPlusFlat(epsilon: float = 1e-6) -> Composite:  # noqa: N802 - zennit's name
    """zennit's EpsilonPlusFlat: Flat for the first layer (dense or convolution), z+
    for every other convolution, epsilon for dense layers."""
    return Composite("epsilon_plus_flat", (("first", Flat()), ("conv", ZPlus()), ("dense", Epsilon(epsilon))),
                     first=("conv", "dense"))


def EpsilonGammaBox(low=None, high=None, epsilon: float = 1e-6, gamma: float = 0.25) -> Composite:  # noqa: N802
    """zennit's EpsilonGammaBox: z^B for the first convolution (``low`` / ``high``: the
    input's range, None: the bundle's preprocessing), gamma for the other convolutions,
    epsilon for dense layers."""
    return Composite("epsilon_gamma_box", (("first", ZBox(low, high)), ("conv", Gamma(gamma)),
                                           ("dense", Epsilon(epsilon))), first=("conv",))


def EpsilonPlus(epsilon: float = 1e-6) -> Composite:  # noqa: N802
    """zennit's EpsilonPlus: z+ for convolutions, epsilon for dense layers."""
    return Composite("epsilon_plus", (("conv", ZPlus()), ("dense", Epsilon(epsilon))))


def EpsilonAlpha2Beta1(epsilon: float = 1e-6) -> Composite:  # noqa: N802
    """zennit's EpsilonAlpha2Beta1: alpha2-beta1 for convolutions, epsilon for dense layers."""
    return Composite("epsilon_alpha2_beta1", (("conv", AlphaBeta(2.0, 1.0)), ("dense", Epsilon(epsilon))))


_COMPOSITES = {"epsilonplusflat": EpsilonPlusFlat, "epsilongammabox": EpsilonGammaBox,
               "epsilonplus": EpsilonPlus, "epsilonalpha2beta1": EpsilonAlpha2Beta1}
#: The named composites :func:`composite_of` accepts (CamelCase too: ``"EpsilonGammaBox"``).
COMPOSITE_NAMES = ("epsilon_plus_flat", "epsilon_gamma_box", "epsilon_plus", "epsilon_alpha2_beta1")


def composite_of(spec) -> Composite | None:
    """A :class:`Composite` from None, a composite, a name (:data:`COMPOSITE_NAMES`) or a
    dict ``{layer name, class name, family or "first": rule}``."""
    if spec is None or isinstance(spec, Composite):
        return spec
    if isinstance(spec, str):
        key = _key(spec)
        if key not in _COMPOSITES:
            raise AttributionError(did_you_mean("LRP composite", spec, COMPOSITE_NAMES))
        return _COMPOSITES[key]()
    if isinstance(spec, dict):
        entries = []
        for k, rule in spec.items():
            if not isinstance(k, str) or not k:
                raise AttributionError(f"LRP composite keys are layer names, class names ('Conv2D'), families "
                                       f"({', '.join(FAMILIES)}) or 'first'; got {k!r}")
            entries.append((k, rule_of(rule)))
        return Composite("custom", tuple(entries), first=("conv", "dense"))
    raise AttributionError(f"composite must be None, a name ({', '.join(COMPOSITE_NAMES)}), a dict "
                           f"{{layer name or kind: rule}} or a Composite; got {type(spec).__name__}")
