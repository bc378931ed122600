"""Write an MNIST-format IDX dataset's test images as a class-folder tree of PNGs, to try
`anet prepare --dataset folder` on real images (docs/own-images.md).

Usage: python scripts/idx_to_folders.py OUT [--source /usr/share/datasets/fashion-mnist]
       [--per-class 300]
Class folders get Fashion-MNIST's article names ("T-shirt/top" written as T-shirt-top, since
"/" cannot be in a folder name; "Ankle boot" keeps its space); images are OUT/<class>/t10k-NNNNN.png.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from PIL import Image

from anet.data import sources


def write_tree(source: Path, out: Path, per_class: int) -> int:
    """The first ``per_class`` t10k images of each class as PNGs; returns how many."""
    files = sources.find_idx_files(source)
    if files is None:
        raise SystemExit(f"{source}: no IDX files (t10k-images-idx3-ubyte[.gz], ...)")
    labels = sources.read_idx_labels(files["t10k-labels-idx1-ubyte"])
    images = np.concatenate(list(sources.iter_idx_images(files["t10k-images-idx3-ubyte"])))
    n = 0
    for c, name in enumerate(sources.FASHION_CLASSES):
        (out / name).mkdir(parents=True, exist_ok=True)
        for i in np.flatnonzero(labels == c)[:per_class]:
            Image.fromarray(images[i]).save(out / name / f"t10k-{i:05d}.png")
            n += 1
    return n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--source", type=Path, default=sources.DEBIAN_FASHION)
    parser.add_argument("--per-class", type=int, default=300)
    args = parser.parse_args()
    n = write_tree(args.source, args.out, args.per_class)
    print(f"wrote {n} PNGs under {args.out}")


if __name__ == "__main__":
    main()
