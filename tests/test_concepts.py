"""TCAV (tfviz.concepts, ``tfviz concepts``) against answers known by construction: a CAV by
hand on separable points, scores and p-values by hand, and a model whose layer has a known
"horizontal stripes" direction that its logit rises along."""
import os
import warnings

import keras
import numpy as np
import pytest
from keras import layers as L
from PIL import Image

import tfviz
from cli_helpers import run_cli
from tfviz.concepts import (MIN_EXAMPLES, TEXTURES, draw_concept, p_value, photo_views, random_images, tcav,
                            tcav_scores, train_cav)
from tfviz.concepts.tcav import CAV_C
from tfviz.default_layers import concept_layers
from tfviz.errors import DataError, ImageError, LayerKindError, OptionError, UnknownClassError, UnknownLayerError

SIZE = 24


# --------------------------------------------------------------------------- drawn images
def test_drawn_concepts_are_deterministic_under_the_seed_and_have_the_size():
    for name in TEXTURES:
        a = draw_concept(name, 3, (SIZE, 40), seed=1)
        assert a.shape == (3, SIZE, 40, 3) and a.dtype == np.uint8
        assert np.array_equal(a, draw_concept(name, 3, (SIZE, 40), seed=1))
        assert not np.array_equal(a, draw_concept(name, 3, (SIZE, 40), seed=2))
        assert np.array_equal(draw_concept(name, 5, (SIZE, 40), seed=1)[:3], a)   # more images: the same first ones
        assert all(img.std() > 20 for img in a)                                   # two colours, not a flat field
    r = random_images(4, SIZE, seed=3, index=1)
    assert r.shape == (4, SIZE, SIZE, 3) and np.array_equal(r, random_images(4, SIZE, seed=3, index=1))
    assert not np.array_equal(r, random_images(4, SIZE, seed=3, index=2))      # another random set
    v = photo_views([np.arange(50 * 60 * 3, dtype=np.uint8).reshape(50, 60, 3)], 4, (SIZE, SIZE), seed=0)
    assert v.shape == (4, SIZE, SIZE, 3)
    assert np.array_equal(v, photo_views([np.arange(50 * 60 * 3, dtype=np.uint8).reshape(50, 60, 3)], 4,
                                         (SIZE, SIZE), seed=0))


def test_drawn_stripes_are_stripes():
    # along the stripes nothing changes: each image has a direction of (near) zero variation
    img = draw_concept("striped", 1, 64, seed=0)[0].astype(np.float64).mean(-1)
    best = min(np.abs(np.diff(_rotate(img, a), axis=0))[16:48, 16:48].mean() for a in range(0, 180, 2))
    across = max(np.abs(np.diff(_rotate(img, a), axis=0))[16:48, 16:48].mean() for a in range(0, 180, 2))
    assert best < 0.25 * across


def _rotate(img, angle):
    return np.asarray(Image.fromarray(img.astype(np.float32)).rotate(angle, resample=Image.BILINEAR))


def test_unknown_drawn_concept():
    with pytest.raises(OptionError, match="did you mean 'striped'"):
        draw_concept("stripy", 1, SIZE)


# --------------------------------------------------------------------------- the steps by hand
def test_cav_by_hand_on_separable_points():
    # mirror-symmetric sets: the regularized logistic regression's normal is along the x axis
    concept = np.array([[2.0, 1.0], [2.0, -1.0], [3.0, 0.5], [3.0, -0.5]])
    random = -concept[:, ::1] * np.array([1.0, -1.0])   # (x, y) -> (-x, y): the mirror image
    cav, acc = train_cav(concept, random, held_out=0)
    assert np.allclose(cav, [1.0, 0.0], atol=1e-6) and acc == 1.0
    for theta in (0.3, 2.0, -1.2):                      # rotate everything: the CAV turns with it
        rot = np.array([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]])
        cav, _ = train_cav(concept @ rot.T, random @ rot.T, held_out=0)
        assert np.allclose(cav, [np.cos(theta), np.sin(theta)], atol=1e-5)
    cav, _ = train_cav(random, concept, held_out=0)      # the normal points to the concept
    assert np.allclose(cav, [-1.0, 0.0], atol=1e-6)


