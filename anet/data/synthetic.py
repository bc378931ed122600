"""Synthetic karyotypes: TIFs of single chromosomes as a karyotyping lab's export writes them.

24 classes (1..22, X, Y). Each class has a fixed relative length, centromere position and
banding pattern (drawn from a per-class seed, identical for every run); each cell has its own
condensation (scale), stain contrast and blur, so length alone is ambiguous between
neighbouring classes while banding and centromere still separate them. Per chromosome:
width, slight bend, rotation, band jitter and noise. Output: ``<raw>/<cell>/<name>.tif``
(8-bit grayscale, about 2% 16-bit and 5% deflate-compressed to exercise those reader paths)
plus ``<raw>/manifest.csv`` with ``path,label,cell`` — the real karyotype input format.
"""

from __future__ import annotations

import csv
import functools
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image
from scipy.ndimage import gaussian_filter

from anet.data.sources import KARYOTYPE_CLASSES as CLASSES

# Approximate human chromosome lengths in Mb, made strictly decreasing over 1..22 (in reality
# 21 is slightly shorter than 22); X sits next to 7, Y among the smallest.
LENGTH_MB = (248, 242, 198, 190, 181, 171, 159, 145, 138, 134, 133, 131, 114, 107, 102, 90, 83,
             80, 64, 62, 48, 46, 156, 52)
# Centromere index (short arm / total length): metacentric ~0.5, acrocentric (13-15, 21, 22) ~0.2.
CENTROMERE = (0.48, 0.39, 0.47, 0.29, 0.29, 0.39, 0.39, 0.34, 0.35, 0.32, 0.40, 0.30, 0.17, 0.18,
              0.19, 0.41, 0.34, 0.31, 0.47, 0.45, 0.22, 0.25, 0.40, 0.30)
CLASS_SEED = 1234  # fixed: the classes are the same for every --seed
MIN_SIZE = (57, 45)  # (h, w) canvas floor, like the export tool's smallest crops
MAX_SIZE = (198, 96)


def class_lengths() -> np.ndarray:
    """Chromosome length in pixels at unit cell scale, per class (longest ~165, shortest ~54)."""
    mb = np.asarray(LENGTH_MB, float)
    return 55.0 + 110.0 * (mb - 48.0) / (248.0 - 48.0)


@functools.cache
def class_bands(label: int) -> np.ndarray:
    """Fixed banding pattern of one class: rows of (position in [0, 1], width, darkness)."""
    rng = np.random.default_rng([CLASS_SEED, label])
    n = int(4 + 14 * LENGTH_MB[label] / 248)
    pos = np.sort(rng.uniform(0.04, 0.96, n))
    return np.stack([pos, rng.uniform(0.012, 0.04, n), rng.uniform(0.35, 1.0, n)], axis=1)


def cell_karyotype(rng: np.random.Generator, abnormal: float) -> list[int]:
    """Labels of one cell: 2 of each autosome + XX or XY; a fraction ``abnormal`` of cells
    are X0 (45), XXY (47) or trisomy 21 (47)."""
    labels = [c for c in range(22) for _ in range(2)]
    sex = [22, 22] if rng.random() < 0.5 else [22, 23]
    if rng.random() < abnormal:
        kind = rng.integers(3)
        if kind == 0:
            sex = [22]  # Turner, 45,X
        elif kind == 1:
            sex = [22, 22, 23]  # Klinefelter, 47,XXY
        else:
            labels.append(20)  # Down, 47,+21
    return labels + sex


