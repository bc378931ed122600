"""A stored run's config read with today's keys, before a resume compares it with the config.

A run's checkpoints store its resolved config (``config.to_dict``). A run made before a key
existed lacks it; filled with today's default, a key whose default changed since would claim a
value the run never had. :data:`LEGACY` names the value such a run really used. Keys in
:data:`KEPT` only shape the start of a run (its first weights): a resumed run keeps its own.
The resume policy below says whether a stored run may continue under a config
(:data:`RESUME_KEYS` must match) and whether it needs to; which checkpoint it continues from
is :func:`anet.checkpoints.newest_good` (the newest holds the optimizer state).
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Iterator
from pathlib import Path

from anet.checkpoints import CheckpointState
from anet.config import Config, to_dict
from anet.errors import AnetError

# Keys added after runs existed whose default differs from what those runs did: key -> the
# value every run made before the key existed effectively used.
LEGACY: dict[str, object] = {
    "model.init": "glorot_uniform",  # Keras' default, all anet used before model.init (#12)
}
# Keys that only set a run's starting point: resuming restores the weights, so a resumed run
# keeps the value it started with (and records that one in its config.yaml).
KEPT = ("model.init",)


def _leaves(tree: dict, prefix: str = "") -> Iterator[tuple[str, object]]:
    for k, v in tree.items():
        if isinstance(v, dict):
            yield from _leaves(v, f"{prefix}{k}.")
        else:
            yield f"{prefix}{k}", v


def _lookup(tree: dict, key: str) -> tuple[bool, object]:
    node: object = tree
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            return False, None
        node = node[part]
    return True, node


def normalise(stored: dict) -> tuple[dict, dict[str, object]]:
    """``stored`` with every key of today's config that it lacks filled in (the :data:`LEGACY`
    value where there is one, else today's default), and ``{dotted key: value filled}``."""
    filled = copy.deepcopy(stored)
    added: dict[str, object] = {}
    for key, default in _leaves(to_dict(Config())):
        if key == "name" or _lookup(filled, key)[0]:
            continue
        *sections, leaf = key.split(".")
        node = filled
        for part in sections:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):  # a stored scalar where a section is now: leave it
                break
        else:
            node[leaf] = added[key] = LEGACY.get(key, default)
    return filled, added


def notice(run_dir: str | Path, added: dict[str, object]) -> str:
    """One line naming the keys a stored run lacked and the values it is read with."""
    parts = [f"{k}={v!r}" + (" (what runs before it used)" if k in LEGACY else "")
             for k, v in added.items()]
    return (f"note: {run_dir} was made before {len(added)} config key(s) existed; read with "
            f"{', '.join(parts)}")


def keep_start(cfg: Config, stored: dict) -> tuple[Config, list[tuple[str, object, object]]]:
    """``cfg`` with each :data:`KEPT` key set to the stored run's value, and
    ``(key, asked, kept)`` for each one the config asked to change."""
    changed = []
    for key in KEPT:
        found, kept = _lookup(stored, key)
        section, leaf = key.split(".")
        asked = getattr(getattr(cfg, section), leaf)
        if found and kept != asked:
            sub = dataclasses.replace(getattr(cfg, section), **{leaf: kept})
            cfg = dataclasses.replace(cfg, **{section: sub})
            changed.append((key, asked, kept))
    return cfg, changed


# --------------------------------------------------------------------------- resume policy

# Config keys that must match to resume a run (others, e.g. epochs, may change).
RESUME_KEYS = (("model",), ("data", "dir"), ("data", "image_size"), ("data", "resize"),
               ("data", "normalize"), ("train", "batch_size"), ("train", "optimizer"),
               ("train", "precision"))


def first_difference(now, stored, key: str) -> tuple[str, object, object] | None:
    """The first leaf key (dotted) where two config values differ: (key, now, stored), or None.

    Sections are compared key by key, so a differing ``model`` names e.g. ``model.width``.
    """
    if isinstance(now, dict) and isinstance(stored, dict):
        for k in [*now, *(k for k in stored if k not in now)]:
            found = first_difference(now.get(k), stored.get(k), f"{key}.{k}")
            if found:
                return found
        return None
    return None if now == stored else (key, now, stored)


def check_resumable(cfg: Config, state: CheckpointState, run_dir: Path) -> None:
    """A stored run whose RESUME_KEYS differ from ``cfg`` is a clear error naming the key."""
    now = to_dict(cfg)
    for path in RESUME_KEYS:
        a, b = now, state.config
        for k in path:
            a, b = a.get(k), (b or {}).get(k)
        found = first_difference(a, b, ".".join(path))
        if found:
            key, a, b = found
            raise AnetError(
                f"{run_dir}: existing run has {key}={b!r} but the config says {a!r}; "
                f"use another --run-dir or restore {key} to resume"
            )


def finished_reason(state: CheckpointState, cfg: Config) -> str:
    """Why a stored run needs no more training ('' if it does)."""
    if state.stop_reason == "early_break":
        return "early break"
    if state.stop_reason == "stalled" and cfg.train.on_stall == "stop":
        return "stopped at chance accuracy; set train.on_stall=warn to train on anyway"
    if state.epoch >= cfg.train.epochs:
        return f"all {cfg.train.epochs} epochs done"
    if cfg.train.max_steps and state.step >= cfg.train.max_steps:
        return f"train.max_steps={cfg.train.max_steps} reached"
    return ""
