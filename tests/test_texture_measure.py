"""The held-out texture measure (tfviz.synthesis.texture_measure) and the helpers of
bench/bench_texture.py: answers computed by hand, on tiny images and a tiny network, and
one check on efficientnet_lite0 (two crops of gravel against the cat)."""
import numpy as np
import pytest
from bench_helpers import load_bench

import tfviz
from tfviz.images import load_image
from tfviz.synthesis import HELD_OUT_LAYERS, colour_distance, gram_statistics, loss_network, texture_distance
from tfviz.synthesis.texture_measure import COLOUR_DIRECTIONS, sliced_w1


def flat(rgb, h=4, w=4):
    return np.full((h, w, 3), rgb, np.uint8)


# ------------------------------------------------------------------ colour
def test_colour_distance_in_grey_levels():
    # a uniform shift of c grey levels reads c, whatever the image sizes
    assert colour_distance(flat(0), flat(255)) == pytest.approx(255.0, abs=1e-9)
    assert colour_distance(flat(100, 2, 3), flat(110, 5, 1)) == pytest.approx(10.0, abs=1e-9)
    # half the pixels white against all black: half the mass moves 255 -> 127.5
    half = np.concatenate([flat(0, 2, 4), flat(255, 2, 4)])
    assert colour_distance(half, flat(0)) == pytest.approx(127.5, abs=1e-9)
    assert colour_distance(half, half) == 0.0


def test_colour_distance_of_one_channel_by_hand():
    # only red moves, by 90: along direction d the pixels move 90 * |d_r|; the result is the
    # mean of that over the directions, divided by the mean of |d_r + d_g + d_b|
    d = COLOUR_DIRECTIONS
    want = 90 * np.abs(d[:, 0]).mean() / np.abs(d.sum(1)).mean()
    assert colour_distance(flat((10, 50, 50)), flat((100, 50, 50))) == pytest.approx(want, rel=1e-9)
    np.testing.assert_allclose(sliced_w1(flat((10, 50, 50)), flat((100, 50, 50)))[:3], [90, 0, 0], atol=1e-9)
    # the directions weigh the channels alike: 0.51 c for a shift of any one channel by c
    assert want / 90 == pytest.approx(0.51, abs=0.005)
    for ch in range(3):
        assert colour_distance(flat((10, 10, 10)), flat(np.roll([100, 10, 10], ch).tolist())) == \
            pytest.approx(want, rel=1e-9)


def test_sliced_w1_counts_each_pixel_once_whatever_the_sizes():
    # {0, 0, 0, 255} against {0, 255}: along the red axis a quarter of the mass moves 255
    a = np.zeros((1, 4, 3), np.uint8)
    a[0, 3] = 255
    b = np.zeros((1, 2, 3), np.uint8)
    b[0, 1] = 255
    np.testing.assert_allclose(sliced_w1(a, b, np.eye(3)), [255 / 4] * 3, atol=1e-9)


def test_colour_distance_symmetric_and_channel_permutations():
    mosaic = load_image("mosaic")[::4, ::4]
    gravel = load_image("gravel")[::4, ::4]
    assert colour_distance(mosaic, gravel) == pytest.approx(colour_distance(gravel, mosaic), rel=1e-12)
    # a grey picture is its own channel permutation; a colour one is not
    assert colour_distance(gravel, gravel[..., [2, 0, 1]]) == 0.0
    assert colour_distance(mosaic, mosaic[..., [2, 0, 1]]) > 10
    # the same pixels in another order: the same distribution
    assert colour_distance(mosaic, mosaic[::-1, ::-1]) == pytest.approx(0.0, abs=1e-9)


