"""Reading checkpoints back: each file read once, and that read is the damage check.

A checkpoint folder (layout in anet.checkpoints) is read by :func:`read`: state.json parsed,
every dataset of model.weights.h5 read in full, optimizer.npz and rng.npz read member by
member (zip CRCs checked). A truncated or half-written file fails that read before anything
is assigned to a model, and :func:`damaged` turns the failure into a one-line reason such as
``model.weights.h5: ...`` or ``state.json is missing``.

The arrays read are then assigned straight to the model's variables (:class:`Restorer`):
which variable each stored array belongs to is found once per model by Keras' own saving walk
(the one ``model.save_weights`` takes), so scoring many checkpoints into one model neither
reads a file twice nor walks the model again per checkpoint. A file whose arrays do not
match that map exactly (another model, width or class count, or a layout this Keras version
does not write) is loaded by Keras' ``load_weights``, whose error says what does not fit.
"""

from __future__ import annotations

import sys
import warnings
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from anet.checkpoints import (
    OPTIMIZER,
    PREFIX,
    RNG,
    STATE,
    WEIGHTS,
    CheckpointState,
    list_checkpoints,
    read_state,
    rng_vars,
)
from anet.errors import AnetError


class Damaged(AnetError):
    """A checkpoint file that cannot be read in full; ``reason`` is :func:`damaged`'s line."""

    def __init__(self, path: Path, reason: str):
        super().__init__(f"{path}: checkpoint is damaged ({reason}); pick another with --ckpt")
        self.path, self.reason = path, reason


@dataclass(frozen=True)
class Contents:
    """Everything one checkpoint folder holds, as read by :func:`read`."""

    state: CheckpointState
    weights: dict[str, np.ndarray]  # model.weights.h5 dataset path -> array
    optimizer: list[np.ndarray] | None  # optimizer.variables order; None: absent or not kept
    rng: list[np.ndarray] | None  # seed-generator states (None: an older checkpoint)


def _npz(file: Path, keep: bool) -> list[np.ndarray] | None:
    """Every member of an npz file read (its CRC checked), in name order; None if absent."""
    try:
        data = np.load(file)
    except FileNotFoundError:
        return None
    with data:
        arrays = [data[k] for k in sorted(data.files)]
    return arrays if keep else []


def read(path: str | Path, *, optimizer: bool = False) -> Contents:
    """Read the checkpoint folder ``path`` in full, each file once.

    Args:
        optimizer: keep optimizer.npz's arrays (a resume); else it is only read through, so a
            damaged one is still found (evaluate lists it) without holding it in memory.
    Raises:
        Damaged: a file is missing (only optimizer.npz and rng.npz may be) or cannot be read.
    """
    import h5py

    path = Path(path)
    name = STATE
    try:
        state = read_state(path)
        name = WEIGHTS
        weights = {}
        with h5py.File(path / WEIGHTS, "r") as f:
            f.visititems(lambda key, obj: weights.__setitem__(key, obj[()])
                         if isinstance(obj, h5py.Dataset) else None)
        name = OPTIMIZER
        opt = _npz(path / OPTIMIZER, keep=optimizer)
        name = RNG
        rng = _npz(path / RNG, keep=True)
    except FileNotFoundError:
        raise Damaged(path, f"{name} is missing") from None
    except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile, AnetError) as e:
        first = str(e).splitlines()[0][:120] if str(e) else type(e).__name__
        raise Damaged(path, f"{name}: {first}") from None
    return Contents(state=state, weights=weights, optimizer=opt or None, rng=rng)


def damaged(path: str | Path) -> str:
    """Why the checkpoint folder ``path`` cannot be loaded ('' when it can); reads it in full."""
    try:
        read(path)
    except Damaged as e:
        return e.reason
    return ""


def _variable_paths(model) -> dict[str, object] | None:
    """Where ``model.save_weights`` puts each variable of ``model`` in model.weights.h5
    (dataset path -> variable), from Keras' own saving walk; None when this Keras version's
    walk cannot be followed (then :class:`Restorer` lets Keras load every file)."""
    try:
        from keras.src.saving import saving_lib

        class Record(saving_lib.H5IOStore):  # the store the walk writes to, keeping only paths
            def __init__(self):
                self.found, self.at = {}, ""

            def __bool__(self):
                return True

            def make(self, path, metadata=None):
                self.at = path
                return self

            def __setitem__(self, key, value):
                self.found["/".join(p for p in (self.at, "vars", key) if p)] = value

        record = Record()
        saving_lib._save_state(model, weights_store=record, assets_store=None, inner_path="",
                               visited_saveables=set())
    except Exception:  # a private API: any change to it falls back to Keras' loader
        return None
    variables = set(id(v) for v in model.variables)
    if not record.found or any(id(v) not in variables for v in record.found.values()):
        return None
    return record.found


