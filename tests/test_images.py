import io
import os

import numpy as np
import pytest
from PIL import Image

from tfviz import images
from tfviz.utils import ImageError


def _png_bytes(arr, mode=None):
    buf = io.BytesIO()
    Image.fromarray(arr, mode=mode).save(buf, format="PNG") if mode else Image.fromarray(arr).save(buf, format="PNG")
    return buf.getvalue()


def test_grayscale_becomes_rgb(tmp_path):
    g = np.arange(12, dtype=np.uint8).reshape(3, 4) * 20
    p = tmp_path / "g.png"
    Image.fromarray(g).save(p)
    out = images.load_image(str(p))
    assert out.shape == (3, 4, 3) and out.dtype == np.uint8
    assert np.array_equal(out[..., 0], g) and np.array_equal(out[..., 2], g)


def test_rgba_composited_over_white():
    rgba = np.zeros((2, 2, 4), np.uint8)
    rgba[..., 0] = 200          # red channel
    rgba[0, 0, 3] = 255         # opaque
    rgba[0, 1, 3] = 0           # transparent -> white
    rgba[1, :, 3] = 128         # half
    out = images.load_image(_png_bytes(rgba))
    assert tuple(out[0, 0]) == (200, 0, 0)
    assert tuple(out[0, 1]) == (255, 255, 255)
    a = 128 / 255
    assert tuple(out[1, 0]) == (round(200 * a + 255 * (1 - a)), round(255 * (1 - a)), round(255 * (1 - a)))


def test_16bit_png_rescaled(tmp_path):
    arr = np.array([[0, 65535], [32768, 257]], np.uint16)
    p = tmp_path / "d.png"
    Image.fromarray(arr).save(p)
    out = images.load_image(str(p))
    assert out[..., 0].tolist() == [[0, 255], [128, 1]]


def test_truncated_and_non_image_files_name_the_file(tmp_path):
    good = images.sample_photos()["chelsea"]
    data = open(good, "rb").read()
    bad = tmp_path / "cut.jpg"
    bad.write_bytes(data[: len(data) // 3])
    with pytest.raises(ImageError, match="cut.jpg"):
        images.load_image(str(bad))
    txt = tmp_path / "notes.png"
    txt.write_text("hello")
    with pytest.raises(ImageError, match="notes.png: not an image"):
        images.load_image(str(txt))
    with pytest.raises(ImageError, match="no such file"):
        images.load_image(str(tmp_path / "missing.png"))


def test_huge_image_refused(tmp_path, monkeypatch):
    p = tmp_path / "big.png"
    Image.new("RGB", (300, 200)).save(p)
    monkeypatch.setattr(images, "MAX_PIXELS", 300 * 200 - 1)
    with pytest.raises(ImageError, match="too large"):
        images.load_image(str(p))


def test_float_arrays_in_0_1_or_0_255():
    assert images.load_image(np.full((2, 2, 3), 0.5))[0, 0, 0] == 128
    assert images.load_image(np.full((2, 2, 3), 200.0))[0, 0, 0] == 200
    with pytest.raises(ImageError, match="NaN"):
        images.load_image(np.full((2, 2, 3), np.nan))


def test_resize_and_center_crop():
    img = np.zeros((100, 200, 3), np.uint8)
    img[:, 50:150] = 255  # a white centre square
    out = images.load_image(img, 20, crop=True)
    assert out.shape == (20, 20, 3) and out.min() == 255


def test_save_png_is_atomic(tmp_path, monkeypatch):
    p = tmp_path / "out.png"
    images.save_png(str(p), np.zeros((4, 4, 3), np.uint8))
    assert np.array_equal(np.asarray(Image.open(p)), np.zeros((4, 4, 3), np.uint8))
    before = p.read_bytes()
    with pytest.raises(Exception):
        images.save_png(str(p), np.zeros((4, 4, 7), np.uint8))  # PIL cannot write 7 channels
    # a write that dies half-way (disk full, Ctrl-C) after writing some bytes where it was told to
    def dies_half_way(self, fp, *a, **k):
        with open(fp, "wb") as fh:
            fh.write(b"\x89PNG half a file")
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(Image.Image, "save", dies_half_way)
    with pytest.raises(OSError):
        images.save_png(str(p), np.full((4, 4, 3), 255, np.uint8))
    with pytest.raises(OSError):
        images.save_png(str(tmp_path / "new.png"), np.full((4, 4, 3), 255, np.uint8))
    # the earlier file is intact, no half-written file appears and no temporary file is left behind
    assert p.read_bytes() == before
    assert os.listdir(tmp_path) == ["out.png"]


def test_tile_places_images_in_order_with_gaps():
    tiles = np.stack([np.full((2, 3), i, np.uint8) for i in range(5)])
    grid = images.tile(tiles, cols=3, gap=1, bg=99)
    assert grid.shape == (2 * 2 + 1, 3 * 3 + 2)
    assert grid[0, 0] == 0 and grid[0, 4] == 1 and grid[0, 8] == 2 and grid[3, 0] == 3 and grid[3, 4] == 4
    assert grid[2, 0] == 99 and grid[0, 3] == 99 and grid[3, 8] == 99


def test_colormap_endpoints():
    c = images.colormap(np.array([0.0, 1.0]), "viridis")
    assert tuple(c[0]) == (68, 1, 84) and tuple(c[1]) == (253, 231, 37)


def test_sample_photos_bundled():
    photos = images.sample_photos()
    assert {"chelsea", "coffee", "rocket", "astronaut"} <= set(photos)
    assert images.sample_photo("coffee").shape[2] == 3
    with pytest.raises(ImageError, match="chelsea"):
        images.sample_photo("chelsy")


def test_picture_saver_writes_and_reports_each_picture(tmp_path, capsys):
    from tfviz.images import PictureSaver
    save = PictureSaver(str(tmp_path / "out"))
    img = np.arange(4 * 5 * 3, dtype=np.uint8).reshape(4, 5, 3)
    path = save("a.png", img)
    assert path == str(tmp_path / "out" / "a.png")
    np.testing.assert_array_equal(np.asarray(Image.open(path)), img)
    line = capsys.readouterr().out
    assert line.startswith(f"wrote {path}  (") and line.rstrip().endswith(" s)")
