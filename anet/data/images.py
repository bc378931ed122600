"""Image files -> model inputs, exactly as evaluation sees them (``anet predict``, ``visualize``).

Files are read by the intensity policy ``sources.to_uint8`` (the same as ``anet prepare``):
8-bit gray JPEG/PNG, and RGB ones for 3-channel models, pass to ``pipeline.eval_transform``
as they are; everything else (TIF, BMP, GIF, palette, alpha, 16-bit, float, colour for a
gray model, and photos with an EXIF orientation, turned upright as prepare does) is converted
with Pillow, then encoded as PNG.
"""

from __future__ import annotations

import glob
import io
import re
import warnings
from pathlib import Path

from PIL import Image, UnidentifiedImageError

from anet.data.sources import BadImage, check_pixels, to_uint8, too_large, upright
from anet.errors import AnetError

TF_FORMATS = ("JPEG", "PNG")  # what TensorFlow decodes to the policy's pixels itself ...
# ... for these Pillow modes per model channel count. Not BMP or GIF: decode_image refuses
# channels=1 for them; not colour for a gray model: libjpeg's gray differs from ITU-R 601 luma
# of the decoded RGB by up to 10 levels.
PASS_MODES = {1: ("L",), 3: ("L", "RGB")}
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff")


def open_image(path: str | Path) -> tuple[Image.Image, bytes]:
    """(loaded Pillow image, the file's bytes), or AnetError ``PATH: cannot read image (why)``."""
    path = Path(path)
    try:
        raw = path.read_bytes()
        if not raw:
            raise AnetError(f"{path}: cannot read image (empty file)")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # Pillow warns about damaged tags; we read or refuse
            im = Image.open(io.BytesIO(raw))
            check_pixels(im)
            im.load()
    except FileNotFoundError:
        raise AnetError(f"{path}: no such image file") from None
    except IsADirectoryError:
        raise AnetError(f"{path}: is a folder, not an image file") from None
    except BadImage as e:
        raise AnetError(f"{path}: cannot read image ({e})") from None
    except Image.DecompressionBombError as e:
        raise AnetError(f"{path}: cannot read image ({too_large(e)})") from None
    except UnidentifiedImageError:
        raise AnetError(f"{path}: cannot read image (not an image Pillow recognises)") from None
    except (OSError, ValueError, SyntaxError, EOFError) as e:
        raise AnetError(f"{path}: cannot read image ({e})") from None
    return im, raw


def image_bytes(path: str | Path, channels: int) -> tuple[bytes, tuple[int, int]]:
    """(encoded bytes that ``pipeline.eval_transform`` decodes, (height, width)) of a file.

    8-bit gray JPEG/PNG (and RGB for ``channels`` 3) pass through unchanged; other files are
    converted by the intensity policy and encoded as PNG.
    """
    im, raw = open_image(path)
    turned = upright(im)  # TensorFlow ignores the EXIF orientation: turned ones are re-encoded
    hw = (im.height, im.width)
    if not turned and im.format in TF_FORMATS and im.mode in PASS_MODES.get(channels, ()):
        return raw, hw  # TensorFlow decodes these to the same pixels
    buf = io.BytesIO()
    Image.fromarray(to_uint8(im, channels)).save(buf, "PNG")
    return buf.getvalue(), hw


def load_input(path, spec):
    """(model input [S, S, C], (height, width) of the file) of one image file."""
    import tensorflow as tf  # here: predict and visualize load TF only once they need it

    from anet.data.pipeline import eval_transform

    data, hw = image_bytes(path, spec.channels)
    try:
        return eval_transform(tf.constant(data), spec), hw
    except tf.errors.InvalidArgumentError as e:
        reason = re.sub(r"\{\{.*?\}\}|\[Op:.*", "", e.message.splitlines()[0]).strip()
        raise AnetError(f"{path}: cannot read image ({reason})") from None


def load_inputs(paths, spec):
    """Model inputs [N, S, S, C] float32 for image files, via ``pipeline.eval_transform``."""
    import tensorflow as tf

    return tf.stack([load_input(p, spec)[0] for p in paths])


def expand_paths(args) -> tuple[list[Path], list[tuple[str, str]]]:
    """Files named by ``args``: files as given, folders searched recursively for images
    (hidden entries skipped), glob patterns expanded. Returns (files, [(arg, why unmatched)])."""
    files, missing = [], []
    for arg in map(str, args):
        if Path(arg).is_dir():
            found = sorted(p for p in Path(arg).rglob("*") if p.is_file()
                           and p.suffix.lower() in IMAGE_SUFFIXES
                           and not any(part.startswith(".") for part in p.relative_to(arg).parts))
            files += found
            if not found:
                missing.append((arg, "folder holds no image files"))
        elif glob.has_magic(arg) and not Path(arg).exists():
            found = sorted(Path(p) for p in glob.glob(arg, recursive=True) if Path(p).is_file())
            files += found
            if not found:
                missing.append((arg, "no files match this pattern"))
        else:
            files.append(Path(arg))
    return files, missing
