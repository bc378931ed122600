"""The human G-band ideograms (ISCN, 400 / 550 / 850 bands per haploid set) as arrays.

``anet/data/cytobands/human_iscn_bands.csv`` (CC0, from the npm ``ideogram`` package; see the
README beside it) lists every band of chromosomes 1-22, X, Y at three resolutions, in ISCN
units from the p-arm telomere. This module turns it into what the generator draws: each
chromosome's ISCN length and centromere, and per band its darkness and kind (ordinary, acen,
gvar, stalk). Chromosomes are addressed by class index (0..21 = 1..22, 22 = X, 23 = Y).

A chromosome to draw is a tuple of :class:`Piece` s (a stretch of one chromosome's ideogram,
possibly stretched); a normal chromosome is one piece, a derivative of a translocation two.
"""

from __future__ import annotations

import csv
import functools
from dataclasses import dataclass
from importlib import resources

import numpy as np

from anet.data.sources import KARYOTYPE_CLASSES

RESOLUTIONS = (400, 550, 850)
TABLE = "human_iscn_bands.csv"
# Darkness in [0, 1] of each stain (gpos by density). gpos without density (some 850 bands)
# is a mid-grey; acen stains moderately; gvar heterochromatin is dark and variable in size.
DARKNESS = {"gneg": 0.04, "gpos25": 0.3, "gpos50": 0.52, "gpos75": 0.74, "gpos100": 0.95,
            "gpos": 0.62, "acen": 0.5, "gvar": 0.82, "stalk": 0.12}
KINDS = {"band": 0, "acen": 1, "gvar": 2, "stalk": 3}


@dataclass(frozen=True)
class Bands:
    """One chromosome's ideogram at one resolution: contiguous bands in ISCN units."""

    start: np.ndarray  # float64 [n], first band starts at 0
    stop: np.ndarray  # float64 [n], last stop = the ISCN length
    dark: np.ndarray  # float64 [n], darkness in [0, 1]
    kind: np.ndarray  # int64 [n], KINDS
    names: tuple[str, ...]  # e.g. "p36.3"


@dataclass(frozen=True)
class Piece:
    """ISCN stretch ``[start, stop)`` of chromosome ``label``, drawn ``scale`` times as long."""

    label: int
    start: float
    stop: float
    scale: float = 1.0

    @property
    def length(self) -> float:
        return (self.stop - self.start) * self.scale


@functools.cache
def _rows() -> tuple[dict, ...]:
    with resources.files("anet.data").joinpath("cytobands", TABLE).open(newline="") as f:
        return tuple(csv.DictReader(f))


@functools.cache
def bands(label: int, resolution: int) -> Bands:
    """The ideogram of chromosome ``label`` at ``resolution`` (400, 550 or 850); gaps between
    listed bands (a few at 550) are filled with a light band."""
    name = KARYOTYPE_CLASSES[label]
    rows = [r for r in _rows() if r["chromosome"] == name and int(r["resolution"]) == resolution]
    if not rows:
        raise ValueError(f"no ideogram for chromosome {name} at resolution {resolution}")
    rows.sort(key=lambda r: int(r["iscn_start"]))
    start, stop, dark, kind, names = [], [], [], [], []
    for r in rows:
        a, b = float(r["iscn_start"]), float(r["iscn_stop"])
        if stop and a > stop[-1]:  # a gap: fill it
            start.append(stop[-1]), stop.append(a), dark.append(DARKNESS["gneg"])
            kind.append(KINDS["band"]), names.append(names[-1])
        stain = r["stain"] + (r["density"] if r["stain"] == "gpos" else "")
        start.append(a), stop.append(b), dark.append(DARKNESS[stain])
        kind.append(KINDS.get(r["stain"], KINDS["band"])), names.append(r["arm"] + r["band"])
    return Bands(np.asarray(start), np.asarray(stop), np.asarray(dark),
                 np.asarray(kind, np.int64), tuple(names))


def iscn_length(label: int) -> float:
    """ISCN length of a chromosome (the same in all three tables)."""
    return float(bands(label, 400).stop[-1])


def centromere(label: int, resolution: int = 400) -> float:
    """ISCN position of the centromere: the boundary between the p and q acen bands."""
    b = bands(label, resolution)
    q = [i for i, n in enumerate(b.names) if b.kind[i] == KINDS["acen"] and n.startswith("q")]
    return float(b.start[q[0]])


