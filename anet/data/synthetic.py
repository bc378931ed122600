"""Synthetic karyotypes drawn from the human G-band ideograms, as a lab's export writes them.

Every chromosome is drawn from its ISCN ideogram (``anet.data.ideogram``): its length is
proportional to its ISCN length, its centromere constriction sits at the ``acen`` bands, its
G-band profile follows each band's stain and density, ``gvar`` heterochromatin varies in
size between individuals and homologs, and the acrocentrics carry stalks and satellites.

Per cell: a band resolution between 400 and 850 (the two nearest tables blended; longer
chromosomes with finer bands), condensation, stain contrast, blur, noise and illumination.
Per chromosome: polarity (p-arm up or down) and rotation (both recorded), bend, sister-
chromatid separation, small homolog differences, now and then a neighbour's fragment or debris
at the crop's edge. Abnormal cells come from ``anet.data.iscn``.

Output: ``<raw>/<cell>/<cell>-<class>-<k>.tif`` (8-bit grayscale; about 3% 16-bit and 5%
deflate-compressed) and ``<raw>/manifest.csv`` with ``path,label,cell,polarity,rotation,
karyotype,structural`` (polarity ``up``/``down`` = p-arm; rotation in degrees counter-clockwise
from upright; karyotype: the cell's ISCN; structural: a rearranged chromosome's ISCN name such
as ``der(22)t(9;22)(q34;q11)``, empty for whole ones). Files depend only on (seed, cell index).
"""

from __future__ import annotations

import csv
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image
from scipy.ndimage import gaussian_filter, gaussian_filter1d

from anet.data import ideogram, iscn
from anet.data.ideogram import KINDS
from anet.data.sources import KARYOTYPE_CLASSES as CLASSES

MIN_SIZE = (57, 45)  # (h, w) crop floor and ceiling, like the paper's Table 1 sizes
MAX_SIZE = (198, 96)
PX_PER_ISCN = 118.0 / 15100  # chromosome 1 is ~118 px long at 400 bands, unit condensation
MANIFEST_COLUMNS = ("path", "label", "cell", "polarity", "rotation", "karyotype", "structural")
POLARITY = ("up", "down")  # p-arm up / p-arm down


@dataclass(frozen=True)
class CellStyle:
    """What one cell's spread, staining and imaging look like."""

    resolution: float  # bands per haploid set, 400..850
    scale: float  # pixels per ISCN unit
    half_width: float  # one chromatid's half-width, px
    contrast: float  # ink scale: dark bands reach about background - 200 * contrast
    base: float  # darkness of a light (gneg) band relative to the darkest
    blur: float  # gaussian sigma, px
    band_blur: float  # extra smoothing of the band profile along the chromosome, px
    noise: float  # gaussian noise sigma, grey levels
    background: float  # grey level of the slide
    illumination: float  # grey-level range of uneven illumination across a crop
    separation: float  # typical sister-chromatid gap, in chromatid half-widths
    clutter: float = 0.16  # chance of a neighbour's fragment or debris in a crop


def draw_style(rng: np.random.Generator) -> CellStyle:
    """A random cell style: mostly metaphase (400-550 bands), some prometaphase (up to 850)."""
    resolution = 400 + 450 * rng.beta(1.3, 2.2)
    stretch = (resolution / 400) ** 0.5  # finer bands come with longer, thinner chromosomes
    condensation = float(np.exp(rng.normal(0, 0.07)))
    scale = PX_PER_ISCN * stretch * condensation
    scale = min(scale, (MAX_SIZE[0] - 10) / 15100 / 1.06)  # chromosome 1 still fits the crop
    return CellStyle(
        resolution=resolution, scale=scale,
        half_width=rng.uniform(4.4, 5.4) / stretch ** 0.4,
        contrast=rng.uniform(0.75, 1.0), base=rng.uniform(0.2, 0.35),
        blur=rng.uniform(0.6, 1.5), band_blur=rng.uniform(0.4, 1.2) * (400 / resolution) ** 0.5,
        noise=rng.uniform(2.0, 7.0), background=rng.uniform(215, 245),
        illumination=rng.uniform(0, 25), separation=rng.uniform(0.0, 0.5))


def _band_profiles(chrom: iscn.Chromosome, style: CellStyle, length: float,
                   rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, float]:
    """Darkness and width factor at 4 samples per pixel along the chromosome, and the
    centromere's fractional position. The homolog's own gvar size and band jitter go in here."""
    pieces = ideogram.with_gvar(chrom.pieces, float(np.exp(rng.normal(0, 0.3))))
    n = max(16, int(4 * length))
    dark, kind, cen = ideogram.profile(pieces, ideogram.blend(style.resolution), n)
    dark = dark * (1 + 0.12 * gaussian_filter1d(rng.normal(0, 1, n), 6, mode="nearest"))
    dark = gaussian_filter1d(dark, 4 * style.band_blur + 0.5, mode="nearest")
    width = np.ones(n)
    width[kind == KINDS["acen"]] = 0.55
    width[kind == KINDS["stalk"]] = 0.28
    width = gaussian_filter1d(width, 4 * 0.9, mode="nearest")
    return np.clip(dark, 0, 1), width, cen