def render(label: int, scale: float, contrast: float, blur: float,
           rng: np.random.Generator) -> np.ndarray:
    """Draw one chromosome of class ``label`` as a uint8 image (dark bands, light background)."""
    length = class_lengths()[label] * scale * rng.normal(1.0, 0.03)
    half_w = rng.uniform(6.5, 9.0) * scale ** 0.5
    bend = rng.normal(0.0, 0.04) * length
    angle = rng.uniform(-1, 1) * np.radians(18)
    margin = rng.uniform(3, 6)
    for _ in range(6):  # shrink the rotation until the crop fits the export's largest size
        c, s = abs(np.cos(angle)), abs(np.sin(angle))
        h = length * c + 2 * half_w * s + abs(bend) * s + 2 * margin
        w = length * s + 2 * half_w * c + abs(bend) * c + 2 * margin
        if h <= MAX_SIZE[0] and w <= MAX_SIZE[1]:
            break
        angle *= 0.6
    h = int(np.clip(np.ceil(h), MIN_SIZE[0], MAX_SIZE[0]))
    w = int(np.clip(np.ceil(w), MIN_SIZE[1], MAX_SIZE[1]))
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    yy -= (h - 1) / 2
    xx -= (w - 1) / 2
    # Pixel -> chromosome frame: u along the axis (0..length), v across (bent centre line).
    u = yy * np.cos(angle) + xx * np.sin(angle) + length / 2
    t = u / length
    v = -yy * np.sin(angle) + xx * np.cos(angle) - bend * (4 * t * (1 - t) - 0.5)
    cen = CENTROMERE[label] + rng.normal(0, 0.01)
    width = half_w * (1 - 0.35 * np.exp(-(((t - cen) * length) / (0.05 * length + 2)) ** 2))
    shape = np.abs(2 * t - 1) ** 6 + (v / width) ** 2  # superellipse: rounded chromatid ends
    inside = 1 / (1 + np.exp(np.clip((shape - 1) * 8, -50, 50)))
    groove = 1 - 0.15 * np.exp(-((v / (0.25 * width)) ** 2))  # gap between sister chromatids
    bands = class_bands(label)
    pos = bands[:, 0] + rng.normal(0, 0.006, len(bands))
    dark = bands[:, 2] * rng.uniform(0.8, 1.2, len(bands))
    grid = np.linspace(0, 1, 256)
    profile = np.max(dark[:, None] * np.exp(-((grid[None] - pos[:, None]) / bands[:, 1:2]) ** 2),
                     axis=0)
    stain = 0.35 + 0.65 * np.interp(t, grid, profile)
    background = rng.uniform(225, 245)
    img = background - inside * groove * stain * contrast * 150
    img = gaussian_filter(img, blur) + rng.normal(0, 3.0, img.shape)
    return np.clip(np.round(img), 0, 255).astype(np.uint8)


def _cell_job(args: tuple) -> list[tuple[str, int, str]]:
    """Draw and write every chromosome of one cell; returns its manifest rows."""
    raw, seed, index, abnormal = args
    rng = np.random.default_rng([seed, index])
    cell = f"cell{index:04d}"
    scale, contrast, blur = rng.uniform(0.88, 1.12), rng.uniform(0.7, 1.0), rng.uniform(0.5, 1.1)
    (Path(raw) / cell).mkdir(parents=True, exist_ok=True)
    rows, copies = [], {}
    for label in cell_karyotype(rng, abnormal):
        copies[label] = copies.get(label, 0) + 1
        rel = f"{cell}/{cell}-{CLASSES[label]}-{copies[label]}.tif"
        img = render(label, scale, contrast, blur, rng)
        kind = rng.random()
        if kind < 0.02:  # a 16-bit export; the reader scales it back by its range
            im = Image.fromarray((img.astype(np.uint16) * 200 + 1000).astype(np.uint16))
            im.save(Path(raw) / rel, format="TIFF")
        else:
            Image.fromarray(img).save(Path(raw) / rel, format="TIFF",
                                      compression="tiff_adobe_deflate" if kind < 0.07 else None)
        rows.append((rel, label, cell))
    return rows


def generate(raw: str | Path, cells: int = 200, seed: int = 0, abnormal: float = 0.0,
             map_fn: Callable = map) -> Path:
    """Write ``cells`` synthetic cells as TIFs + ``manifest.csv`` under ``raw``.

    Args:
        raw: output folder (created).
        cells: number of cells (46 chromosomes each, 45/47 for abnormal ones).
        seed: instances depend on (seed, cell index) only, so any ``map_fn`` gives equal files.
        abnormal: fraction of cells with X0, XXY or trisomy 21.
        map_fn: ``map``-like function over per-cell jobs (e.g. a process-pool map).

    Returns:
        The manifest path (``path,label,cell``; labels as class names).
    """
    raw = Path(raw)
    raw.mkdir(parents=True, exist_ok=True)
    jobs = [(str(raw), seed, i, abnormal) for i in range(cells)]
    manifest = raw / "manifest.csv"
    with open(manifest, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["path", "label", "cell"])
        for rows in map_fn(_cell_job, jobs):
            writer.writerows((rel, CLASSES[label], cell) for rel, label, cell in rows)
    return manifest
