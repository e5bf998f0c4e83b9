"""The picture of a TCAV result: one group of bars per concept (and the random directions
last), one bar per layer, each the mean TCAV score over the random sets with its spread
(+- one standard deviation); a bar whose scores do not differ significantly from random
directions' is drawn hollow and marked with an asterisk, as in Kim et al. 2018. A dashed
line marks 0.5, and a few of each concept's images stand under its group. Pillow only."""
from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw

from .. import images as _images

#: Layer colours (colour-blind friendly, on white), in the order of the layers.
PALETTE = ((0, 114, 178), (230, 159, 0), (0, 158, 115), (204, 121, 167), (86, 180, 233), (213, 94, 0),
           (240, 228, 66), (0, 0, 0))
BAR, BAR_GAP, GROUP_GAP = 22, 3, 30
PLOT_H, LEFT, TOP_PAD, THUMB = 240, 46, 12, 40
INK, GRID, MUTED = (30, 30, 30), (225, 225, 225), (110, 110, 110)


def _lighter(colour, t=0.55):
    return tuple(int(c + (255 - c) * t) for c in colour)


def _dashed(draw, x0, x1, y, colour, dash=6, gap=4, width=1):
    x = x0
    while x < x1:
        draw.line([(x, y), (min(x + dash, x1), y)], fill=colour, width=width)
        x += dash + gap


def _thumbs(samples, width, size=THUMB) -> Image.Image | None:
    """Up to as many of ``samples`` (uint8 ``[k, h, w, 3]``) as fit in ``width``, side by side."""
    if samples is None or len(samples) == 0:
        return None
    k = max(1, min(len(samples), (width + 2) // (size + 2)))
    tiles = [Image.fromarray(np.asarray(s)).resize((size, size), Image.BILINEAR) for s in samples[:k]]
    strip = Image.new("RGB", (k * size + (k - 1) * 2, size), (255, 255, 255))
    for i, t in enumerate(tiles):
        strip.paste(t, (i * (size + 2), 0))
    return strip


def tcav_picture(result) -> _images.Picture:
    """A :class:`~tfviz.concepts.TCAVResult` as a bar chart (uint8 RGB, a
    :class:`~tfviz.images.Picture`); see the module docstring."""
    title_font, font, small = _images.font(15), _images.font(12), _images.font(11)
    layers, concepts = list(result.layers), list(result.concepts)
    L = len(layers)
    groups = concepts + ["random"]
    means = np.concatenate([result.mean, result.random_scores.mean(-1)[None]])    # [G, L]
    stds = np.concatenate([result.std, result.random_scores.std(-1)[None]])
    sig = np.concatenate([result.significant, np.ones((1, L), bool)])
    group_w = L * BAR + (L - 1) * BAR_GAP
    plot_w = len(groups) * group_w + (len(groups) - 1) * GROUP_GAP + 2 * 14
    colours = [PALETTE[i % len(PALETTE)] for i in range(L)]

    title = f"TCAV: concepts for class '{result.target_name}' ({result.model})"
    how = (f"p < {result.threshold:.2g} (Bonferroni over {result.tests})" if result.bonferroni
           else f"p < {result.alpha:g}")
    sub = [f"{result.n_images} class images ({result.images_note})",
           f"{result.random_sets} random sets; hollow bar with *: not significant (two-sided t-test against random "
           f"directions, {how})"]
    measure = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    text_w = max([measure.textlength(title, font=title_font)] + [measure.textlength(s, font=small) for s in sub])
    legend = [(layers[i], colours[i]) for i in range(L)]
    legend_w = sum(14 + 4 + measure.textlength(name, font=font) + 16 for name, _ in legend)
    width = int(max(LEFT + plot_w + 16, text_w + 20, legend_w + LEFT + 10))
    header = 8 + 20 + 16 * len(sub) + 8
    plot_top = header + 22 + TOP_PAD
    base = plot_top + PLOT_H
    height = base + 8 + 16 + THUMB + 10
    canvas = Image.new("RGB", (width, height), (255, 255, 255))
    d = ImageDraw.Draw(canvas)
    d.text((10, 8), title, fill=INK, font=title_font)
    for k, s in enumerate(sub):
        d.text((10, 30 + 16 * k), s, fill=MUTED, font=small)
    x = LEFT
    for name, colour in legend:  # the layers' colours
        d.rectangle([x, header, x + 14, header + 12], fill=colour)
        d.text((x + 18, header - 1), name, fill=INK, font=font)
        x += 14 + 4 + measure.textlength(name, font=font) + 16

    def y_of(v):
        return base - float(np.clip(v, 0, 1)) * PLOT_H

    right = LEFT + plot_w
    for t in (0.0, 0.25, 0.5, 0.75, 1.0):  # the axis and its grid
        y = y_of(t)
        if t == 0.5:
            _dashed(d, LEFT, right, y, MUTED)
        elif t > 0:
            d.line([(LEFT, y), (right, y)], fill=GRID)
        label = f"{t:g}"
        d.text((LEFT - 6 - measure.textlength(label, font=small), y - 7), label, fill=MUTED, font=small)
    d.line([(LEFT, plot_top - 4), (LEFT, base)], fill=INK)
    d.line([(LEFT, base), (right, base)], fill=INK)
    d.text((6, plot_top - 20), "TCAV score", fill=MUTED, font=small)

    for g, name in enumerate(groups):
        gx = LEFT + 14 + g * (group_w + GROUP_GAP)
        null = name == "random" and g == len(groups) - 1
        for i in range(L):
            x0 = gx + i * (BAR + BAR_GAP)
            x1 = x0 + BAR
            top = y_of(means[g, i])
            colour = _lighter(colours[i], 0.45) if null else colours[i]
            if base - top < 3:  # a score near 0: a line on the axis, so the bar is seen
                d.rectangle([x0, base - 3, x1, base], fill=colour)
            elif sig[g, i]:
                d.rectangle([x0, top, x1, base], fill=colour)
            else:  # not significant: hollow, and an asterisk
                d.rectangle([x0, top, x1, base], outline=colour, width=2)
            lo, hi = y_of(means[g, i] - stds[g, i]), y_of(means[g, i] + stds[g, i])
            cx = (x0 + x1) / 2
            d.line([(cx, lo), (cx, hi)], fill=INK)
            d.line([(cx - 4, lo), (cx + 4, lo)], fill=INK)
            d.line([(cx - 4, hi), (cx + 4, hi)], fill=INK)
            if not sig[g, i]:
                d.text((cx - 3, min(hi, top) - 16), "*", fill=INK, font=title_font)
        label = "random (null)" if null else name
        lw = measure.textlength(label, font=font)
        d.text((gx + group_w / 2 - lw / 2, base + 6), label, fill=INK, font=font)
        strip = _thumbs(result.samples.get(name) if result.samples else None, group_w + GROUP_GAP - 6)
        if strip is not None:
            canvas.paste(strip, (int(gx + group_w / 2 - strip.width / 2), base + 24))
    return _images.as_picture(np.asarray(canvas))


__all__ = ["tcav_picture", "PALETTE"]
