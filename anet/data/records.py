"""The TFRecord schema, in both directions: one place encodes and parses an example.

Features (the paper's list plus the cell id): ``label`` (int64), ``image`` (JPEG bytes),
``height``, ``width``, ``channels`` (int64, of the stored JPEG), ``filename`` (bytes, path
relative to the dataset's ``jpg/`` tree), ``cell`` (bytes, empty when unknown), ``polarity``
(int64: 0 = p-arm up, 1 = down, -1 unknown) and ``rotation`` (float, degrees counter-clockwise
from upright; 0 when unknown). Records written before polarity existed parse with the defaults.
"""

from __future__ import annotations

from pathlib import Path

import tensorflow as tf

FEATURES = {
    "label": tf.io.FixedLenFeature([], tf.int64),
    "image": tf.io.FixedLenFeature([], tf.string),
    "height": tf.io.FixedLenFeature([], tf.int64),
    "width": tf.io.FixedLenFeature([], tf.int64),
    "channels": tf.io.FixedLenFeature([], tf.int64),
    "filename": tf.io.FixedLenFeature([], tf.string),
    "cell": tf.io.FixedLenFeature([], tf.string, default_value=b""),
    "polarity": tf.io.FixedLenFeature([], tf.int64, default_value=-1),
    "rotation": tf.io.FixedLenFeature([], tf.float32, default_value=0.0),
}


def _int(v: int) -> tf.train.Feature:
    return tf.train.Feature(int64_list=tf.train.Int64List(value=[int(v)]))


def _bytes(v: bytes) -> tf.train.Feature:
    return tf.train.Feature(bytes_list=tf.train.BytesList(value=[v]))


def encode_example(
    *, image: bytes, label: int, height: int, width: int, channels: int,
    filename: str, cell: str = "", polarity: int = -1, rotation: float = 0.0,
) -> bytes:
    """Serialize one example (JPEG bytes + metadata) to a ``tf.train.Example`` string."""
    feature = {
        "label": _int(label),
        "image": _bytes(image),
        "height": _int(height),
        "width": _int(width),
        "channels": _int(channels),
        "filename": _bytes(filename.encode("utf-8")),
        "cell": _bytes(cell.encode("utf-8")),
        "polarity": _int(polarity),
        "rotation": tf.train.Feature(float_list=tf.train.FloatList(value=[float(rotation)])),
    }
    return tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString()


def parse_example(serialized: tf.Tensor) -> dict[str, tf.Tensor]:
    """Parse one serialized example (works eagerly and inside ``tf.data.map``)."""
    return tf.io.parse_single_example(serialized, FEATURES)


def decode_example(record: bytes) -> dict:
    """Eager, python-side decode of one record (for tools and tests): plain python values."""
    parsed = parse_example(tf.constant(record))
    return {
        k: (v.numpy().decode("utf-8") if k in ("filename", "cell") else
            v.numpy() if k == "image" else float(v.numpy()) if k == "rotation" else int(v.numpy()))
        for k, v in parsed.items()
    }


def shard_paths(directory, split: str) -> list:
    """Sorted TFRecord shard files of one split (``{split}-00000-of-00004.tfrecord``)."""
    return sorted(str(p) for p in Path(directory).glob(f"{split}-*.tfrecord"))
