"""Checkpoints: their state record, atomic save (off the training thread), listing, latest.

Reading one back (the damage check, loading weights and optimizer state) is anet.restore.

Layout of ``RUN/checkpoints/``::

    ckpt-00000201/           one checkpoint (complete, or absent: never half-written)
        model.weights.h5     Keras weights
        optimizer.npz        optimizer variables, in ``optimizer.variables`` order: only in the
                             checkpoint saved last (the one a run resumes from); every save
                             removes it from the others, which keep the weights, enough to
                             score and choose (about half the disk for SGD momentum)
        rng.npz              the model's seed-generator states (dropout), so a resumed run
                             draws the same masks as one that never stopped
        state.json           step, epoch, data position, schedule state, reasons, metrics,
                             resolved config; written last inside the temp dir
    checkpoints.jsonl        index: one line per checkpoint (rewritten atomically)

A checkpoint is written into ``.tmp-ckpt-*`` and renamed into place, so a SIGKILL at any
moment leaves either the previous set of checkpoints or the new complete one; the previous
one's optimizer.npz is unlinked (one atomic step) only after the new one is in place, so the
newest checkpoint always holds the full resume state. The weights are written on the training
thread (Keras' ``save_weights`` reads the live variables); with a :class:`Writer` the rest
(optimizer.npz from a host copy taken on the training thread, the rename, the previous one's
optimizer.npz removal, the index and pruning) finishes on a background thread while training
goes on. The directory listing is the source of truth; the index is regenerated from it.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import MISSING, asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import TypeVar

import numpy as np

from anet.errors import AnetError
from anet.files import atomic_write
from anet.schedule import ScheduleState

PREFIX = "ckpt-"
INDEX = "checkpoints.jsonl"
STATE = "state.json"
WEIGHTS = "model.weights.h5"
OPTIMIZER = "optimizer.npz"
T = TypeVar("T")
RNG = "rng.npz"  # model variables outside the weights: dropout seed-generator states


def ckpt_name(step: int) -> str:
    return f"{PREFIX}{step:08d}"


@dataclass(frozen=True)
class CheckpointState:
    """What one checkpoint records beside its weights (its ``state.json``).

    Every reader (train's resume, runs, evaluate, report, prune_periodic) uses these fields.
    A new field gets a default here (older checkpoints lack it) and a line in ``to_json``
    only if it is not a plain JSON value.
    """

    step: int  # optimizer steps taken
    epoch: int  # completed epochs
    batch_in_epoch: int  # batches of the current epoch taken (where a resume continues)
    reasons: tuple[str, ...]  # check | periodic | final | interrupt (merged on one step)
    schedule: ScheduleState  # Algorithm 1's state
    config: dict  # the resolved config (config.to_dict)
    model: str  # model.name
    num_classes: int
    input_shape: tuple[int, ...]  # [size, size, channels]
    valid_acc: float | None = None  # last validation (None: not validated at this step)
    valid_loss: float | None = None
    valid_step: int | None = None  # the step that validation was made at
    valid_polarity_acc: float | None = None  # the polarity head's valid accuracy at valid_step
    monitored: float | None = None  # Algorithm 1's accuracy that triggered a "check" save
    train_acc: float | None = None  # the mini-batch accuracy at that check
    stop_reason: str | None = None  # final/interrupt saves: epochs | max_steps | early_break | ...
    stalled: dict | None = None  # the stall check found chance accuracy: step, train_acc, ...
    finished: bool | None = None  # final/interrupt saves: False when interrupted
    time: float | None = None  # unix time of the save
    path: Path | None = field(default=None, compare=False)  # where it lies; not stored

    @property
    def name(self) -> str:
        """The checkpoint's folder name, e.g. ``ckpt-00000201``."""
        return self.path.name if self.path is not None else ckpt_name(self.step)

    def to_json(self) -> dict:
        """The JSON object stored in ``state.json`` (fields that are None are left out)."""
        row = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "path"}
        row.update(reasons=list(self.reasons), schedule=asdict(self.schedule),
                   input_shape=list(self.input_shape))
        return {k: v for k, v in row.items() if v is not None}

    @classmethod
    def from_json(cls, data, source: str | Path = "state.json", path: Path | None = None
                  ) -> CheckpointState:
        """Rebuild a state from :meth:`to_json` output; unknown or missing fields are one
        clear AnetError naming ``source``."""
        stored = [f for f in fields(cls) if f.name != "path"]
        if not isinstance(data, dict):
            raise AnetError(f"{source}: not an anet checkpoint state (not a JSON object)")
        unknown = sorted(set(data) - {f.name for f in stored})
        missing = [f.name for f in stored if f.default is MISSING and f.name not in data]
        try:
            if unknown or missing:
                raise TypeError
            sched = ScheduleState(**data["schedule"])
            return cls(**dict(data, reasons=tuple(data["reasons"]), schedule=sched,
                              input_shape=tuple(data["input_shape"])), path=path)
        except TypeError:
            what = "; ".join(part for part in (
                f"unknown fields {', '.join(unknown)}" if unknown else "",
                f"missing fields {', '.join(missing)}" if missing else "") if part)
            raise AnetError(f"{source}: not a checkpoint state of this anet version "
                            f"({what or 'bad schedule or reasons'}); train a new run") from None