@dataclass(frozen=True)
class Pose:
    """How one chromosome lies in its crop (polarity and rotation go into the manifest)."""

    polarity: int  # 0 = p-arm up, 1 = p-arm down
    rotation: float  # degrees counter-clockwise from upright, -90..90
    bend: float  # sideways bow of the middle, px (signed)
    length: float  # px
    half_width: float  # one chromatid's, px
    gap: float  # sister-chromatid separation away from the centromere, px


def draw_pose(chrom: iscn.Chromosome, style: CellStyle, rng: np.random.Generator) -> Pose:
    """A random pose; the rotation shrinks until the crop fits the export's largest size."""
    length = sum(p.length for p in chrom.pieces) * style.scale * rng.normal(1.0, 0.025)
    cw = style.half_width * rng.normal(1.0, 0.05)
    gap = style.separation * cw * rng.uniform(0.5, 1.5)
    polarity = int(rng.random() < 0.5)
    bend = float(np.sign(rng.normal()) * length * 0.16 * rng.random() ** 2)
    angle = rng.normal(0, 10) if rng.random() < 0.9 else rng.uniform(-90, 90)
    for _ in range(12):
        h, w = _extent(length, 3.5 * cw + gap + abs(bend), angle)
        if h + 8 <= MAX_SIZE[0] and w + 8 <= MAX_SIZE[1]:
            break
        angle *= 0.75
    return Pose(polarity, round(float(angle), 2), bend, length, cw, gap)


def _extent(length: float, across: float, angle: float) -> tuple[float, float]:
    c, s = abs(np.cos(np.radians(angle))), abs(np.sin(np.radians(angle)))
    return length * c + across * s, length * s + across * c


def render(chrom: iscn.Chromosome, style: CellStyle, rng: np.random.Generator,
           pose: Pose | None = None) -> tuple[np.ndarray, Pose]:
    """Draw one chromosome as float grey levels (dark bands on a light background).

    Args:
        pose: how it lies; drawn at random (:func:`draw_pose`) when None.
    Returns:
        (image [h, w] float64, its pose).
    """
    pose = pose or draw_pose(chrom, style, rng)
    length, cw, gap, bend = pose.length, pose.half_width, pose.gap, pose.bend
    dark, width, cen = _band_profiles(chrom, style, length, rng)
    theta = np.radians(pose.rotation)
    c, s = np.cos(theta), np.sin(theta)
    eh, ew = _extent(length, 3.5 * cw + gap + abs(bend), pose.rotation)
    h = int(np.clip(np.ceil(eh + rng.uniform(6, 14)), *(MIN_SIZE[0], MAX_SIZE[0])))
    w = int(np.clip(np.ceil(ew + rng.uniform(6, 14)), *(MIN_SIZE[1], MAX_SIZE[1])))
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    yy -= (h - 1) / 2 + rng.uniform(-1.5, 1.5)
    xx -= (w - 1) / 2 + rng.uniform(-1.5, 1.5)
    # pixel -> chromosome frame: a along the axis from the top end (0..length), v across it
    a = yy * c + xx * s + length / 2
    t = a / length
    v = xx * c - yy * s - bend * (4 * np.clip(t, 0, 1) * (1 - np.clip(t, 0, 1)) - 0.5)
    pos = 1 - t if pose.polarity else t  # fraction of the length from the p-arm telomere
    grid = (np.arange(len(dark)) + 0.5) / len(dark)
    wf = np.interp(pos, grid, width)
    d = np.interp(pos, grid, dark)
    # sister chromatids: joined at the centromere, apart by up to `gap` away from it
    away = np.abs(pos - cen) * length / (2.5 * cw)
    sep = gap * (1 - np.exp(-away ** 2)) * wf
    half = cw * wf
    ends = np.clip(np.minimum(a, length - a) / cw, 0, 1)  # rounded telomeres
    half = half * np.sqrt(np.clip(1 - (1 - ends) ** 2, 0, 1))
    centre = 0.75 * half + sep / 2  # apposed chromatids overlap: one body, a faint groove
    body = np.zeros_like(v)
    for side, jitter in ((1, rng.normal(0, 0.04)), (-1, rng.normal(0, 0.04))):
        r = (v - side * centre) / np.maximum(half, 1e-6)
        body += np.clip(1 - r ** 2, 0, 1) ** 0.4 * (1 + jitter)
    ink = np.clip(body, 0, 1.05) * (style.base + (1 - style.base) * d)
    ink += _clutter(rng, h, w, cw, style)
    illum = style.illumination * (rng.uniform(-0.5, 0.5) + (
        np.cos(rng.uniform(0, 2 * np.pi)) * yy + np.sin(rng.uniform(0, 2 * np.pi)) * xx) / 200)
    img = style.background + illum - 200 * style.contrast * ink
    img = gaussian_filter(img, style.blur * rng.uniform(0.85, 1.15))
    img += rng.normal(0, style.noise, img.shape)
    return img, pose


