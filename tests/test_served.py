"""anet.data.served: file bytes decoded in the graph (the export's serving_default) give the
pixels `anet prepare`/`anet predict` read with Pillow, eagerly and inside tf.function."""

from types import SimpleNamespace

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from anet.data import pipeline, served
from anet.data.sources import read_image

rng = np.random.default_rng(0)
GRAY = rng.integers(0, 256, (30, 20), dtype=np.uint8)
RGB = rng.integers(0, 256, (30, 20, 3), dtype=np.uint8)
IMAGES = {  # name -> Pillow image saved by its suffix
    "gray.bmp": Image.fromarray(GRAY),  # 8-bit with a gray palette
    "palette.bmp": Image.fromarray(RGB).quantize(16),  # 8-bit, colour palette
    "rgb.bmp": Image.fromarray(RGB),
    "rgba.bmp": Image.fromarray(np.dstack([RGB, GRAY])),  # 32-bit
    "gray.gif": Image.fromarray(GRAY),
    "rgb.gif": Image.fromarray(RGB),
    "gray.png": Image.fromarray(GRAY),
    "rgb.png": Image.fromarray(RGB),
    "rgba.png": Image.fromarray(np.dstack([RGB, GRAY])),
    "gray-alpha.png": Image.fromarray(np.dstack([GRAY, GRAY[::-1]])),
    "palette.png": Image.fromarray(RGB).quantize(16),
    "16bit.png": Image.fromarray(rng.integers(0, 65536, (30, 20)).astype(np.uint16)),
    "1bit.png": Image.fromarray(GRAY > 128),
}
graph = {c: tf.function(lambda b, c=c: served.decode_file(b, c)) for c in (1, 3)}


@pytest.mark.parametrize("name", sorted(IMAGES))
@pytest.mark.parametrize("channels", [1, 3])
def test_decoded_in_the_graph_as_pillow_reads_the_file(tmp_path, name, channels):
    path = tmp_path / name
    IMAGES[name].save(path)
    want = read_image(path, channels)
    data = tf.constant(path.read_bytes())
    for got in (served.decode_file(data, channels), graph[channels](data)):
        assert got.dtype == tf.uint8 and got.shape == (30, 20, channels)
        np.testing.assert_array_equal(got.numpy().reshape(want.shape), want, err_msg=name)


def test_jpeg_is_tensorflows_decode_as_in_training(tmp_path):
    for arr, channels in ((GRAY, 1), (RGB, 3)):
        path = tmp_path / "a.jpg"
        Image.fromarray(arr).save(path, quality=90)
        data = tf.constant(path.read_bytes())
        np.testing.assert_array_equal(served.decode_file(data, channels),
                                      pipeline.decode(data, SimpleNamespace(channels=channels)))
    # colour JPEG for a gray model: Pillow's luma of TensorFlow's RGB decode, within 3 levels
    # of Pillow's own decode on noise (the two JPEG decoders round differently)
    got = served.decode_file(data, 1).numpy()[..., 0].astype(int)
    assert np.abs(got - read_image(path, 1).astype(int)).max() <= 3


def test_formats_tensorflow_cannot_decode_are_refused_in_one_line(tmp_path):
    Image.fromarray(GRAY > 128).save(tmp_path / "1bit.bmp")
    Image.fromarray(GRAY).save(tmp_path / "a.tif")
    for name, message in (("1bit.bmp", served.BMP_REFUSED), ("a.tif", "Unknown image file format")):
        data = tf.constant((tmp_path / name).read_bytes())
        for fn in (lambda b: served.decode_file(b, 1), graph[1]):
            with pytest.raises(tf.errors.InvalidArgumentError, match=message):
                fn(data)