class Restorer:
    """Loads checkpoints into one model, each checkpoint's files read once (see module doc)."""

    def __init__(self, model):
        self.model = model
        self.paths = _variable_paths(model)
        self.keras_loads = 0  # files Keras' loader had to take (a mismatch or an odd layout)

    def weights(self, path: str | Path) -> CheckpointState:
        """Read checkpoint ``path`` and assign its weights (and seed states) to the model.

        Raises:
            Damaged: see :func:`read`.
            AnetError: the checkpoint does not fit this model.
        """
        contents = read(path)
        self.assign(path, contents)
        return contents.state

    def assign(self, path: str | Path, contents: Contents) -> None:
        """Assign ``contents`` (read from ``path``) to the model."""
        stored, paths = contents.weights, self.paths
        # the fast path only for an exact fit: the same arrays, shapes and dtypes (Keras keeps
        # e.g. bfloat16 as uint16 plus an attribute, which only its own loader reads)
        if paths is not None and stored.keys() == paths.keys() and all(
                tuple(paths[k].shape) == stored[k].shape and paths[k].dtype == stored[k].dtype.name
                for k in stored):
            for key, variable in paths.items():
                variable.assign(stored[key])
        else:  # Keras decides what fits, and says what does not
            self.keras_loads += 1
            keras_load(path, self.model)
        _assign_rng(self.model, contents.rng)


def keras_load(path: str | Path, model) -> None:
    """Keras' ``load_weights`` of a checkpoint's weights; a mismatch is a clear AnetError."""
    try:
        with warnings.catch_warnings():
            # Keras only warns when parts of the file match no layer (and keeps random weights
            # there): for a checkpoint that must restore a model exactly, that is an error.
            warnings.simplefilter("error", UserWarning)
            model.load_weights(str(Path(path) / WEIGHTS))
    except (ValueError, KeyError, UserWarning) as e:
        if why := damaged(path):
            raise Damaged(Path(path), why) from None
        raise AnetError(
            f"{path}: checkpoint does not fit this model ({str(e).splitlines()[0][:160]}); "
            "was it made with another model.name, width or class count?"
        ) from None
    except OSError:
        raise Damaged(Path(path), damaged(path) or WEIGHTS) from None


def load_weights(path: str | Path, model) -> CheckpointState:
    """Load one checkpoint's weights into ``model`` (one read); returns its state."""
    return Restorer(model).weights(path)


def _assign_rng(model, saved: list[np.ndarray] | None) -> None:
    variables = rng_vars(model)
    if saved is not None and len(saved) == len(variables):
        for a, v in zip(saved, variables):
            v.assign(a)


def load(path: str | Path, *, model, optimizer) -> CheckpointState:
    """Restore weights, seed states and optimizer variables from one checkpoint (one read);
    returns its state. A weights-only checkpoint (``checkpoints.has_optimizer``) leaves
    ``optimizer`` as it is."""
    path = Path(path)
    contents = read(path, optimizer=True)
    arrays, variables = contents.optimizer, optimizer.variables
    if arrays is not None and (len(arrays) != len(variables) or any(
            tuple(a.shape) != tuple(v.shape) for a, v in zip(arrays, variables))):
        raise AnetError(f"{path}: optimizer state does not match train.optimizer of this config")
    Restorer(model).assign(path, contents)
    for a, v in zip(arrays or [], variables):
        v.assign(a)
    return contents.state


# --------------------------------------------------------------------------- which ones load


def unlisted(root: str | Path, listed: list[CheckpointState]) -> list[tuple[str, str]]:
    """``(path, why)`` of checkpoint folders that ``list_checkpoints`` left out (bad state.json)."""
    have = {str(c.path) for c in listed}
    root = Path(root)
    dirs = sorted(d for d in root.glob(f"{PREFIX}*") if d.is_dir()) if root.is_dir() else []
    return [(str(d), damaged(d) or "unreadable") for d in dirs if str(d) not in have]


def skip_notice(path: str | Path, why: str) -> str:
    """The notice printed for a damaged checkpoint that is left out."""
    return f"notice: skipping damaged checkpoint {path} ({why})"


def split_damaged(root: str | Path, listed: list[CheckpointState]
                  ) -> tuple[list[CheckpointState], list[tuple[str, str]]]:
    """(checkpoints that load, ``(path, why)`` of damaged ones), each damaged one with a notice."""
    good, bad = [], unlisted(root, listed)
    for c in listed:
        if why := damaged(c.path):
            bad.append((str(c.path), why))
        else:
            good.append(c)
    for path, why in bad:
        print(skip_notice(path, why), file=sys.stderr)
    return good, bad


def newest_good(root: str | Path) -> CheckpointState | None:
    """The newest checkpoint that loads; each damaged one found on the way gets a notice."""
    listed = list_checkpoints(root)
    for path, why in unlisted(root, listed):
        print(skip_notice(path, why), file=sys.stderr)
    for c in reversed(listed):
        why = damaged(c.path)
        if not why:
            return c
        print(skip_notice(c.path, why), file=sys.stderr)
    return None
