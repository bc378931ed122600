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

from collections import Counter, defaultdict

import numpy as np
from scipy.optimize import linear_sum_assignment

from anet.data import iscn
from anet.data.sources import KARYOTYPE_CLASSES

NUM_CLASSES = 24
X, Y = 22, 23
PENALTY = 3.0  # extra cost (nats) of a spare slot: an extra chromosome must be ~20x likelier
EPS = 1e-12  # probabilities are clipped here before the log
HYPOTHESES = {"XX": (X, X), "XY": (X, Y)}
NORMAL_CALLS = ("46,XX", "46,XY")


def is_karyotype(classes) -> bool:
    """True for the 24 karyotype classes in label order."""
    return tuple(classes) == KARYOTYPE_CLASSES


def applies(classes, cells) -> bool:
    """True when per-cell assignment makes sense: the 24 karyotype classes and known cells."""
    return is_karyotype(classes) and any(c for c in cells)


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


def cell_report(probs: np.ndarray, labels: np.ndarray, cells, penalty: float = PENALTY,
                truths: dict | None = None, filenames=None, structural: dict | None = None) -> dict:
    """Per-chromosome accuracy before and after per-cell assignment, and each cell's call.

    Args:
        truths: cell -> its true ISCN karyotype, where known (``DatasetInfo.karyotypes``).
        filenames, structural: each example's file and file -> a rearranged chromosome's ISCN
            name (``DatasetInfo.structural``), for :func:`structural_labels`.
    Returns:
        cells (number of cells), chromosomes (examples in a cell), accuracy_before,
        accuracy_after (both over the examples in a cell), penalty, per_cell: a row per cell
        (sorted by id) with its chromosomes, how many were right before and after, its call
        (:func:`anet.data.iscn.numerical_call` of the assigned labels) and its truth ("" if
        unknown), calls: :func:`call_summary` of those rows, and structural:
        :func:`structural_labels` (empty when no rearranged chromosome is known).
    """
    labels = np.asarray(labels)
    cells = list(cells)
    truths = truths or {}
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
                 "correct_after": int((assigned[idx] == labels[idx]).sum()),
                 "call": iscn.numerical_call(assigned[idx]), "truth": truths.get(cell, "")}
                for cell, idx in sorted(groups.items())]
    return {
        "cells": len({c for c in cells if c}),
        "chromosomes": n,
        "accuracy_before": float((argmax == labels)[in_cell].mean()) if n else 0.0,
        "accuracy_after": float((assigned == labels)[in_cell].mean()) if n else 0.0,
        "penalty": penalty,
        "per_cell": per_cell,
        "calls": call_summary(per_cell),
        "structural": structural_labels(filenames or [], labels, argmax, assigned,
                                        structural or {}),
    }


def structural_labels(filenames, labels, argmax, assigned, structural: dict) -> list[dict]:
    """How the rearranged chromosomes (derivatives, deletions) were labelled.

    Args:
        filenames: each example's file (as in ``DatasetInfo.structural``).
        labels, argmax, assigned: true labels (the centromere's class), labels before and
            after the per-cell assignment.
        structural: file -> the chromosome's ISCN name, for the rearranged ones.
    Returns:
        One row per ISCN name (sorted): name, true class, chromosomes, and ``before`` /
        ``after``: {class name: count} of the labels given, most frequent first.
    """
    groups = defaultdict(list)
    for i, f in enumerate(filenames):
        if f in structural:
            groups[structural[f]].append(i)

    def tally(pred, idx):
        return dict(Counter(KARYOTYPE_CLASSES[int(pred[i])] for i in idx).most_common())

    return [{"name": name, "true": KARYOTYPE_CLASSES[int(labels[idx[0]])], "chromosomes": len(idx),
             "before": tally(argmax, idx), "after": tally(assigned, idx)}
            for name, idx in sorted(groups.items())]


