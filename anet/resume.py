"""A stored run's config read with today's keys, before a resume compares it with the config.

A run's checkpoints store its resolved config (``config.to_dict``). A run made before a key
existed lacks it; filled with today's default, a key whose default changed since would claim a
value the run never had. :data:`LEGACY` names the value such a run really used. Keys in
:data:`KEPT` only shape the start of a run (its first weights): a resumed run keeps its own.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Iterator
from pathlib import Path

from anet.config import Config, to_dict

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
