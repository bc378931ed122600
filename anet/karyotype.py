"""Per-cell karyotype assignment: label a cell's chromosomes jointly, not one by one (beyond the paper).

A normal human cell has 46 chromosomes: two of each autosome 1..22 plus XX or XY. Given the
classifier's probabilities for every chromosome of one cell, :func:`assign_cell` solves a
linear assignment of chromosomes to *slots* (cost ``-log p``) under the XX and the XY
hypothesis and keeps the cheaper one. Abnormal cells stay representable: every class also has
*spare* slots that cost an extra ``penalty``, so a 47th chromosome that clearly looks like a 21
is labelled 21 (trisomy) rather than forced into a wrong class, and unused slots cost nothing,
so a cell with 45 chromosomes (X0, a lost chromosome) simply leaves one slot empty.

Class indices follow the karyotype label order: ``0..21`` are chromosomes 1..22, ``22`` is X,
``23`` is Y (``anet.data.sources.KARYOTYPE_CLASSES``).
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np
from scipy.optimize import linear_sum_assignment

from anet.data.sources import KARYOTYPE_CLASSES

NUM_CLASSES = 24
X, Y = 22, 23
PENALTY = 3.0  # extra cost (nats) of a spare slot: an extra chromosome must be ~20x likelier
EPS = 1e-12  # probabilities are clipped here before the log
HYPOTHESES = {"XX": (X, X), "XY": (X, Y)}


def applies(classes, cells) -> bool:
    """True when per-cell assignment makes sense: the 24 karyotype classes and known cells."""
    return tuple(classes) == KARYOTYPE_CLASSES and any(c for c in cells)


def _slots(sex: tuple[int, int], spares: int) -> tuple[np.ndarray, np.ndarray]:
    """Class of every slot and its extra cost: two per autosome, the sex pair, spares per class."""
    normal = [c for c in range(X) for _ in range(2)] + list(sex)
    spare = [c for c in range(NUM_CLASSES) for _ in range(spares)]
    cls = np.asarray(normal + spare, np.int64)
    extra = np.concatenate([np.zeros(len(normal)), np.ones(len(spare))])
    return cls, extra


def assign_cell(probs: np.ndarray, penalty: float = PENALTY) -> np.ndarray:
    """Labels for one cell's chromosomes by constrained assignment.

    Args:
        probs: [n, 24] class probabilities (rows: the cell's chromosomes, any n).
        penalty: extra cost of labelling a chromosome beyond the normal count of its class.
    Returns:
        int64 [n] labels: the cheaper of the XX and XY assignments.
    """
    probs = np.asarray(probs, np.float64)
    if probs.ndim != 2 or probs.shape[1] != NUM_CLASSES:
        raise ValueError(f"probs must be [n, {NUM_CLASSES}], got {probs.shape}")
    n = len(probs)
    if n == 0:
        return np.zeros(0, np.int64)
    nll = -np.log(np.clip(probs, EPS, 1.0))
    spares = max(1, n - 2 * X - 2)  # enough slots for any n: 46 normal + 24 * spares >= n
    best_cost, best_labels = np.inf, None
    for sex in HYPOTHESES.values():
        cls, extra = _slots(sex, spares)
        cost = nll[:, cls] + penalty * extra[None, :]
        rows, cols = linear_sum_assignment(cost)  # rectangular: every chromosome gets one slot
        total = cost[rows, cols].sum()
        if total < best_cost - 1e-12:
            labels = np.empty(n, np.int64)
            labels[rows] = cls[cols]
            best_cost, best_labels = total, labels
    return best_labels


def assign_cells(probs: np.ndarray, cells, penalty: float = PENALTY) -> np.ndarray:
    """Per-cell assignment over a whole split; examples without a cell keep their argmax."""
    probs = np.asarray(probs)
    labels = probs.argmax(axis=1).astype(np.int64)
    groups = defaultdict(list)
    for i, cell in enumerate(cells):
        if cell:
            groups[cell].append(i)
    for idx in groups.values():
        labels[idx] = assign_cell(probs[idx], penalty)
    return labels


def cell_report(probs: np.ndarray, labels: np.ndarray, cells, penalty: float = PENALTY) -> dict:
    """Per-chromosome accuracy before and after per-cell assignment, on one split.

    Returns:
        cells (number of cells), chromosomes (examples in a cell), accuracy_before,
        accuracy_after (both over the examples in a cell), penalty, and per_cell: a row per
        cell (sorted by id) with its chromosomes and how many were right before and after.
    """
    labels = np.asarray(labels)
    cells = list(cells)
    assigned = assign_cells(probs, cells, penalty)
    in_cell = np.asarray([bool(c) for c in cells])
    argmax = np.asarray(probs).argmax(axis=1)
    n = int(in_cell.sum())
    groups = defaultdict(list)
    for i, cell in enumerate(cells):
        if cell:
            groups[cell].append(i)
    per_cell = [{"cell": cell, "chromosomes": len(idx),
                 "correct_before": int((argmax[idx] == labels[idx]).sum()),
                 "correct_after": int((assigned[idx] == labels[idx]).sum())}
                for cell, idx in sorted(groups.items())]
    return {
        "cells": len({c for c in cells if c}),
        "chromosomes": n,
        "accuracy_before": float((argmax == labels)[in_cell].mean()) if n else 0.0,
        "accuracy_after": float((assigned == labels)[in_cell].mean()) if n else 0.0,
        "penalty": penalty,
        "per_cell": per_cell,
    }
