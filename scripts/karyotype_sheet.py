"""One synthetic cell's chromosomes beside the ideograms they were drawn from (a PNG sheet).

    python scripts/karyotype_sheet.py docs/synthetic_cell.png [--seed 0] [--cell 0]

Each panel: the class's ideogram at the cell's band resolution (left, same scale as the
crops, p-arm up, centromere marked) and the cell's crops of that class as the generator wrote
them (any polarity and rotation). Used to calibrate ``anet/data/synthetic.py`` by eye.
"""

from __future__ import annotations

import argparse

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from anet.data import ideogram, synthetic  # noqa: E402
from anet.data.sources import KARYOTYPE_CLASSES  # noqa: E402


def ideogram_strip(label: int, resolution: float, scale: float, width: int = 10) -> np.ndarray:
    """The ideogram as a grey strip (rows along the chromosome), ``scale`` px per ISCN unit."""
    n = max(8, int(ideogram.iscn_length(label) * scale))
    dark, kind, cen = ideogram.profile(ideogram.normal(label), ideogram.blend(resolution), n)
    strip = np.repeat((1 - dark)[:, None], width, axis=1)
    narrow = kind == ideogram.KINDS["acen"]
    strip[narrow, : width // 4] = strip[narrow, -(width // 4):] = 1.0
    return strip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--cell", type=int, default=0)
    ap.add_argument("--abnormal", type=float, default=0.0)
    args = ap.parse_args()
    karyo, style, drawn = synthetic.draw_cell(args.seed, args.cell, args.abnormal)
    crops: dict[int, list] = {}
    for chrom, img, pose, _ in drawn:
        crops.setdefault(chrom.label, []).append((np.clip(img, 0, 255), pose.polarity,
                                                  pose.rotation))
    rows = [range(0, 5), list(range(5, 12)) + [22], range(12, 18), list(range(18, 22)) + [23]]
    gap, row_gap, top = 14, 22, 16
    blocks = []  # per row: [(label, [arrays])]
    for row in rows:
        blocks.append([(label, [ideogram_strip(label, style.resolution, style.scale) * 255]
                        + [c[0] for c in crops.get(label, [])]) for label in row])
    widths = [sum(sum(a.shape[1] + 3 for a in arrs) + gap for _, arrs in row) for row in blocks]
    heights = [max(a.shape[0] for _, arrs in row for a in arrs) for row in blocks]
    canvas = np.full((sum(heights) + len(rows) * (row_gap + top), max(widths)), 255.0)
    labels = []
    y = 0
    for row, h in zip(blocks, heights):
        x = 0
        for label, arrs in row:
            x0 = x
            for a in arrs:
                canvas[y + top + h - a.shape[0]: y + top + h, x: x + a.shape[1]] = a
                x += a.shape[1] + 3
            labels.append((x0, y + top - 4, label))
            x += gap
        y += h + top + row_gap
    fig = plt.figure(figsize=(canvas.shape[1] / 50, canvas.shape[0] / 50 + 0.5), dpi=100)
    ax = fig.add_axes((0, 0, 1, canvas.shape[0] / (canvas.shape[0] + 25)))
    ax.imshow(canvas, cmap="gray", vmin=0, vmax=255, interpolation="nearest")
    ax.axis("off")
    for x0, y0, label in labels:
        info = " ".join(f"{'p' if p == 0 else 'q'}{r:+.0f}" for _, p, r in crops.get(label, []))
        ax.text(x0, y0, f"{KARYOTYPE_CLASSES[label]}  {info}", fontsize=8, va="bottom")
    fig.suptitle(f"synthetic cell {args.cell} (seed {args.seed}): {karyo.karyotype}, "
                 f"{style.resolution:.0f} bands. Left of each class: its ideogram (p-arm up); "
                 "p/q: arm at the top, then rotation in degrees", fontsize=9, y=0.995)
    fig.savefig(args.out)


if __name__ == "__main__":
    main()