def test_blue_speckles_on_a_grey_source_score_high():
    rng = np.random.default_rng(0)
    grey = np.repeat(rng.integers(60, 200, (32, 32, 1), dtype=np.uint8), 3, -1)
    speckled = grey.copy()
    spots = rng.random((32, 32)) < 0.3
    speckled[spots, 2] = np.minimum(speckled[spots, 2].astype(int) + 120, 255)
    shuffled = rng.permutation(grey.reshape(-1, 3)).reshape(grey.shape)   # grey, other arrangement
    assert colour_distance(grey, shuffled) == 0.0
    assert colour_distance(grey, speckled) > 15


# ------------------------------------------------------------------ texture
def test_texture_distance_of_given_gram_matrices_by_hand():
    eye = {"a": np.eye(3), "b": np.eye(5)}
    # G_b = 2 G_a: ||G_a|| / (1.5 ||G_a||) = 2/3 at every layer
    assert texture_distance(eye, {k: 2 * v for k, v in eye.items()}, layers=("a", "b")) == pytest.approx(2 / 3)
    # channels with nothing in common, equal norms: ||G_a - G_b|| = sqrt(2) ||G_a||; the mean over the layers
    other = {"a": np.diag([0.0, 0, 1]), "b": np.eye(5)}
    one = {"a": np.diag([1.0, 0, 0]), "b": np.eye(5)}
    assert texture_distance(one, other, layers=("a", "b")) == pytest.approx((np.sqrt(2) + 0) / 2)
    # the largest: one of them zero
    assert texture_distance(one, {"a": np.zeros((3, 3))}, layers=("a",)) == pytest.approx(2.0)
    assert texture_distance(eye, eye, layers=("a",)) == 0.0
    with pytest.raises(KeyError, match="same layers"):
        texture_distance(eye, eye, layers=("c",))


def conv_model():
    import keras
    keras.utils.set_random_seed(0)
    inp = keras.Input((32, 32, 3))
    x = keras.layers.Conv2D(8, 3, padding="same", activation="relu", name="conv1")(inp)
    x = keras.layers.Conv2D(12, 3, strides=2, padding="same", activation="relu", name="conv2")(x)
    x = keras.layers.GlobalAveragePooling2D(name="gap")(x)
    return keras.Model(inp, keras.layers.Dense(3, name="logits")(x))


@pytest.fixture(scope="module")
def net():
    return tfviz.load_model(conv_model(), preprocess="0-1", class_names=["a", "b", "c"])


def test_texture_distance_on_a_tiny_network(net):
    rng = np.random.default_rng(1)
    a = rng.integers(0, 256, (24, 40, 3), dtype=np.uint8)
    b = rng.integers(0, 120, (36, 20, 3), dtype=np.uint8)
    layers = ("conv1", "conv2")
    assert texture_distance(a, a, net, layers) == 0.0
    d = texture_distance(a, b, net, layers)
    assert 0 < d < 2 and d == pytest.approx(texture_distance(b, a, net, layers), rel=1e-12)
    # the Gram matrices per position of one image, by hand from the layers' activations
    from tfviz.synthesis.recipe import layer_features
    g = gram_statistics(a, net, layers)
    f = layer_features(net, layers, net.preprocess(a[None]))["conv2"].numpy()[0].reshape(-1, 12)
    np.testing.assert_allclose(g["conv2"], f.T @ f / len(f), rtol=1e-4, atol=1e-6)
    # statistics computed once compare like the images; one program serves every size
    assert texture_distance(g, b, net, layers) == pytest.approx(d, rel=1e-12)
    assert sum(1 for k in net.programs if k[0] == "synthesis.texture_measure") == 1


def test_held_out_layers_are_not_the_texture_loss_layers(lite0):
    assert not set(HELD_OUT_LAYERS) & set(loss_network(lite0).texture)
    for n in HELD_OUT_LAYERS:
        lite0.spatial_layer(n)


def test_two_crops_of_gravel_are_closer_than_gravel_and_the_cat(lite0):
    gravel = load_image("gravel")
    c1, c2 = gravel[:192, :192], gravel[-192:, -192:]
    same = texture_distance(c1, c2, lite0)
    cat = texture_distance(c1, "chelsea", lite0)
    assert same < 0.5 * cat
    # a grey picture's channel permutation is the same picture
    assert texture_distance(c1, c1[..., [1, 2, 0]], lite0) == 0.0


