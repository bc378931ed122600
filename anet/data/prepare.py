"""Raw dataset -> JPG tree -> stratified, group-aware splits -> sharded TFRecords + dataset.json.

Step one (:mod:`anet.data.jpgs`) decodes every raw image in worker processes and writes
``jpg/<class>/<name>.jpg`` (the paper's format; quality 95, grayscale stays 1-channel),
returning only small per-image facts (size, pixel hash, pixel sums). The parent then splits,
computes train mean/std and wraps the JPGs into ``{train,valid,test}-0000k-of-0000n.tfrecord``.
Everything is built in ``<out>.partial-<pid>`` and renamed to ``<out>`` once ``dataset.json``
is written, so an interrupted run never leaves a dataset that looks finished; ``outdir`` says
which folders ``--out`` may replace and repairs an interrupted swap.

Identical images (same decoded pixels) are kept, but always land in the same split, so no
pixel content is shared between train, valid and test (``duplicates`` counts them).
"""

from __future__ import annotations

import json
import math
import os
import shutil
import sys
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from anet import lock, progress
from anet.data import folder, jpgs, outdir, sources, splits, synthetic
from anet.data.contract import INTENSITY
from anet.data.info import DATASET_JSON, DatasetInfo, load_dataset
from anet.data.splits import SPLITS, group_ids, spanning_groups, split_warnings
from anet.errors import AnetError
from anet.files import atomic_write, check_writable
from anet.report import table1

SHARD_IMAGES = 10000  # at most this many examples per TFRecord shard


# --------------------------------------------------------------------------- step two: records


def write_records(root: Path, blob: Path, facts: dict, split: np.ndarray, channels: int,
                  seed: int) -> dict[str, list[str]]:
    """Wrap the JPGs of each split into ``{split}-0000k-of-0000n.tfrecord`` shards (train shuffled)."""
    import tensorflow as tf  # only here: workers and `anet --help` stay TensorFlow-free

    from anet.data.records import encode_example

    shards: dict[str, list[str]] = {}
    rng = np.random.default_rng([seed, 1])
    with progress.bar(len(split), "tfrecord", "img") as bar, \
            open(blob, "rb") as jpegs:
        for s, name in enumerate(SPLITS):
            idx = np.flatnonzero(split == s)
            if name == "train":
                idx = rng.permutation(idx)  # mixed shards, so interleaved reading is shuffled
            n = max(1, math.ceil(len(idx) / SHARD_IMAGES))
            shards[name] = []
            for k, part in enumerate(np.array_split(idx, n)):
                fname = f"{name}-{k:05d}-of-{n:05d}.tfrecord"
                with tf.io.TFRecordWriter(str(root / fname)) as writer:
                    for i in part:
                        h, w = facts["hw"][i]
                        start, length = facts["span"][i]
                        jpegs.seek(start)  # not mmap: its pages would count as our memory
                        writer.write(encode_example(
                            image=jpegs.read(length), label=facts["label"][i],
                            height=h, width=w, channels=channels, filename=facts["rel"][i],
                            cell=facts["cell"][i], polarity=facts["polarity"][i],
                            rotation=facts["rotation"][i]))
                shards[name].append(fname)
                bar.update(len(part))
    return shards


# --------------------------------------------------------------------------- dataset.json


