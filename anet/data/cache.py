"""A split decoded once per command and kept: in memory when it fits, else in a cache file.

``anet train`` evaluates the validation split at every epoch end (and at every Algorithm 1
check with ``schedule.monitor: valid``); ``anet evaluate`` scores it once per checkpoint.
Decoding and resizing the JPEG/PNG bytes again for each pass costs more than the forward pass
of a small model, so both build the split once with :func:`decoded_once`: the first pass
decodes it and fills a ``tf.data`` cache, later passes read the cached tensors (the same
float32 values, so the scores are identical).

The cache lives in memory when the decoded images take at most :data:`MEMORY_LIMIT` bytes,
else in a cache file inside the run directory, in a folder of this process
(``RUN/.cache-PID/``, see ``RunPaths.cache``) that :func:`cache_folder` removes when the
command ends (a folder of that name that existed before keeps what it held); a folder left by
a killed process is removed by the next command that opens a cache folder in that run (only
``.cache-PID`` folders whose process is gone and that hold anet's :data:`MARKER` file, written
when anet makes the folder; an empty one is removed too: nothing else is touched).
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
from pathlib import Path

MEMORY_LIMIT = 1 << 30  # bytes of decoded images kept in memory (1 GiB); larger: a cache file
_FOLDER = re.compile(r"\.cache-(\d+)")
MARKER = "anet-cache"  # written into a cache folder anet makes: only such folders go as stale


def decoded_bytes(examples: int, image_size: int, channels: int) -> int:
    """Bytes of ``examples`` decoded float32 images of ``image_size`` x ``image_size`` x
    ``channels`` plus their int32 labels."""
    return examples * (image_size * image_size * channels * 4 + 4)


def where(examples: int, image_size: int, channels: int, folder: Path | None,
          limit: int = MEMORY_LIMIT) -> str | None:
    """The ``tf.data.Dataset.cache`` argument for a split: ``""`` (memory) when it fits under
    ``limit``, else a file in ``folder``; None (no cache) when it does not fit and there is
    no folder."""
    if decoded_bytes(examples, image_size, channels) <= limit:
        return ""
    if folder is None:
        return None
    try:
        folder.mkdir()  # only now: a split kept in memory leaves no trace
    except FileExistsError:
        pass  # made earlier by this command, or not by anet: then no marker, never stale
    else:
        (folder / MARKER).write_text(f"{os.getpid()}\n")
    return str(folder / "split")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True


def remove_stale(run_dir: Path) -> list[Path]:
    """Remove ``RUN/.cache-PID`` folders whose process is gone and that anet made (they hold
    :data:`MARKER`, or nothing at all); returns them."""
    gone = []
    for p in Path(run_dir).glob(".cache-*"):
        m = _FOLDER.fullmatch(p.name)
        if not (m and p.is_dir() and not p.is_symlink() and int(m.group(1)) != os.getpid()
                and not _alive(int(m.group(1)))):
            continue
        if (p / MARKER).is_file():
            shutil.rmtree(p, ignore_errors=True)
        else:
            try:
                p.rmdir()  # only when empty (made, then killed before the marker)
            except OSError:
                continue  # holds files anet did not mark: not anet's to delete
        gone.append(p)
    return gone


@contextlib.contextmanager
def cache_folder(folder: Path):
    """This process's cache folder (``RunPaths.cache``; created by :func:`where` when a split
    needs a file): stale siblings removed first, and on exit (also after an error or Ctrl-C)
    only what this process created: the folder with everything in it when it did not exist
    before, else just the entries added since (a folder anet did not create is never deleted)."""
    folder = Path(folder)
    remove_stale(folder.parent)
    before = set(folder.iterdir()) if folder.is_dir() else None
    try:
        yield folder
    finally:
        if before is None:
            shutil.rmtree(folder, ignore_errors=True)
        elif folder.is_dir():
            for p in set(folder.iterdir()) - before:
                if p.is_dir() and not p.is_symlink():
                    shutil.rmtree(p, ignore_errors=True)
                else:
                    p.unlink(missing_ok=True)
