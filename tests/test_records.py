"""The TFRecord schema: encode_example / parse_example round trip, eagerly and in tf.data."""

from __future__ import annotations

import io

import numpy as np
import tensorflow as tf
from PIL import Image

from anet.data import records


def _jpeg(shape) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.full(shape, 100, np.uint8)).save(buf, "JPEG", quality=95)
    return buf.getvalue()


def test_round_trip_python():
    jpg = _jpeg((57, 45))
    rec = records.encode_example(image=jpg, label=22, height=57, width=45, channels=1,
                                 filename="X/cell0001-X-1.jpg", cell="cell0001", polarity=1,
                                 rotation=-12.5)
    ex = records.decode_example(rec)
    assert ex == {"label": 22, "image": jpg, "height": 57, "width": 45, "channels": 1,
                  "filename": "X/cell0001-X-1.jpg", "cell": "cell0001", "polarity": 1,
                  "rotation": -12.5}
    plain = records.decode_example(records.encode_example(
        image=jpg, label=0, height=57, width=45, channels=1, filename="1/a.jpg"))
    assert plain["polarity"] == -1 and plain["rotation"] == 0.0  # unknown


def test_round_trip_in_tf_data(tmp_path):
    path = str(tmp_path / "train-00000-of-00001.tfrecord")
    with tf.io.TFRecordWriter(path) as w:
        for i, shape in enumerate([(28, 28), (32, 32, 3)]):
            w.write(records.encode_example(image=_jpeg(shape), label=i, height=shape[0],
                                           width=shape[1], channels=len(shape) == 3 and 3 or 1,
                                           filename=f"{i}/a.jpg"))
    assert records.shard_paths(tmp_path, "train") == [path]
    ds = tf.data.TFRecordDataset(records.shard_paths(tmp_path, "train")).map(records.parse_example)
    got = [(int(e["label"]), tf.io.decode_jpeg(e["image"]).shape.as_list(), e["cell"].numpy())
           for e in ds]
    assert got == [(0, [28, 28, 1], b""), (1, [32, 32, 3], b"")]
