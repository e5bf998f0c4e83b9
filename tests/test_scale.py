"""Scans that stream and scale: folders read through tf.data (against the Pillow path),
and tf.distribute strategies (MirroredStrategy over two logical CPU devices, in a
subprocess: logical devices must be set before TensorFlow starts) giving exactly the
results of no strategy."""
import json
import os
import subprocess
import sys
import warnings

import numpy as np
import pytest
from PIL import Image

import tfviz
from tfviz import data
from tfviz.distribute import StrategyError
from tfviz.utils import ImageError, TfvizError

HERE = os.path.dirname(os.path.abspath(__file__))


def _save(path, arr, mode=None, **kw):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr, mode).save(path, **kw) if mode else Image.fromarray(arr).save(path, **kw)


def _truncated(path, rng):
    _save(path, rng.integers(0, 256, (40, 40, 3), dtype=np.uint8))
    raw = path.read_bytes()
    path.write_bytes(raw[:len(raw) // 2])  # header fine, data cut: fails while decoding


@pytest.fixture
def mixed(tmp_path):
    """Class folders of PNG / JPEG / grey / RGBA / palette / 16-bit / TIFF files, some at
    the scan size (20 x 20), some not; one unreadable and one truncated file."""
    rng = np.random.default_rng(0)
    root = tmp_path / "mixed"
    px = lambda h=20, w=20: rng.integers(0, 256, (h, w, 3), dtype=np.uint8)  # noqa: E731
    _save(root / "a" / "rgb.png", px())
    _save(root / "a" / "photo.jpg", px(), quality=92)
    _save(root / "a" / "grey.png", px()[..., 0])
    _save(root / "a" / "deep" / "rgba.png", np.dstack([px(), px()[..., :1]]), "RGBA")
    _save(root / "b" / "big.jpg", px(31, 27))
    _save(root / "b" / "wide.png", px(12, 40))
    _save(root / "b" / "grey16.png", (px()[..., 0].astype(np.uint16) * 257 - 3).clip(0).astype(np.uint16))
    Image.fromarray(px()).convert("P").save(root / "b" / "palette.png")
    _save(root / "b" / "scan.tif", px(25, 20))
    (root / "b" / "junk.png").write_bytes(b"not an image")
    _truncated(root / "b" / "cut.png", rng)
    return root


def test_tf_data_folder_reads_like_pillow(mixed):
    with pytest.warns(data.UnreadableImagesWarning, match="junk.png"):
        s = data.from_folder(str(mixed))
    assert s.pipeline and s.uses_pipeline((20, 20)) and not s.uses_pipeline(None)
    with pytest.warns(data.UnreadableImagesWarning, match=r"skipped 1 unreadable file\(s\): .*cut.png"):
        ref = list(s.batches(4, size=(20, 20)))
    with pytest.warns(data.UnreadableImagesWarning, match=r"skipped 1 unreadable file\(s\): .*cut.png"):
        got = list(s.batches(4, size=(20, 20), pipeline=True))
    idx = np.concatenate([b.indices for b in ref])
    np.testing.assert_array_equal(np.concatenate([b.indices for b in got]), idx)
    np.testing.assert_array_equal(np.concatenate([b.labels for b in got]), np.concatenate([b.labels for b in ref]))
    a = np.concatenate([b.images for b in ref]).astype(int)
    b = np.concatenate([b.images for b in got]).astype(int)
    assert a.shape == b.shape == (len(s) - 1, 20, 20, 3)
    names = [os.path.basename(s.names[i]) for i in idx]
    for n, x, y in zip(names, a, b):
        if n in ("big.jpg", "wide.png", "scan.tif"):     # resized: TensorFlow's bicubic vs Pillow's
            assert np.abs(x - y).mean() < 1.5, n
        else:                                            # same size: decoded pixel for pixel alike
            np.testing.assert_array_equal(x, y, err_msg=n)
    # strict: the file that fails while decoding raises, through the pipeline too
    (mixed / "b" / "junk.png").unlink()
    strict = data.from_folder(str(mixed), strict=True)
    with pytest.raises(ImageError, match="cut.png"):
        list(strict.batches(4, size=(20, 20), pipeline=True))
    # pipeline=False: the Pillow path, one batch at a time
    assert not data.from_folder(str(mixed), pipeline=False).uses_pipeline((20, 20))


def test_tf_data_pass_drops_and_leftovers_rescue(mixed):
    """A TFPass over a folder: files TensorFlow cannot decode are left out of the dataset
    and read by Pillow in leftovers(); unreadable ones are skipped with the warning."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        s = data.from_folder(str(mixed))
    tp = data.TFPass(s, 5, (20, 20))
    seen = np.zeros(len(s), bool)
    for images, idx, labels, hw in tp.dataset:
        assert images.dtype.name == "uint8" and images.shape[1:] == (20, 20, 3)
        np.testing.assert_array_equal(labels.numpy(), s.labels[idx.numpy()])
        seen[idx.numpy()] = True
    names = [os.path.basename(n) for n in s.names]
    assert not seen[names.index("cut.png")] and seen[names.index("scan.tif")]  # TIFF: Pillow inside tf.data
    with pytest.warns(data.UnreadableImagesWarning, match="cut.png"):
        rescued = list(tp.leftovers(seen))
    assert rescued == []


def _tiny_bundle():
    import keras
    keras.utils.set_random_seed(1)
    inp = keras.Input((12, 12, 3))
    x = keras.layers.Conv2D(3, 3, name="c")(inp)
    f = keras.layers.GlobalAveragePooling2D(name="gap")(x)
    return tfviz.load_model(keras.Model(inp, keras.layers.Dense(2, name="out")(f)), preprocess="0-1")


def test_strategy_must_be_a_tf_distribute_strategy():
    from tfviz.inspect import embed, extract_features, max_activating_patches, nearest_neighbors
    b = _tiny_bundle()
    imgs = np.zeros((4, 12, 12, 3), np.uint8)
    calls = [lambda s: max_activating_patches(b, imgs, "c", 0, k=1, strategy=s),
             lambda s: extract_features(b, imgs, strategy=s),
             lambda s: nearest_neighbors(b, [0], imgs, k=1, strategy=s),
             lambda s: embed(b, imgs, method="pca", strategy=s)]
    for call in calls:
        for bad in ("mirrored", 2, object()):
            with pytest.raises(StrategyError, match="strategy must be a tf.distribute.Strategy"):
                call(bad)
    assert issubclass(StrategyError, TfvizError)


@pytest.mark.slow
def test_mirrored_strategy_on_two_cpus_gives_the_same_results(tmp_path):
    rng = np.random.default_rng(0)
    root = tmp_path / "set"
    for i in range(19):
        ext = "jpg" if i % 4 == 0 else "png"
        size = (31, 27) if i % 3 == 0 else (20, 20)
        _save(root / "ab"[i % 2] / f"{i:02d}.{ext}", rng.integers(0, 256, size + (3,), dtype=np.uint8))
    _truncated(root / "a" / "cut.png", rng)
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONWARNINGS="ignore")
    proc = subprocess.run([sys.executable, os.path.join(HERE, "scale_worker.py"), str(root)],
                          capture_output=True, text=True, env=env, timeout=300)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    assert proc.returncode == 0 and lines, proc.stderr[-3000:]
    res = json.loads(lines[-1])
    failed = [k for k, ok in res["checks"].items() if not ok]
    assert not failed and len(res["checks"]) >= 12, (failed, res)
