"""A small demo logdir with one run of every tfviz view, made with numpy only (no
model): ``python -m tb_plugin.demo LOGDIR`` then ``tfviz board LOGDIR``.

The pictures are stand-ins computed from the bundled photos (edge maps for
"saliency", blurred edges for "Grad-CAM", random smooth kernels for filters, a pattern
emerging from noise for an optimization run), so the dashboard can be seen and tested
without any model. The browser test and the plugin tests use it.
"""
from __future__ import annotations

import sys

import numpy as np

from tfviz import images as _img
from tfviz.inspect.patches import ChannelPatches
from tfviz.summary import Writer

HOSTILE = '<img src=x onerror="window.__tfviz_pwned=1">&amp;"\''  # escaped or it fires


def _photo(name, size=128):
    return _img.resize(_img.sample_photo(name), (size, size), crop=True)


def _edges(img):
    g = img.astype(np.float32).mean(-1)
    gy, gx = np.gradient(g)
    return np.hypot(gx, gy)


def _blur(x, k=9):
    kernel = np.ones(k, np.float32) / k
    x = np.apply_along_axis(lambda r: np.convolve(r, kernel, mode="same"), 0, x)
    return np.apply_along_axis(lambda r: np.convolve(r, kernel, mode="same"), 1, x)


def filter_grid(rng, n=16, k=7, scale=6):
    """Gabor-like coloured kernels, tiled and enlarged like a first-layer filter grid."""
    yy, xx = np.mgrid[-1:1:k * 1j, -1:1:k * 1j]
    envelope = np.exp(-(xx ** 2 + yy ** 2) / 0.6)
    tiles = []
    for _ in range(n):
        theta, freq, phase = rng.uniform(0, np.pi), rng.uniform(0.6, 1.6), rng.uniform(0, 2 * np.pi)
        wave = envelope * np.cos(freq * np.pi * (np.cos(theta) * xx + np.sin(theta) * yy) + phase)
        color = rng.normal(size=3)
        tiles.append(_img.to_uint8(wave[..., None] * color / np.abs(color).max(), -1, 1))
    return _img.upsample_nearest(_img.tile(np.stack(tiles), gap=1, bg=128), scale)


def activation_grid(img, channels=9):
    g = img.astype(np.float32).mean(-1)
    maps = []
    for c in range(channels):
        angle = np.pi * c / channels
        gy, gx = np.gradient(_blur(g, 1 + 2 * (c % 3)))
        maps.append(_img.colormap(np.maximum(np.cos(angle) * gx + np.sin(angle) * gy, 0)[::2, ::2], "viridis"))
    return _img.tile(np.stack(maps), gap=2)


