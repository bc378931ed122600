"""Progress reporting, one policy for every command (train, prepare, evaluate).

On a terminal: a tqdm bar on stderr. When stderr is not a terminal (a log file, a pipe): plain
lines, one per ~10% of the work or per ``PLAIN_SECONDS``, never ``\\r`` updates. With
``anet -q`` (``ANET_QUIET=1``, inherited by the processes ``train-many`` starts): no progress
and no notes, only results, warnings and errors.
"""

from __future__ import annotations

import os
import sys
import time

from tqdm import tqdm

PLAIN_SECONDS = 30.0  # a plain line at least this often...
PLAIN_SHARE = 0.10  # ...and at every this share of the total


def quiet() -> bool:
    return os.environ.get("ANET_QUIET", "") not in ("", "0")


def note(message: str) -> None:
    """A one-line notice on stdout (e.g. the training start line) unless ``-q``."""
    if not quiet():
        print(message, flush=True)


def bar(total: int, desc: str, unit: str, *, initial: int = 0, leave: bool = True):
    """A context-managed progress bar: tqdm on a terminal, plain lines otherwise, none with -q.

    The result has ``update(n)``, ``set_postfix(**values)``, ``clear()`` and ``write(msg)``.
    """
    if quiet():
        return tqdm(total=total, disable=True)
    if sys.stderr.isatty():
        return tqdm(total=total, initial=initial, desc=desc, unit=unit, leave=leave,
                    dynamic_ncols=True, file=sys.stderr)
    return PlainProgress(total, desc, unit, initial=initial)


def plain_line(desc: str, done: int, total: int, unit: str, rate: float, postfix: dict) -> str:
    """``epoch 1: 24/48 batch (50%), 3.1 batch/s, loss=0.912 acc=0.500`` (pure)."""
    share = f" ({100 * done / total:.0f}%)" if total else ""
    extra = "".join(f" {k}={v}" for k, v in postfix.items())
    return f"{desc}: {done}/{total} {unit}{share}, {rate:.1f} {unit}/s{',' if extra else ''}{extra}"


class PlainProgress:
    """The non-terminal bar: a line to stderr at every ~10% or 30 s, and one at the end."""

    def __init__(self, total: int, desc: str, unit: str, *, initial: int = 0,
                 clock=time.monotonic, stream=None):
        self.total, self.desc, self.unit, self.n = total, desc, unit, initial
        self.postfix: dict = {}
        self._clock, self._stream = clock, stream
        self._start_n, self._start_t = initial, clock()
        self._last_t, self._last_n = self._start_t, initial
        self._step = max(1, round(total * PLAIN_SHARE)) if total else 0

    def __enter__(self) -> PlainProgress:
        return self

    def __exit__(self, *exc) -> None:
        if self.n != self._last_n and exc[0] is None:
            self._emit()

    def update(self, n: int = 1) -> None:
        self.n += n
        now = self._clock()
        crossed = self._step and self.n // self._step != self._last_n // self._step
        if crossed or now - self._last_t >= PLAIN_SECONDS or (self.total and self.n >= self.total):
            self._emit(now)

    def set_postfix(self, **values) -> None:
        self.postfix = values

    def clear(self) -> None:  # nothing on screen to clear
        pass

    def write(self, message: str) -> None:
        print(message, flush=True)

    def _emit(self, now: float | None = None) -> None:
        now = self._clock() if now is None else now
        elapsed = now - self._start_t
        rate = (self.n - self._start_n) / elapsed if elapsed > 0 else 0.0
        print(plain_line(self.desc, self.n, self.total, self.unit, rate, self.postfix),
              file=self._stream or sys.stderr, flush=True)
        self._last_t, self._last_n = now, self.n


def start_line(devices: list[str], precision: str, jit: bool, distribute: str,
               replicas: int) -> str:
    """``device: GPU 0 (NVIDIA H100), precision float32, XLA on, distribution none (1 replica)``."""
    plural = "" if replicas == 1 else "s"
    return (f"device: {', '.join(devices) or 'CPU'}, precision {precision}, "
            f"XLA {'on' if jit else 'off'}, distribution {distribute} ({replicas} replica{plural})")


def device_names() -> list[str]:
    """The visible GPUs by name (``GPU 0 (NVIDIA H100 80GB HBM3)``), else ``['CPU']``."""
    import tensorflow as tf

    names = []
    for i, gpu in enumerate(tf.config.list_physical_devices("GPU")):
        try:
            name = tf.config.experimental.get_device_details(gpu).get("device_name", "")
        except (RuntimeError, ValueError):
            name = ""
        names.append(f"GPU {i} ({name})" if name else f"GPU {i}")
    return names or ["CPU"]
