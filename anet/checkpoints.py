"""Checkpoints: atomic save, listing, latest, load (weights + optimizer + policy state).

Layout of ``RUN/checkpoints/``::

    ckpt-00000201/           one checkpoint (complete, or absent: never half-written)
        model.weights.h5     Keras weights
        optimizer.npz        optimizer variables, in ``optimizer.variables`` order
        rng.npz              the model's seed-generator states (dropout), so a resumed run
                             draws the same masks as one that never stopped
        state.json           step, epoch, data position, schedule state, reasons, metrics,
                             resolved config; written last inside the temp dir
    checkpoints.jsonl        index: one line per checkpoint (rewritten atomically)

A checkpoint is written into ``.tmp-ckpt-*`` and renamed into place, so a SIGKILL at any
moment leaves either the previous set of checkpoints or the new complete one. The directory
listing is the source of truth; the index is regenerated from it.
"""

from __future__ import annotations

import json
import os
import shutil
import time
import warnings
from pathlib import Path

import numpy as np

from anet.errors import AnetError
from anet.files import atomic_write

PREFIX = "ckpt-"
INDEX = "checkpoints.jsonl"
STATE = "state.json"
WEIGHTS = "model.weights.h5"
OPTIMIZER = "optimizer.npz"
RNG = "rng.npz"  # model variables outside the weights: dropout seed-generator states


def ckpt_name(step: int) -> str:
    return f"{PREFIX}{step:08d}"


def save(root: str | Path, *, model, optimizer, state: dict) -> Path:
    """Write one checkpoint for ``state['step']`` atomically and refresh the index.

    If a checkpoint for the same step exists (e.g. an Algorithm 1 save and the periodic save
    fall on one step), the weights are the same, so only its ``reasons`` are merged.

    Returns: the checkpoint directory.
    """
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    step = int(state["step"])
    final = root / ckpt_name(step)
    record = dict(state, time=time.time())
    if final.exists():
        old = json.loads((final / STATE).read_text())
        merged = list(dict.fromkeys(list(old.get("reasons", [])) + list(state.get("reasons", []))))
        atomic_write(final / STATE, json.dumps(dict(old, **{**record, "reasons": merged})))
    else:
        tmp = root / f".tmp-{ckpt_name(step)}-{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
        model.save_weights(str(tmp / WEIGHTS))
        arrays = {f"v{i:04d}": np.asarray(v.numpy()) for i, v in enumerate(optimizer.variables)}
        np.savez(tmp / OPTIMIZER, **arrays)
        np.savez(tmp / RNG, **{f"v{i:04d}": np.asarray(v.numpy()) for i, v in enumerate(_rng_vars(model))})
        (tmp / STATE).write_text(json.dumps(record))
        tmp.rename(final)
    write_index(root)
    return final


def list_checkpoints(root: str | Path) -> list[dict]:
    """All complete checkpoints under ``root``, oldest step first; each is its state + ``path``."""
    root = Path(root)
    if not root.is_dir():
        return []
    out = []
    for d in root.glob(f"{PREFIX}*"):
        state_file = d / STATE
        if not (d.is_dir() and state_file.is_file()):
            continue
        try:
            state = json.loads(state_file.read_text())
        except json.JSONDecodeError:
            continue
        out.append(dict(state, path=str(d)))
    return sorted(out, key=lambda s: s["step"])


def latest(root: str | Path) -> dict | None:
    """The checkpoint with the highest step, or None."""
    ckpts = list_checkpoints(root)
    return ckpts[-1] if ckpts else None


def write_index(root: str | Path) -> None:
    """Regenerate ``checkpoints.jsonl`` from the directory listing (atomically)."""
    root = Path(root)
    lines = []
    for c in list_checkpoints(root):
        row = {k: c[k] for k in c if k != "config"}
        row["path"] = Path(c["path"]).name
        lines.append(json.dumps(row))
    atomic_write(root / INDEX, "".join(line + "\n" for line in lines))


def clean_partial(root: str | Path) -> None:
    """Remove temp dirs and files left by a writer that was killed mid-save."""
    root = Path(root)
    for d in root.glob(".tmp-*"):
        shutil.rmtree(d, ignore_errors=True)
    for f in [*root.glob(".*.tmp-*"), *root.glob(f"{PREFIX}*/.*.tmp-*")]:  # atomic_write's
        f.unlink(missing_ok=True)


def load_weights(path: str | Path, model) -> None:
    """Load a checkpoint's weights into ``model``; a mismatched model is a clear AnetError."""
    try:
        with warnings.catch_warnings():
            # Keras only warns when parts of the file match no layer (and keeps random weights
            # there): for a checkpoint that must restore a model exactly, that is an error.
            warnings.simplefilter("error", UserWarning)
            model.load_weights(str(Path(path) / WEIGHTS))
    except (ValueError, KeyError, UserWarning) as e:
        raise AnetError(
            f"{path}: checkpoint does not fit this model ({str(e).splitlines()[0][:160]}); "
            "was it made with another model.name, width or class count?"
        ) from None


def _rng_vars(model) -> list:
    """Model variables that ``save_weights`` leaves out (seed-generator states), in order."""
    weights = {id(w) for w in model.weights}
    return [v for v in model.variables if id(v) not in weights]


def load(path: str | Path, *, model, optimizer) -> dict:
    """Restore weights and optimizer variables from one checkpoint; returns its state."""
    path = Path(path)
    load_weights(path, model)
    with np.load(path / OPTIMIZER) as data:
        arrays = [data[k] for k in sorted(data.files)]
    variables = optimizer.variables
    if len(arrays) != len(variables) or any(
        tuple(a.shape) != tuple(v.shape) for a, v in zip(arrays, variables)
    ):
        raise AnetError(f"{path}: optimizer state does not match train.optimizer of this config")
    for a, v in zip(arrays, variables):
        v.assign(a)
    rng_vars = _rng_vars(model)
    if (path / RNG).is_file():
        with np.load(path / RNG) as data:
            saved = [data[k] for k in sorted(data.files)]
        if len(saved) == len(rng_vars):
            for a, v in zip(saved, rng_vars):
                v.assign(a)
    return json.loads((path / STATE).read_text())


def prune_periodic(root: str | Path, keep: int) -> None:
    """Keep only the newest ``keep`` checkpoints that were saved *only* periodically.

    Checkpoints saved by Algorithm 1, at the end, or on interrupt are never removed.
    """
    if keep <= 0:
        return
    periodic = [c for c in list_checkpoints(root) if set(c.get("reasons", [])) == {"periodic"}]
    if len(periodic) <= keep:
        return  # nothing to remove: the index that save() just wrote is current
    for c in periodic[:-keep]:
        shutil.rmtree(c["path"], ignore_errors=True)
    write_index(root)