def summarize(raw: sources.RawDataset, facts: dict, split: np.ndarray, skipped: list,
              shards: dict, seed: int, ratios: tuple[float, float]) -> dict:
    """The dataset.json dict (counts, totals, sizes, train mean/std, shards, skipped)."""
    labels = np.asarray(facts["label"], np.int64)
    hw = np.asarray(facts["hw"], np.int64).reshape(-1, 2)
    train = split == 0
    pixels = float((hw[train, 0] * hw[train, 1]).sum())
    sums = np.asarray(facts["sum"]).reshape(len(labels), -1)[train].sum(0)
    sumsq = np.asarray(facts["sumsq"]).reshape(len(labels), -1)[train].sum(0)
    mean = sums / max(pixels, 1) / 255
    std = np.sqrt(np.maximum(sumsq / max(pixels, 1) / 255**2 - mean**2, 0))
    counts = {name: {c: int(((split == s) & (labels == i)).sum()) for i, c in enumerate(raw.classes)}
              for s, name in enumerate(SPLITS)}
    return {
        "name": raw.name, "source": raw.source, "seed": seed,
        "ratios": {"valid": ratios[0], "test": ratios[1]},
        "classes": list(raw.classes), "num_classes": len(raw.classes), "channels": raw.channels,
        "counts": counts,
        "totals": {"total": len(labels), **{n: int((split == s).sum()) for s, n in enumerate(SPLITS)}},
        "size": {"min": hw.min(0).tolist(), "max": hw.max(0).tolist()},
        "mean": [round(float(m), 6) for m in mean], "std": [round(float(s), 6) for s in std],
        "shards": shards, "has_cells": any(facts["cell"]),
        "has_polarity": any(p >= 0 for p in facts["polarity"]),
        "karyotypes": dict(sorted(facts["karyotypes"].items())),
        "structural": dict(sorted(facts["structural"].items())),
        "duplicates": len(labels) - len(set(facts["digest"])), "jpeg_quality": jpgs.JPEG_QUALITY,
        "intensity": INTENSITY,
        "skipped": skipped, "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }


# --------------------------------------------------------------------------- the command


def _open_raw(dataset: str, source: str | None, work: Path, seed: int, cells: int,
              abnormal: float, imap, folder_opts: dict) -> sources.RawDataset:
    if dataset == "folder":
        return folder.open_folder(source, imap=imap, **folder_opts)
    if dataset in ("mnist", "fashion-mnist"):
        return sources.open_idx(dataset, source)
    if dataset == "cifar":
        return sources.open_cifar(source, work / "tmp")
    if dataset == "karyotype":
        return sources.open_karyotype(source)
    if dataset != "synthetic-karyotype":  # the CLI's choices prevent this; library callers too
        raise AnetError(f"unknown dataset {dataset!r}; use mnist, fashion-mnist, cifar, karyotype, "
                        "synthetic-karyotype or folder")
    if source is not None:
        raise AnetError("--source is not used by synthetic-karyotype (it generates its raw data)")
    if cells < 1:
        raise AnetError(f"--cells must be at least 1, got {cells}")
    print(f"generating {cells} synthetic cells into {work.name}/raw ...", file=sys.stderr)
    manifest = synthetic.generate(work / "raw", cells=cells, seed=seed, abnormal=abnormal,
                                  map_fn=imap)
    raw = sources.open_karyotype(str(manifest), name="synthetic-karyotype")
    raw.source = (f"synthetic (cells={cells}, seed={seed}, abnormal={abnormal}; TIFs + manifest "
                  "in raw/)")
    return raw


def check_split_sizes(split: np.ndarray, groups: np.ndarray, valid_ratio: float,
                      test_ratio: float) -> None:
    """No validation split is an error (checkpoints are chosen on it); no test split a warning.

    Items of one group (a cell, or identical images) share a split, so the count that matters
    is the number of groups.
    """
    n, g = len(split), len(np.unique(groups))
    unit = "images" if g == n else "groups (cells / sets of identical images)"
    for s, name, ratio in ((1, "validation", valid_ratio), (2, "test", test_ratio)):
        if (split == s).any() or (s == 2 and ratio == 0):
            continue
        need = math.ceil(1 / ratio)
        msg = (f"the {name} split is empty: {n} images in {g} {unit} at --{SPLITS[s]}-ratio "
               f"{ratio}; about {need} {unit.split(' ')[0]} are needed (add images/--cells or "
               f"raise --{SPLITS[s]}-ratio)")
        if s == 1:
            raise AnetError(msg)
        print(f"warning: {msg}; evaluate cannot report test accuracy", file=sys.stderr)


def build(dataset: str, source: str | None, work: Path, *, valid_ratio: float, test_ratio: float,
          seed: int, cells: int, workers: int, abnormal: float = 0.0,
          options: dict | None = None, folder_opts: dict | None = None
          ) -> tuple[DatasetInfo, list[str]]:
    """Build a complete dataset (JPGs, records, dataset.json) inside the folder ``work``.

    Returns:
        Its DatasetInfo and the summary lines prepare prints (folder: classes and channels).
    """
    with jpgs.mapper(workers) as imap:
        (work / "tmp").mkdir()
        raw = _open_raw(dataset, source, work, seed, cells, abnormal, imap, folder_opts or {})
        facts, skipped = jpgs.write_jpgs(raw, work / "jpg", work / "tmp" / "jpeg.blob", imap)
    if not facts["label"]:
        raise AnetError(f"{raw.source}: no usable images ({len(skipped)} skipped)")
    groups = group_ids(facts["cell"], facts["digest"])
    given = np.asarray(facts["given"], np.int64)  # -1 unless a manifest's split column says
    kinds = splits.cell_strata(facts["cell"], facts["karyotypes"])  # normal, gain, loss, ...
    split = splits.assign_given(facts["label"], groups, given, valid_ratio, test_ratio, seed, kinds)
    if dataset == "folder":
        folder.check_class_splits(raw, facts["label"], split, groups, given,
                                  (valid_ratio, test_ratio))
    check_split_sizes(split, groups, valid_ratio, test_ratio)
    notes = [n for n in (*raw.notes, splits.kinds_line(facts["cell"], kinds, split)) if n]
    apart = spanning_groups(groups, split)
    if apart:
        notes.append(f"warning: {apart} sets of identical images lie in different given splits "
                     "(the manifest's split column); the same pixels are in two splits")
    shards = write_records(work, work / "tmp" / "jpeg.blob", facts, split, raw.channels, seed)
    shutil.rmtree(work / "tmp")
    meta = summarize(raw, facts, split, skipped, shards, seed, (valid_ratio, test_ratio))
    meta["options"] = options or {}  # what a rerun must match to reuse this dataset
    info = DatasetInfo.from_json(meta, work / DATASET_JSON)  # what every reader will check
    atomic_write(work / DATASET_JSON, json.dumps(info.to_json(), indent=1) + "\n")  # last: done
    return info, notes


def prepare(dataset: str, *, source: str | None = None, out: str | None = None,
            valid_ratio: float = 0.05, test_ratio: float = 0.05, seed: int = 0, cells: int = 200,
            workers: int = 0, force: bool = False, abnormal: float = 0.0,
            channels: int | None = None, manifest: str | None = None) -> DatasetInfo:
    """``anet prepare``: build ``out`` (default ``data/<dataset>``) atomically; print Table 1.

    ``cells`` and ``abnormal`` (fraction of abnormal cells) apply to synthetic-karyotype only;
    ``channels`` (None: from the images) and ``manifest`` (a CSV instead of ``source``) to
    folder only, whose default ``out`` is ``data/<source folder's name>``.

    Returns:
        The dataset's DatasetInfo (of the existing dataset when it is finished and not ``force``).
    """
    if not (0 <= valid_ratio < 1 and 0 <= test_ratio < 1 and valid_ratio + test_ratio < 1):
        raise AnetError(f"--valid-ratio {valid_ratio} and --test-ratio {test_ratio} must be in "
                        "[0, 1) and sum to less than 1")
    if valid_ratio == 0:
        raise AnetError("--valid-ratio 0: a validation split is required (training checks it and "
                        "evaluate chooses the checkpoint on it); use e.g. --valid-ratio 0.05")
    if not 0 <= abnormal <= 1:
        raise AnetError(f"--abnormal {abnormal} must be a fraction of cells in [0, 1]")
    if abnormal and dataset != "synthetic-karyotype":
        raise AnetError(f"--abnormal is for synthetic-karyotype only, not {dataset}")
    source = folder.check_options(dataset, source, channels, manifest)
    if out is None and dataset == "folder":
        out = f"data/{folder.dataset_name(Path(source))}"
    out_dir = Path(out or f"data/{dataset}")
    options = outdir.options(dataset, source, valid_ratio, test_ratio, seed, cells, abnormal,
                             channels)
    outdir.check_source(out_dir, source)  # before the lock file is made beside --out
    check_writable(out_dir.parent, "choose another --out")
    # One prepare per --out: the lock covers the repair, the checks, the build and the swap.
    with lock.hold(outdir.lock_file(out_dir), out_dir):
        outdir.recover(out_dir)
        outdir.check_out(out_dir, source, force)
        finished = out_dir / DATASET_JSON
        if finished.is_file() and not force:
            meta = load_dataset(out_dir)
            outdir.check_reuse(meta, options, out_dir)
            print(f"{out_dir} already holds a finished dataset (use --force to rebuild)")
            print(table1([meta]))
            return meta
        work = out_dir.parent / f"{out_dir.name}.partial-{os.getpid()}"
        work.mkdir(parents=True)
        try:
            meta, notes = build(dataset, source, work, valid_ratio=valid_ratio,
                                test_ratio=test_ratio, seed=seed, cells=cells,
                                workers=workers or os.cpu_count() or 1, abnormal=abnormal,
                                options=options,
                                folder_opts={"channels": channels, "manifest": bool(manifest)})
            outdir.swap_in(work, out_dir)
        except BaseException:
            shutil.rmtree(work, ignore_errors=True)
            raise
        if meta.skipped:
            print(f"skipped {len(meta.skipped)} files (listed in {finished})", file=sys.stderr)
        for note in notes:
            print(note, file=sys.stderr if note.startswith("warning:") else sys.stdout)
        print(table1([meta]))
        for warning in split_warnings(meta):
            print(f"warning: {warning}", file=sys.stderr)
        return meta
