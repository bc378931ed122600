"""Predict classes of image files (in batches, skipping bad files) with a run's checkpoint.

Every image goes through the run's input contract (``RUN/input.json``) and
``pipeline.eval_transform``, so a prediction sees exactly what evaluation saw; files are read
by the intensity policy of ``anet.data.images`` (the same as ``anet prepare``).
"""

from __future__ import annotations

import csv
import io
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from anet.data.images import expand_paths, load_input
from anet.errors import AnetError
from anet.files import atomic_write, check_writable
from anet.models import POLARITY_CLASSES, split_outputs
from anet.runs import open_chosen, pick_run


@dataclass(frozen=True)
class Prediction:
    """One image's prediction: top-k (class, probability) and the flags a lab checks."""

    path: str
    top: tuple[tuple[str, float], ...]
    size: tuple[int, int]  # (height, width) of the file
    low_confidence: bool  # top probability below --min-confidence
    out_of_range: bool  # size (times --scale) outside the training size range
    polarity: tuple[str, float] | None = None  # the polarity head's (up|down, probability)


@dataclass(frozen=True)
class Predictions:
    run: str
    checkpoint: str
    why: str
    rows: tuple[Prediction, ...]
    skipped: tuple[tuple[str, str], ...] = field(default=())  # (path, reason)


def flags(p: Prediction) -> list[str]:
    return (["low-confidence"] if p.low_confidence else []) + (
        ["size-out-of-range"] if p.out_of_range else [])


POLARITY_COLUMNS = ["polarity", "polarity_prob"]  # a model with the polarity head: up|down, p


def _polarity(p: Prediction, digits: int) -> list[str]:
    return [p.polarity[0], f"{p.polarity[1]:.{digits}f}"] if p.polarity else []


