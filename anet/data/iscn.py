"""Cell karyotypes: which chromosomes a cell has, drawn by editing the ideograms, in ISCN notation.

A normal cell is ``46,XX`` or ``46,XY``. Abnormal cells (``--abnormal FRACTION``) are one of
the numerical changes ``+13``, ``+18``, ``+21`` (trisomies), ``45,X`` (Turner), ``47,XXY``
(Klinefelter), ``47,XYY``, or the structural ones ``del(5)(p14)`` (a terminal 5p deletion,
cri-du-chat) and ``t(9;22)(q34;q11)`` (the Philadelphia translocation: der(9) and der(22)).
By the cytogenetic convention a derivative chromosome is labelled by the chromosome whose
centromere it carries (der(22), the Philadelphia chromosome, is a 22).
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass

import numpy as np

from anet.data import ideogram
from anet.data.ideogram import Piece
from anet.data.sources import KARYOTYPE_CLASSES

X, Y = 22, 23
ABNORMALITIES = ("+13", "+18", "+21", "45,X", "47,XXY", "47,XYY", "del(5)(p14)",
                 "t(9;22)(q34;q11)")
ISCN_RE = re.compile(r"^(?P<count>\d+),(?P<sex>X*Y*)(?P<rest>(,[^,]+)*)$")


@dataclass(frozen=True)
class Chromosome:
    """One chromosome of a cell: its class label, its ideogram pieces and its ISCN name."""

    label: int
    pieces: tuple[Piece, ...]
    name: str  # "9", "der(22)t(9;22)(q34;q11)", "del(5)(p14)"


@dataclass(frozen=True)
class Cell:
    """A cell's true karyotype (ISCN) and its chromosomes."""

    karyotype: str
    chromosomes: tuple[Chromosome, ...]


def _whole(label: int) -> Chromosome:
    return Chromosome(label, ideogram.normal(label), KARYOTYPE_CLASSES[label])


def derivatives_t9_22() -> tuple[Chromosome, Chromosome]:
    """der(9) = 9pter->9q34::22q11->22qter and der(22) = 22pter->22q11::9q34->9qter."""
    c9, c22 = 8, 21
    b9 = ideogram.band_start(c9, "q34")  # ABL1 at 9q34.1
    b22 = ideogram.band_stop(c22, "q11.2")  # BCR at 22q11.23
    l9, l22 = ideogram.iscn_length(c9), ideogram.iscn_length(c22)
    t = "t(9;22)(q34;q11)"
    return (Chromosome(c9, (Piece(c9, 0, b9), Piece(c22, b22, l22)), f"der(9){t}"),
            Chromosome(c22, (Piece(c22, 0, b22), Piece(c9, b9, l9)), f"der(22){t}"))


def deletion_5p() -> Chromosome:
    """del(5)(p14): 5p14 -> 5pter lost (the breakpoint in the middle of p14)."""
    c5 = 4
    bp = (ideogram.band_start(c5, "p14") + ideogram.band_stop(c5, "p14")) / 2
    return Chromosome(c5, (Piece(c5, bp, ideogram.iscn_length(c5)),), "del(5)(p14)")


def make_cell(sex: str, change: str | None = None) -> Cell:
    """The chromosomes and ISCN karyotype of a cell with sex chromosomes ``sex`` (``XX``/``XY``)
    and at most one change from :data:`ABNORMALITIES` (``45,X`` and ``47,XXY/XYY`` replace the
    sex chromosomes)."""
    autosomes = [_whole(c) for c in range(22) for _ in range(2)]
    if change in ("45,X", "47,XXY", "47,XYY"):
        sex = change.split(",")[1]
    sex_chroms = [_whole(X if s == "X" else Y) for s in sex]
    extra = ""
    if change in ("+13", "+18", "+21"):
        autosomes.append(_whole(int(change[1:]) - 1))
        extra = "," + change
    elif change == "del(5)(p14)":
        autosomes[2 * 4 + 1] = deletion_5p()
        extra = "," + change
    elif change == "t(9;22)(q34;q11)":
        der9, der22 = derivatives_t9_22()
        autosomes[2 * 8 + 1], autosomes[2 * 21 + 1] = der9, der22
        extra = "," + change
    elif change not in (None, "45,X", "47,XXY", "47,XYY"):
        raise ValueError(f"unknown abnormality {change!r}; one of {', '.join(ABNORMALITIES)}")
    chroms = tuple(autosomes + sex_chroms)
    return Cell(f"{len(chroms)},{sex}{extra}", chroms)


