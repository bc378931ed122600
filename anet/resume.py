"""A stored run's config read with today's keys, before a resume compares it with the config.

A run's checkpoints store its resolved config (``config.to_dict``). A run made before a key
existed lacks it; filled with today's default, a key whose default changed since would claim a
value the run never had. :data:`LEGACY` names the value such a run really used. Keys in
:data:`KEPT` only shape the start of a run (its first weights): a resumed run keeps its own.
The resume policy below says whether a stored run may continue under a config
(:data:`RESUME_KEYS` must match) and whether it needs to; which checkpoint it continues from
is :func:`anet.restore.newest_good` (the newest holds the optimizer state).
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
# model.batch_norm built BN layers on VGG16 only until the change that also added model.init:
# a stored config without model.init is older, and its AlexNet or ANet-c6 has no BN layers
# whatever its batch_norm says. Such runs are read with batch_norm false (a new config's
# batch_norm: true still builds BN on every model).
BN_EVERYWHERE_SINCE = "model.init"
BN_ALWAYS = ("vgg16",)  # the models batch_norm applied to before that change


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


def bn_not_built(stored: dict) -> bool:
    """Whether ``stored`` (a run's config as its checkpoint stored it) predates batch_norm on
    AlexNet/ANet-c6 and is such a model: its ``model.batch_norm`` built no layers."""
    name = _lookup(stored, "model.name")[1]
    return not _lookup(stored, BN_EVERYWHERE_SINCE)[0] and name not in BN_ALWAYS


def normalise(stored: dict) -> tuple[dict, dict[str, object]]:
    """``stored`` with every key of today's config that it lacks filled in (the :data:`LEGACY`
    value where there is one, else today's default), and ``{dotted key: value filled}``; an
    old AlexNet/ANet-c6 run's ``model.batch_norm`` reads false (:func:`bn_not_built`)."""
    filled = copy.deepcopy(stored)
    if bn_not_built(stored) and isinstance(filled.get("model"), dict) \
            and filled["model"].get("batch_norm"):
        filled["model"]["batch_norm"] = False
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


def bn_as_built(cfg: Config, stored: dict, run_dir: str | Path) -> tuple[Config, str]:
    """``cfg`` with ``model.batch_norm`` false when it opens an old AlexNet/ANet-c6 run
    (``stored``: the run's stored config, :func:`bn_not_built`) and either says true, and the
    one-line note saying so ('' when nothing was read differently)."""
    name = _lookup(stored, "model.name")[1]
    if not bn_not_built(stored) or cfg.model.name != name or not (
            cfg.model.batch_norm or _lookup(stored, "model.batch_norm")[1]):
        return cfg, ""
    cfg = dataclasses.replace(cfg, model=dataclasses.replace(cfg.model, batch_norm=False))
    return cfg, (f"note: {run_dir} was made when model.batch_norm applied to VGG16 only, so its "
                 f"{name} has no BN layers; read with model.batch_norm=false")


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
