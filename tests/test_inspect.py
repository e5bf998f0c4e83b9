"""Filter grids, activation grids and max-activating patches, against answers computed
by hand or by brute force on tiny models built here."""
import numpy as np
import pytest

import tfviz
from tfviz.data import DataError
from tfviz.inspect import (ChannelError, activation_grid, filter_grid, max_activating_patches, patch_grid,
                           receptive_field)
from tfviz.utils import ImageError, ModelError, LayerKindError, UnknownLayerError


def _rescale(a, lo=None, hi=None):
    lo = a.min() if lo is None else lo
    hi = a.max() if hi is None else hi
    return np.floor((a - lo) / (hi - lo) * 255 + 0.5).astype(np.uint8)


def _tile_at(grid, r, c, h, w, gap=1):
    return grid[r * (h + gap):r * (h + gap) + h, c * (w + gap):c * (w + gap) + w]


@pytest.fixture(scope="module")
def convnet():
    """RGB input -> conv 6 (3x3) -> conv 4 (3x3) -> depthwise x2 -> grouped conv."""
    import keras
    from keras import layers as L
    keras.utils.set_random_seed(3)
    inp = keras.Input((12, 12, 3))
    x = L.Conv2D(6, 3, name="first")(inp)
    x = L.Conv2D(4, 3, name="second")(x)
    x = L.DepthwiseConv2D(3, depth_multiplier=2, name="dw")(x)
    x = L.Conv2D(4, 1, groups=2, name="grouped")(x)
    x = L.GlobalAveragePooling2D(name="gap")(x)
    out = L.Dense(2, name="out")(x)
    return tfviz.load_model(keras.Model(inp, out), preprocess="raw")