def channel_patches(photos, layer="block2", channels=4, k=6, size=24, stride=8):
    """Stand-in max-activating patches: "channel" c responds to edges at angle c/channels
    of pi; its top ``k`` windows (``size`` px, on a ``stride`` grid), as many from each photo."""
    photos = list(photos)
    out = []
    for c in range(channels):
        angle = np.pi * c / channels
        cands = []
        for i, p in enumerate(photos):
            gy, gx = np.gradient(_blur(p.astype(np.float32).mean(-1), 3))
            resp = np.maximum(np.cos(angle) * gx + np.sin(angle) * gy, 0)
            n = (p.shape[0] - size) // stride + 1
            grid = np.array([[resp[y * stride:y * stride + size, x * stride:x * stride + size].mean()
                              for x in range(n)] for y in range(n)])
            for flat in np.argsort(grid, axis=None)[::-1][:max(1, k // len(photos))]:
                y, x = divmod(int(flat), n)
                cands.append((float(grid[y, x]), i, y, x))
        top = sorted(cands, key=lambda t: -t[0])[:k]
        boxes = np.array([(y * stride, x * stride, y * stride + size, x * stride + size) for _, _, y, x in top])
        patches = np.stack([photos[i][t:b, l:r] for (_, i, _, _), (t, l, b, r) in zip(top, boxes)])
        out.append(ChannelPatches(layer, c, patches, np.array([s for s, *_ in top], np.float32),
                                  np.array([(i, y, x) for _, i, y, x in top]), boxes))
    return out


def write_demo(logdir: str, snapshots: int = 12, steps: int = 120, seed: int = 0) -> dict:
    """Writes runs ``filters``, ``activations``, ``patches``, ``attribution``,
    ``embeddings`` and two optimization runs into ``logdir``; returns {view: [runs]}."""
    rng = np.random.default_rng(seed)
    photos = {n: _photo(n) for n in ("chelsea", "coffee", "rocket")}

    with Writer(logdir, run="filters") as w:
        w.filters("conv1", filter_grid(rng), caption="conv1: 16 filters 7x7")
        w.filters("conv2", filter_grid(rng, n=32, k=5, scale=6), caption="conv2: 32 filters 5x5")
        for epoch in range(3):  # a grid that changes over training, as the callbacks write it
            w.filters("conv1_training", filter_grid(np.random.default_rng(epoch)), step=epoch,
                      caption=f"epoch {epoch}")

    with Writer(logdir, run="activations") as w:
        names = list(photos)
        w.activations("block1", [activation_grid(p, 9) for p in photos.values()], names=names)
        w.activations("block2", [activation_grid(p[::2, ::2], 16) for p in photos.values()], names=names)

    with Writer(logdir, run="patches") as w:  # 4 channels x 6 patches; one source image has a hostile name
        names = ["chelsea.jpg", "coffee.jpg", HOSTILE]
        w.patches("block2", channel_patches(photos.values()), names=names, data="3 photos", field=[24, 24],
                  stride=[8, 8])

    with Writer(logdir, run="attribution") as w:
        imgs = np.stack(list(photos.values()))
        names = list(photos)
        sal = np.stack([_edges(p) for p in imgs])
        cam = np.stack([_blur(_blur(_edges(p), 15), 15) for p in imgs])
        w.attribution("saliency", imgs, sal, targets=["Egyptian Mau", "espresso", HOSTILE],
                      scores=[11.25, 9.5, -0.75], names=names)
        w.attribution("grad_cam", imgs, cam, targets=["Egyptian Mau", "espresso", "missile"],
                      scores=[11.25, 9.5, 7.0], names=names)

    with Writer(logdir, run="embeddings") as w:
        thumbs = np.stack([_img.resize(np.roll(photos[n], s, axis=1), (24, 24))
                           for n in photos for s in range(0, 120, 15)])
        coords = rng.normal(size=(len(thumbs), 2)) + np.repeat(np.eye(3, 2) * 4, len(thumbs) // 3, axis=0)
        canvas = np.full((320, 320, 3), 255, np.uint8)
        cells = ((coords - coords.min(0)) / np.ptp(coords, 0) * 12).astype(int).clip(0, 12)
        for (cx, cy), t in zip(cells, thumbs):
            canvas[cy * 24:cy * 24 + 24, cx * 24:cx * 24 + 24] = t
        w.embedding_map("photos_pca", canvas, caption="PCA of 24 thumbnails")
        order = np.argsort(((coords[:, None] - coords[None]) ** 2).sum(-1), axis=1)
        q = [0, 8, 16]
        w.neighbors("photos_neighbors", thumbs[q], thumbs[order[q, 1:6]],
                    distances=np.sort(((coords[q, None] - coords[None]) ** 2).sum(-1) ** 0.5, 1)[:, 1:6],
                    labels=[["chelsea"] * 6, ["coffee"] * 6, ["rocket"] * 6])

    yy, xx = np.mgrid[0:96, 0:96] / 96.0
    target = np.stack([np.sin(2 * np.pi * (3 * xx + np.sin(6 * yy))), np.cos(2 * np.pi * (4 * yy + 0.5 * xx)),
                       np.sin(2 * np.pi * 5 * np.hypot(xx - 0.5, yy - 0.5))], -1)  # what "emerges"
    for run, (recipe, rate) in {"classviz-tabby": ("class_visualization", 0.04),
                                "dream-chelsea": ("deepdream", 0.02)}.items():
        with Writer(logdir, run=run) as w:
            w.params("optimization", {"recipe": recipe, "target": "tabby cat", "steps": steps,
                                      "learning_rate": 0.05, "jitter": 8, "seed": seed, "note": HOSTILE})
            noise = np.random.default_rng(1).random((96, 96, 3))
            every = max(1, steps // snapshots)
            for step in range(steps):
                w.scalar("loss", 5.0 * np.exp(-rate * step) + 0.05 * np.sin(step / 3), step)
                w.scalar("objective", -4.0 * (1 - np.exp(-rate * step)), step)
                if step % every == 0 or step == steps - 1:
                    t = min(1.0, step / (steps * 0.8))
                    w.snapshot(_img.to_uint8((1 - t) * noise + t * (target * 0.5 + 0.5), 0, 1), step)
    return {"filters": ["filters"], "activations": ["activations"], "patches": ["patches"],
            "attribution": ["attribution"], "embeddings": ["embeddings"],
            "optimization": ["classviz-tabby", "dream-chelsea"]}


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1 or argv[0].startswith("-"):
        sys.exit("usage: python -m tb_plugin.demo LOGDIR   (writes a demo logdir for the tfviz tab; no model needed)")
    views = write_demo(argv[0])
    runs = sorted({r for rs in views.values() for r in rs})
    print(f"wrote a demo logdir to {argv[0]}: {len(views)} views ({', '.join(views)}), runs {', '.join(runs)}")
    print(f"open it with: tfviz board {argv[0]}")


if __name__ == "__main__":  # pragma: no cover
    main()