def structural_lines(rows: list[dict]) -> str:
    """One line per rearranged chromosome type: how many, labelled as what after assignment."""
    def shown(d):
        return ", ".join(f"{c} x{k}" for c, k in d.items())

    return "\n".join(f"  {r['name']} ({r['chromosomes']}, centromere of {r['true']}): labelled "
                     f"{shown(r['after'])} (before assignment {shown(r['before'])})" for r in rows)


def call_summary(per_cell: list[dict]) -> dict | None:
    """How the per-cell calls compare with the known karyotypes (None when none is known).

    A call is numerical (chromosome count, sex chromosomes, gains and losses), so it is
    compared with the numerical part of the truth: a structural change (a deletion, a
    translocation's derivatives) keeps the count and cannot be called from whole-chromosome
    labels; such cells count as numerically normal and are also counted apart.

    Returns:
        cells (with a known karyotype), exact (calls equal to the truth's numerical part),
        exact_accuracy; abnormal / called_abnormal / sensitivity over numerically abnormal
        cells; normal / called_normal / specificity over numerically normal ones (None where
        there are no such cells); structural (cells with a structural change) and
        structural_called_normal; wrong_calls: [{truth, call, cells}] most frequent first;
        unreadable_truth: cells whose karyotype notation could not be read (not scored).
    """
    rows, expected, unreadable = [], [], []
    for r in per_cell:
        if r.get("truth"):
            try:
                expected.append(iscn.numerical_call(iscn.expected_labels(r["truth"])))
                rows.append(r)
            except ValueError:  # notation the parser does not know (mosaics, markers, ...)
                unreadable.append(r["cell"])
    if not rows:
        return None
    exact = [r["call"] == e for r, e in zip(rows, expected)]
    abnormal = [e not in NORMAL_CALLS for e in expected]
    called = [r["call"] not in NORMAL_CALLS for r in rows]
    structural = [iscn.is_structural(r["truth"]) for r in rows]
    n_ab = sum(abnormal)
    hit = sum(a and c for a, c in zip(abnormal, called))
    n_norm = len(rows) - n_ab
    clean = sum(not a and not c for a, c in zip(abnormal, called))
    wrong = Counter((r["truth"], r["call"]) for r, ok in zip(rows, exact) if not ok)
    return {
        "cells": len(rows),
        "exact": sum(exact),
        "exact_accuracy": sum(exact) / len(rows),
        "abnormal": n_ab, "called_abnormal": hit, "sensitivity": hit / n_ab if n_ab else None,
        "normal": n_norm, "called_normal": clean,
        "specificity": clean / n_norm if n_norm else None,
        "structural": sum(structural),
        "structural_called_normal": sum(s and not c for s, c in zip(structural, called)),
        "wrong_calls": [{"truth": t, "call": c, "cells": k} for (t, c), k in wrong.most_common()],
        "unreadable_truth": unreadable,
    }


def call_lines(c: dict, structural: list[dict] = ()) -> str:
    """The per-cell calls in a few lines: exact calls, sensitivity/specificity, wrong calls,
    and how the rearranged chromosomes (:func:`structural_labels`) were labelled."""
    def frac(k, n, name):
        return f"{name} {k}/{n}" + (f" = {k / n:.2f}" if n else "")

    lines = [f"cell calls ({c['cells']} cells with a known karyotype): "
             f"{frac(c['exact'], c['cells'], 'exact')}; abnormal cells "
             f"{frac(c['called_abnormal'], c['abnormal'], 'sensitivity')}, "
             f"{frac(c['called_normal'], c['normal'], 'specificity')}"]
    if c["structural"]:
        lines.append(f"structural changes (not callable from chromosome labels): {c['structural']} "
                     f"cells, {c['structural_called_normal']} called numerically normal")
    if structural:
        lines.append("rearranged chromosomes (labelled by the class of their centromere):")
        lines.append(structural_lines(structural))
    for w in c["wrong_calls"][:5]:
        lines.append(f"  called {w['call']} for {w['truth']}: {w['cells']} cell(s)")
    return "\n".join(lines)
