"""Time drawing karyograms: N cells of a prepared karyotype dataset, one PNG each.

    python scripts/time_karyograms.py DATA_DIR OUT_DIR [--cells 100]

Reads each cell's crops from ``DATA_DIR/jpg`` (cells from the file names ``<cell>-...``, the
generator's naming), places them by their true class with ``anet.karyogram.draw`` (what
``anet evaluate --karyograms`` and ``anet predict --cell --karyogram`` call) and prints the
seconds for all of them and per karyogram. The model and the assignment are not timed.
"""

from __future__ import annotations

import argparse
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
from PIL import Image

from anet import karyogram
from anet.data.sources import KARYOTYPE_CLASSES


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("data_dir")
    ap.add_argument("out_dir")
    ap.add_argument("--cells", type=int, default=100)
    args = ap.parse_args()
    cells = defaultdict(list)
    for f in sorted(Path(args.data_dir, "jpg").glob("*/*.jpg")):
        cells[f.stem.split("-")[0]].append((KARYOTYPE_CLASSES.index(f.parent.name), f))
    chosen = sorted(cells)[: args.cells]
    if len(chosen) < args.cells:
        raise SystemExit(f"{args.data_dir}: only {len(chosen)} cells")
    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    loaded = [(c, np.asarray([lab for lab, _ in cells[c]]),
               [np.asarray(Image.open(f).convert("L")) for _, f in cells[c]]) for c in chosen]
    start = time.perf_counter()
    for cell, labels, images in loaded:
        karyogram.draw(images, labels, out / f"{cell}.png", title=cell)
    took = time.perf_counter() - start
    print(f"{len(loaded)} karyograms in {took:.1f} s ({took / len(loaded):.2f} s each), "
          f"PNGs in {out}")


if __name__ == "__main__":
    main()
