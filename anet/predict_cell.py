"""``anet predict --cell DIR`` and ``anet karyogram DIR``: one cell's chromosome crops ->
labels after the per-cell assignment, the cell's ISCN call, optionally its karyogram.

The crops go through the run's input contract like ``anet predict``'s images; the labels come
from :func:`anet.karyotype.assign_cell` (the assignment ``anet evaluate`` uses), the call from
:func:`anet.data.iscn.numerical_call`. A model with the polarity head also says each
chromosome's p-arm end, and the karyogram turns those it calls "down" upright, unless the
run's ``eval.json`` says the head is at chance (:mod:`anet.polarity`): then a warning, and the
karyogram says it did not turn them.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from anet.errors import AnetError
from anet.files import check_writable

MAX_CROPS = 100  # a cell has 46 chromosomes, a near-tetraploid one up to ~100


@dataclass(frozen=True)
class CellCall:
    """One cell's result: its crops, labels before and after the assignment, its call."""

    run: str
    checkpoint: str
    images: tuple[str, ...]
    labels: tuple[str, ...]  # class names after the per-cell assignment
    argmax: tuple[str, ...]  # class names one by one
    polarity: tuple[str, ...] | None  # up|down per crop (models with the polarity head)
    call: str  # ISCN, numerical changes only
    karyogram: str | None  # the PNG written, if asked for


def cell_images(folder: str | Path) -> list[Path]:
    """The chromosome images of one cell's folder (not recursive, hidden files skipped);
    a clear error when it is not a folder, holds none, or holds more than one cell could."""
    from anet.data.images import IMAGE_SUFFIXES

    folder = Path(folder)
    if not folder.is_dir():
        raise AnetError(f"{folder}: not a folder; pass a folder of one cell's chromosome crops")
    entries = [p for p in folder.iterdir() if not p.name.startswith(".")]
    images = sorted(p for p in entries if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not images:
        subs = sum(p.is_dir() for p in entries)
        hint = (f"; it holds {subs} folders: pass one cell's folder" if subs else
                f" ({', '.join(IMAGE_SUFFIXES)})")
        raise AnetError(f"{folder}: no chromosome images{hint}")
    if len(images) > MAX_CROPS:
        raise AnetError(f"{folder}: {len(images)} images, more than one cell holds (at most "
                        f"{MAX_CROPS}; a normal cell has 46); pass one cell's folder")
    return images


def _inputs(images: list[Path], spec) -> tuple[np.ndarray, list[np.ndarray]]:
    """Model inputs and gray crops of every image; an unreadable one is an error (the call
    needs every chromosome of the cell)."""
    from anet.data.images import load_input
    from anet.data.sources import BadImage, read_image

    xs, crops, bad = [], [], []
    for p in images:
        try:
            xs.append(load_input(p, spec)[0])
            crops.append(read_image(p))  # 8-bit gray, as prepare reads it
        except (AnetError, BadImage, OSError, ValueError) as e:
            bad.append((p, str(e).removeprefix(f"{p}: ")))
    if bad:
        more = f" (and {len(bad) - 1} more)" if len(bad) > 1 else ""
        raise AnetError(f"{bad[0][0]}: cannot read ({bad[0][1]}){more}; a cell's call needs "
                        "every chromosome: fix or remove the file")
    return np.stack(xs), crops


def predict_cell(run_dir: str | Path | None, folder: str | Path, *,
                 karyogram: str | Path | None = None, ckpt: str | None = None,
                 scale: float = 1.0, overrides=()) -> CellCall:
    """Label one cell's crops jointly, call its karyotype, and draw its karyogram to
    ``karyogram`` when given. Prints a TSV line per chromosome (path, label after the
    assignment, argmax label, polarity with the head) and then ``call: ISCN`` on stdout."""
    from anet import karyotype
    from anet.data import iscn
    from anet.models import POLARITY_CLASSES, split_outputs
    from anet.runs import open_chosen, pick_run

    folder = Path(folder)
    images = cell_images(folder)
    out = Path(karyogram) if karyogram is not None else None
    if out is not None:
        if out.is_dir() or not out.parent.is_dir():
            raise AnetError(f"--karyogram {out}: name a .png file in an existing folder")
        check_writable(out.parent, "the karyogram is written there; choose another path")
    run, chosen, why, model = open_chosen(pick_run(run_dir), ckpt, overrides)
    classes = list(run.contract.classes)
    if not karyotype.is_karyotype(classes):
        raise AnetError(f"{run.dir}: its classes are not the 24 karyotype classes; a cell's call "
                        "needs a model trained on chromosomes")
    xs, crops = _inputs(images, run.contract.scaled(scale))
    probs, pols = [], []
    for i in range(0, len(xs), 64):
        p, pp = split_outputs(model(xs[i:i + 64], training=False))
        probs.append(p.numpy())
        pols.append(pp.numpy() if pp is not None else None)
    probs = np.concatenate(probs)
    polarity = np.concatenate(pols).argmax(axis=1) if pols[0] is not None else None
    labels, argmax = karyotype.assign_cell(probs), probs.argmax(axis=1)
    call = iscn.numerical_call(labels)
    print(f"# run {run.dir}, checkpoint {chosen.name} ({why})", file=sys.stderr)
    turns, note = _polarity_verdict(run, polarity, out is not None)
    print("\t".join(["path", "label", "argmax"] + (["polarity"] if polarity is not None else [])))
    for i, path in enumerate(images):
        pol = [POLARITY_CLASSES[polarity[i]]] if polarity is not None else []
        print("\t".join([str(path), classes[labels[i]], classes[argmax[i]], *pol]))
    print(f"call: {call}")
    if out is not None:
        from anet import karyogram as draw

        draw.draw(crops, labels, out, title=f"{folder.name}: called {call}", argmax=argmax,
                  polarity=turns, note=note)
        print(f"wrote {out}", file=sys.stderr)
    return CellCall(str(run.dir), chosen.name, tuple(map(str, images)),
                    tuple(classes[i] for i in labels), tuple(classes[i] for i in argmax),
                    tuple(POLARITY_CLASSES[i] for i in polarity) if polarity is not None else None,
                    call, str(out) if out is not None else None)


def _polarity_verdict(run, calls, drawing: bool) -> tuple[np.ndarray | None, str | None]:
    """The polarity calls to turn the karyogram's chromosomes by and its caption note, from
    the verdict ``anet evaluate`` recorded in eval.json: a warning when the head is at chance;
    a notice when a karyogram is drawn by a head that was never scored."""
    from anet import polarity
    from anet.runs import eval_result

    if calls is None:
        return None, None
    ev = eval_result(run)
    recorded = polarity.PolarityScore.from_json(ev.get("polarity"))
    if recorded is None or recorded.accuracy is None:
        if drawing:
            print(f"notice: {run.dir}: the polarity head's accuracy is not in eval.json; the "
                  f"karyogram turns chromosomes by it unchecked (run `anet evaluate --run-dir "
                  f"{run.dir}` to score it)", file=sys.stderr)
        return calls, None
    if recorded.at_chance:
        chosen = ev.get("chosen") if isinstance(ev.get("chosen"), dict) else {}
        where = f"{ev.get('split', 'its split')} (eval.json, {chosen.get('name', 'its checkpoint')})"
        print(polarity.warning(run.dir, recorded, where), file=sys.stderr)
    return polarity.karyogram_turns(calls, recorded)
