"""A tiny prepared dataset written straight through the record schema (no `anet prepare`)."""

import io
import json
from pathlib import Path

import numpy as np
import tensorflow as tf
from PIL import Image

from anet.data.records import encode_example


def jpeg(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr.squeeze() if arr.shape[-1] == 1 else arr).save(buf, "JPEG", quality=95)
    return buf.getvalue()


def write_dataset(out: Path, *, n_per_split=None, channels=1, num_classes=3, size=(20, 12),
                  seed=0, shards=2, blank=False, jpg_tree=False, polarity=False) -> Path:
    """Bars whose length encodes the class, on a light background; dataset.json like prepare's.

    ``blank``: every image is the same grey field, so no network can beat chance.
    ``jpg_tree``: also the ``jpg/<class>/`` files prepare writes beside the records.
    ``polarity``: every example records a polarity (0: the bar hangs from the top, 1: it stands
    on the bottom, the image turned upside down), so a polarity head can learn it.
    """
    n_per_split = n_per_split or {"train": 48, "valid": 12, "test": 12}
    rng = np.random.default_rng(seed)
    out.mkdir(parents=True, exist_ok=True)
    h, w = size
    counts = {}
    for split, n in n_per_split.items():
        counts[split] = {str(c): 0 for c in range(num_classes)}
        writers = [tf.io.TFRecordWriter(str(out / f"{split}-{i:05d}-of-{shards:05d}.tfrecord"))
                   for i in range(shards)]
        for i in range(n):
            label = i % num_classes
            img = np.full((h, w, channels), 230, np.uint8)
            length = 4 + label * (h - 6) // max(num_classes - 1, 1)
            img[1:1 + length, w // 2 - 2:w // 2 + 2] = 30
            img = np.clip(img.astype(int) + rng.integers(-10, 10, img.shape), 0, 255).astype(np.uint8)
            pol = int(rng.integers(2)) if polarity else -1
            if pol == 1:
                img = img[::-1, ::-1].copy()
            if blank:
                img = np.full((h, w, channels), 128, np.uint8)
            rec = encode_example(image=jpeg(img), label=label, height=h, width=w, channels=channels,
                                 filename=f"{label}/{split}_{i}.jpg", cell=f"cell{i // 6}",
                                 polarity=pol)
            if jpg_tree:
                (out / "jpg" / str(label)).mkdir(parents=True, exist_ok=True)
                (out / "jpg" / str(label) / f"{split}_{i}.jpg").write_bytes(jpeg(img))
            writers[i % shards].write(rec)
            counts[split][str(label)] += 1
        for wr in writers:
            wr.close()
    info = {
        "name": "tiny", "classes": [str(c) for c in range(num_classes)], "num_classes": num_classes,
        "channels": channels, "counts": counts,
        "totals": {s: sum(c.values()) for s, c in counts.items()} | {"total": sum(n_per_split.values())},
        "size": {"min": [h, w], "max": [h, w]},
        "mean": [0.8] * channels, "std": [0.2] * channels, "has_cells": True, "skipped": [],
        "has_polarity": polarity,
    }
    (out / "dataset.json").write_text(json.dumps(info))
    return out


def cell_folder(data: Path, folder: Path, n: int = 6) -> Path:
    """A one-cell folder (as `predict --cell` and `anet karyogram` read) of the first ``n`` test
    JPGs of the tiny dataset ``data``."""
    folder.mkdir()
    for f in sorted((data / "jpg").rglob("test_*.jpg"))[:n]:
        Image.open(f).save(folder / f.name)
    return folder
