"""Small file helpers shared by every command (no TensorFlow, no matplotlib)."""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Callable
from pathlib import Path

from anet.errors import AnetError


def safe_name(text: str, fallback: str = "image") -> str:
    """A file-name stem safe in any file system (letters, digits, ``-``, ``_``, ``.``)."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("._") or fallback


def tmp_name(path: Path) -> Path:
    """The temp file :func:`atomic_write` uses for ``path``: hidden, beside it, per process,
    same suffix (so writers that pick a format by suffix still work). ``.*.tmp-*`` finds them."""
    return path.with_name(f".{path.stem}.tmp-{os.getpid()}{path.suffix}")


def check_writable(folder: str | Path, what: str) -> Path:
    """Create ``folder`` if needed and prove a file can be created in it, before any work.

    Args:
        what: the fix, ending the one-line error (e.g. "choose another --out").
    Raises:
        AnetError: the folder cannot be created or written (read-only, no permission, full).
    """
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix=".anet-write-test-", dir=folder)
        os.close(fd)
        os.unlink(name)
    except (FileExistsError, NotADirectoryError):
        raise AnetError(f"{folder}: not a folder (a file is in the way); {what}") from None
    except OSError as e:
        raise AnetError(f"{folder}: cannot write here ({e.strerror}); {what}") from None
    return folder


def atomic_write(path: str | Path, content: str | bytes | Callable[[Path], object], *,
                 tmp: Path | None = None) -> Path:
    """Write ``path`` via a temp file + fsync + rename: readers never see half a file.

    Args:
        content: the text or bytes to write, or a function that writes a file at the path it
            is given (e.g. ``lambda p: fig.savefig(p)``).
        tmp: the temp file, beside ``path`` (default :func:`tmp_name`), for folders whose
            readers would take the default name for one of theirs.
    Returns:
        ``path``.
    """
    path = Path(path)
    tmp = tmp or tmp_name(path)
    try:
        if callable(content):
            content(tmp)
        else:
            with open(tmp, "w" if isinstance(content, str) else "wb") as f:
                f.write(content)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)
    return path