def test_cav_in_many_dimensions_matches_the_full_logistic_regression():
    # the fit in the examples' coordinates is the same problem as the fit on all D features
    from sklearn.linear_model import LogisticRegression
    rng = np.random.default_rng(0)
    a, b = rng.normal(0.2, 1, (12, 300)), rng.normal(0, 1, (12, 300))
    cav, acc = train_cav(a, b, held_out=0)
    x = np.concatenate([a, b])
    x = x - x.mean(axis=0)
    x = x / np.mean(np.linalg.norm(x, axis=1))
    w = LogisticRegression(C=CAV_C, tol=1e-12, max_iter=100000).fit(x, np.r_[np.ones(12), np.zeros(12)]).coef_[0]
    assert np.dot(cav, w / np.linalg.norm(w)) > 0.9999 and acc == 1.0


def test_held_out_accuracy_of_a_cav():
    rng = np.random.default_rng(1)
    a, b = rng.normal(0, 1, (30, 5)), rng.normal(0, 1, (30, 5))
    a[:, 0] += 10
    cav, acc = train_cav(a, b, seed=0)                  # a third held out: still perfectly separable
    assert acc == 1.0 and cav[0] > 0.95
    _, chance = train_cav(rng.normal(0, 1, (30, 50)), rng.normal(0, 1, (30, 50)), seed=0)
    assert chance < 0.85                                # two draws of the same noise: no better than a guess


def test_tcav_scores_and_p_values_by_hand():
    grads = np.array([[1.0, 0.0], [1.0, 1.0], [-1.0, 0.0], [0.0, -1.0]])
    assert tcav_scores(grads, np.array([1.0, 0.0])) == 0.5            # 1, 1, -1, 0: zero is not positive
    assert np.allclose(tcav_scores(grads, np.array([[1.0, 0.0], [0.0, 1.0], [-1.0, -1.0]])), [0.5, 0.25, 0.5])
    from scipy import stats
    s, n = [0.9, 0.8, 0.95, 0.85], [0.5, 0.3, 0.6, 0.4]
    assert p_value(s, n) == pytest.approx(stats.ttest_ind(s, n).pvalue)
    assert p_value([1, 1, 1], [1, 1, 1]) == 1.0 and p_value([1, 1, 1], [0, 0, 0]) == 0.0


# --------------------------------------------------------------------------- a model with a known direction
def stripe_model():
    """``feat`` channel 0 is a vertical second derivative of the grey image (ReLU'd): it fires
    on horizontal stripes and not on vertical ones; channel 1 the horizontal one. The logit
    of class 0 is channel 0's mean, class 1's is minus it: d logit_0 / d feat = 1/(h w) on
    channel 0 and 0 on channel 1, for every image."""
    inp = keras.Input((SIZE, SIZE, 3))
    feat = L.Conv2D(2, 3, activation="relu", use_bias=False, name="feat")
    x = feat(inp)
    pooled = L.GlobalAveragePooling2D(name="pool")(x)
    logits = L.Dense(2, name="logits")(pooled)
    k = np.zeros((3, 3, 3, 2), np.float32)
    k[:, 1, :, 0] = np.array([-1, 2, -1], np.float32)[:, None] / 3    # d2/dy2 of the channel mean
    k[1, :, :, 1] = np.array([-1, 2, -1], np.float32)[:, None] / 3    # d2/dx2
    feat.set_weights([k])
    model = keras.Model(inp, logits)
    model.get_layer("logits").set_weights([np.array([[1.0, -1.0], [0.0, 0.0]], np.float32), np.zeros(2, np.float32)])
    return tfviz.load_model(model, preprocess="0-1")


def horizontal_stripes(n, seed=0):
    """Dark and bright horizontal stripes 2.5 to 5 pixels apart: ``feat`` channel 0 sums to
    more than 140 on each (vertical edges everywhere), against less than 60 on every random
    image of ``random_images`` at this size. A logistic regression's normal is a weighted
    sum of its examples, ``w = sum_i c_i x_i``, with ``sum_i c_i = 0`` (the intercept's
    optimum), positive weights on the concept's: so w's channel-0 sum is positive whenever
    every concept example's channel-0 sum exceeds every random one's -- and the gradient of
    the logit of class 0 is positive on channel 0 only: every directional derivative is
    positive, the TCAV score is 1 against every random set."""
    rng = np.random.default_rng(seed)
    out = np.empty((n, SIZE, SIZE, 3), np.uint8)
    for i in range(n):
        period = rng.uniform(2.5, 5)
        rows = (np.sin(2 * np.pi * (np.arange(SIZE) + rng.uniform(0, 10)) / period) > 0)[:, None, None]
        out[i] = np.where(rows, rng.integers(0, 60, 3), rng.integers(195, 256, 3))
    return out


