"""Karyograms: one cell's chromosomes upright, in the standard layout, under the cell's call.

:func:`upright` turns a crop so the chromosome's main axis (the principal axis of its dark
pixels) is vertical; :func:`draw` places a cell's chromosomes by their assigned class in the
standard rows (1-5 / 6-12, X / 13-18 / 19-22, Y), all at one scale, the class under each
group, the call as the title. Chromosomes whose label the per-cell assignment changed are
outlined in orange, those whose label differs from the truth (where known) in red. A model
with the polarity head gives each chromosome's p-arm end: those it calls "down" are turned
half a turn, so the p-arm is up; without the head (or when the caller passes none because the
head is at chance, see :mod:`anet.polarity`) the p-arm may point down (each chromosome is shown
as the axis left it), and ``note`` says so under the title.

The sheet is composed with PIL (crops pasted at twice their size, bilinear; outlines, rules
and text drawn on it, the text in matplotlib's DejaVu Sans) and written as an RGB PNG: one
matplotlib ``imshow`` per chromosome and ``savefig`` took ~10x as long (docs/karyotypes.md).
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
from scipy import ndimage

from anet.data.sources import KARYOTYPE_CLASSES
from anet.files import atomic_write

LAYOUT = ((0, 1, 2, 3, 4), (5, 6, 7, 8, 9, 10, 11, 22), (12, 13, 14, 15, 16, 17),
          (18, 19, 20, 21, 23))
CHANGED, WRONG = "#ff8c00", "#d62728"  # outline colours
RULE = 0x44  # grey of the line under each group
SCALE = 2  # output pixels per crop pixel
GAP, PAD, LABEL_H, TITLE_H, NOTE_H = 6, 24, 16, 24, 10  # in crop pixels
EDGE = 8  # left margin, in crop pixels (the right one is the last group's PAD)
LABEL_PX, TITLE_PX, NOTE_PX = 10, 12, 10  # font sizes (9 pt, 11 pt at 80 dpi)
# The PNG is a palette image: 254 greys (the crops lose < 1 grey level), then the two outline
# colours; a third of RGB's bytes to compress. zlib level 3: the default 6 costs ~3x for ~10%.
GREYS, PNG_LEVEL = 254, 3
_GREY_INDEX = np.round(np.arange(256) * (GREYS - 1) / 255).astype(np.uint8)
_PALETTE = ([round(i * 255 / (GREYS - 1)) for i in range(GREYS) for _ in range(3)]
            + [int(h[k:k + 2], 16) for h in (CHANGED, WRONG) for k in (1, 3, 5)])


def _ink(img: np.ndarray) -> tuple[np.ndarray, float]:
    """Mask of the dark (chromosome) pixels and the background grey level."""
    border = np.concatenate([img[0], img[-1], img[:, 0], img[:, -1]]).astype(np.float64)
    bg = float(np.median(border))
    return img < bg - max(12.0, 0.3 * (bg - float(img.min()))), bg


def _aspect(xs: np.ndarray, ys: np.ndarray, angle: float) -> float:
    """Height / width of the bounding box of the points (x, y; y down) once turned the way
    ``ndimage.rotate(img, angle)`` turns them."""
    t = np.radians(angle)
    c, s = np.cos(t), np.sin(t)
    u, v = xs * c + ys * s, -xs * s + ys * c
    return float(np.ptp(v) + 1) / max(float(np.ptp(u) + 1), 1.0)


def upright(img: np.ndarray) -> np.ndarray:
    """A gray crop rotated so its chromosome's main axis is vertical, cropped to it (+3 px)."""
    mask, bg = _ink(img)
    if mask.sum() < 10:
        return img
    ys, xs = np.nonzero(mask)
    xs, ys = xs - xs.mean(), ys - ys.mean()
    vals, vecs = np.linalg.eigh(np.cov(np.stack([xs, ys])))
    dx, dy = vecs[:, -1]
    tilt = np.degrees(np.arctan2(dx, dy))  # of the main axis from vertical
    tilt = (tilt + 90) % 180 - 90
    # the sense that leaves the chromosome standing, judged on the turned ink pixels (one
    # image rotation instead of one per sense)
    angle = max((tilt, -tilt), key=lambda a: _aspect(xs, ys, a))
    turned = ndimage.rotate(img.astype(np.float64), angle, reshape=True, order=1, cval=bg)
    m, _ = _ink(np.clip(turned, 0, 255))
    if m.sum() < 10:
        return img
    rows, cols = np.flatnonzero(m.any(1)), np.flatnonzero(m.any(0))
    r0, r1 = max(rows[0] - 3, 0), min(rows[-1] + 4, turned.shape[0])
    c0, c1 = max(cols[0] - 3, 0), min(cols[-1] + 4, turned.shape[1])
    return np.clip(np.round(turned[r0:r1, c0:c1]), 0, 255).astype(np.uint8)


