"""Classification metrics of one split as pure NumPy functions of a confusion matrix (and of the
probabilities for top-k): what ``anet evaluate`` writes to eval.json and the tables show.

Conventions (golden values in tests/test_metrics.py):
- a confusion matrix has true classes as rows and predicted classes as columns;
- precision, recall and F1 of a class are 0 where undefined (nothing predicted / no support),
  as scikit-learn's ``zero_division=0``;
- macro-F1 is the mean F1 over the classes that OCCUR in the split (support > 0). A class with
  no example in the split is left out of the mean and listed as absent (its F1 would be 0 or
  undefined whatever the model does); a wrong prediction into it still counts, as a miss of
  the true class;
- top-k: the true class is in the top k when fewer than k classes have a strictly higher
  probability (ties count as in, like ``tf.math.in_top_k``); reported only for more than
  :data:`TOP_K` classes (with k or fewer every prediction is in the top k).
"""

from __future__ import annotations

import numpy as np

TOP_K = 5  # eval.json's top-k accuracy (n/a for TOP_K classes or fewer)


def confusion_matrix(labels, preds, k: int) -> np.ndarray:
    """[k, k] counts: rows are true classes, columns predicted classes."""
    return np.bincount(np.asarray(labels) * k + np.asarray(preds), minlength=k * k).reshape(k, k)


def _prf(cm: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(precision, recall, F1, support) per class, 0 where undefined."""
    cm = np.asarray(cm)
    tp = np.diag(cm).astype(float)
    predicted, support = cm.sum(axis=0), cm.sum(axis=1)
    precision = np.divide(tp, predicted, out=np.zeros_like(tp), where=predicted > 0)
    recall = np.divide(tp, support, out=np.zeros_like(tp), where=support > 0)
    denom = precision + recall
    f1 = np.divide(2 * precision * recall, denom, out=np.zeros_like(tp), where=denom > 0)
    return precision, recall, f1, support


def per_class(cm: np.ndarray, classes) -> list[dict]:
    """Precision, recall, F1 and support per class from a confusion matrix (0 where undefined)."""
    precision, recall, f1, support = _prf(cm)
    return [{"class": c, "precision": float(p), "recall": float(r), "f1": float(f),
             "support": int(s)} for c, p, r, f, s in zip(classes, precision, recall, f1, support)]


def macro_f1(cm: np.ndarray) -> float | None:
    """Mean F1 over the classes present in the split (support > 0); None for an empty matrix."""
    _, _, f1, support = _prf(cm)
    present = support > 0
    return float(f1[present].mean()) if present.any() else None


def absent_classes(cm: np.ndarray, classes) -> list:
    """The classes with no example in the split (left out of :func:`macro_f1`)."""
    support = np.asarray(cm).sum(axis=1)
    return [c for c, s in zip(classes, support) if s == 0]


def top_k_correct(probs: np.ndarray, labels: np.ndarray, k: int = TOP_K) -> int:
    """How many rows have their true class among the k most probable (ties count as in)."""
    probs, labels = np.asarray(probs), np.asarray(labels)
    if not len(labels):
        return 0
    true_p = probs[np.arange(len(labels)), labels]
    return int(((probs > true_p[:, None]).sum(axis=1) < k).sum())


def tally(probs: np.ndarray, labels: np.ndarray, k: int) -> tuple[np.ndarray, int]:
    """(confusion matrix, top-:data:`TOP_K` hits) of predicted probabilities over ``k`` classes."""
    return confusion_matrix(labels, np.asarray(probs).argmax(axis=1), k), top_k_correct(probs, labels)


def has_top_k(num_classes: int, k: int = TOP_K) -> bool:
    """Top-k accuracy means something only with more than k classes."""
    return num_classes > k


def summarize(cm: np.ndarray, top_k: int | None) -> dict:
    """One split's numbers for eval.json: accuracy, top-k accuracy (None when ``top_k`` is
    None, i.e. n/a), macro-F1 and the example count, from its confusion matrix and the count of
    top-k hits."""
    cm = np.asarray(cm)
    n = int(cm.sum())
    return {"accuracy": float(np.trace(cm) / n) if n else None,
            "top5": float(top_k / n) if n and top_k is not None else None,
            "macro_f1": macro_f1(cm), "examples": n}


def eval_fields(tallies: dict, classes) -> dict:
    """eval.json's ``top5_accuracy``, ``macro_f1`` and ``absent_classes`` from per-split
    ``(confusion matrix, top-k hits)`` tallies (splits not evaluated are None / left out;
    ``top5_accuracy`` is None as a whole when there are :data:`TOP_K` classes or fewer)."""
    splits = ("train", "valid", "test")
    done = {s: summarize(cm, top if has_top_k(len(classes)) else None)
            for s, (cm, top) in tallies.items()}
    return {
        "top5_accuracy": {s: done[s]["top5"] if s in done else None for s in splits}
        if has_top_k(len(classes)) else None,
        "macro_f1": {s: done[s]["macro_f1"] if s in done else None for s in splits},
        "absent_classes": {s: absent_classes(cm, classes) for s, (cm, _) in tallies.items()},
    }