@pytest.fixture(scope="module")
def striped():
    return stripe_model()


def test_the_aligned_concept_scores_one_and_a_random_one_is_not_significant(striped):
    class_images = random_images(12, SIZE, seed=5)
    concepts = {"horizontal": horizontal_stripes(20), "noise": random_images(20, SIZE, seed=7, index=3)}
    calls = []
    r = tcav(striped, concepts, target=0, images=class_images, random_sets=8, examples=20,
             progress=lambda done, total: calls.append((done, total)))
    assert r.layers == ["feat"] and r.concepts == ["horizontal", "noise"] and r.target == 0
    assert r.scores.shape == (2, 1, 8) and r.random_scores.shape == (1, 8) and r.p_values.shape == (2, 1)
    assert r.score("horizontal", "feat") == 1.0 and r.is_significant("horizontal", "feat")
    assert r.accuracies[0].mean() > 0.9                 # told apart from random images on held-out examples
    assert not r.is_significant("noise", "feat")
    # the CAV leans on channel 0 (where the logit's gradient is): its channel-0 sum is positive
    cav = r.cavs[("horizontal", "feat")].reshape(8, SIZE - 2, SIZE - 2, 2)
    assert np.all(cav[..., 0].sum(axis=(1, 2)) > 0)
    # class 1's logit falls along the same direction: score 0, and significant too
    r1 = tcav(striped, {"horizontal": horizontal_stripes(20)}, target=1, images=class_images, random_sets=8,
              examples=20)
    assert r1.score("horizontal", "feat") == 0.0 and r1.is_significant("horizontal", "feat")
    assert calls[-1][0] == calls[-1][1] == 2 + 9 + 1 + 3 * 8 and [c[0] for c in calls] == list(range(1, 37))
    # the table and the picture
    text = r.table()
    assert "horizontal" in text and "noise" in text and "no *" in text and "(null)" in text
    pic = r.picture()
    assert pic.ndim == 3 and pic.shape[2] == 3 and pic.dtype == np.uint8 and pic.shape[1] > 200


def test_a_random_concept_is_rarely_significant(striped):
    # under the null, "significant" should be the exception: over several seeds and random
    # concepts, at most one of five is marked significant (alpha = 0.05)
    class_images = random_images(10, SIZE, seed=11)
    marked = 0
    for seed in range(5):
        r = tcav(striped, {"noise": random_images(15, SIZE, seed=100 + seed, index=9)}, target=0,
                 images=class_images, random_sets=6, examples=15, seed=seed)
        marked += r.is_significant("noise", "feat")
    assert marked <= 1


def test_the_defaults_run_offline_and_are_deterministic(striped):
    r = tcav(striped, ["striped", "dotted"], target="0", random_sets=3, examples=MIN_EXAMPLES)
    assert r.concepts == ["striped", "dotted"] and r.n_images == MIN_EXAMPLES and "views" in r.images_note
    again = tcav(striped, ["striped", "dotted"], target=0, random_sets=3, examples=MIN_EXAMPLES)
    assert np.array_equal(r.scores, again.scores) and np.array_equal(r.p_values, again.p_values)
    assert r.bonferroni and r.threshold == pytest.approx(0.05 / 2)
    assert not tcav(striped, ["striped"], target=0, random_sets=3, examples=MIN_EXAMPLES,
                    bonferroni=False).bonferroni


def test_default_target_is_the_class_most_images_get(striped):
    # horizontal stripes raise class 0's logit and lower class 1's: all of them are class 0
    r = tcav(striped, {"h": horizontal_stripes(12)}, images=horizontal_stripes(6, seed=3), random_sets=2,
             examples=12)
    assert r.target == 0


