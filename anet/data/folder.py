"""Your own images (``anet prepare --dataset folder``): a tree of class folders, or a CSV manifest.

* A folder of class folders, any names (spaces, unicode, digits): each class folder's image
  files, in subfolders too, are its examples. Classes are in natural order (:func:`class_order`).
* A CSV manifest whose header names the columns ``path,label`` and optionally ``group`` (a
  patient, session or cell id: a group never spans splits) and ``split`` (``train``, ``valid``,
  ``test``, or empty: such rows are split by the ratios). Paths are relative to the CSV's folder
  and stay inside it (``sources.manifest_file``); labels are any class names.

Image files are ``images.IMAGE_SUFFIXES`` (JPG, PNG, TIF, BMP, GIF; any case); other files are
skipped and listed. Channels: ``--channels 1|3``, else 3 when any image is stored in colour.
"""

from __future__ import annotations

import csv
import math
import re
import warnings
from pathlib import Path

import numpy as np
from PIL import Image

from anet.data.images import IMAGE_SUFFIXES
from anet.data.sources import RawDataset, manifest_file
from anet.data.splits import SPLITS
from anet.errors import AnetError
from anet.files import safe_name

COLUMNS = ("path", "label", "group", "split")
BUILT_IN = ("mnist", "fashion-mnist", "cifar", "karyotype", "synthetic-karyotype")
GRAY_MODES = ("1", "L", "LA", "La", "I", "F")  # and I;16*: Pillow modes without colour
HEADER_CHUNK = 256  # image headers read per worker task when channels come from the images
CONTROL = re.compile(r"[\x00-\x1f\x7f]")  # would break the TSV/CSV outputs that print class names


def class_order(names) -> list[str]:
    """Class names in natural order: digit runs by value ("2" < "10"), text case-insensitively,
    ties by the exact name, so the order never depends on the file system's listing."""
    def key(name: str):
        parts = re.split(r"([0-9]+)", name)
        return [(int(p), p) if i % 2 else (p.casefold(), p) for i, p in enumerate(parts)], name

    return sorted(set(names), key=key)


def dataset_name(source: Path) -> str:
    """A dataset's name (Table 1, reports, data/NAME): its folder's name, or the CSV's
    folder's name; a built-in dataset's name gets ``folder-`` in front."""
    base = source.resolve()
    name = safe_name(base.parent.name if base.is_file() else base.name, fallback="folder")
    return f"folder-{name}" if name in BUILT_IN else name


def _check_class_name(name: str, where: str) -> str:
    name = name.strip()
    if not name:
        raise AnetError(f"{where}: empty label; every row needs a class name")
    if CONTROL.search(name):
        raise AnetError(f"{where}: class name {name!r} holds a control character (newline, tab, "
                        "...); rename it")
    return name


