"""Raw dataset -> JPG tree -> stratified, group-aware splits -> sharded TFRecords + dataset.json.

Step one decodes every raw image in worker processes and writes ``jpg/<class>/<name>.jpg``
(the paper's format; quality 95, grayscale stays 1-channel), returning only small per-image
facts (size, pixel hash, pixel sums). The parent then splits, computes train mean/std and
wraps the JPGs into ``{train,valid,test}-0000k-of-0000n.tfrecord``. Everything is built in
``<out>.partial-<pid>`` and renamed to ``<out>`` once ``dataset.json`` is written, so an
interrupted run never leaves a dataset that looks finished; ``outdir`` says which folders
``--out`` may replace and repairs an interrupted swap.

Identical images (same decoded pixels) are kept, but always land in the same split, so no
pixel content is shared between train, valid and test (``duplicates`` counts them).
"""

from __future__ import annotations

import collections
import contextlib
import hashlib
import io
import json
import math
import multiprocessing
import os
import shutil
import sys
from concurrent.futures import ProcessPoolExecutor
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
from PIL import Image

from anet import lock, progress
from anet.data import folder, outdir, sources, splits, synthetic
from anet.data.contract import INTENSITY
from anet.data.info import DATASET_JSON, DatasetInfo, load_dataset
from anet.data.splits import SPLITS, group_ids, spanning_groups, split_warnings
from anet.errors import AnetError
from anet.files import atomic_write, check_writable
from anet.report import table1

JPEG_QUALITY = 95
SHARD_IMAGES = 10000  # at most this many examples per TFRecord shard
CHUNK_ITEMS = 512  # images per worker task


# --------------------------------------------------------------------------- step one: JPGs


def _convert_chunk(job: tuple) -> list:
    """Worker: decode, hash, JPEG-encode and write a chunk of images.

    Returns:
        Per image either the skip reason, or (h, w, pixel hash, per-channel sums, sums of
        squares, JPEG bytes).
    """
    root, channels, items = job
    results = []
    for image, rel in items:
        try:
            img = sources.read_image(image, channels) if isinstance(image, str) else image
        except sources.BadImage as e:
            results.append(str(e))
            continue
        img = np.ascontiguousarray(img, np.uint8)
        pixels = img.reshape(img.shape[0], img.shape[1], -1)
        digest = hashlib.blake2b(repr(img.shape).encode() + img.tobytes(), digest_size=16).digest()
        buf = io.BytesIO()
        Image.fromarray(img).save(buf, "JPEG", quality=JPEG_QUALITY)
        jpeg = buf.getvalue()
        # os-level write: 70k small files, Python's buffered file objects cost more than the JPEG
        fd = os.open(os.path.join(root, rel), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            os.write(fd, jpeg)
        finally:
            os.close(fd)
        results.append((img.shape[0], img.shape[1], digest,
                        pixels.sum((0, 1), dtype=np.float64).tolist(),
                        np.square(pixels, dtype=np.float64).sum((0, 1)).tolist(), jpeg))
    return results


def _die_with_parent(parent: int) -> None:
    """Worker initializer: end this worker when prepare dies, even by SIGKILL (which runs no
    cleanup). Linux: the kernel sends SIGKILL on the parent's death (PR_SET_PDEATHSIG);
    elsewhere a daemon thread polls the parent."""
    import ctypes
    import signal
    import threading
    import time

    try:
        libc = ctypes.CDLL(None, use_errno=True)
        if sys.platform.startswith("linux") and libc.prctl(1, signal.SIGKILL, 0, 0, 0) == 0:
            if os.getppid() != parent:  # it died before prctl took effect
                os._exit(1)
            return
    except (OSError, AttributeError):
        pass

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1)
        os._exit(1)

    threading.Thread(target=watch, daemon=True).start()


@contextlib.contextmanager
def _mapper(workers: int):
    """Ordered ``map`` over a process pool with a bounded number of tasks in flight."""
    if workers <= 1:
        yield map
        return
    # fork is fast but unsafe once TensorFlow's threads exist (e.g. inside a test process).
    ctx = multiprocessing.get_context("spawn" if "tensorflow" in sys.modules else "fork")
    with ProcessPoolExecutor(workers, mp_context=ctx, initializer=_die_with_parent,
                             initargs=(os.getpid(),)) as pool:
        def imap(fn, jobs):
            pending = collections.deque()
            for job in jobs:
                pending.append(pool.submit(fn, job))
                if len(pending) >= 2 * workers:  # streaming: never queue the whole dataset
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()

        yield imap