def test_default_layers_are_block_outputs_one_per_resolution():
    inp = keras.Input((32, 32, 3))
    x = L.Conv2D(4, 3, padding="same", name="c1")(inp)
    y = L.Conv2D(4, 3, padding="same", name="c2")(x)
    x = L.Add(name="add1")([x, y])
    x = L.Conv2D(8, 3, strides=2, padding="same", name="c3")(x)
    y = L.Conv2D(8, 3, padding="same", name="c4")(x)
    x = L.Add(name="add2")([x, y])
    y = L.Conv2D(8, 3, padding="same", name="c5")(x)
    x = L.Add(name="add3")([x, y])
    out = L.Dense(3)(L.GlobalAveragePooling2D()(x))
    b = tfviz.load_model(keras.Model(inp, out), preprocess="raw")
    assert concept_layers(b) == ["add1", "add3"]
    plain = keras.Sequential([keras.Input((32, 32, 3)), L.Conv2D(4, 3, name="a"), L.Conv2D(4, 3, name="b"),
                              L.MaxPooling2D(name="p"), L.Conv2D(4, 3, name="c"), L.Flatten(), L.Dense(2)])
    # without residual adds: the last spatial layer at each resolution ('valid' convolutions change it)
    assert concept_layers(tfviz.load_model(plain, preprocess="raw"), count=2) == ["p", "c"]


# --------------------------------------------------------------------------- bad input
def _folder(path, n, broken=0):
    path.mkdir()
    for i, img in enumerate(horizontal_stripes(n)):
        Image.fromarray(img).save(path / f"s{i:02d}.png")
    for i in range(broken):
        (path / f"broken{i}.png").write_bytes(b"not a png")
    return path


def test_bad_input_is_one_clear_error_each(striped, tmp_path):
    few = _folder(tmp_path / "few", MIN_EXAMPLES - 1)
    with pytest.raises(DataError, match=f"has {MIN_EXAMPLES - 1} readable image.*at least {MIN_EXAMPLES}"):
        tcav(striped, {"few": str(few)}, target=0, random_sets=2)
    with pytest.raises(LayerKindError, match="spatial .*'pool' has shape.*spatial layers: .*feat"):
        tcav(striped, ["striped"], target=0, layers=["pool"], random_sets=2)
    with pytest.raises(UnknownLayerError, match="unknown layer 'fet'; did you mean 'feat'"):
        tcav(striped, ["striped"], target=0, layers="fet", random_sets=2)
    with pytest.raises(UnknownClassError, match="out of range"):
        tcav(striped, ["striped"], target=7, random_sets=2)
    with pytest.raises(OptionError, match="did you mean 'dotted'"):
        tcav(striped, ["doted"], target=0)
    with pytest.raises(OptionError, match="random_sets"):
        tcav(striped, ["striped"], target=0, random_sets=1)
    with pytest.raises(OptionError, match="examples"):
        tcav(striped, ["striped"], target=0, examples=3)
    with pytest.raises(DataError, match="no such folder"):
        tcav(striped, {"x": str(tmp_path / "nowhere")}, target=0)
    with pytest.raises(OptionError, match="'random' is kept for the random directions"):
        tcav(striped, {"random": horizontal_stripes(10)}, target=0)


def test_unreadable_concept_images_are_skipped_or_refused(striped, tmp_path):
    folder = _folder(tmp_path / "h", 12, broken=2)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        r = tcav(striped, {"h": str(folder)}, target=0, images=horizontal_stripes(4), random_sets=2, examples=12)
    assert r.n_examples == {"h": 12}
    assert any("skipped 2 unreadable" in str(w.message) and "broken0.png" in str(w.message) for w in caught)
    with pytest.raises(ImageError, match="cannot read 2 .*broken0.png"):
        tcav(striped, {"h": str(folder)}, target=0, images=horizontal_stripes(4), random_sets=2, examples=12,
             strict=True)
    # more readable images than examples: a seeded subset
    with pytest.warns(UserWarning, match="skipped 2 unreadable"):
        r = tcav(striped, {"h": str(folder)}, target=0, images=horizontal_stripes(4), random_sets=2, examples=10)
    assert r.n_examples == {"h": 10}