@functools.lru_cache(maxsize=8)
def _font(px: int):
    """matplotlib's DejaVu Sans (the other figures' font) at ``px`` pixels."""
    import matplotlib
    from PIL import ImageFont

    return ImageFont.truetype(str(Path(matplotlib.get_data_path(), "fonts", "ttf",
                                       "DejaVuSans.ttf")), px)


def draw(images, assigned, out: str | Path, *, title: str, argmax=None, truth=None,
         polarity=None, note: str | None = None) -> Path:
    """Write one cell's karyogram PNG.

    Args:
        images: the cell's chromosome crops (uint8 gray arrays, dark on light).
        assigned: class index of each after the per-cell assignment (its place).
        title: the sheet's title (the cell and its call; the truth where known).
        argmax: per-chromosome labels before the assignment: changed ones are outlined orange.
        truth: true labels where known: wrong ones are outlined red.
        polarity: the polarity head's call per chromosome (0 p-arm up, 1 down): 1 is turned
            by 180 degrees after :func:`upright`.
        note: a line under the title (e.g. why the chromosomes are not turned p-arm up).
    Returns:
        ``out``.
    """
    from PIL import Image, ImageDraw

    assigned = np.asarray(assigned)
    crops = [upright(np.asarray(im)) for im in images]
    if polarity is not None:
        crops = [np.rot90(c, 2) if p == 1 else c for c, p in zip(crops, polarity)]
    groups = {c: np.flatnonzero(assigned == c) for c in range(len(KARYOTYPE_CLASSES))}
    row_w = [sum(sum(crops[i].shape[1] + 3 for i in groups[c]) + PAD for c in row) for row in LAYOUT]
    row_h = [max([crops[i].shape[0] for c in row for i in groups[c]] or [20]) for row in LAYOUT]
    head = TITLE_H + (NOTE_H if note else 0)
    width, height = max(max(row_w) + EDGE, 300), sum(h + LABEL_H + GAP for h in row_h) + head
    sheet = Image.new("L", (width * SCALE, height * SCALE), 255)
    pen = ImageDraw.Draw(sheet)
    pen.text((width * SCALE // 2, 4), title, fill=0, font=_font(TITLE_PX), anchor="mt")
    if note:
        pen.text((width * SCALE // 2, 24), note, fill=0, font=_font(NOTE_PX), anchor="mt")
    outlines = []  # (box, palette index), drawn on the palette image
    y = head
    for row, h in zip(LAYOUT, row_h):
        x = EDGE
        for c in row:
            x0 = x
            for i in groups[c]:
                im = crops[i]
                top = y + h - im.shape[0]  # bottoms aligned, like a karyogram's baseline
                box = (x * SCALE, top * SCALE, (x + im.shape[1]) * SCALE, (top + im.shape[0]) * SCALE)
                sheet.paste(Image.fromarray(im).resize((box[2] - box[0], box[3] - box[1]),
                                                       Image.Resampling.BILINEAR), box[:2])
                colour = (WRONG if truth is not None and truth[i] != assigned[i] else
                          CHANGED if argmax is not None and argmax[i] != assigned[i] else None)
                if colour:
                    outlines.append(((box[0], box[1], box[2] - 1, box[3] - 1),
                                     GREYS + (colour == WRONG)))
                x += im.shape[1] + 3
            end = max(x - 3, x0 + 12)
            rule_y = (y + h + 2) * SCALE
            pen.line((x0 * SCALE, rule_y, end * SCALE, rule_y), fill=RULE, width=1)
            pen.text(((x0 + end) * SCALE // 2, rule_y + 3), KARYOTYPE_CLASSES[c], fill=0,
                     font=_font(LABEL_PX), anchor="mt")
            x = max(x, x0 + 12) + PAD
        y += h + LABEL_H + GAP
    page = Image.fromarray(_GREY_INDEX[np.asarray(sheet)]).convert("P")
    page.putpalette(_PALETTE)
    pen = ImageDraw.Draw(page)
    for box, colour in outlines:
        pen.rectangle(box, outline=colour, width=2)
    return atomic_write(out, lambda tmp: page.save(tmp, format="PNG", compress_level=PNG_LEVEL))
