"""Per-cell assignment on hand-made probability tables (normal, trisomy, X0, XXY, a confusion)."""

import numpy as np
import pytest

from anet.data.sources import KARYOTYPE_CLASSES
from anet.karyotype import X, Y, applies, assign_cell, assign_cells, call_summary, cell_report

AUTOSOMES = [c for c in range(22) for _ in range(2)]
C21 = 20  # index of chromosome 21


def table(labels, confidence=0.9, seed=0):
    """[n, 24] probabilities: ``confidence`` on the true class, the rest spread unevenly."""
    rng = np.random.default_rng(seed)
    n = len(labels)
    rest = rng.dirichlet(np.ones(24), size=n) * (1 - confidence)
    probs = rest.copy()
    probs[np.arange(n), labels] = 0
    probs *= (1 - confidence) / probs.sum(axis=1, keepdims=True)
    probs[np.arange(n), labels] = confidence
    return probs


def shuffled(labels, seed=1):
    return np.random.default_rng(seed).permutation(np.asarray(labels))


@pytest.mark.parametrize("name,labels", [
    ("46,XX", AUTOSOMES + [X, X]),
    ("46,XY", AUTOSOMES + [X, Y]),
    ("47,XY,+21", AUTOSOMES + [C21, X, Y]),
    ("45,X", AUTOSOMES + [X]),
    ("47,XXY", AUTOSOMES + [X, X, Y]),
    ("44,XY,-3,-17", [c for c in AUTOSOMES if c not in (2, 16)] + [2, 16, X, Y]),
])
def test_confident_cells_keep_their_labels(name, labels):
    labels = shuffled(labels)
    assert list(assign_cell(table(labels))) == list(labels), name


def test_extra_21_is_labelled_21_not_forced_elsewhere():
    labels = shuffled(AUTOSOMES + [C21, X, Y])
    probs = table(labels, confidence=0.6)
    out = assign_cell(probs)
    assert (out == C21).sum() == 3 and list(out) == list(labels)


def test_assignment_fixes_a_confusion_between_similar_classes():
    # Normal XY cell; one chromosome 19 (index 18) looks slightly more like a 20 (index 19),
    # of which the cell already has two confident copies.
    labels = shuffled(AUTOSOMES + [X, Y])
    probs = table(labels)
    i = int(np.flatnonzero(labels == 18)[0])
    probs[i] = 0.0
    probs[i, 19], probs[i, 18] = 0.55, 0.40
    probs[i] += 0.05 / 24
    assert probs[i].argmax() == 19  # the classifier alone is wrong
    out = assign_cell(probs)
    assert out[i] == 18 and list(out) == list(labels)


def test_sex_hypothesis_follows_the_evidence():
    xy = shuffled(AUTOSOMES + [X, Y])
    assert (assign_cell(table(xy)) == Y).sum() == 1
    xx = shuffled(AUTOSOMES + [X, X])
    probs = table(xx)
    # A weakly Y-looking X in a female cell: two X slots are free, so it stays X.
    j = int(np.flatnonzero(xx == X)[0])
    probs[j, X], probs[j, Y] = 0.6, 0.3
    assert list(assign_cell(probs)) == list(xx)


def test_small_and_empty_inputs():
    assert assign_cell(np.zeros((0, 24))).shape == (0,)
    three = table([5, 5, 5])  # three confident 6s: one goes to a spare, none is relabelled
    assert list(assign_cell(three)) == [5, 5, 5]
    with pytest.raises(ValueError, match=r"\[n, 24\]"):
        assign_cell(np.ones((3, 10)))


def test_assign_cells_and_report_on_a_split():
    a = shuffled(AUTOSOMES + [X, Y], seed=2)
    b = shuffled(AUTOSOMES + [X, X], seed=3)
    probs = np.concatenate([table(a, seed=4), table(b, seed=5), table([7, 7], seed=6)])
    labels = np.concatenate([a, b, [7, 7]])
    i = int(np.flatnonzero(a == 18)[0])  # the same 19/20 confusion in cell a
    probs[i] = 0.05 / 24
    probs[i, 19], probs[i, 18] = 0.55, 0.40
    cells = ["a"] * 46 + ["b"] * 46 + ["", ""]  # the last two have no cell: argmax kept
    rep = cell_report(probs, labels, cells, truths={"a": "46,XY"})
    assert rep["cells"] == 2 and rep["chromosomes"] == 92
    assert rep["accuracy_before"] == pytest.approx(91 / 92)
    assert rep["accuracy_after"] == 1.0
    assert rep["per_cell"] == [{"cell": "a", "chromosomes": 46, "correct_before": 45, "correct_after": 46,
                                "call": "46,XY", "truth": "46,XY"},
                               {"cell": "b", "chromosomes": 46, "correct_before": 46, "correct_after": 46,
                                "call": "46,XX", "truth": ""}]
    assert rep["calls"]["cells"] == 1 and rep["calls"]["exact"] == 1
    assert list(assign_cells(probs, cells)[-2:]) == [7, 7]


def test_applies_only_to_karyotype_classes_with_cells():
    assert applies(KARYOTYPE_CLASSES, ["c1", "c1"])
    assert not applies(KARYOTYPE_CLASSES, ["", ""])
    assert not applies([str(i) for i in range(24)], ["c1"])


def test_trisomy_cell_is_called_from_its_assigned_labels():
    labels = shuffled(AUTOSOMES + [C21, X, X], seed=7)
    rep = cell_report(table(labels, confidence=0.6), labels, ["t"] * 47,
                      truths={"t": "47,XX,+21"})
    assert rep["per_cell"][0]["call"] == "47,XX,+21"
    assert rep["calls"]["sensitivity"] == 1.0 and rep["calls"]["specificity"] is None


def test_call_summary_golden():
    rows = [{"cell": "a", "call": "46,XY", "truth": "46,XY"},
            {"cell": "b", "call": "47,XX,+21", "truth": "47,XX,+21"},
            {"cell": "c", "call": "46,XX", "truth": "45,X"},  # a missed Turner
            {"cell": "d", "call": "46,XY", "truth": "46,XY,t(9;22)(q34;q11)"},  # numerically right
            {"cell": "e", "call": "47,XX,+18", "truth": "46,XX"},  # a false trisomy
            {"cell": "f", "call": "46,XY", "truth": ""}]  # unknown: not scored
    assert call_summary(rows) == {
        "cells": 5, "exact": 3, "exact_accuracy": 0.6,
        "abnormal": 2, "called_abnormal": 1, "sensitivity": 0.5,
        "normal": 3, "called_normal": 2, "specificity": pytest.approx(2 / 3),
        "structural": 1, "structural_called_normal": 1,
        "wrong_calls": [{"truth": "45,X", "call": "46,XX", "cells": 1},
                        {"truth": "46,XX", "call": "47,XX,+18", "cells": 1}],
        "unreadable_truth": []}
    assert call_summary(rows[-1:]) is None
    mosaic = call_summary(rows[:1] + [{"cell": "m", "call": "46,XX", "truth": "45,X/46,XX"}])
    assert mosaic["cells"] == 1 and mosaic["unreadable_truth"] == ["m"]
