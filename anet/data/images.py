"""Image files -> model inputs, exactly as evaluation sees them (``anet predict``, ``visualize``).

JPEG/PNG/BMP/GIF pass to ``pipeline.eval_transform`` as they are; TIFs (16-bit included) and
other formats TensorFlow cannot decode are first converted with Pillow the way ``anet
prepare`` converts them, then encoded as PNG.
"""

from __future__ import annotations

import io
import re
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from anet.data.sources import BadImage, check_pixels, to_gray8, too_large
from anet.errors import AnetError

TF_FORMATS = ("JPEG", "PNG", "BMP", "GIF")  # what tf.io.decode_image reads itself
WIDE_MODES = ("I", "F")  # 16/32-bit integer and float modes (Pillow's I;16, I;16B, ... start with I)


def image_bytes(path: str | Path, channels: int) -> bytes:
    """Encoded bytes of an image file that ``eval_transform`` can decode.

    JPEG/PNG/BMP/GIF with 8-bit pixels pass through unchanged; TIFs, 16-bit and float images
    are converted like ``anet prepare`` does (8-bit gray, min-max scaled; RGB for 3-channel
    datasets) and encoded as PNG.
    """
    path = Path(path)
    try:
        raw = path.read_bytes()
        if not raw:
            raise AnetError(f"{path}: cannot read image (empty file)")
        with Image.open(io.BytesIO(raw)) as im:
            check_pixels(im)
            im.load()
            if im.format in TF_FORMATS and not im.mode.startswith(WIDE_MODES):
                return raw
            if channels == 3 and not im.mode.startswith(WIDE_MODES):
                arr = np.asarray(im.convert("RGB"))
            else:
                arr = to_gray8(im)
    except FileNotFoundError:
        raise AnetError(f"{path}: no such image file") from None
    except BadImage as e:
        raise AnetError(f"{path}: cannot read image ({e})") from None
    except Image.DecompressionBombError as e:
        raise AnetError(f"{path}: cannot read image ({too_large(e)})") from None
    except UnidentifiedImageError:
        raise AnetError(f"{path}: cannot read image (not an image Pillow recognises)") from None
    except (OSError, ValueError, SyntaxError, EOFError) as e:
        raise AnetError(f"{path}: cannot read image ({e})") from None
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, "PNG")
    return buf.getvalue()


def load_inputs(paths, spec):
    """Model inputs [N, S, S, C] float32 for image files, via ``pipeline.eval_transform``."""
    import tensorflow as tf  # here: predict and visualize load TF only once they need it

    from anet.data.pipeline import eval_transform

    xs = []
    for p in paths:
        data = image_bytes(p, spec.channels)
        try:
            xs.append(eval_transform(tf.constant(data), spec))
        except tf.errors.InvalidArgumentError as e:
            reason = re.sub(r"\{\{.*?\}\}|\[Op:.*", "", e.message.splitlines()[0]).strip()
            raise AnetError(f"{p}: cannot read image ({reason})") from None
    return tf.stack(xs)
