"""anet.metrics: golden values for macro-F1 (absent classes included), top-k and eval.json fields."""

import numpy as np
import pytest

from anet import metrics

# 3 classes: a is recalled 2/3, b gets one a and the only c as false positives, c never right.
LABELS, PREDS = np.array([0, 0, 0, 1, 1, 2]), np.array([0, 0, 1, 1, 1, 1])
CM = [[2, 1, 0], [0, 2, 0], [0, 1, 0]]


def test_confusion_and_per_class():
    cm = metrics.confusion_matrix(LABELS, PREDS, 3)
    assert cm.tolist() == CM
    rows = metrics.per_class(cm, ["a", "b", "c"])
    assert rows[0] == {"class": "a", "precision": 1.0, "recall": pytest.approx(2 / 3),
                       "f1": pytest.approx(0.8), "support": 3}
    assert rows[1]["precision"] == pytest.approx(0.5) and rows[1]["recall"] == 1.0
    assert rows[2] == {"class": "c", "precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 1}


@pytest.mark.parametrize("cm,expected,absent", [
    (CM, (0.8 + 2 / 3 + 0.0) / 3, []),  # 22/45: a 0.8, b 2/3, c 0
    ([[5, 0], [0, 5]], 1.0, []),
    # classes 2 and 3 have no example: left out of the mean (scikit-learn's macro over the
    # labels seen in y_true or y_pred would count class 3, predicted once, as F1 0: 5/9)
    ([[1, 0, 0, 1], [0, 2, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0]], (2 / 3 + 1.0) / 2, ["c", "d"]),
    ([[0, 3], [0, 0]], 0.0, ["b"]),  # present class never predicted: F1 0
    ([[0, 0], [0, 0]], None, ["a", "b"]),  # an empty split has no macro-F1
])
def test_macro_f1_golden(cm, expected, absent):
    got = metrics.macro_f1(np.array(cm))
    assert got == (pytest.approx(expected) if expected is not None else None)
    assert metrics.absent_classes(np.array(cm), list("abcd")[:len(cm)]) == absent


@pytest.mark.parametrize("probs,labels,k,hits", [
    ([[0.5, 0.3, 0.2], [0.2, 0.3, 0.5], [0.4, 0.4, 0.2]], [2, 0, 1], 2, 1),
    ([[0.5, 0.3, 0.2], [0.2, 0.3, 0.5], [0.4, 0.4, 0.2]], [2, 0, 1], 3, 3),
    ([[0.5, 0.3, 0.2], [0.2, 0.3, 0.5], [0.4, 0.4, 0.2]], [0, 2, 0], 1, 3),
    ([[0.4, 0.3, 0.3]], [2], 2, 1),  # a tie across the boundary counts as in (tf.math.in_top_k)
    ([[0.4, 0.3, 0.3]], [2], 1, 0),
    (np.zeros((0, 3)), np.zeros(0, int), 5, 0),
])
def test_top_k_correct_golden(probs, labels, k, hits):
    assert metrics.top_k_correct(np.array(probs), np.array(labels), k) == hits


def test_summarize_and_eval_fields():
    assert metrics.summarize(np.array(CM), 5) == {
        "accuracy": pytest.approx(4 / 6), "top5": pytest.approx(5 / 6),
        "macro_f1": pytest.approx(22 / 45), "examples": 6}
    assert metrics.summarize(np.array(CM), None)["top5"] is None
    three = metrics.eval_fields({"valid": (np.array(CM), 6)}, ["a", "b", "c"])
    assert three == {"top5_accuracy": None,  # n/a: 3 classes
                     "macro_f1": {"train": None, "valid": pytest.approx(22 / 45), "test": None},
                     "absent_classes": {"valid": []}}
    six = np.zeros((6, 6), int)
    six[[0, 1, 2, 3], [0, 1, 2, 0]] = 10  # classes 4, 5 absent; class 3 always called 0
    fields = metrics.eval_fields({"train": (six, 30), "test": (six, 40)}, list("abcdef"))
    assert fields["top5_accuracy"] == {"train": 0.75, "valid": None, "test": 1.0}
    assert fields["macro_f1"]["test"] == pytest.approx((2 / 3 + 1 + 1 + 0) / 4)
    assert fields["absent_classes"] == {"train": ["e", "f"], "test": ["e", "f"]}
