"""Which checkpoints a run keeps (``run.keep_checkpoints``, ``run.keep_best``), as a pure
function of their states, and the removal of the others (only anet's own files).

A checkpoint stays while any of its reasons keeps it:

- it is the newest (the one a run resumes from, the only one with the optimizer state);
- ``final`` or ``interrupt``;
- ``periodic`` and among the newest ``keep_checkpoints`` periodic ones (0: all);
- ``check`` (Algorithm 1) and among the ``keep_best`` best by their monitored accuracy
  (None: all); ties go to the earliest step, as in :func:`anet.checkpoints.select_best`.
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path

from anet import checkpoints
from anet.checkpoints import CheckpointState

# What a checkpoint folder may hold: its files, and atomic_write's temp files of them.
OWN_FILES = (checkpoints.STATE, checkpoints.WEIGHTS, checkpoints.OPTIMIZER, checkpoints.RNG)


def to_remove(ckpts: Sequence[CheckpointState], keep_periodic: int = 0,
              keep_best: int | None = None) -> list[CheckpointState]:
    """The checkpoints that no reason keeps, oldest first (see the module docstring)."""
    if not ckpts:
        return []
    newest = max(c.step for c in ckpts)
    periodic = sorted((c for c in ckpts if "periodic" in c.reasons), key=lambda c: c.step)
    kept_periodic = periodic[-keep_periodic:] if keep_periodic else periodic
    checks = sorted((c for c in ckpts if "check" in c.reasons),
                    key=lambda c: (-_monitored(c), c.step))
    kept_checks = checks[:keep_best] if keep_best is not None else checks
    keep = {c.step for c in [*kept_periodic, *kept_checks]} | {newest}
    keep |= {c.step for c in ckpts if {"final", "interrupt"} & set(c.reasons)}
    return sorted((c for c in ckpts if c.step not in keep), key=lambda c: c.step)


def _monitored(c: CheckpointState) -> float:
    """A check save's monitored accuracy (its valid accuracy when an older one lacks it)."""
    for value in (c.monitored, c.valid_acc):
        if value is not None:
            return value
    return float("-inf")


def prune(root: str | Path, keep_periodic: int = 0, keep_best: int | None = None) -> list[str]:
    """Remove the checkpoints :func:`to_remove` names under ``root``; returns their names.

    Only folders that hold nothing but anet's checkpoint files are removed (one that holds
    anything else is kept, with a notice); each is first renamed to a ``.tmp-`` name, so a kill
    midway never leaves a half-removed checkpoint in the listing.
    """
    if not keep_periodic and keep_best is None:
        return []
    return remove(root, to_remove(checkpoints.list_checkpoints(root), keep_periodic, keep_best))


def drop_after(root: str | Path, step: int) -> list[str]:
    """Remove the checkpoints after ``step`` under ``root`` (a multi-worker run's worker, when
    the cluster resumes from the chief's older one), as :func:`remove` does; returns their
    names."""
    return remove(root, [c for c in checkpoints.list_checkpoints(root) if c.step > step])


def remove(root: str | Path, ckpts: Sequence[CheckpointState]) -> list[str]:
    """Remove the checkpoint folders ``ckpts`` under ``root`` that hold nothing but anet's own
    files (see :func:`prune`), then rewrite the index; returns the names removed."""
    root = Path(root)
    removed = []
    for c in ckpts:
        foreign = sorted(p.name for p in c.path.iterdir() if not _own(p))
        if foreign:
            print(f"notice: keeping {c.path}: it holds files anet did not write "
                  f"({', '.join(foreign[:3])})", file=sys.stderr)
            continue
        gone = root / f".tmp-rm-{c.name}-{os.getpid()}"
        c.path.rename(gone)
        shutil.rmtree(gone)
        removed.append(c.name)
    if removed:
        checkpoints.write_index(root)
    return removed


def _own(path: Path) -> bool:
    """Whether ``path`` (inside a checkpoint folder) is a file anet writes there."""
    if not path.is_file():
        return False
    return path.name in OWN_FILES or any(  # atomic_write's temp files (files.tmp_name)
        path.name.startswith(f".{Path(name).stem}.tmp-") for name in OWN_FILES)
