"""Step one of ``anet prepare``: every raw image decoded in worker processes and written as
``jpg/<class>/<name>.jpg`` (the paper's format; quality 95, grayscale stays 1-channel).

Workers return only small per-image facts (size, pixel hash, pixel sums) and the JPEG bytes,
which the parent appends to one blob so step two (``prepare.write_records``) reads one file.
A worker ends when prepare dies, even by SIGKILL (:func:`mapper`).
"""

from __future__ import annotations

import collections
import contextlib
import hashlib
import io
import multiprocessing
import os
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image

from anet import progress
from anet.data import folder, sources
from anet.data.splits import SPLITS
from anet.errors import AnetError

JPEG_QUALITY = 95
CHUNK_ITEMS = 512  # images per worker task


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
def mapper(workers: int):
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
