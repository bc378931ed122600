"""Fixtures that build small raw datasets in the exact real on-disk formats.

IDX (MNIST): big-endian header, magic 0x00000803 / 0x00000801, gzipped or not.
CIFAR-10 python: protocol-2 pickles of dicts with bytes keys, ``data`` uint8 N x 3072 (R, G, B
planes of 32x32), in a ``cifar-10-batches-py`` folder or the official ``.tar.gz``.
Karyotype: TIFs (8/16-bit, RGB, compressed, .tif/.TIF/.tiff) in class folders or a manifest.
"""

from __future__ import annotations

import gzip
import pickle
import struct
import tarfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

CIFAR_NAMES = [b"airplane", b"automobile", b"bird", b"cat", b"deer", b"dog", b"frog", b"horse",
               b"ship", b"truck"]


def write_idx(path: Path, array: np.ndarray) -> Path:
    """One IDX file (uint8); gzipped when the name ends in .gz."""
    header = bytes([0, 0, 8, array.ndim]) + struct.pack(">" + "I" * array.ndim, *array.shape)
    data = header + np.ascontiguousarray(array, np.uint8).tobytes()
    path.write_bytes(gzip.compress(data, mtime=0) if path.suffix == ".gz" else data)
    return path


def digits(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Digit-like 28x28 images (a bright blob whose position depends on the label) + labels."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % 10
    rng.shuffle(labels)
    yy, xx = np.mgrid[0:28, 0:28]
    images = np.empty((n, 28, 28), np.uint8)
    for i, y in enumerate(labels):
        cy, cx = 8 + (y // 5) * 10, 5 + (y % 5) * 4
        blob = 255 * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / 18.0)
        images[i] = np.clip(blob + rng.integers(0, 40, (28, 28)), 0, 255)
    return images, labels


def make_idx_dir(folder: Path, n_train: int = 200, n_test: int = 40, gz: bool = True,
                 seed: int = 0) -> Path:
    """The four MNIST IDX files of a small digit-like dataset."""
    folder.mkdir(parents=True, exist_ok=True)
    ext = ".gz" if gz else ""
    for split, n, s in (("train", n_train, seed), ("t10k", n_test, seed + 1)):
        images, labels = digits(n, s)
        write_idx(folder / f"{split}-images-idx3-ubyte{ext}", images)
        write_idx(folder / f"{split}-labels-idx1-ubyte{ext}", labels.astype(np.uint8))
    return folder


def cifar_batch(n: int, seed: int, label: bytes) -> dict:
    """One CIFAR-10 batch dict exactly like the real files (bytes keys, uint8 N x 3072)."""
    rng = np.random.default_rng(seed)
    labels = [int(x) for x in np.arange(n) % 10]
    data = rng.integers(0, 256, (n, 3072), dtype=np.uint8)
    data[:, :1024] = np.asarray(labels, np.uint8)[:, None] * 20  # red plane encodes the label
    return {b"batch_label": label, b"labels": labels, b"data": data,
            b"filenames": [b"thing_s_%06d.png" % (seed * 1000 + i) for i in range(n)]}


def make_cifar_dir(root: Path, n: int = 20) -> Path:
    """``root/cifar-10-batches-py`` with 5 data batches, a test batch and batches.meta."""
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True, exist_ok=True)
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    for i, name in enumerate(names):
        blob = pickle.dumps(cifar_batch(n, i, name.encode()), protocol=2)
        if i % 2:  # the real files (numpy 1.x) name numpy.core; numpy 2 writes numpy._core
            blob = blob.replace(b"numpy._core.multiarray", b"numpy.core.multiarray")
        (folder / name).write_bytes(blob)
    meta = {b"num_cases_per_batch": n, b"label_names": CIFAR_NAMES, b"num_vis": 3072}
    (folder / "batches.meta").write_bytes(pickle.dumps(meta, protocol=2))
    return folder


def make_cifar_tar(root: Path, n: int = 20) -> Path:
    """The official archive layout: ``cifar-10-python.tar.gz`` holding cifar-10-batches-py/."""
    folder = make_cifar_dir(root / "src", n)
    archive = root / "cifar-10-python.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(folder, arcname="cifar-10-batches-py")
    return archive


def chromosome(label: int, k: int, size=(60, 40)) -> np.ndarray:
    """A small gray image whose content depends on (label, k): unique pixels per image."""
    rng = np.random.default_rng([label, k])
    img = np.full(size, 230, np.uint8)
    img[10:50, 15:25] = 60 + 5 * label
    return np.clip(img.astype(int) + rng.integers(-10, 10, size), 0, 255).astype(np.uint8)


def save_variant(path: Path, img: np.ndarray, variant: int) -> None:
    """Save as one of the lab-export variants: 8-bit, 16-bit, RGB, LZW, deflate."""
    if variant == 1:
        Image.fromarray(img.astype(np.uint16) * 256 + 7).save(path, format="TIFF")
    elif variant == 2:
        Image.fromarray(np.stack([img] * 3, axis=-1)).save(path, format="TIFF")
    elif variant == 3:
        Image.fromarray(img).save(path, format="TIFF", compression="tiff_lzw")
    elif variant == 4:
        Image.fromarray(img).save(path, format="TIFF", compression="tiff_adobe_deflate")
    else:
        Image.fromarray(img).save(path, format="TIFF")


EXTS = (".tif", ".TIF", ".tiff", ".TIFF")


def make_tif_tree(root: Path, classes=("1", "2", "X"), per_class: int = 20, bad: bool = True) -> Path:
    """Class folders of TIF chromosomes in every variant, plus (``bad``) four unusable files."""
    from anet.data.sources import KARYOTYPE_CLASSES

    for c in classes:
        (root / c).mkdir(parents=True, exist_ok=True)
        label = KARYOTYPE_CLASSES.index(c)
        for k in range(per_class):
            save_variant(root / c / f"img{k:03d}{EXTS[k % 4]}", chromosome(label, k), k % 5)
    if bad:
        good = root / classes[0] / "img000.tif"
        (root / classes[0] / "empty.tif").write_bytes(b"")
        (root / classes[0] / "corrupt.tif").write_bytes(b"II*\x00" + bytes(range(256)) * 3)
        (root / classes[0] / "notes.txt").write_text("not an image\n")
        data = good.read_bytes()
        (root / classes[-1] / "truncated.tif").write_bytes(data[: len(data) // 2])
    return root


def make_manifest(root: Path, cells: int = 12, header: bool = True) -> Path:
    """``root/manifest.csv`` (path,label,cell) over TIFs in ``root/img/<cell>/``: each cell has
    one or two chromosomes of classes 1, 2, X and Y."""
    rows = ["path,label,cell"] if header else []
    for cell in range(cells):
        folder = root / "img" / f"p{cell:02d}"
        folder.mkdir(parents=True, exist_ok=True)
        for j, c in enumerate(["1", "1", "2", "2", "X", "Y" if cell % 2 else "X"]):
            rel = f"img/p{cell:02d}/c{j}.tif"
            save_variant(root / rel, chromosome(cell, j), (cell + j) % 5)
            rows.append(f"{rel},{c},p{cell:02d}")
    manifest = root / "manifest.csv"
    manifest.write_text("\n".join(rows) + "\n")
    return manifest


@pytest.fixture
def idx_dir(tmp_path: Path) -> Path:
    return make_idx_dir(tmp_path / "idx")


@pytest.fixture
def tif_tree(tmp_path: Path) -> Path:
    return make_tif_tree(tmp_path / "tifs")


@pytest.fixture
def manifest(tmp_path: Path) -> Path:
    return make_manifest(tmp_path / "kary")