def read_state(ckpt_dir: str | Path) -> CheckpointState:
    """The state of the checkpoint folder ``ckpt_dir`` (with its ``path``)."""
    ckpt_dir = Path(ckpt_dir)
    file = ckpt_dir / STATE
    return CheckpointState.from_json(json.loads(file.read_text()), file, path=ckpt_dir)


def save(root: str | Path, *, model, optimizer, state: CheckpointState,
         writer: Writer | None = None, then: Callable[[], object] | None = None) -> Path:
    """Write one checkpoint for ``state.step`` atomically, with the optimizer state, and make
    every other checkpoint weights-only; then refresh the index and call ``then`` (pruning).

    If a checkpoint for the same step exists (e.g. an Algorithm 1 save and the periodic save
    fall on one step), the weights are the same, so only its ``reasons`` are merged.

    Args:
        writer: finish the save (optimizer.npz, rename, index, ``then``) on its background
            thread; the weights and a host copy of the optimizer state are taken here first,
            so training may go on at once. ``writer.wait()`` re-raises a failed save.
    Returns:
        the checkpoint directory (with a writer: where it will lie once finished).
    """
    root = Path(root)
    if writer is not None:
        writer.wait()  # one save at a time: the one before may be this step's (merge)
    root.mkdir(parents=True, exist_ok=True)
    final = root / ckpt_name(state.step)
    record = replace(state, time=time.time(), path=None)
    arrays = {f"v{i:04d}": np.array(v.numpy()) for i, v in enumerate(optimizer.variables)}
    from anet.restore import damaged  # reading back imports this module

    if final.exists() and (why := damaged(final)):
        # e.g. a half-written state.json, skipped on resume: this save replaces it.
        print(f"notice: replacing damaged checkpoint {final.name} ({why})", file=sys.stderr)
        shutil.rmtree(final)
    if final.exists():
        def finish():
            old = read_state(final)
            merged = tuple(dict.fromkeys(old.reasons + state.reasons))
            both = dict(old.to_json(), **record.to_json())  # fields this save lacks keep old values
            if not (final / OPTIMIZER).is_file():
                atomic_write(final / OPTIMIZER, lambda p: np.savez(p, **arrays))
            atomic_write(final / STATE, json.dumps(dict(both, reasons=list(merged))))
            _settle(root, final, then)
    else:
        tmp = root / f".tmp-{ckpt_name(state.step)}-{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
        model.save_weights(str(tmp / WEIGHTS))
        np.savez(tmp / RNG, **{f"v{i:04d}": np.asarray(v.numpy()) for i, v in enumerate(rng_vars(model))})

        def finish():
            np.savez(tmp / OPTIMIZER, **arrays)
            (tmp / STATE).write_text(json.dumps(record.to_json()))
            tmp.rename(final)
            _settle(root, final, then)
    if writer is None:
        finish()
    else:
        writer.submit(finish)
    return final