def to_csv(result: Predictions, top_k: int) -> str:
    """One row per input: path, top-k classes and probabilities, the polarity head's call and
    probability (models with the head), flags, size, run, checkpoint, and the reason for files
    that could not be read (their class columns empty)."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    polar = any(p.polarity for p in result.rows)
    w.writerow(["path"] + [f"{c}_{i}" for i in range(1, top_k + 1) for c in ("class", "prob")]
               + (POLARITY_COLUMNS if polar else [])
               + ["low_confidence", "size_out_of_range", "height", "width", "run", "checkpoint",
                  "error"])
    for p in result.rows:
        top = [v for name, prob in p.top for v in (name, f"{prob:.6f}")]
        top += [""] * (2 * top_k - len(top))
        w.writerow([p.path, *top, *_polarity(p, 6), int(p.low_confidence), int(p.out_of_range),
                    *p.size, result.run, result.checkpoint, ""])
    for path, why in result.skipped:
        w.writerow([path] + [""] * (2 * top_k + 4 + 2 * polar)
                   + [result.run, result.checkpoint, why])
    return buf.getvalue()


def tsv_header(top_k: int, polarity: bool = False) -> str:
    """predict's stdout header: path, class_i and prob_i columns, polarity and polarity_prob
    (models with the polarity head), flags (comma-separated)."""
    return "\t".join(["path", *(f"{c}_{i}" for i in range(1, top_k + 1) for c in ("class", "prob")),
                      *(POLARITY_COLUMNS if polarity else []), "flags"])


def tsv_row(p: Prediction, top_k: int) -> str:
    """One image on predict's stdout: its path, a column per class and per probability, the
    polarity columns (models with the head), flags."""
    top = [v for name, prob in p.top for v in (name, f"{prob:.4f}")]
    return "\t".join([p.path, *top, *[""] * (2 * top_k - len(top)), *_polarity(p, 4),
                      ",".join(flags(p))])


def to_json(result: Predictions) -> str:
    """``predict --json``: the run, the checkpoint and why, per image its top-k and flags,
    and the skipped files with their reasons."""
    return json.dumps({
        "run": result.run, "checkpoint": result.checkpoint, "why": result.why,
        "predictions": [{"path": p.path, "top": [{"class": c, "probability": round(v, 6)}
                                                 for c, v in p.top],
                         **({"polarity": {"p_arm": p.polarity[0],
                                          "probability": round(p.polarity[1], 6)}}
                            if p.polarity else {}),
                         "flags": flags(p), "height": p.size[0], "width": p.size[1]}
                        for p in result.rows],
        "skipped": [{"path": path, "reason": why} for path, why in result.skipped],
    }, indent=1)


def _check_out(out: Path | None) -> None:
    if out is None:
        return
    if out.is_dir():
        raise AnetError(f"--out {out}: is a folder; name a .csv file")
    if not out.parent.is_dir():
        raise AnetError(f"--out {out}: folder {out.parent} does not exist")
    check_writable(out.parent, "choose another --out")


def predict(run_dir: str | Path | None, images, *, top_k: int = 3, ckpt: str | None = None,
            batch_size: int = 64, out: str | Path | None = None, min_confidence: float = 0.5,
            scale: float = 1.0, overrides=(), as_json: bool = False) -> Predictions:
    """Top-k classes per image; prints a TSV line per image (``as_json``: one JSON document at
    the end) on stdout, notices and the summary on stderr; skips unreadable files.

    Args:
        images: files, folders (searched recursively) and glob patterns.
        out: also write the predictions as CSV (see ``to_csv``).
        min_confidence: a top probability below this flags the row ``low-confidence``.
        scale: the factor that brings the images to the training images' scale (pad runs).
    Returns:
        The predictions and the skipped files; the CLI exits 1 when any was skipped.
    """
    if not images:
        raise AnetError("no images given; pass JPG, PNG or TIF files, folders or glob patterns")
    if top_k < 1:
        raise AnetError(f"--top-k must be >= 1, got {top_k}")
    if not 0 <= min_confidence <= 1:
        raise AnetError(f"--min-confidence must be in [0, 1], got {min_confidence}")
    out = Path(out) if out is not None else None
    _check_out(out)
    files, skipped = expand_paths(images)
    if len(files) + len(skipped) == 1 and skipped:
        raise AnetError(f"{skipped[0][0]}: {skipped[0][1]}")
    if not files:
        raise AnetError(f"no image files in {', '.join(a for a, _ in skipped)}")
    run_dir = pick_run(run_dir)
    run, chosen, why, model = open_chosen(run_dir, ckpt, overrides)
    spec = run.contract
    scaled = spec.scaled(scale)
    classes, name = list(spec.classes), chosen.name
    for path, reason in skipped:
        print(f"skipped {path}: {reason}", file=sys.stderr)
    k = min(top_k, len(classes))
    rows = []
    for start in range(0, len(files), batch_size):
        xs, part = [], []
        for path in files[start:start + batch_size]:
            try:
                x, hw = load_input(path, scaled)
            except AnetError as e:
                if len(files) == 1:
                    raise
                skipped.append((str(path), str(e).removeprefix(f"{path}: ")))
                print(f"skipped {e}", file=sys.stderr)
                continue
            xs.append(x)
            part.append((path, hw))
        if not xs:
            continue
        probs, pol_probs = split_outputs(model(np.stack(xs), training=False))
        probs = probs.numpy()
        pol_probs = pol_probs.numpy() if pol_probs is not None else [None] * len(probs)
        for (path, hw), p, pp in zip(part, probs, pol_probs):
            top = tuple((classes[i], float(p[i])) for i in np.argsort(-p, kind="stable")[:k])
            pol = (POLARITY_CLASSES[int(pp.argmax())], float(pp.max())) if pp is not None else None
            row = Prediction(str(path), top, hw, top[0][1] < min_confidence,
                             spec.out_of_range(*hw, scale), pol)
            rows.append(row)
            if len(rows) == 1:  # above a first row only: a failed run prints just its error
                print(f"# run {run.dir}, checkpoint {name} ({why})", file=sys.stderr)
                if not as_json:
                    print(tsv_header(k, pol is not None))
            if not as_json:
                print(tsv_row(row, k), flush=True)
    if not rows:
        raise AnetError(f"none of the {len(files)} image files could be read (each listed above)")
    result = Predictions(str(run.dir), name, why, tuple(rows), tuple(skipped))
    if out is not None:
        atomic_write(out, to_csv(result, k))
    if as_json:
        print(to_json(result))
    _summary(result, out)
    return result


def _summary(result: Predictions, out: Path | None) -> None:
    rows = result.rows
    parts = [f"predicted {len(rows)} images"]
    for flag, n in (("low-confidence", sum(p.low_confidence for p in rows)),
                    ("size-out-of-range", sum(p.out_of_range for p in rows))):
        if n:
            parts.append(f"{n} {flag}")
    if result.skipped:
        parts.append(f"skipped {len(result.skipped)} unreadable (listed above)")
    if any(p.out_of_range for p in rows):
        parts.append("size-out-of-range: another magnification? try --scale")
    if out is not None:
        parts.append(f"wrote {out}")
    print("; ".join(parts), file=sys.stderr)