def draw_cell(rng: np.random.Generator, abnormal: float) -> Cell:
    """A random cell: XX or XY with equal odds; a fraction ``abnormal`` carries one change."""
    sex = "XX" if rng.random() < 0.5 else "XY"
    change = None
    if rng.random() < abnormal:
        change = ABNORMALITIES[int(rng.integers(len(ABNORMALITIES)))]
    return make_cell(sex, change)


def numerical_call(labels) -> str:
    """ISCN of a label multiset, numerical changes only: ``46,XY``, ``47,XX,+21``, ``45,X``."""
    counts = Counter(int(c) for c in labels)
    sex = "X" * counts[X] + "Y" * counts[Y]
    parts = [f"{sum(counts.values())},{sex or '--'}"]
    for c in range(22):
        parts += [f"-{c + 1}"] * max(0, 2 - counts[c]) + [f"+{c + 1}"] * max(0, counts[c] - 2)
    return ",".join(parts)


def is_structural(karyotype: str) -> bool:
    """Whether an ISCN karyotype names a structural change (del, t, der, inv, dup, i)."""
    return any(re.match(r"(del|t|der|inv|dup|i)\(", part) for part in karyotype.split(","))


KINDS = ("normal", "gain", "loss", "numerical", "structural")


def kind(karyotype: str) -> str | None:
    """A cell's kind of karyotype, which splits are stratified by: ``gain`` (more than 46
    chromosomes: trisomies, ``47,XXY``), ``loss`` (fewer: ``45,X``), ``numerical`` (46 with a
    gain and a loss), ``structural`` (numerically normal with a del/t/der/... change) or
    ``normal``; None for notation :func:`expected_labels` cannot read."""
    try:
        labels = expected_labels(karyotype)
    except ValueError:
        return None
    if len(labels) != 46:
        return "gain" if len(labels) > 46 else "loss"
    if numerical_call(labels) not in ("46,XX", "46,XY"):
        return "numerical"
    return "structural" if is_structural(karyotype) else "normal"


def expected_labels(karyotype: str) -> list[int]:
    """Class labels of the chromosomes of an ISCN karyotype (sorted), derivatives labelled by
    their centromere; raises ValueError on notation it does not know."""
    m = ISCN_RE.match(karyotype.replace(" ", ""))
    if not m or not m["sex"]:
        raise ValueError(f"cannot read karyotype {karyotype!r}")
    counts = Counter({c: 2 for c in range(22)})
    counts[X], counts[Y] = m["sex"].count("X"), m["sex"].count("Y")
    for part in filter(None, m["rest"].split(",")):
        if re.fullmatch(r"[+-](\d+|X|Y)", part):
            label = KARYOTYPE_CLASSES.index(part[1:])
            counts[label] += 1 if part[0] == "+" else -1
        elif not re.fullmatch(r"(del|t|der|inv|dup|i)\([0-9XY;]+\)\([pq0-9.;]+\)", part):
            raise ValueError(f"cannot read {part!r} in karyotype {karyotype!r}")
    labels = sorted(counts.elements())
    if len(labels) != int(m["count"]):
        raise ValueError(f"karyotype {karyotype!r}: count {m['count']} but {len(labels)} chromosomes")
    return labels