def _clutter(rng: np.random.Generator, h: int, w: int, cw: float, style: CellStyle) -> np.ndarray:
    """Now and then a neighbour's fragment or debris entering at the crop's edge."""
    ink = np.zeros((h, w))
    roll = rng.random()
    if roll > style.clutter:
        return ink
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    side = int(rng.integers(4))
    edge = [yy, h - 1 - yy, xx, w - 1 - xx][side]
    along = [xx, xx, yy, yy][side]
    at = rng.uniform(0.15, 0.85) * (w if side < 2 else h)
    if roll < style.clutter / 2:  # the end of a neighbouring chromosome, banded, reaching in a few pixels
        reach = rng.uniform(3, 10)
        r = np.abs(along - at) / (1.8 * cw)
        bands = 0.5 + 0.5 * np.sin(edge / rng.uniform(2, 5) + rng.uniform(0, 6))
        inside = np.clip(1 - r ** 2, 0, 1) ** 0.6 * (edge < reach)
        ink += inside * (style.base + (1 - style.base) * bands)
    else:  # debris: a few small dark specks near the edge
        for _ in range(int(rng.integers(1, 4))):
            cy, cx = rng.uniform(0, h), rng.uniform(0, w)
            if side < 2:
                cy = rng.uniform(0, 5) if side == 0 else h - 1 - rng.uniform(0, 5)
            else:
                cx = rng.uniform(0, 5) if side == 2 else w - 1 - rng.uniform(0, 5)
            ink += rng.uniform(0.4, 0.9) * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2)
                                                   / (2 * rng.uniform(0.7, 2.0) ** 2))
    return ink


def _save(img: np.ndarray, path: Path, rng: np.random.Generator) -> None:
    """8-bit TIF, a few deflate-compressed; about 3% 16-bit exports (finer grey levels)."""
    kind = rng.random()
    if kind < 0.03:
        im = Image.fromarray(np.clip(np.round(img * 256), 0, 65535).astype(np.uint16))
        im.save(path, format="TIFF")
    else:
        Image.fromarray(np.clip(np.round(img), 0, 255).astype(np.uint8)).save(
            path, format="TIFF", compression="tiff_adobe_deflate" if kind < 0.08 else None)


def draw_cell(seed: int, index: int, abnormal: float):
    """One cell: (karyotype, style, [(chromosome, image, pose, rng)]) drawn from
    the generator seeded by (seed, index); each image comes with the rng state that saves it."""
    rng = np.random.default_rng([seed, index])
    karyo = iscn.draw_cell(rng, abnormal)
    style = draw_style(rng)
    return karyo, style, ((chrom, *render(chrom, style, rng), rng) for chrom in karyo.chromosomes)


def structural_name(chrom: iscn.Chromosome) -> str:
    """The manifest's ``structural`` column: a rearranged chromosome's ISCN name
    (``der(22)t(9;22)(q34;q11)``, ``del(5)(p14)``), '' for a whole one."""
    return "" if chrom.name == CLASSES[chrom.label] else chrom.name


def _cell_job(args: tuple) -> list[tuple]:
    """Draw and write every chromosome of one cell; returns its manifest rows."""
    raw, seed, index, abnormal = args
    cell = f"cell{index:04d}"
    karyo, _, drawn = draw_cell(seed, index, abnormal)
    (Path(raw) / cell).mkdir(parents=True, exist_ok=True)
    rows, copies = [], {}
    for chrom, img, pose, rng in drawn:
        copies[chrom.label] = copies.get(chrom.label, 0) + 1
        rel = f"{cell}/{cell}-{CLASSES[chrom.label]}-{copies[chrom.label]}.tif"
        _save(img, Path(raw) / rel, rng)
        rows.append((rel, CLASSES[chrom.label], cell, POLARITY[pose.polarity], f"{pose.rotation:.2f}",
                     karyo.karyotype, structural_name(chrom)))
    return rows


def generate(raw: str | Path, cells: int = 200, seed: int = 0, abnormal: float = 0.0,
             map_fn: Callable = map) -> Path:
    """Write ``cells`` synthetic cells as TIFs + ``manifest.csv`` under ``raw``.

    Args:
        raw: output folder (created).
        cells: number of cells (46 chromosomes each, 45/47 for some abnormal ones).
        seed: files depend on (seed, cell index) only, so any ``map_fn`` gives equal bytes.
        abnormal: fraction of cells with one change of ``anet.data.iscn.ABNORMALITIES``.
        map_fn: ordered ``map``-like function over per-cell jobs (e.g. a process-pool map).

    Returns:
        The manifest path (columns :data:`MANIFEST_COLUMNS`).
    """
    raw = Path(raw)
    raw.mkdir(parents=True, exist_ok=True)
    jobs = ((str(raw), seed, i, abnormal) for i in range(cells))
    manifest = raw / "manifest.csv"
    with open(manifest, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(MANIFEST_COLUMNS)
        for rows in map_fn(_cell_job, jobs):
            writer.writerows(rows)
    return manifest