def _settle(root: Path, newest: Path, then: Callable[[], object] | None) -> None:
    """After ``newest`` is in place: the others become weights-only, the index is rewritten,
    then ``then`` (pruning) runs."""
    for d in root.glob(f"{PREFIX}*"):
        if d != newest:
            (d / OPTIMIZER).unlink(missing_ok=True)
    write_index(root)
    if then is not None:
        then()


def has_optimizer(path: str | Path) -> bool:
    """Whether the checkpoint folder ``path`` holds the optimizer state (the resume state)."""
    return (Path(path) / OPTIMIZER).is_file()


class Writer:
    """Finishes checkpoint saves on one background thread, one at a time (see :func:`save`).

    ``close()`` it when training ends: that waits for the last save.
    """

    def __init__(self):
        from concurrent.futures import ThreadPoolExecutor

        self._pool = ThreadPoolExecutor(1, thread_name_prefix="anet-checkpoint")
        self._pending = None

    def submit(self, finish: Callable[[], object]) -> None:
        self.wait()
        self._pending = self._pool.submit(finish)

    def wait(self) -> None:
        """Block until the pending save is on disk; re-raise its error (e.g. a full disk)."""
        pending, self._pending = self._pending, None
        if pending is not None:
            try:
                pending.result()
            except OSError as e:
                raise AnetError(f"saving a checkpoint failed ({e}); free disk space or fix the "
                                "run folder, then rerun the same command to resume") from None

    def close(self) -> None:
        """Wait for the pending save, then stop the thread (later saves must pass no writer)."""
        try:
            self.wait()
        finally:
            self._pool.shutdown()


def list_checkpoints(root: str | Path) -> list[CheckpointState]:
    """All complete checkpoints under ``root``, oldest step first (each with its ``path``)."""
    root = Path(root)
    if not root.is_dir():
        return []
    out = []
    for d in root.glob(f"{PREFIX}*"):
        if not (d.is_dir() and (d / STATE).is_file()):
            continue
        try:
            out.append(read_state(d))
        except json.JSONDecodeError:
            continue
    return sorted(out, key=lambda s: s.step)


def latest(root: str | Path) -> CheckpointState | None:
    """The checkpoint with the highest step, or None."""
    ckpts = list_checkpoints(root)
    return ckpts[-1] if ckpts else None


def write_index(root: str | Path) -> None:
    """Regenerate ``checkpoints.jsonl`` from the directory listing (atomically)."""
    root = Path(root)
    lines = []
    for c in list_checkpoints(root):
        row = {k: v for k, v in c.to_json().items() if k != "config"}
        row["path"] = c.name
        row["resumable"] = has_optimizer(c.path)  # holds the optimizer state (the newest)
        lines.append(json.dumps(row))
    atomic_write(root / INDEX, "".join(line + "\n" for line in lines))


# --------------------------------------------------------------------------- selection

TIE_TOL = 1e-9  # accuracies closer than this are a tie


def select_best(items: Sequence[T], acc: Callable[[T], float], step: Callable[[T], int]
                ) -> tuple[T, list[T]]:
    """The one checkpoint-selection rule (``anet evaluate``, and predict/visualize/export
    without an evaluation): the highest accuracy; ties (within TIE_TOL) go to the earliest step.

    Returns:
        (the chosen item, the other tied items, earliest first).
    """
    if not items:
        raise AnetError("no checkpoints to choose from")
    best = max(acc(i) for i in items)
    tied = sorted((i for i in items if acc(i) >= best - TIE_TOL), key=step)
    return tied[0], tied[1:]


def clean_partial(root: str | Path) -> None:
    """Remove temp dirs and files left by a writer that was killed mid-save."""
    root = Path(root)
    for d in root.glob(".tmp-*"):
        shutil.rmtree(d, ignore_errors=True)
    for f in [*root.glob(".*.tmp-*"), *root.glob(f"{PREFIX}*/.*.tmp-*")]:  # atomic_write's
        f.unlink(missing_ok=True)


def rng_vars(model) -> list:
    """Model variables that ``save_weights`` leaves out (seed-generator states), in order."""
    weights = {id(w) for w in model.weights}
    return [v for v in model.variables if id(v) not in weights]
