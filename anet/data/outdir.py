"""Where ``anet prepare`` may write, and how a new dataset replaces an old one without loss.

Rules (a user's data is never deleted):

* ``--out`` must not be, contain or lie inside ``--source`` (a folder, or a manifest/archive
  file: then ``--out`` must not be it or contain it).
* ``--force`` replaces only an anet dataset: a folder holding nothing but what prepare writes
  (``dataset.json``, ``jpg/``, ``raw/``, TFRecord shards), or an empty folder.
* The new dataset is built in ``<out>.partial-<pid>`` and swapped in by two renames
  (``out -> out.old-<pid>``, ``partial -> out``). A kill can stop between them; the next
  prepare first repairs that (:func:`recover`): a finished partial or old copy is moved back to
  a missing ``out``, an old copy is deleted only once ``out`` is a finished dataset, and a
  finished partial is never deleted as debris.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
from pathlib import Path

from anet.data.info import DATASET_JSON
from anet.errors import AnetError

# Top-level entries prepare itself writes into a dataset folder.
ANET_ENTRIES = {DATASET_JSON, "jpg", "raw", "tmp"}
SHARD = re.compile(r"(train|valid|test)-\d{5}-of-\d{5}\.tfrecord$")
TEMP = re.compile(r"\..*\.tmp-\d+")  # files.atomic_write's temp files
LEFTOVER = re.compile(r"\.(partial|old)-(\d+)$")


def lock_file(out: Path) -> Path:
    """The lock guarding ``out`` (beside it: ``out`` itself is renamed and replaced)."""
    return out.parent / f".{out.name}.anet.lock"


def is_finished(folder: Path) -> bool:
    """True when ``folder`` holds a complete anet dataset (its dataset.json was written last)."""
    try:
        meta = json.loads((folder / DATASET_JSON).read_text())
    except (OSError, ValueError):
        return False
    return isinstance(meta, dict) and "shards" in meta and "classes" in meta


def _foreign_entries(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()
                  if p.name not in ANET_ENTRIES and not SHARD.match(p.name) and not TEMP.match(p.name))


def replaceable(folder: Path) -> bool:
    """An empty folder, or one holding only a finished anet dataset or the leftovers of one."""
    if not folder.is_dir():
        return False
    names = [p.name for p in folder.iterdir()]
    if not names:
        return True
    if _foreign_entries(folder):
        return False
    return is_finished(folder) or any(SHARD.match(n) for n in names) or "tmp" in names


def check_source(out: Path, source: str | None) -> None:
    """Refuse an ``--out`` that is, contains or lies inside ``--source``."""
    if source is None:
        return
    root, target = Path(source).resolve(), out.resolve()
    if target == root or root in target.parents or target in root.parents:
        where = ("is" if target == root else "lies inside" if root in target.parents else "contains")
        raise AnetError(f"--out {out} {where} --source {source}; pick an --out outside the raw "
                        "data (prepare never writes into its source)")


def check_out(out: Path, source: str | None, force: bool) -> None:
    """Refuse an ``--out`` that would overwrite raw data or a folder anet did not make."""
    check_source(out, source)
    if out.exists() and not out.is_dir():
        raise AnetError(f"--out {out} is a file, not a folder; pick another --out")
    if out.is_dir() and not replaceable(out):
        shown = ", ".join(_foreign_entries(out)[:3]) or "files"
        raise AnetError(f"--out {out} is a folder anet did not make (it holds {shown}); pick "
                        "another --out (--force only replaces a dataset made by anet prepare)")
    if out.is_dir() and not force and not is_finished(out) and any(out.iterdir()):
        raise AnetError(f"--out {out} holds an unfinished anet dataset; re-run with --force to "
                        "rebuild it")


def _leftovers(out: Path) -> list[tuple[str, Path]]:
    """``(kind, path)`` of ``<out>.partial-<pid>`` / ``<out>.old-<pid>`` folders, oldest first."""
    if not out.parent.is_dir():
        return []
    found = []
    for p in out.parent.iterdir():
        m = LEFTOVER.search(p.name)
        if m and p.name[: m.start()] == out.name and p.is_dir():
            found.append((m.group(1), p))
    return sorted(found, key=lambda kp: kp[1].stat().st_mtime)


def recover(out: Path) -> None:
    """Repair what an interrupted prepare left beside ``out`` (call while holding its lock).

    A missing ``out`` gets the newest finished partial (the swap that was cut short), else
    the newest finished old copy. Then unfinished leftovers are removed; an old copy only
    once ``out`` is finished; a finished partial is kept, with a notice.
    """
    found = _leftovers(out)
    if not out.exists():
        for kind in ("partial", "old"):
            done = [p for k, p in found if k == kind and is_finished(p)]
            if done:
                done[-1].rename(out)
                print(f"notice: restored {out} from {done[-1].name} (left by an interrupted "
                      "prepare)", file=sys.stderr)
                break
    out_done = is_finished(out)
    for kind, p in found:
        if not p.exists():
            continue
        if is_finished(p) and (kind == "partial" or not out_done):
            print(f"notice: keeping {p}: a finished dataset left by an interrupted prepare "
                  "(rename it to use it, or delete it)", file=sys.stderr)
            continue
        print(f"removing leftover {p} of an interrupted run", file=sys.stderr)
        shutil.rmtree(p, ignore_errors=True)


def swap_in(work: Path, out: Path) -> None:
    """Move the finished dataset ``work`` to ``out``, replacing an existing one.

    The old ``out`` is parked as ``<out>.old-<pid>`` and deleted only after ``work`` is in
    place; an error between the two renames moves it back.
    """
    if not out.exists():
        work.rename(out)
        return
    old = out.parent / f"{out.name}.old-{os.getpid()}"
    out.rename(old)
    try:
        work.rename(out)
    except BaseException:
        if not out.exists():
            old.rename(out)
        raise
    shutil.rmtree(old, ignore_errors=True)


# --------------------------------------------------------------------------- reuse


FLAGS = {"dataset": "--dataset", "source": "--source", "valid_ratio": "--valid-ratio",
         "test_ratio": "--test-ratio", "seed": "--seed", "cells": "--cells",
         "abnormal": "--abnormal", "channels": "--channels"}


def options(dataset: str, source: str | None, valid_ratio: float, test_ratio: float, seed: int,
            cells: int, abnormal: float, channels: int | None = None) -> dict:
    """The prepare options a dataset was built from (stored in dataset.json as ``options``;
    folder: ``channels`` as asked, None = from the images)."""
    opts = {"dataset": dataset, "source": str(Path(source).resolve()) if source else None,
            "valid_ratio": valid_ratio, "test_ratio": test_ratio, "seed": seed}
    if dataset == "synthetic-karyotype":
        opts.update(cells=cells, abnormal=abnormal)
    if dataset == "folder":
        opts.update(channels=channels)
    return opts


def check_reuse(info, wanted: dict, out: Path) -> None:
    """A finished dataset (a ``DatasetInfo``) is reused only when built from the same dataset,
    source and options. Datasets written before ``options`` was stored are compared on what
    they recorded."""
    stored = info.options
    if not stored:
        stored = {"dataset": info.name, "seed": info.seed, "valid_ratio": info.ratios.get("valid"),
                  "test_ratio": info.ratios.get("test")}
    for key, want in wanted.items():
        if key not in stored or (key in ("source", "channels") and want is None):
            continue  # not recorded; or no --source / --channels: the default, whatever it was
        if key == "channels" and info.channels == want:
            continue  # chosen from the images before, asked for now: the same dataset
        if stored[key] != want:
            have = "(default)" if stored[key] is None else stored[key]
            if key == "channels" and stored[key] is None:
                have = f"{info.channels} (chosen from the images)"
            raise AnetError(f"--out {out} holds a dataset built with {FLAGS[key]} {have}, "
                            f"not {want}; use --force to rebuild it, or another --out")
