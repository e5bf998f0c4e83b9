"""ROAD (Rong et al. 2022): noisy linear imputation by hand, and the MoRF / LeRF scores of
maps on a model whose answer is known."""
import numpy as np
import pytest

from tfviz import attribution as A
from tfviz.attribution.road import impute
from tfviz.attribution.errors import AttributionError

from test_attribution import bundle_of


def _keras():
    import keras
    return keras


def test_imputation_reproduces_a_linear_ramp_exactly():
    """A field linear in y and x is its own 8-neighbour mean (the weights are symmetric), so
    a removed region inside it comes back exactly -- one connected block and scattered pixels."""
    yy, xx = np.mgrid[0:20, 0:24].astype(np.float64)
    ramp = np.stack([0.3 * yy + 0.1 * xx + 2, 1.5 * xx - yy, 0.0 * xx + 7], -1)
    removed = np.zeros((20, 24), bool)
    removed[3:15, 4:11] = True
    removed[np.random.default_rng(0).random((20, 24)) < 0.2] = True
    removed[[0, -1], :] = False       # the border's renormalized weights are not symmetric:
    removed[:, [0, -1]] = False       # keep it known
    out = impute(ramp, removed)
    np.testing.assert_allclose(out, ramp, atol=1e-9)


def test_imputation_solves_the_neighbour_equations_by_hand():
    """A 3x3 image with the centre and the middle of the top row removed: two equations,
    each pixel the weighted mean of its neighbours (direct 1/6, diagonal 1/12; the top
    pixel's 5 neighbours renormalized to their weight sum 1/6*3 + 1/12*2 = 2/3)."""
    img = np.arange(9, dtype=np.float64).reshape(3, 3, 1) ** 2
    removed = np.zeros((3, 3), bool)
    removed[1, 1] = removed[0, 1] = True
    v = img[..., 0]
    # centre c: c = 1/6 (t + v10 + v12 + v21) + 1/12 (v00 + v02 + v20 + v22)
    # top t:    t = (1/6 (v00 + v02 + c) + 1/12 (v10 + v12)) / (2/3)
    a = np.array([[1.0, -1 / 6], [-(1 / 6) / (2 / 3), 1.0]])
    b = np.array([(v[1, 0] + v[1, 2] + v[2, 1]) / 6 + (v[0, 0] + v[0, 2] + v[2, 0] + v[2, 2]) / 12,
                  ((v[0, 0] + v[0, 2]) / 6 + (v[1, 0] + v[1, 2]) / 12) / (2 / 3)])
    c, t = np.linalg.solve(a, b)
    out = impute(img, removed)[..., 0]
    assert out[1, 1] == pytest.approx(c, abs=1e-12) and out[0, 1] == pytest.approx(t, abs=1e-12)
    known = ~removed
    assert np.array_equal(out[known], v[known])


def test_imputation_noise_and_bad_input():
    flat = np.full((64, 64, 3), 0.5)
    removed = np.zeros((64, 64), bool)
    removed[8:56, 8:56] = True
    out = impute(flat, removed, noise=0.01, rng=3)
    assert np.array_equal(out[~removed], flat[~removed])
    d = out[removed] - 0.5
    assert abs(d.mean()) < 1e-3 and 0.009 < d.std() < 0.011
    np.testing.assert_array_equal(out, impute(flat, removed, noise=0.01, rng=3))   # seeded
    with pytest.raises(AttributionError, match="every pixel"):
        impute(flat, np.ones((64, 64), bool))
    with pytest.raises(AttributionError, match="same size"):
        impute(flat, removed[:10])


def left_half_model():
    """The mean of the left half's red channel (pixels 0..1): a map that ranks the left
    half first is the right one."""
    keras = _keras()
    L = keras.layers
    inp = keras.Input((8, 8, 3))
    x = L.Cropping2D(((0, 0), (0, 4)))(inp)
    x = L.GlobalAveragePooling2D()(x)
    out = L.Dense(2, name="dense")(x)
    m = keras.Model(inp, out)
    m.get_layer("dense").set_weights([np.array([[1.0, 0.0], [0.0, 0.0], [0.0, 0.0]], np.float32),
                                      np.zeros(2, np.float32)])
    return m


def test_road_of_the_right_and_the_wrong_map_by_hand():
    """Left half white, right half black; the score is the left half's mean. Removing half
    the pixels: the right map (left half first) fills the left half from the black column
    beside it -> 0 (MoRF), or removes the right half, filled from white -> 1 (LeRF); the
    wrong map the other way round."""
    b = bundle_of(left_half_model())
    img = np.zeros((1, 8, 8, 3), np.uint8)
    img[:, :, :4] = 255
    right = np.zeros((1, 8, 8), np.float32)
    right[:, :, :4] = 1.0
    got = A.road(b, img, 0, right, fractions=(0.5,), noise=0.0, score="logit")
    assert got.morf[0, 0] == pytest.approx(0.0, abs=1e-6) and got.lerf[0, 0] == pytest.approx(1.0, abs=1e-6)
    assert got.gap[0] == pytest.approx(1.0, abs=1e-6)
    wrong = A.road(b, img, 0, 1.0 - right, fractions=(0.5,), noise=0.0, score="logit")
    assert wrong.morf[0, 0] == pytest.approx(1.0, abs=1e-6) and wrong.lerf[0, 0] == pytest.approx(0.0, abs=1e-6)
    assert wrong.gap[0] == pytest.approx(-1.0, abs=1e-6)
    # several fractions: the right map's MoRF curve falls, and noise keeps it near
    curve = A.road(b, img, 0, right, fractions=(0.125, 0.25, 0.5), noise=0.01, seed=1, score="logit")
    assert curve.morf.shape == (1, 3) and curve.morf[0, 0] > curve.morf[0, 1] > curve.morf[0, 2] - 0.02
    with pytest.raises(AttributionError, match="fractions"):
        A.road(b, img, 0, right, fractions=(0.0, 0.5))
    with pytest.raises(AttributionError, match="do not match"):
        A.road(b, img, 0, np.zeros((2, 8, 8)))


def test_trust_report_rows_carry_road():
    b = bundle_of(left_half_model())
    img = np.random.default_rng(0).integers(0, 256, (2, 8, 8, 3)).astype(np.uint8)
    rows = A.trust_report(b, img, 0, ["saliency"], steps=4, layers=1, road_fractions=(0.25, 0.5))
    r = rows[0]
    assert set(r) >= {"road_morf", "road_lerf", "road"}
    assert r["road"] == pytest.approx(r["road_lerf"] - r["road_morf"], abs=1e-6)
    assert A.trust_report(b, img, 0, ["saliency"], steps=4, layers=1, road=False)[0]["road"] is None
