"""Karyograms: one cell's chromosomes upright, in the standard layout, under the cell's call.

:func:`upright` turns a crop so the chromosome's main axis (the principal axis of its dark
pixels) is vertical; :func:`draw` places a cell's chromosomes by their assigned class in the
standard rows (1-5 / 6-12, X / 13-18 / 19-22, Y), all at one scale, the class under each
group, the call as the title. Chromosomes whose label the per-cell assignment changed are
outlined in orange, those whose label differs from the truth (where known) in red. A model
with the polarity head gives each chromosome's p-arm end: those it calls "down" are turned
half a turn, so the p-arm is up; without the head the p-arm may point down (each chromosome
is shown as the axis left it).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from scipy import ndimage

from anet.data.sources import KARYOTYPE_CLASSES
from anet.plotting import pyplot, save_figure

LAYOUT = ((0, 1, 2, 3, 4), (5, 6, 7, 8, 9, 10, 11, 22), (12, 13, 14, 15, 16, 17),
          (18, 19, 20, 21, 23))
CHANGED, WRONG = "#ff8c00", "#d62728"  # outline colours


def _ink(img: np.ndarray) -> tuple[np.ndarray, float]:
    """Mask of the dark (chromosome) pixels and the background grey level."""
    border = np.concatenate([img[0], img[-1], img[:, 0], img[:, -1]]).astype(np.float64)
    bg = float(np.median(border))
    return img < bg - max(12.0, 0.3 * (bg - float(img.min()))), bg


def upright(img: np.ndarray) -> np.ndarray:
    """A gray crop rotated so its chromosome's main axis is vertical, cropped to it (+3 px)."""
    mask, bg = _ink(img)
    if mask.sum() < 10:
        return img
    ys, xs = np.nonzero(mask)
    vals, vecs = np.linalg.eigh(np.cov(np.stack([xs, ys]).astype(np.float64)))
    dx, dy = vecs[:, -1]
    tilt = np.degrees(np.arctan2(dx, dy))  # of the main axis from vertical
    tilt = (tilt + 90) % 180 - 90
    best = None
    for angle in (tilt, -tilt):  # pick the sense that leaves the chromosome standing
        turned = ndimage.rotate(img.astype(np.float64), angle, reshape=True, order=1, cval=bg)
        m, _ = _ink(np.clip(turned, 0, 255))
        if m.sum() < 10:
            continue
        rows, cols = np.flatnonzero(m.any(1)), np.flatnonzero(m.any(0))
        score = (rows[-1] - rows[0]) / max(cols[-1] - cols[0], 1)
        if best is None or score > best[0]:
            best = (score, turned, rows, cols)
    if best is None:
        return img
    _, turned, rows, cols = best
    r0, r1 = max(rows[0] - 3, 0), min(rows[-1] + 4, turned.shape[0])
    c0, c1 = max(cols[0] - 3, 0), min(cols[-1] + 4, turned.shape[1])
    return np.clip(np.round(turned[r0:r1, c0:c1]), 0, 255).astype(np.uint8)


def draw(images, assigned, out: str | Path, *, title: str, argmax=None, truth=None,
         polarity=None) -> Path:
    """Write one cell's karyogram PNG.

    Args:
        images: the cell's chromosome crops (uint8 gray arrays, dark on light).
        assigned: class index of each after the per-cell assignment (its place).
        title: the figure title (the cell and its call; the truth where known).
        argmax: per-chromosome labels before the assignment: changed ones are outlined orange.
        truth: true labels where known: wrong ones are outlined red.
        polarity: the polarity head's call per chromosome (0 p-arm up, 1 down): 1 is turned
            by 180 degrees after :func:`upright`.
    Returns:
        ``out``.
    """
    assigned = np.asarray(assigned)
    crops = [upright(np.asarray(im)) for im in images]
    if polarity is not None:
        crops = [np.rot90(c, 2) if p == 1 else c for c, p in zip(crops, polarity)]
    groups = {c: [i for i in np.flatnonzero(assigned == c)] for c in range(len(KARYOTYPE_CLASSES))}
    gap, pad, label_h = 6, 24, 16
    row_w = [sum(sum(crops[i].shape[1] + 3 for i in groups[c]) + pad for c in row) for row in LAYOUT]
    row_h = [max([crops[i].shape[0] for c in row for i in groups[c]] or [20]) for row in LAYOUT]
    width, height = max(row_w), sum(h + label_h + gap for h in row_h)
    plt = pyplot()
    fig = plt.figure(figsize=(max(width, 300) / 40, height / 40 + 0.6), dpi=80)
    ax = fig.add_axes((0, 0, 1, height / (height + 24)))
    ax.set_xlim(0, max(width, 300))
    ax.set_ylim(height, 0)
    ax.axis("off")
    y = 0
    for row, h in zip(LAYOUT, row_h):
        x = 0
        for c in row:
            x0 = x
            for i in groups[c]:
                im = crops[i]
                top = y + h - im.shape[0]  # bottoms aligned, like a karyogram's baseline
                ax.imshow(im, cmap="gray", vmin=0, vmax=255, interpolation="bilinear",
                          extent=(x, x + im.shape[1], top + im.shape[0], top))
                colour = (WRONG if truth is not None and truth[i] != assigned[i] else
                          CHANGED if argmax is not None and argmax[i] != assigned[i] else None)
                if colour:
                    ax.add_patch(plt.Rectangle((x, top), im.shape[1], im.shape[0], fill=False,
                                               ec=colour, lw=1.6))
                x += im.shape[1] + 3
            centre = (x0 + max(x, x0 + 12)) / 2
            ax.plot([x0, max(x - 3, x0 + 12)], [y + h + 2] * 2, color="#444444", lw=0.8)
            ax.text(centre, y + h + 3, KARYOTYPE_CLASSES[c], ha="center", va="top", fontsize=9)
            x = max(x, x0 + 12) + pad
        y += h + label_h + gap
    fig.suptitle(title, fontsize=11, y=0.995)
    return save_figure(fig, out)