def _is_image(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_SUFFIXES


def _not_image(path: Path) -> dict:
    suffix = path.suffix or "no suffix"
    return {"file": str(path), "reason": f"not an image file ({suffix}; anet reads "
                                         f"{' '.join(IMAGE_SUFFIXES)})"}


def _hidden(path: Path, root: Path) -> bool:
    return any(part.startswith(".") for part in path.relative_to(root).parts)


def check_options(dataset: str, source: str | None, channels: int | None,
                  manifest: str | None) -> str | None:
    """``--source`` after the folder-only options (--manifest, --channels) are checked."""
    if dataset != "folder":
        for flag, value in (("--manifest", manifest), ("--channels", channels)):
            if value is not None:
                raise AnetError(f"{flag} is for --dataset folder only, not {dataset}")
        return source
    if channels not in (None, 1, 3):
        raise AnetError(f"--channels {channels} must be 1 (gray) or 3 (colour)")
    if manifest is not None and source is not None:
        raise AnetError("give --source or --manifest, not both (--manifest FILE.csv is the same "
                        "as --source FILE.csv)")
    source = manifest if manifest is not None else source
    if source is None:
        raise AnetError("--dataset folder needs --source DIR (a folder of class folders) or "
                        "--manifest FILE.csv (path,label[,group][,split])")
    return source


def class_dirs(classes) -> list[str]:
    """The ``jpg/`` folder of each class: its name where that is one safe path component,
    else ``files.safe_name`` of it; unique, also on case-insensitive file systems."""
    out: list[str] = []
    for name in classes:
        ok = name not in (".", "..") and not set(name) & set("/\\\0") and len(name.encode()) <= 200
        base = d = name if ok else safe_name(name, "class")
        k = 1
        while d.casefold() in {o.casefold() for o in out}:
            k += 1
            d = f"{base}-{k}"
        out.append(d)
    return out


def list_tree(root: Path) -> tuple[list[str], list, list]:
    """(classes, items, skipped) of a folder of class folders; items label by class order."""
    folders, skipped = [], []
    for entry in sorted(root.iterdir()):
        if entry.name.startswith("."):
            continue
        if entry.is_dir():
            folders.append(entry)
        else:
            skipped.append({"file": str(entry), "reason": "not in a class folder"})
    if not folders:
        hint = (f"; {root / 'manifest.csv'} is a CSV: pass --manifest {root / 'manifest.csv'}"
                if (root / "manifest.csv").is_file() else "")
        raise AnetError(f"--source {root}: no class folders; put each class's images in a "
                        f"folder named after the class (DIR/cat/1.jpg, DIR/dog/2.png){hint}")
    for f in folders:
        if CONTROL.search(f.name):
            raise AnetError(f"{f}: class folder name {f.name!r} holds a control character "
                            "(newline, tab, ...); rename the folder")
    classes = class_order(f.name for f in folders)
    index = {name: i for i, name in enumerate(classes)}
    if len(classes) < 2:
        raise AnetError(f"--source {root}: one class folder ({folders[0].name}); a classifier "
                        "needs at least 2 classes")
    items = []
    for entry in folders:
        files = sorted(p for p in entry.rglob("*") if p.is_file() and not _hidden(p, entry))
        images = [p for p in files if _is_image(p)]
        skipped += [_not_image(p) for p in files if not _is_image(p)]
        if not images:
            other = f" ({len(files)} other files)" if files else ""
            raise AnetError(f"{entry}: class folder {entry.name!r} holds no image files{other}; "
                            "add its images or remove the folder")
        label = index[entry.name]
        for p in images:
            rel = p.relative_to(entry).with_suffix("")
            items.append((str(p), label, {"name": safe_name("-".join(rel.parts)), "cell": ""}))
    return classes, items, skipped


def _header(manifest: Path, row: list[str]) -> tuple[str, ...]:
    columns = tuple(c.strip().lower() for c in row)
    want = "path,label[,group][,split]"
    for c in columns:
        if c not in COLUMNS:
            raise AnetError(f"{manifest}:1: unknown column {c!r}; the first row names the columns "
                            f"{want}")
    missing = [c for c in ("path", "label") if c not in columns]
    if missing or len(set(columns)) < len(columns):
        what = (f"lacks the column {missing[0]!r}" if missing else "names a column twice")
        raise AnetError(f"{manifest}:1: header {','.join(columns)} {what}; the first row names "
                        f"the columns {want}")
    return columns


def read_manifest(manifest: Path) -> tuple[list[str], list, list]:
    """(classes, items, skipped) of a ``path,label[,group][,split]`` CSV (header row required)."""
    try:
        with open(manifest, newline="", encoding="utf-8-sig") as f:
            reader = csv.reader(f)
            rows = [(reader.line_num, row) for row in reader]
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise AnetError(f"{manifest}: cannot read the CSV manifest ({e}); save it as UTF-8 "
                        "CSV") from None
    rows = [(n, r) for n, r in rows if any(c.strip() for c in r)]
    if not rows:
        raise AnetError(f"{manifest}: empty manifest; write a header path,label then a row per "
                        "image")
    columns = _header(manifest, rows[0][1])
    entries, skipped, seen, group_split = [], [], {}, {}
    for lineno, row in rows[1:]:
        where = f"{manifest}:{lineno}"
        if len(row) > len(columns):
            raise AnetError(f"{where}: {len(row)} values but the header names {len(columns)} "
                            f"columns ({','.join(columns)}); quote values that hold commas")
        fields = dict(zip(columns, [c.strip() for c in row])) | {
            c: "" for c in columns[len(row):]}
        path = manifest_file(manifest, fields["path"], lineno)
        key = str(path.resolve())
        if key in seen:
            raise AnetError(f"{where}: {fields['path']} is listed again (first on line "
                            f"{seen[key]}); list each image once")
        seen[key] = lineno
        label = _check_class_name(fields["label"], where)
        given = fields.get("split", "").lower()
        if given not in ("",) + SPLITS:
            raise AnetError(f"{where}: split {fields['split']!r} must be train, valid, test or "
                            "empty (empty rows are split by --valid-ratio/--test-ratio)")
        group = fields.get("group", "")
        if group and given:
            first = group_split.setdefault(group, (given, lineno))
            if first[0] != given:
                raise AnetError(f"{where}: group {group!r} is in split {given} here but in "
                                f"{first[0]} on line {first[1]}; a group must stay in one split")
        if not _is_image(path):
            skipped.append(_not_image(path))
            continue
        entries.append((str(path), label, {"name": safe_name(path.stem), "cell": group,
                                           "split": given}))
    if not entries:
        raise AnetError(f"{manifest}: no image rows ({len(skipped)} non-image files skipped)")
    classes = class_order(label for _, label, _ in entries)
    if len(classes) < 2:
        raise AnetError(f"{manifest}: every row has the label {classes[0]!r}; a classifier needs "
                        "at least 2 classes")
    index = {name: i for i, name in enumerate(classes)}
    items = [(p, index[label], meta) for p, label, meta in entries]
    return classes, items, skipped


def _colour_count(paths: list[str]) -> int:
    """Worker: how many of these files are stored in colour (read from headers, not pixels)."""
    n = 0
    for path in paths:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                with Image.open(path) as im:
                    if im.mode == "P":
                        pal = np.asarray(im.getpalette() or [], np.int64).reshape(-1, 3)
                        n += bool((pal != pal[:, :1]).any())
                    else:
                        n += not im.mode.startswith(GRAY_MODES)
        except Exception:  # noqa: BLE001 - unreadable: the JPG step skips it and says why
            continue
    return n


def open_folder(source: str | None, *, manifest: bool, channels: int | None, imap=map
                ) -> RawDataset:
    """Your own images: ``source`` a folder of class folders, or (``manifest``, or a ``.csv``
    file) a CSV manifest. ``channels`` None: 3 when any image is stored in colour, else 1."""
    if source is None:
        raise AnetError("--dataset folder needs --source DIR (a folder of class folders) or "
                        "--manifest FILE.csv (path,label[,group][,split])")
    root = Path(source)
    if manifest or (root.is_file() and root.suffix.lower() == ".csv"):
        if not root.is_file():
            raise AnetError(f"--manifest {source}: no such file; give a CSV with the header "
                            "path,label[,group][,split]")
        classes, items, skipped = read_manifest(root)
    elif root.is_dir():
        classes, items, skipped = list_tree(root)
    else:
        raise AnetError(f"--source {source}: not a folder of class folders or a .csv manifest")
    if channels is None:
        paths = [p for p, _, _ in items]
        chunks = [paths[i:i + HEADER_CHUNK] for i in range(0, len(paths), HEADER_CHUNK)]
        colour = sum(imap(_colour_count, chunks))
        channels = 3 if colour else 1
        why = (f"{colour} of {len(items)} image files are colour; --channels 1 stores them gray"
               if colour else f"all {len(items)} image files are gray; --channels 3 for a colour "
               "model")
    else:
        why = f"--channels {channels}"
    notes = [f"classes: {len(classes)} in natural order: {', '.join(classes)}",
             f"channels: {channels} ({why})"]
    return RawDataset(dataset_name(root), str(root), tuple(classes), channels, len(items), items,
                      skipped, notes)


def check_class_splits(raw: RawDataset, labels, split: np.ndarray, groups: np.ndarray,
                       given: np.ndarray, ratios: tuple[float, float]) -> None:
    """Every class needs an example in train, in valid, and in test when there is a test
    split; else one error naming the class and what to change."""
    labels = np.asarray(labels)
    needed = [0, 1] + ([2] if (split == 2).any() else [])
    for c, name in enumerate(raw.classes):
        mine = labels == c
        n, g = int(mine.sum()), len(np.unique(groups[mine]))
        if n == 0:
            raise AnetError(f"class {name!r} has no readable images (each of its files was "
                            "skipped as unreadable); replace them or remove the class")
        for s in needed:
            if (split[mine] == s).any():
                continue
            unit = f"{n} images" + (f" in {g} groups" if g < n else "")
            if (given[mine] >= 0).all():
                fix = (f"give some of its rows split {SPLITS[s]} in the manifest (or leave their "
                       "split empty)")
            elif s == 0:
                fix = "add images or lower --valid-ratio/--test-ratio"
            else:
                ratio = ratios[s - 1]
                fix = (f"each class needs about {math.ceil(1 / ratio)} images (or groups) at "
                       f"--{SPLITS[s]}-ratio {ratio:g}; add images or raise --{SPLITS[s]}-ratio "
                       f"to {math.ceil(100 / g) / 100:g}")
            raise AnetError(f"class {name!r} has {unit} and none fall in the {SPLITS[s]} split; "
                            f"{fix}")