# ------------------------------------------------------------------ the benchmark's helpers
@pytest.fixture(scope="module")
def bench():
    return load_bench("bench_texture")


def test_bench_crops_never_overlap(bench):
    src = np.arange(512 * 384 * 3).reshape(384, 512, 3)
    a, b, how = bench.two_crops(src, (256, 256))         # wide enough: top-left and bottom-right
    assert a.shape == b.shape == (256, 256, 3) and "top-left" in how
    assert a[0, 0, 0] == src[0, 0, 0] and b[-1, -1, -1] == src[-1, -1, -1]
    sq = src[:300, :300]
    a, b, how = bench.two_crops(sq, (256, 256))          # too small: the two halves, not resized
    assert a.shape == b.shape == (300, 150, 3) and "halves" in how
    assert not set(a.ravel()) & set(b.ravel())
    a, b, how = bench.two_crops(src[:300, :150], (256, 256))   # tall and too small: top and bottom halves
    assert a.shape == b.shape == (150, 150, 3) and "top, bottom" in how
    assert not set(a.ravel()) & set(b.ravel())


def test_bench_steps_and_unknown_keywords(bench):
    assert bench.effective({}, None) == {}                     # the recipe's own steps
    assert bench.effective({"steps": 400}, None) == {"steps": 400}
    assert bench.effective({"steps": 400, "tv_weight": 0}, 60) == {"steps": 60, "tv_weight": 0}
    assert bench.unknown_keywords({"steps": 3, "tv_weight": 0}) == []
    assert bench.unknown_keywords({"steps": 3, "no_such_weight": 1}) == ["no_such_weight"]
    assert bench.unknown_keywords({"seed": 1}) == ["seed"]     # the benchmark sets it


def test_bench_measures_saved_outputs_and_skips_unknown_keywords(bench, tmp_path, monkeypatch, capsys):
    """A whole run of the benchmark without synthesis: --reuse measures a saved output, a
    candidate with a keyword synthesize_texture does not take is skipped with a message."""
    from tfviz.images import save_png
    monkeypatch.setattr(bench, "CANDIDATES", {"default": {}, "odd": {"no_such_weight": 1}})
    gravel = load_image("gravel")
    save_png(str(tmp_path / (bench.run_name("gravel", "default", 64, 0, bench.effective({}, None)) + ".png")),
             gravel[100:164, 300:364])
    md, grid = tmp_path / "t.md", tmp_path / "g.png"
    monkeypatch.setattr("sys.argv", ["bench_texture.py", "--textures", "gravel", "--size", "64", "--save-dir",
                                     str(tmp_path), "--reuse", "--out-md", str(md), "--out-grid", str(grid)])
    bench.main()
    text = md.read_text()
    assert "skip candidate odd: synthesize_texture here takes no keyword 'no_such_weight'" in text
    row = next(line for line in text.splitlines() if line.startswith("| gravel | default |"))
    assert row.split(" | ")[2] == "?"                 # reused without a timing record: steps unknown
    floor_row = next(line for line in text.splitlines() if line.startswith("| gravel | 512x512 |"))
    assert "top-left, bottom-right 64x64" in floor_row and "(grass)" in floor_row
    assert load_image(str(grid)).shape[1] > 2 * 64
    assert "(reused)" in capsys.readouterr().out


def test_statistics_of_other_layers_are_refused_by_name():
    from tfviz.utils import TfvizError
    g = {"a": np.eye(2)}
    with pytest.raises(KeyError, match="no Gram matrix for layers \\['b'\\]") as e:
        texture_distance(g, {"a": np.eye(2), "b": np.eye(2)}, layers=("a", "b"))
    assert isinstance(e.value, TfvizError)