# ------------------------------------------------------------------------- filters
def test_first_layer_tiles_are_the_rescaled_kernels_in_order(convnet):
    k = np.asarray(convnet.layer("first").kernel)           # [3, 3, 3, 6]
    grid = filter_grid(convnet, upsample=1, gap=1)            # layer=None: the first conv
    assert grid.shape == (2 * 3 + 1, 3 * 3 + 2, 3)            # 6 tiles: 2 rows x 3 columns
    for i in range(6):
        tile = _tile_at(grid, i // 3, i % 3, 3, 3)
        np.testing.assert_array_equal(tile, _rescale(k[..., i]))
    shared = filter_grid(convnet, scale="shared", upsample=1)
    for i in range(6):
        np.testing.assert_array_equal(_tile_at(shared, i // 3, i % 3, 3, 3), _rescale(k[..., i], k.min(), k.max()))
    assert np.all(grid[3, :] == 255)                           # the gap is white


def test_upsampled_tiles_repeat_pixels(convnet):
    k = np.asarray(convnet.layer("first").kernel)
    grid = filter_grid(convnet, upsample=4, gap=2)
    tile = _tile_at(grid, 0, 1, 12, 12, gap=2)
    np.testing.assert_array_equal(tile, np.repeat(np.repeat(_rescale(k[..., 1]), 4, 0), 4, 1))


def test_deeper_layer_channels_and_mean(convnet):
    k = np.asarray(convnet.layer("second").kernel)           # [3, 3, 6, 4]
    grid = filter_grid(convnet, "second", mode="channels", upsample=1)   # a row per output, a column per input
    assert grid.shape[:2] == (4 * 4 - 1, 6 * 4 - 1)
    for o in range(4):
        for i in range(6):
            np.testing.assert_array_equal(_tile_at(grid, o, i, 3, 3)[..., 0], _rescale(k[:, :, i, o]))
    mean = filter_grid(convnet, "second", upsample=1)         # default for 6 inputs: mean
    np.testing.assert_array_equal(_tile_at(mean, 1, 0, 3, 3)[..., 1], _rescale(k[:, :, :, 2].mean(-1)))


def test_depthwise_and_grouped_kernels(convnet):
    dk = np.asarray(convnet.layer("dw").kernel)               # [3, 3, 4, 2]: output c*2+j sees input c
    grid = filter_grid(convnet, "dw", mode="channels", upsample=1)
    assert grid.shape[:2] == (8 * 4 - 1, 3)                   # 8 outputs, one input slice each
    for c in range(4):
        for j in range(2):
            np.testing.assert_array_equal(_tile_at(grid, c * 2 + j, 0, 3, 3)[..., 0], _rescale(dk[:, :, c, j]))
    gk = np.asarray(convnet.layer("grouped").kernel)          # [1, 1, 4, 4]: 2 groups of 4 inputs
    g = filter_grid(convnet, "grouped", mode="channels", upsample=1, scale="shared")
    assert g.shape[:2] == (4 * 2 - 1, 4 * 2 - 1)
    np.testing.assert_array_equal(g[::2, ::2, 0], _rescale(gk[0, 0].T, gk.min(), gk.max()))


def test_filter_grid_bad_input(convnet):
    with pytest.raises(ModelError, match="3 input channels.*mode='channels'"):
        filter_grid(convnet, "second", mode="rgb")
    with pytest.raises(LayerKindError, match="not a 2-D convolution; convolution layers: first, second"):
        filter_grid(convnet, "gap")
    with pytest.raises(UnknownLayerError, match="did you mean"):
        filter_grid(convnet, "frist")


# ------------------------------------------------------------------------- activations
@pytest.fixture(scope="module")
def identity_net():
    """A 1x1 conv that copies the 3 input channels (raw input): activations = the image."""
    import keras
    from keras import layers as L
    inp = keras.Input((6, 5, 3))
    conv = L.Conv2D(3, 1, use_bias=False, name="copy")
    x = conv(inp)
    out = L.Dense(2, name="out")(L.Flatten(name="flat")(x))
    conv.set_weights([np.eye(3, dtype=np.float32)[None, None]])
    return tfviz.load_model(keras.Model(inp, out), preprocess="raw")


def test_activation_grid_sorted_and_normalized(identity_net, rng):
    img = rng.integers(0, 60, (6, 5, 3)).astype(np.uint8)
    img[..., 2] += 150   # channel 2 strongest (mean), then channel 0
    img[..., 0] += 40
    grid = activation_grid(identity_net, img, "copy", upsample=1, gap=1)
    assert grid.shape == (2 * 6 + 1, 2 * 5 + 1, 3)
    for pos, ch in enumerate([2, 0, 1]):
        tile = _tile_at(grid, pos // 2, pos % 2, 6, 5)[..., 0]
        np.testing.assert_array_equal(tile, _rescale(img[..., ch].astype(np.float32)))
    one = activation_grid(identity_net, img, "copy", limit=1, upsample=1)
    np.testing.assert_array_equal(one[..., 0], _rescale(img[..., 2].astype(np.float32)))
    unsorted = activation_grid(identity_net, img, "copy", sort=False, upsample=1)
    np.testing.assert_array_equal(_tile_at(unsorted, 0, 0, 6, 5)[..., 0], _rescale(img[..., 0].astype(np.float32)))
    shared = activation_grid(identity_net, img, "copy", sort=False, scale="shared", upsample=1)
    lo, hi = float(img.min()), float(img.max())
    np.testing.assert_array_equal(_tile_at(shared, 0, 1, 6, 5)[..., 0],
                                  _rescale(img[..., 1].astype(np.float32), lo, hi))


def test_activation_grid_names_spatial_layers(identity_net, rng):
    img = rng.integers(0, 255, (6, 5, 3)).astype(np.uint8)
    with pytest.raises(LayerKindError, match=r"'out' has no spatial output .*spatial layers: .*copy"):
        activation_grid(identity_net, img, "out")


# ------------------------------------------------------------------------- patches
@pytest.fixture(scope="module")
def valid_net():
    """'valid' convs + a max pool, ReLU, raw input (zero input = zero pixels)."""
    import keras
    from keras import layers as L
    keras.utils.set_random_seed(5)
    inp = keras.Input((20, 18, 3))
    x = L.Conv2D(4, 3, activation="relu", name="c1")(inp)
    x = L.MaxPooling2D(2, name="p1")(x)
    x = L.Conv2D(5, 3, activation="relu", name="c2")(x)
    out = L.Dense(3, name="out")(L.GlobalAveragePooling2D(name="gap")(x))
    return tfviz.load_model(keras.Model(inp, out), preprocess="raw")


@pytest.fixture(scope="module")
def patch_images():
    return np.random.default_rng(1).integers(0, 256, (37, 20, 18, 3)).astype(np.uint8)


def _acts(bundle, layer, images):
    return bundle.features(layer)(bundle.preprocess(images)).numpy()


def test_patches_match_brute_force_top_k(valid_net, patch_images):
    acts = _acts(valid_net, "c2", patch_images)               # [N, h, w, 5]
    n, h, w, _ = acts.shape
    res = max_activating_patches(valid_net, patch_images, "c2", [0, 3], k=7, batch_size=8, per_image=None)
    for r in res:
        a = acts[..., r.channel].ravel()
        order = np.argsort(-a, kind="stable")[:7]
        np.testing.assert_allclose(r.scores, a[order], rtol=1e-5)
        expect = np.stack(np.unravel_index(order, (n, h, w)), 1)
        np.testing.assert_array_equal(np.sort(r.locations.view("i8,i8,i8"), 0),
                                      np.sort(expect.astype(np.int64).view("i8,i8,i8"), 0))
    # one per image (default): the channel's per-image maxima, best k images
    res1 = max_activating_patches(valid_net, patch_images, "c2", 3, k=5, batch_size=10)
    per_img = acts[..., 3].reshape(n, -1).max(1)
    np.testing.assert_allclose(res1[0].scores, np.sort(per_img)[::-1][:5], rtol=1e-5)
    assert len(set(res1[0].locations[:, 0])) == 5


def test_patch_alone_reproduces_the_activation(valid_net, patch_images):
    """Cut from the right place: the crop pasted into a zero image at its box gives the
    unit the same activation (interior units of a 'valid' net)."""
    rf = receptive_field(valid_net, "c2")
    assert tuple(rf) == ((8, 8), (2, 2), (0, 0))   # 3, +1 by the 2x2 pool, +2 x stride 2
    res = max_activating_patches(valid_net, patch_images, "c2", None, k=4, batch_size=16)
    checked = 0
    for r in res:
        for patch, score, (i, y, x), box in zip(r.patches, r.scores, r.locations, r.boxes):
            top, left, bottom, right = box
            assert patch.shape == (8, 8, 3)
            np.testing.assert_array_equal(patch, patch_images[i, top:bottom, left:right])
            canvas = np.zeros((1, 20, 18, 3), np.uint8)
            canvas[0, top:bottom, left:right] = patch
            alone = _acts(valid_net, "c2", canvas)[0, y, x, r.channel]
            np.testing.assert_allclose(alone, score, rtol=1e-4, atol=1e-4)
            checked += 1
    assert checked == 20


def test_patches_padded_where_the_field_leaves_the_image():
    import keras
    from keras import layers as L
    inp = keras.Input((8, 8, 3))
    x = L.Conv2D(1, 5, padding="same", use_bias=False, kernel_initializer="ones", name="c")(inp)
    b = tfviz.load_model(keras.Model(inp, L.Dense(1)(L.Flatten()(x))), preprocess="raw")
    img = np.zeros((1, 8, 8, 3), np.uint8)
    img[0, 0, 0] = 250        # the top-left pixel: unit (0, 0) sees it (and 6 rows of padding around)
    [r] = max_activating_patches(b, img, "c", 0, k=1, pad_value=(7, 8, 9))
    assert tuple(r.locations[0]) == (0, 0, 0) and tuple(r.boxes[0]) == (-2, -2, 3, 3)
    p = r.patches[0]
    assert p.shape == (5, 5, 3)
    assert np.all(p[:2] == (7, 8, 9)) and np.all(p[:, :2] == (7, 8, 9))
    np.testing.assert_array_equal(p[2:, 2:], img[0, :3, :3])
    # default fill: the pixel whose model input is 0 (what zero padding shows)
    [r0] = max_activating_patches(b, img, "c", 0, k=1)
    assert np.all(r0.patches[0][:2] == 0)


def test_streaming_equals_in_memory_and_batch_size_does_not_matter(valid_net, patch_images):
    ref = max_activating_patches(valid_net, patch_images, "c2", [1, 2], k=6, batch_size=37)
    stream = (patch_images[i:i + 5] for i in range(0, len(patch_images), 5))
    got = max_activating_patches(valid_net, stream, "c2", [1, 2], k=6, batch_size=99)
    for a, b in zip(ref, got):
        np.testing.assert_array_equal(a.locations, b.locations)
        np.testing.assert_array_equal(a.patches, b.patches)
        np.testing.assert_allclose(a.scores, b.scores, rtol=1e-5)


def test_several_layers_in_one_pass(valid_net, patch_images):
    both = max_activating_patches(valid_net, patch_images, ["c1", "c2"], {"c1": [0], "c2": [4]}, k=3)
    alone = max_activating_patches(valid_net, patch_images, "c1", [0], k=3)
    assert set(both) == {"c1", "c2"} and both["c1"][0].patches.shape[1:3] == (3, 3)
    np.testing.assert_array_equal(both["c1"][0].locations, alone[0].locations)
    grid = patch_grid(both["c2"])
    assert grid.dtype == np.uint8 and grid.shape[0] >= 48
    # unlabelled: the 3 patches (8x8 px, repeated 6x to reach 48 px) left to right, best first, gap 2
    bare = patch_grid(both["c2"], labels=False)
    assert bare.shape == (48, 3 * 48 + 2 * 2, 3)
    for j, p in enumerate(both["c2"][0].patches):
        np.testing.assert_array_equal(bare[:, j * 50:j * 50 + 48], np.repeat(np.repeat(p, 6, 0), 6, 1))


def test_patch_memory_does_not_grow_with_the_data_set(valid_net):
    """A running top-k: the peak of Python/numpy allocations while scanning 5x more
    images of a stream stays the same (a batch plus channels x k patches)."""
    import tracemalloc

    def stream(n):
        rng = np.random.default_rng(0)
        for _ in range(n // 50):
            yield rng.integers(0, 256, (50, 20, 18, 3), dtype=np.uint8)

    peaks = []
    for n in (200, 1000):
        max_activating_patches(valid_net, stream(50), "c2", None, k=9)   # warm up (tracing)
        tracemalloc.start()
        max_activating_patches(valid_net, stream(n), "c2", None, k=9)
        peaks.append(tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()
    assert peaks[1] < peaks[0] * 1.3 + 200_000, peaks


def test_patches_bad_input(valid_net, patch_images, tmp_path):
    with pytest.raises(LayerKindError, match="spatial layers: .*c1.*c2"):
        max_activating_patches(valid_net, patch_images, "gap", 0)
    with pytest.raises(ChannelError, match=r"channel 5 out of range: layer 'c2' has 5 channels \(0..4\)"):
        max_activating_patches(valid_net, patch_images, "c2", [0, 5])
    with pytest.raises(DataError, match="k=38 is larger than the data set: only 37 images"):
        max_activating_patches(valid_net, patch_images, "c2", 0, k=38)
    stream = iter([patch_images[:3]])
    with pytest.raises(DataError, match="k=4 is larger than the data set: only 3 images"):
        max_activating_patches(valid_net, stream, "c2", 0, k=4)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ImageError, match="no images found"):
        max_activating_patches(valid_net, str(empty), "c2", 0)