def test_a_layer_that_does_not_feed_the_scores(tmp_path):
    inp = keras.Input((SIZE, SIZE, 3))
    x = L.Conv2D(2, 3, name="used")(inp)
    side = L.Conv2D(2, 3, name="side")(inp)
    out = L.Dense(2, name="logits")(L.GlobalAveragePooling2D()(x))
    b = tfviz.load_model(keras.Model(inp, [out, side]), preprocess="0-1")
    from tfviz.errors import TargetError
    with pytest.raises(TargetError, match="'side'"):
        tcav(b, ["striped"], target=0, layers=["side"], random_sets=2, examples=MIN_EXAMPLES)


# --------------------------------------------------------------------------- the command line
@pytest.fixture
def stripe_file(here):
    b = stripe_model()
    path = here / "stripes.keras"
    b.model.save(path)
    return str(path)


def test_cli_writes_the_picture_the_table_and_tensorboard(here, stripe_file, capsys):
    _folder(here / "h", 12)
    code, out, err = run_cli(["concepts", "--model", stripe_file, "--preprocess", "0-1", "--target", "0",
                              "--concept", "h=h", "--concept", "dotted", "--random-sets", "3", "--examples", "12",
                              "-o", "tcav.png", "--logdir", "logs"], capsys)
    assert code == 0, err
    assert os.path.isfile("tcav.png") and Image.open("tcav.png").size[0] > 200
    lines = out.splitlines()
    assert lines[0].startswith("TCAV of class '0' (0) on stripes") and "Bonferroni over 2 tests" in lines[0]
    assert lines[1].split() == ["concept", "layer", "score", "p-value", "significant", "CAV", "accuracy"]
    assert lines[2].split()[:2] == ["h", "feat"] and lines[3].split()[:2] == ["dotted", "feat"]
    assert lines[4].split()[:2] == ["random", "feat"] and "(null)" in lines[4]
    assert "wrote tcav.png" in out and "TCAV on stripes" in err
    events = [f for _, _, fs in os.walk("logs") for f in fs if f.startswith("events.out")]
    assert events and os.path.isdir("logs/concepts-stripes")
    _check_summary("logs/concepts-stripes")


def _check_summary(run_dir):
    import json

    from tensorboard.backend.event_processing import event_accumulator
    acc = event_accumulator.EventAccumulator(run_dir, size_guidance={"tensors": 0})
    acc.Reload()
    tags = acc.Tags()["tensors"]
    assert "embeddings/tcav/0" in tags and "params/concepts" in tags
    meta = json.loads(acc.SummaryMetadata("embeddings/tcav/0").plugin_data.content)
    assert meta["kind"] == "embeddings" and meta["role"] == "map" and meta["method"] == "tcav"
    assert meta["rows"][0] == ["h", "feat"] and len(meta["scores"]) == 3 and meta["p_values"][-1] is None


def test_cli_bad_input_is_one_line_and_writes_nothing(here, stripe_file, capsys):
    _folder(here / "few", 3)
    base = ["concepts", "--model", stripe_file, "--preprocess", "0-1", "--random-sets", "2", "--examples", "10",
            "-o", "tcav.png", "--logdir", "logs"]
    cases = [
        (["--concept", "few=few", "--target", "0"], "has 3 readable image"),
        (["--concept", "stripy"], "'stripy' is not a drawn texture; did you mean 'striped'"),
        (["--concept", "x=nowhere"], "x=nowhere: no such folder"),
        (["--layer", "pool", "--target", "0"], "has no spatial|spatial [N, H, W, C] output"),
        (["--layer", "fet", "--target", "0"], "did you mean 'feat'"),
        (["--target", "giraffe"], "unknown class 'giraffe'"),
        (["--random-sets", "1"], "--random-sets"),
    ]
    for extra, message in cases:
        code, out, err = run_cli(base + extra, capsys)
        assert code == 2, (extra, err)
        assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
        assert any(m in err for m in message.split("|")), (extra, err)
        assert not os.path.exists("tcav.png") and not os.path.exists("logs"), extra


def test_cli_help_names_the_defaults(capsys):
    code, out, _ = run_cli(["concepts", "--help"], capsys)
    text = " ".join(out.split())
    assert code == 0 and "striped, dotted, zigzagged, checkered" in text and "chelsea" in text
    assert "--random-sets INTEGER RANGE" in text and "[default: 10" in text
