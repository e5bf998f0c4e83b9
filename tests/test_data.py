"""tfviz.data: folders (recursive, labels from sub-folders, unreadable files), arrays,
the bundled digits, keras.datasets offline, streams."""
import warnings

import numpy as np
import pytest
from PIL import Image

from tfviz import data
from tfviz.utils import ImageError, OfflineError


def _png(path, value, size=(6, 5)):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full(size + (3,), value, np.uint8)).save(path)


@pytest.fixture
def folder(tmp_path):
    root = tmp_path / "set"
    _png(root / "cats" / "a.png", 10)
    _png(root / "cats" / "deep" / "b.png", 20)      # recursive: still a cat
    _png(root / "dogs" / "c.png", 30)
    _png(root / "dogs" / "d.png", 40)
    return root


def test_folder_recursive_with_labels(folder):
    s = data.image_set(str(folder))
    assert len(s) == 4 and s.class_names == ["cats", "dogs"]
    assert [str(p).split("set/")[1] for p in s.names] == ["cats/a.png", "cats/deep/b.png", "dogs/c.png", "dogs/d.png"]
    np.testing.assert_array_equal(s.labels, [0, 0, 1, 1])
    batches = list(s.batches(3, size=(4, 4)))
    assert [len(b.images) for b in batches] == [3, 1]
    assert batches[0].images.shape == (3, 4, 4, 3)
    np.testing.assert_array_equal(batches[1].indices, [3])
    np.testing.assert_array_equal(batches[1].labels, [1])
    assert batches[1].images[0, 0, 0, 0] == 40
    np.testing.assert_array_equal(s.take([2])[0], np.full((6, 5, 3), 30, np.uint8))


def test_unreadable_files_skipped_with_one_warning_or_strict(folder):
    (folder / "dogs" / "broken.png").write_bytes(b"not a png at all")
    good = Image.fromarray(np.zeros((40, 40, 3), np.uint8))
    good.save(folder / "cats" / "cut.png")
    raw = (folder / "cats" / "cut.png").read_bytes()
    (folder / "cats" / "cut.png").write_bytes(raw[:len(raw) // 2])   # header fine, data truncated
    with pytest.warns(data.UnreadableImagesWarning, match=r"skipped 1 unreadable file\(s\): .*broken.png"):
        s = data.from_folder(str(folder))
    assert len(s) == 5                                    # the truncated file passes the header check
    with pytest.warns(data.UnreadableImagesWarning, match=r"cut.png"):
        batches = list(s.batches(10))
    assert sum(len(b.images) for b in batches) == 4       # ... and is skipped while streaming
    assert "cut.png" not in " ".join(str(s.names[i]) for b in batches for i in b.indices)
    with pytest.raises(ImageError, match="cannot read 1 unreadable file.*broken.png"):
        data.from_folder(str(folder), strict=True)


def test_empty_and_missing_folders(tmp_path):
    (tmp_path / "empty" / "sub").mkdir(parents=True)
    (tmp_path / "empty" / "notes.txt").write_text("no images here")
    with pytest.raises(ImageError, match="no images found"):
        data.image_set(str(tmp_path / "empty"))
    with pytest.raises(data.DataError, match="no such folder"):
        data.image_set(str(tmp_path / "nope"))
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "x.jpg").write_bytes(b"junk")
    with pytest.raises(ImageError, match="none of the 1 image files can be read"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            data.image_set(str(bad))


def test_arrays_with_labels(rng):
    x = rng.random((7, 4, 4))                              # float grayscale 0..1
    s = data.image_set(x, labels=["b", "a", "b", "c", "a", "a", "b"])
    assert s.class_names == ["a", "b", "c"]
    np.testing.assert_array_equal(s.labels, [1, 0, 1, 2, 0, 0, 1])
    [b] = list(s.batches(10))
    assert b.images.dtype == np.uint8 and b.images.shape == (7, 4, 4, 3)
    np.testing.assert_array_equal(b.images[2, ..., 1], np.clip(x[2] * 255 + 0.5, 0, 255).astype(np.uint8))
    with pytest.raises(data.DataError, match="7 images but 2 labels"):
        data.image_set(x, labels=[0, 1])
    t = data.image_set((np.zeros((3, 2, 2, 3), np.uint8), [0, 1, 2]))
    np.testing.assert_array_equal(t.labels, [0, 1, 2])


def test_digits_are_offline_and_labelled():
    s = data.image_set("digits")
    assert len(s) == 1797 and s.class_names == [str(i) for i in range(10)]
    from sklearn.datasets import load_digits
    np.testing.assert_array_equal(s.labels, load_digits().target)
    assert s.take([0]).shape == (1, 32, 32, 3)


def test_keras_dataset_offline_is_a_clear_error(monkeypatch):
    import keras.src.datasets.cifar10 as mod

    def no_network(*a, **k):
        raise Exception("URL fetch failure on https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz: "
                        "None -- [Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(mod, "get_file", no_network)
    with pytest.raises(OfflineError, match="cannot download the keras dataset 'cifar10': no network.*'digits'"):
        data.image_set("cifar10")
    with pytest.raises(data.DataError, match="unknown keras dataset 'cifar11'"):
        data.keras_dataset("cifar11")


def test_streams_of_batches_keep_order_and_labels(rng):
    chunks = [rng.integers(0, 256, (3, 5, 5, 3), dtype=np.uint8) for _ in range(3)]
    s = data.image_set(((c, [i] * 3) for i, c in enumerate(chunks)))
    assert s.length is None and not s.random_access
    got = list(s.batches(64))
    assert s.length == 9
    np.testing.assert_array_equal(np.concatenate([b.indices for b in got]), np.arange(9))
    np.testing.assert_array_equal(np.concatenate([b.labels for b in got]), [0, 0, 0, 1, 1, 1, 2, 2, 2])
    np.testing.assert_array_equal(got[2].images, chunks[2])
    with pytest.raises(data.DataError, match="one-pass stream"):
        s.take([0])
    with pytest.raises(data.DataError, match="one-pass stream .* was read already"):
        list(s.batches(64))
    again = data.image_set(chunks)                         # a list can be read twice
    assert sum(len(b.images) for b in again.batches(4)) == sum(len(b.images) for b in again.batches(4)) == 9


def test_folder_streams_one_batch_at_a_time(folder, monkeypatch):
    """Only the files of the current batch are decoded."""
    from tfviz import images
    calls = []
    real = images.load_image
    monkeypatch.setattr(images, "load_image", lambda p, *a, **k: calls.append(p) or real(p, *a, **k))
    s = data.image_set(str(folder))
    it = s.batches(2)
    next(it)
    assert len(calls) == 2