def _chunks(raw: sources.RawDataset, root: Path, pending: collections.deque):
    """Give every item a unique ``<class>/<name>.jpg`` and group items into worker tasks.

    Each item's (rel, label, meta, origin) is queued on ``pending`` in task order.
    """
    used: set[str] = set()
    chunk: list = []
    dirs = folder.class_dirs(raw.classes)
    for image, label, meta in raw.items:
        name = base = f"{dirs[label]}/{meta['name']}"
        k = 1
        while name in used:
            k += 1
            name = f"{base}-{k}"
        used.add(name)
        rel = name + ".jpg"
        pending.append((rel, label, meta, image if isinstance(image, str) else meta["name"]))
        chunk.append((image, rel))
        if len(chunk) == CHUNK_ITEMS:
            yield str(root), raw.channels, chunk
            chunk = []
    if chunk:
        yield str(root), raw.channels, chunk


def _note_karyotype(karyotypes: dict, cell: str, karyotype: str, origin) -> None:
    """Record a cell's ISCN karyotype; every chromosome of a cell must give the same one."""
    if not karyotype:
        return
    if not cell:
        raise AnetError(f"{origin}: a karyotype ({karyotype}) needs a cell in the manifest")
    if karyotypes.setdefault(cell, karyotype) != karyotype:
        raise AnetError(f"{origin}: cell {cell} has karyotype {karyotype} here but "
                        f"{karyotypes[cell]} on an earlier row; give each cell one karyotype")


def write_jpgs(raw: sources.RawDataset, root: Path, blob: Path, imap) -> tuple[dict, list]:
    """Step one: every raw image to ``root/<class>/<name>.jpg``; returns per-image facts, skipped.

    The JPEG bytes are also appended to ``blob`` (facts ``span`` = offset, length), so step
    two reads one file instead of reopening every JPG.
    """
    for name in folder.class_dirs(raw.classes):
        (root / name).mkdir(parents=True, exist_ok=True)
    facts: dict = {"rel": [], "label": [], "cell": [], "polarity": [], "rotation": [], "hw": [],
                   "digest": [], "sum": [], "sumsq": [], "span": [], "given": [], "karyotypes": {},
                   "structural": {}}
    pending: collections.deque = collections.deque()
    skipped = list(raw.skipped)
    with progress.bar(raw.count, "jpg", "img") as bar, \
            open(blob, "wb") as out:
        for results in imap(_convert_chunk, _chunks(raw, root, pending)):
            for r in results:
                rel, label, meta, origin = pending.popleft()
                if isinstance(r, str):
                    skipped.append({"file": origin, "reason": r})
                    continue
                facts["span"].append((out.tell(), len(r[5])))
                out.write(r[5])
                cell = meta.get("cell", "")
                given = SPLITS.index(meta["split"]) if meta.get("split") else -1
                for key, value in zip(("rel", "label", "cell", "polarity", "rotation", "hw",
                                       "digest", "sum", "sumsq", "given"),
                                      (rel, label, cell, meta.get("polarity", -1),
                                       meta.get("rotation", 0.0), r[:2], r[2], r[3], r[4], given)):
                    facts[key].append(value)
                _note_karyotype(facts["karyotypes"], cell, meta.get("karyotype", ""), origin)
                if meta.get("structural"):
                    facts["structural"][rel] = meta["structural"]
            bar.update(len(results))
    return facts, skipped


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
        "duplicates": len(labels) - len(set(facts["digest"])), "jpeg_quality": JPEG_QUALITY,
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
    with _mapper(workers) as imap:
        (work / "tmp").mkdir()
        raw = _open_raw(dataset, source, work, seed, cells, abnormal, imap, folder_opts or {})
        facts, skipped = write_jpgs(raw, work / "jpg", work / "tmp" / "jpeg.blob", imap)
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
