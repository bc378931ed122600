"""Encoded image files decoded inside a TensorFlow graph as ``anet predict`` reads them.

The exported SavedModel's ``serving_default`` signature takes file bytes and has no Pillow, so
:func:`decode_file` applies the intensity policy (``contract.INTENSITY_TEXT``) with TensorFlow
ops, giving the pixels ``sources.read_image`` gives for the formats TensorFlow decodes:

- JPEG, PNG (8- or 16-bit gray: 16-bit scaled by 255/65535 and rounded), GIF (its first frame),
  uncompressed 8-, 24- and 32-bit BMP (an 8-bit BMP's palette is applied: TensorFlow's BMP
  decoder returns the palette indices, which are the pixels only for a gray palette);
- colour becomes gray by ITU-R 601 luma with Pillow's integer rounding, alpha is dropped, gray
  is repeated for 3-channel models.

Not decoded in the graph (the caller decodes them and calls ``serving_pixels``): TIF, 1- and
4-bit and run-length-compressed BMP (each refused with a one-line error naming the format), and
the EXIF orientation of photos (the pixels are taken as stored; ``anet predict`` turns them).
"""

from __future__ import annotations

import tensorflow as tf

from anet.data.contract import InputContract

BMP_HEADER = 54  # file header (14) + BITMAPINFOHEADER (40)
BMP_REFUSED = ("serving_default decodes uncompressed 8-, 24- and 32-bit BMP only; send this "
               "image as PNG, or decode it yourself and call serving_pixels")


def _le(data: tf.Tensor, offset: int, size: int) -> tf.Tensor:
    """The little-endian unsigned integer of ``size`` (2 or 4) bytes at ``offset``, as int64."""
    raw = tf.io.decode_raw(tf.strings.substr(data, offset, size), tf.uint8)
    return tf.reduce_sum(tf.cast(raw, tf.int64) * tf.constant([1, 256, 65536, 16777216][:size],
                                                              tf.int64))


def _bmp_palette(data: tf.Tensor, index: tf.Tensor) -> tf.Tensor:
    """An 8-bit BMP's palette indices [H, W, 1] -> RGB uint8 [H, W, 3] (BGRx entries after the
    info header; an index past the palette reads black, as a short palette is padded)."""
    start = 14 + _le(data, 14, 4)
    colours = _le(data, 46, 4)
    colours = tf.where(colours == 0, tf.constant(256, tf.int64), tf.minimum(colours, 256))
    entries = tf.io.decode_raw(tf.strings.substr(data, start, 4 * colours), tf.uint8)
    rgb = tf.reverse(tf.reshape(entries, [-1, 4])[:, :3], axis=[1])  # BGR -> RGB
    rgb = tf.pad(rgb, [[0, 256 - tf.shape(rgb)[0]], [0, 0]])
    return tf.gather(rgb, tf.cast(index[..., 0], tf.int32))


def _png(data: tf.Tensor) -> tf.Tensor:
    """PNG bytes -> uint8 by the intensity policy: read at 16 bits (TensorFlow gives 8-bit
    files times 257), then ``round(v * 255 / 65535)`` in integers (never a tie)."""
    v = tf.cast(tf.io.decode_png(data, channels=0, dtype=tf.uint16), tf.int32)
    return tf.cast((v * 510 + 65535) // 131070, tf.uint8)


def _luma(rgb: tf.Tensor) -> tf.Tensor:
    """RGB uint8 [H, W, 3] -> gray [H, W, 1] by ITU-R 601 luma exactly as Pillow's
    ``convert("L")`` rounds it."""
    w = tf.constant([19595, 38470, 7471], tf.int32)
    acc = tf.reduce_sum(tf.cast(rgb, tf.int32) * w, axis=-1, keepdims=True) + 0x8000
    return tf.cast(tf.bitwise.right_shift(acc, 16), tf.uint8)


def decode_file(data: tf.Tensor, channels: int) -> tf.Tensor:
    """Encoded JPEG/PNG/GIF/BMP bytes (a scalar string) -> uint8 [H, W, ``channels``] as
    ``sources.read_image`` reads the file (see the module docstring for what is refused)."""
    magic = tf.strings.substr(data, 0, 4)
    is_png = tf.equal(magic, b"\x89PNG")
    is_bmp = tf.logical_and(tf.equal(tf.strings.substr(data, 0, 2), b"BM"),
                            tf.strings.length(data) >= BMP_HEADER)

    def bmp_fields():
        return _le(data, 28, 2), _le(data, 30, 4)  # bits per pixel, compression

    bits, compression = tf.cond(is_bmp, bmp_fields, lambda: (tf.constant(24, tf.int64),
                                                             tf.constant(0, tf.int64)))
    ok = tf.logical_or(tf.logical_not(is_bmp), tf.logical_and(
        tf.reduce_any(tf.equal(bits, [8, 24, 32])),
        tf.logical_or(tf.equal(compression, 0), tf.logical_and(tf.equal(compression, 3),
                                                               tf.equal(bits, 32)))))
    with tf.control_dependencies([tf.debugging.Assert(
            ok, [BMP_REFUSED + "; bits per pixel, compression:", bits, compression])]):
        img = tf.cond(is_png, lambda: _png(data),
                      lambda: tf.io.decode_image(data, channels=0, expand_animations=False))
    img = tf.cond(tf.logical_and(is_bmp, tf.equal(bits, 8)),
                  lambda: _bmp_palette(data, img), lambda: img)
    colour = tf.shape(img)[-1] >= 3
    if channels == 1:
        out = tf.cond(colour, lambda: _luma(img[..., :3]), lambda: img[..., :1])
    else:
        out = tf.cond(colour, lambda: img[..., :3], lambda: tf.tile(img[..., :1], [1, 1, 3]))
    return tf.ensure_shape(out, [None, None, channels])


def serve_transform(data: tf.Tensor, spec: InputContract) -> tf.Tensor:
    """Encoded file bytes -> model input, as ``anet predict`` prepares the same file."""
    from anet.data.pipeline import normalize, resize

    return normalize(resize(decode_file(data, spec.channels), spec), spec)