def band_start(label: int, name: str, resolution: int = 850) -> float:
    """ISCN start of the first band whose name starts with ``name`` (e.g. ``"q34"``)."""
    b = bands(label, resolution)
    for n, a in zip(b.names, b.start):
        if n.startswith(name):
            return float(a)
    raise ValueError(f"no band {name} on chromosome {KARYOTYPE_CLASSES[label]}")


def band_stop(label: int, name: str, resolution: int = 850) -> float:
    """ISCN stop of the last band whose name starts with ``name``."""
    b = bands(label, resolution)
    stops = [s for n, s in zip(b.names, b.stop) if n.startswith(name)]
    if not stops:
        raise ValueError(f"no band {name} on chromosome {KARYOTYPE_CLASSES[label]}")
    return float(max(stops))


def normal(label: int) -> tuple[Piece, ...]:
    """A whole chromosome."""
    return (Piece(label, 0.0, iscn_length(label)),)


@functools.cache
def _variable_stretches(pieces: tuple[Piece, ...]) -> tuple[tuple[Piece, bool], ...]:
    """Pieces split at their gvar/stalk bands (400 table), each flagged variable or not."""
    out = []
    for p in pieces:
        b = bands(p.label, 400)
        edges = np.r_[b.start, b.stop][np.r_[b.kind, b.kind] >= KINDS["gvar"]]
        cuts = sorted({p.start, p.stop} | {float(x) for x in edges if p.start < x < p.stop})
        for a, z in zip(cuts[:-1], cuts[1:]):
            i = min(int(np.searchsorted(b.stop, (a + z) / 2, side="right")), len(b.kind) - 1)
            out.append((Piece(p.label, a, z, p.scale), bool(b.kind[i] >= KINDS["gvar"])))
    return tuple(out)


def with_gvar(pieces: tuple[Piece, ...], scale: float) -> tuple[Piece, ...]:
    """Stretch the pieces' gvar/stalk bands ``scale`` times: heterochromatin and satellites
    differ in size between individuals and homologs."""
    return tuple(Piece(p.label, p.start, p.stop, p.scale * scale) if variable else p
                 for p, variable in _variable_stretches(pieces))


def profile(pieces: tuple[Piece, ...], weights: dict[int, float], n: int) -> tuple[np.ndarray, ...]:
    """Sample a (possibly derivative) chromosome at ``n`` evenly spaced points along its length.

    Args:
        pieces: the chromosome, p-arm telomere first.
        weights: resolution -> weight (summing to 1): the band tables blended.
        n: number of samples.
    Returns:
        (darkness [n], kind [n], centromere position as a fraction of the length).
    """
    lengths = np.asarray([p.length for p in pieces])
    ends = np.cumsum(lengths)
    x = (np.arange(n) + 0.5) / n * ends[-1]
    which = np.minimum(np.searchsorted(ends, x, side="right"), len(pieces) - 1)
    dark, kind = np.zeros(n), np.zeros(n, np.int64)
    cen = None
    for i, p in enumerate(pieces):
        sel = which == i
        src = p.start + (x[sel] - (ends[i] - lengths[i])) / p.scale
        main = max(weights, key=weights.get)  # the constrictions follow the nearer table
        for res, w in weights.items():
            b = bands(p.label, res)
            j = np.minimum(np.searchsorted(b.stop, src, side="right"), len(b.stop) - 1)
            dark[sel] += w * b.dark[j]
            if res == main:
                kind[sel] = b.kind[j]
        c = centromere(p.label)
        if cen is None and p.start <= c < p.stop:
            cen = (ends[i] - lengths[i] + (c - p.start) * p.scale) / ends[-1]
    return dark, kind, (0.5 if cen is None else cen)


def blend(resolution: float) -> dict[int, float]:
    """Weights of the two band tables around ``resolution`` (400..850)."""
    r = float(np.clip(resolution, RESOLUTIONS[0], RESOLUTIONS[-1]))
    for lo, hi in zip(RESOLUTIONS[:-1], RESOLUTIONS[1:]):
        if r <= hi:
            w = (r - lo) / (hi - lo)
            return {lo: 1 - w, hi: w} if 0 < w < 1 else {hi if w >= 1 else lo: 1.0}
    return {RESOLUTIONS[-1]: 1.0}
