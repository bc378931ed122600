"""Passes over a split for ``anet evaluate``: every checkpoint scored on the validation split,
then the chosen one's per-example outputs (probabilities, files, cells, errors) and tallies.

Scoring reads each checkpoint once (anet.restore: the read is its damage check) into one model
built once, with one compiled eval function, over the validation split decoded once
(anet.data.cache): per checkpoint only its weights are read and assigned and the forward
passes run.
"""

from __future__ import annotations

import csv
import io
import sys

import numpy as np

from anet import metrics, progress, restore
from anet.errors import AnetError
from anet.models import split_outputs

ERROR_IMAGES = 32  # misclassified examples kept for errors.png


def score_checkpoints(candidates, restorer: restore.Restorer, score, valid_ds, *,
                      explicit: bool = False) -> tuple[list[dict], list[tuple[str, str]]]:
    """Each checkpoint read once into ``restorer``'s model and scored on ``valid_ds``
    (``score`` is anet.steps.make_eval_fn's), with a progress bar.

    Returns:
        (one score dict per checkpoint that loads, in order; ``(path, why)`` of each damaged
        one, which is left out with a notice).
    Raises:
        restore.Damaged: a damaged checkpoint when ``explicit`` (one named with ``--ckpt``).
    """
    scores, broken = [], []
    with progress.bar(len(candidates), "scoring", "checkpoint") as bar:
        for c in candidates:
            try:
                restorer.weights(c.path)
            except restore.Damaged as e:
                if explicit:
                    raise
                broken.append((str(c.path), e.reason))
                bar.clear()
                print(restore.skip_notice(c.path, e.reason), file=sys.stderr)
                bar.update(1)
                continue
            s = score(valid_ds, "valid")
            scores.append({"name": c.name, "step": c.step, "epoch": c.epoch,
                           "reasons": list(c.reasons), "valid_acc": s["acc"], "valid_loss": s["loss"]})
            bar.write(f"{scores[-1]['name']}: valid acc {s['acc']:.4f}, loss {s['loss']:.4f}")
            bar.update(1)
    return scores, broken


def forward_fn(model):
    """The model's inference call as one compiled function (traced once per batch shape)."""
    import tensorflow as tf

    @tf.function(reduce_retracing=True)
    def forward(x):
        return model(x, training=False)

    return forward


def collect(forward, ds, split: str) -> dict:
    """Probabilities, labels, filenames, cells and stored sizes of a split, plus the first
    ERROR_IMAGES misclassified inputs (with their file and cell) for errors.png; for a model
    with the polarity head (a dataset read with ``polarity=True``) also ``polarity_probs`` [n, 2]
    and the true ``polarity`` (-1 unknown)."""
    probs, labels, names, cells, sizes, errors = [], [], [], [], [], []
    pol_probs, pols = [], []
    for x, y, fname, cell, hw, *pol in ds:
        p, pp = split_outputs(forward(x))
        p = p.numpy()
        if pp is not None and pol:
            pol_probs.append(pp.numpy())
            pols.append(pol[0].numpy())
        y = y.numpy()
        fname, cell = [f.decode("utf-8") for f in fname.numpy()], [c.decode("utf-8") for c in cell.numpy()]
        wrong = np.flatnonzero(p.argmax(axis=1) != y)
        for i in wrong[: max(ERROR_IMAGES - len(errors), 0)]:
            errors.append((x[i].numpy(), int(y[i]), int(p[i].argmax()), float(p[i].max()),
                           fname[i], cell[i]))
        probs.append(p)
        labels.append(y)
        names += fname
        cells += cell
        sizes.append(hw.numpy())
    if not probs:
        from anet.data.pipeline import empty_split  # TF is loaded by now

        raise AnetError(empty_split(split))
    return {"probs": np.concatenate(probs), "labels": np.concatenate(labels), "filenames": names,
            "cells": cells, "sizes": np.concatenate(sizes), "errors": errors, "split": split,
            "polarity_probs": np.concatenate(pol_probs) if pol_probs else None,
            "polarity": np.concatenate(pols) if pols else None}


def tally(forward, ds, k: int, split: str) -> tuple[np.ndarray, int]:
    """(confusion matrix, top-k hits) of a split of (image, label) batches, batch by batch."""
    cm, top = np.zeros((k, k), dtype=np.int64), 0
    for x, y in ds:
        c, t = metrics.tally(split_outputs(forward(x))[0].numpy(), y.numpy(), k)
        cm, top = cm + c, top + t
    if not cm.sum():
        from anet.data.pipeline import empty_split  # TF is loaded by now

        raise AnetError(empty_split(split))
    return cm, top


def misclassified(out: dict, classes) -> list[dict]:
    """Every misclassified example of a collected split: file, cell, true, predicted, prob."""
    preds = out["probs"].argmax(axis=1)
    return [{"file": out["filenames"][i], "cell": out["cells"][i],
             "true": classes[out["labels"][i]], "predicted": classes[preds[i]],
             "probability": round(float(out["probs"][i, preds[i]]), 6)}
            for i in np.flatnonzero(preds != out["labels"])]


def predictions_csv(parts: list[dict], classes) -> str:
    """Per-example predictions of collected splits: file, cell, split, true, predicted, the
    predicted class's probability, the true class's probability, correct (1/0)."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["file", "cell", "split", "true", "predicted", "probability", "true_probability",
                "correct"])
    for out in parts:
        preds = out["probs"].argmax(axis=1)
        for i, (f, c, y, p) in enumerate(zip(out["filenames"], out["cells"], out["labels"], preds)):
            w.writerow([f, c, out["split"], classes[y], classes[p], f"{out['probs'][i, p]:.6f}",
                        f"{out['probs'][i, y]:.6f}", int(p == y)])
    return buf.getvalue()
