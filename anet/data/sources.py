"""Readers of the raw datasets, each in its real on-disk format, as streams of labelled images.

Every reader returns a :class:`RawDataset` whose ``items`` yield ``(image, label, meta)``:
``image`` is a numpy uint8 array (HxW or HxWx3) for IDX and CIFAR, or the path of a file that
:func:`read_image` decodes (TIFs are decoded later, in worker processes, so decoding runs in
parallel); ``meta`` holds ``name`` (a file-name stem) and ``cell`` ("" when unknown), and for
karyotype manifests ``polarity`` (-1 unknown), ``rotation`` and ``karyotype`` ("" unknown).
Problems a user must fix raise :class:`AnetError`; a single unusable image raises
:class:`BadImage` so the caller can skip it and say why.
"""

from __future__ import annotations

import csv
import gzip
import os
import pickle
import re
import tarfile
import warnings
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

import numpy as np
from PIL import ExifTags, Image, ImageOps, UnidentifiedImageError

from anet.data import download
from anet.errors import AnetError
from anet.files import safe_name

MNIST_CLASSES = tuple(str(i) for i in range(10))
# The official names; "/" is not allowed in a folder name, so T-shirt/top becomes T-shirt-top.
FASHION_CLASSES = ("T-shirt-top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
                   "Sneaker", "Bag", "Ankle boot")
KARYOTYPE_CLASSES = tuple(str(i) for i in range(1, 23)) + ("X", "Y")
DEBIAN_FASHION = Path("/usr/share/datasets/fashion-mnist")  # Debian's fashion-mnist package
CIFAR_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6)) + ("test_batch",)
CHUNK = 4096  # images decoded from an IDX stream at a time
# Largest image (width x height) anet decodes: Pillow's decompression-bomb limit, about
# 9459 x 9459. A file whose header claims more is skipped by prepare and refused by predict
# before any pixel memory is allocated.
MAX_PIXELS = 89_478_485


class BadImage(Exception):
    """One raw image that cannot be used; the message is the reason recorded in ``skipped``."""


@dataclass
class RawDataset:
    """A raw dataset: class names in label order and a one-pass stream of its images."""

    name: str
    source: str  # where the raw files were read from
    classes: tuple[str, ...]
    channels: int
    count: int  # number of items the stream yields (for progress bars)
    items: Iterable[tuple[np.ndarray | str, int, dict]]
    skipped: list[dict] = field(default_factory=list)  # files refused while listing
    notes: list[str] = field(default_factory=list)  # what prepare's summary says about it


# --------------------------------------------------------------------------- IDX (MNIST)


def _idx_open(path: Path):
    return gzip.open(path, "rb") if path.suffix == ".gz" else open(path, "rb")


def _idx_header(f, path: Path, ndim: int) -> tuple[int, ...]:
    """Read and check an IDX header (magic 0 0 0x08 ndim, then ndim big-endian sizes)."""
    magic = _idx_read(f, path, 4, exact=False)
    if len(magic) < 4 or magic[:3] != b"\x00\x00\x08" or magic[3] != ndim:
        want = f"00 00 08 0{ndim}"
        raise AnetError(f"{path}: not an IDX{ndim} uint8 file (magic {magic.hex(' ') or 'empty'}, "
                        f"expected {want})")
    raw = _idx_read(f, path, 4 * ndim, exact=False)
    if len(raw) < 4 * ndim:
        raise AnetError(f"{path}: truncated IDX header")
    return tuple(int(x) for x in np.frombuffer(raw, ">u4"))


def _idx_read(f, path: Path, n_bytes: int, exact: bool = True) -> bytes:
    """``n_bytes`` from an IDX stream; a damaged gzip stream (bad header, CRC, deflate data)
    is a one-line AnetError wherever it shows."""
    try:
        data = f.read(n_bytes)
    except (OSError, EOFError, zlib.error) as e:
        raise AnetError(f"{path}: corrupt or truncated IDX file ({e}); download it again") from None
    if exact and len(data) < n_bytes:
        raise AnetError(f"{path}: truncated IDX file ({len(data)} of {n_bytes} data bytes)")
    return data


def read_idx_labels(path: Path) -> np.ndarray:
    """All labels of an IDX1 file (``*-labels-idx1-ubyte[.gz]``) as int64."""
    with _idx_open(path) as f:
        (n,) = _idx_header(f, path, 1)
        labels = np.frombuffer(_idx_read(f, path, n), np.uint8).astype(np.int64)
    if labels.size and labels.max() > 9:
        raise AnetError(f"{path}: label {labels.max()} out of range 0..9")
    return labels


def iter_idx_images(path: Path, chunk: int = CHUNK) -> Iterator[np.ndarray]:
    """Stream an IDX3 image file in chunks of ``(n, rows, cols)`` uint8 arrays."""
    with _idx_open(path) as f:
        n, rows, cols = _idx_header(f, path, 3)
        for start in range(0, n, chunk):
            k = min(chunk, n - start)
            yield np.frombuffer(_idx_read(f, path, k * rows * cols), np.uint8).reshape(k, rows, cols)
        if _idx_read(f, path, 1, exact=False):  # also reads a gzip file's CRC at its end
            raise AnetError(f"{path}: trailing bytes after {n} images")


def idx_count(path: Path) -> tuple[int, int, int]:
    """``(n, rows, cols)`` of an IDX3 file from its header (and, uncompressed, its size)."""
    with _idx_open(path) as f:
        n, rows, cols = _idx_header(f, path, 3)
    if path.suffix != ".gz" and path.stat().st_size != 16 + n * rows * cols:
        raise AnetError(f"{path}: truncated IDX file ({path.stat().st_size} bytes, header says "
                        f"{n} images of {rows}x{cols} = {16 + n * rows * cols} bytes)")
    return n, rows, cols


def find_idx_files(folder: Path) -> dict[str, Path] | None:
    """Map each of the four IDX names to ``name`` or ``name.gz`` in ``folder``; None if any missing."""
    found = {}
    for gz in download.IDX_FILES:
        plain = gz[:-3]
        hit = next((folder / n for n in (plain, gz) if (folder / n).is_file()), None)
        if hit is None:
            return None
        found[plain] = hit
    return found


def _idx_location(dataset: str, source: str | None) -> dict[str, Path]:
    want = ", ".join(download.IDX_FILES)
    if source is not None:
        folder = Path(source)
        if not folder.is_dir():
            raise AnetError(f"--source {source}: not a folder; {dataset} needs a folder with {want} "
                            "(gzipped or not)")
        files = find_idx_files(folder)
        if files is None:
            raise AnetError(f"--source {source}: missing IDX files; expected {want} (gzipped or not)")
        return files
    candidates = [download.cache_dir(dataset)]
    if dataset == "fashion-mnist":
        candidates.append(DEBIAN_FASHION)
    for folder in candidates:
        files = find_idx_files(folder) if folder.is_dir() else None
        if files is not None:
            return files
    return find_idx_files(download.fetch(dataset))


def open_idx(dataset: str, source: str | None) -> RawDataset:
    """MNIST / Fashion-MNIST: the train and t10k IDX pairs, pooled (train first, then t10k)."""
    files = _idx_location(dataset, source)
    parts = []
    for split in ("train", "t10k"):
        images, labels = files[f"{split}-images-idx3-ubyte"], files[f"{split}-labels-idx1-ubyte"]
        n, _, _ = idx_count(images)
        y = read_idx_labels(labels)
        if len(y) != n:
            raise AnetError(f"{labels}: {len(y)} labels but {images} has {n} images")
        parts.append((split, images, y))

    def items():
        for split, images, y in parts:
            i = 0
            for chunk in iter_idx_images(images):
                for img in chunk:
                    yield img, int(y[i]), {"name": f"{split}-{i:05d}", "cell": ""}
                    i += 1

    classes = MNIST_CLASSES if dataset == "mnist" else FASHION_CLASSES
    return RawDataset(dataset, str(files["train-images-idx3-ubyte"].parent), classes, 1,
                      sum(len(p[2]) for p in parts), items())


# --------------------------------------------------------------------------- CIFAR-10


class SafeUnpickler(pickle.Unpickler):
    """Unpickler for untrusted CIFAR batches: only numpy array reconstruction may be loaded.

    The real files (Python 2 cPickle, protocol 2) reference exactly the numpy globals below;
    ``_codecs.encode`` is how Python 3 writes bytes in protocol 2. Anything else (``os.system``,
    ``builtins.eval``, ...) is refused before it can be called.
    """

    ALLOWED: ClassVar[set[tuple[str, str]]] = {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("_codecs", "encode"),
    }

    def find_class(self, module: str, name: str):
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"refused to load global {module}.{name}")
        if name == "_reconstruct":
            return np.ndarray.__reduce__(np.zeros(0))[0]  # numpy's own _reconstruct
        return super().find_class(module, name)


def load_pickle(path: Path) -> dict:
    """Load one CIFAR python batch (bytes keys) with :class:`SafeUnpickler`."""
    try:
        with open(path, "rb") as f:
            obj = SafeUnpickler(f, encoding="bytes").load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError,
            IndexError, KeyError) as e:
        raise AnetError(f"{path}: not a valid CIFAR-10 python batch ({e})") from None
    if not isinstance(obj, dict):
        raise AnetError(f"{path}: not a valid CIFAR-10 python batch (not a dict)")
    return obj


def safe_extract(archive: Path, dest: Path) -> None:
    """Extract a tar archive, refusing absolute paths, ``..``, links and device files."""
    try:
        with tarfile.open(archive) as tar:
            for m in tar.getmembers():
                parts = Path(m.name).parts
                if m.name.startswith(("/", "\\")) or ".." in parts or not (m.isfile() or m.isdir()):
                    raise AnetError(f"{archive}: unsafe archive member {m.name!r} refused")
            tar.extractall(dest, filter="data")
    except (tarfile.TarError, OSError, EOFError, zlib.error) as e:
        raise AnetError(f"{archive}: cannot extract ({e})") from None


def _cifar_folder(source: str | None, workdir: Path) -> Path:
    if source is None:
        cache = download.cache_dir("cifar")
        folder = cache / "cifar-10-batches-py"
        if folder.is_dir():
            return folder
        archive = cache / "cifar-10-python.tar.gz"
        path = archive if archive.is_file() else download.fetch("cifar") / archive.name
    else:
        path = Path(source)
        if not path.exists():
            raise AnetError(f"--source {source}: no such file or folder")
    if path.is_file():
        safe_extract(path, workdir)
        path = workdir
    for folder in (path, path / "cifar-10-batches-py"):
        if all((folder / n).is_file() for n in CIFAR_BATCHES + ("batches.meta",)):
            return folder
    raise AnetError(f"{source or path}: expected CIFAR-10 python files "
                    f"({', '.join(CIFAR_BATCHES)}, batches.meta) or cifar-10-python.tar.gz")


def open_cifar(source: str | None, workdir: Path) -> RawDataset:
    """CIFAR-10 python version: five data batches + test batch, pooled, RGB 32x32."""
    folder = _cifar_folder(source, workdir)
    meta = load_pickle(folder / "batches.meta")
    names = meta.get(b"label_names")
    if not isinstance(names, list) or len(names) != 10:
        raise AnetError(f"{folder / 'batches.meta'}: expected b'label_names' with 10 names")
    classes = tuple(n.decode() if isinstance(n, bytes) else str(n) for n in names)

    def items():
        for batch in CIFAR_BATCHES:
            path = folder / batch
            d = load_pickle(path)
            data, labels = d.get(b"data"), d.get(b"labels")
            if (not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2
                    or data.shape[1] != 3072 or not isinstance(labels, list)
                    or len(labels) != len(data)):
                raise AnetError(f"{path}: expected b'data' uint8 N x 3072 and N b'labels'")
            files = d.get(b"filenames") or [b""] * len(data)
            for i in range(len(data)):
                label = int(labels[i])
                if not 0 <= label < 10:
                    raise AnetError(f"{path}: label {label} of image {i} out of range 0..9")
                stem = Path(os.fsdecode(files[i])).stem or f"{batch}-{i:05d}"
                image = data[i].reshape(3, 32, 32).transpose(1, 2, 0)  # R,G,B planes -> HxWx3
                yield image, label, {"name": safe_name(stem), "cell": ""}

    return RawDataset("cifar", str(folder), classes, 3, 60000, items())


# --------------------------------------------------------------------------- karyotype TIFs


def karyotype_label(text: str) -> int | None:
    """Label index of a karyotype class name (``1``..``22``, ``X``, ``Y``; ``01``, ``x`` ok)."""
    text = text.strip()
    if text.isdecimal():  # not isdigit: int() refuses digits like "²"
        text = str(int(text))
    text = text.upper()
    return KARYOTYPE_CLASSES.index(text) if text in KARYOTYPE_CLASSES else None


def read_image(path: str | Path, channels: int = 1) -> np.ndarray:
    """Decode one image file to 8-bit HxW (``channels`` 1) or HxWx3 by the intensity policy
    (``to_uint8``).

    Raises:
        BadImage: empty, non-image, corrupt or truncated file (message = the reason).
    """
    try:
        if os.path.getsize(path) == 0:
            raise BadImage("empty file")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # Pillow warns about damaged tags; we skip or read
            with Image.open(path) as im:
                check_pixels(im)
                im.load()
                upright(im)
                return to_uint8(im, channels)
    except Image.DecompressionBombError as e:  # Pillow's own check at open, at twice its limit
        raise BadImage(too_large(e)) from None
    except UnidentifiedImageError:
        raise BadImage("not an image (unknown format or damaged header)") from None
    except (OSError, ValueError, SyntaxError, EOFError) as e:
        raise BadImage(f"corrupt or truncated image ({e})") from None


def upright(im: Image.Image) -> bool:
    """Turn a loaded image in place as its EXIF (or TIFF) Orientation tag says, so phone and
    camera photos stored sideways are read as they are shown; True when it turned. The image
    keeps its mode, format and tags (the intensity policy reads the TIFF bit depth)."""
    try:
        turn = im.getexif().get(ExifTags.Base.Orientation, 1) in range(2, 9)
    except Exception:  # noqa: BLE001 - a damaged EXIF block: take the pixels as stored
        return False
    if turn:
        ImageOps.exif_transpose(im, in_place=True)
    return turn


def check_pixels(im: Image.Image) -> None:
    """Refuse an image whose header claims more than :data:`MAX_PIXELS` (a decompression bomb)."""
    if im.size[0] * im.size[1] > MAX_PIXELS:
        raise BadImage(too_large(im.size[0] * im.size[1]))


def too_large(pixels: int | Exception) -> str:
    """The reason for a too-large image, from its pixel count or Pillow's DecompressionBombError."""
    if isinstance(pixels, Exception):
        found = re.search(r"\((\d+) pixels\)", str(pixels))
        pixels = int(found.group(1)) if found else MAX_PIXELS + 1
    return f"too large: {pixels:,} pixels (the limit is {MAX_PIXELS:,})"


def _bits(im: Image.Image) -> int:
    """Bit depth of an integer image mode ("I;16", "I;16B" -> 16; "I" -> TIFF tag or 32)."""
    if im.mode.startswith("I;16"):
        return 16
    tag = getattr(im, "tag_v2", {}).get(258) if im.format == "TIFF" else None
    bits = tag[0] if isinstance(tag, tuple) and tag else tag
    return int(bits) if isinstance(bits, int) and 8 <= bits <= 32 else 32


def to_uint8(im: Image.Image, channels: int = 1) -> np.ndarray:
    """Pillow image -> uint8 HxW (``channels`` 1) or HxWx3 by the intensity policy
    (``contract.INTENSITY_TEXT``): integer pixels scaled by the full range of their bit depth
    (8-bit as is, 16-bit x 255/65535; never by the image's own min..max), float pixels taken as
    0..1, colour to gray by ITU-R 601 luma, gray repeated for 3 channels. So one picture saved
    as 8-bit, 16-bit or RGB gives the same pixels within rounding."""
    if im.mode.startswith("I") or im.mode == "F":
        a = np.asarray(im, dtype=np.float64)
        top = 1.0 if im.mode == "F" else float(2 ** _bits(im) - 1)
        gray = np.round(np.clip(a / top, 0.0, 1.0) * 255.0).astype(np.uint8)
        return np.stack([gray] * 3, axis=-1) if channels == 3 else gray
    want = "RGB" if channels == 3 else "L"
    if im.mode != want:
        im = im.convert(want)  # "L" from colour: ITU-R 601 luma (Pillow's definition)
    return np.asarray(im, dtype=np.uint8).copy()


def _hidden(path: Path) -> bool:
    return path.name.startswith(".")


def _list_folders(root: Path) -> tuple[list, list]:
    items, skipped = [], []
    for entry in sorted(root.iterdir()):
        if _hidden(entry):
            continue
        if entry.is_file():
            skipped.append({"file": str(entry), "reason": "not in a class folder"})
            continue
        label = karyotype_label(entry.name)
        if label is None:
            raise AnetError(f"{entry}: unknown label folder {entry.name!r} "
                            f"(expected {', '.join(KARYOTYPE_CLASSES)})")
        for f in sorted(p for p in entry.rglob("*") if p.is_file() and not _hidden(p)):
            items.append((str(f), label, {"name": safe_name(f.stem), "cell": ""}))
    if not items and not skipped:
        raise AnetError(f"--source {root}: no class folders ({', '.join(KARYOTYPE_CLASSES)}); pass "
                        "a folder of class folders or a CSV manifest path,label[,cell]")
    return items, skipped


MANIFEST_COLUMNS = ("path", "label", "cell", "polarity", "rotation", "karyotype", "structural")
POLARITIES = {"up": 0, "down": 1}  # the p-arm's end of the crop


def _manifest_meta(row: dict, where: str, name: str) -> dict:
    """``meta`` of one manifest row: cell, and where given polarity (0 = p-arm up, 1 = down,
    -1 unknown), rotation (degrees), the cell's ISCN karyotype and the chromosome's ISCN name
    when it is structurally rearranged (``structural``: ``der(22)t(9;22)(q34;q11)``)."""
    meta = {"name": name, "cell": row.get("cell", "").strip(), "polarity": -1, "rotation": 0.0,
            "karyotype": row.get("karyotype", "").strip(),
            "structural": row.get("structural", "").strip()}
    polarity = row.get("polarity", "").strip().lower()
    if polarity:
        if polarity not in POLARITIES:
            raise AnetError(f"{where}: polarity {polarity!r} must be up or down (the p-arm's end)")
        meta["polarity"] = POLARITIES[polarity]
    rotation = row.get("rotation", "").strip()
    if rotation:
        try:
            meta["rotation"] = float(rotation)
        except ValueError:
            raise AnetError(f"{where}: rotation {rotation!r} is not a number (degrees)") from None
    return meta


def manifest_file(manifest: Path, rel: str, lineno: int) -> Path:
    """The file a manifest row names: relative to the manifest and inside its folder, existing."""
    rel = rel.strip()
    if not rel:
        raise AnetError(f"{manifest}:{lineno}: empty path; give the image's path relative to "
                        "the manifest")
    if os.path.isabs(rel) or os.path.normpath(rel).split(os.sep)[0] == "..":
        raise AnetError(f"{manifest}:{lineno}: {rel} lies outside the manifest's folder; "
                        "paths must be relative to the manifest and stay inside its folder")
    path = manifest.parent / rel
    if not path.is_file():
        raise AnetError(f"{manifest}:{lineno}: missing file {rel} (looked for {path})")
    return path


def read_manifest(manifest: Path) -> list:
    """Rows of a CSV manifest (paths relative to it): ``path,label[,cell]`` without a header,
    or any of :data:`MANIFEST_COLUMNS` under a header row that names them (path and label
    required; the synthetic generator writes all seven)."""
    items = []
    try:
        with open(manifest, newline="", encoding="utf-8-sig") as f:
            rows = list(csv.reader(f))
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise AnetError(f"{manifest}: cannot read manifest ({e})") from None
    columns = ("path", "label", "cell")
    for lineno, row in enumerate(rows, 1):
        if not row or all(not c.strip() for c in row):
            continue
        if lineno == 1 and row[0].strip().lower() == "path" and karyotype_label(row[1]) is None:
            columns = tuple(c.strip().lower() for c in row)  # header
            unknown = [c for c in columns if c not in MANIFEST_COLUMNS]
            if unknown or columns[:2] != ("path", "label") or len(set(columns)) < len(columns):
                raise AnetError(f"{manifest}:1: header {','.join(columns)}: expected path,label "
                                f"then any of {','.join(MANIFEST_COLUMNS[2:])}")
            continue
        if len(row) not in range(2, len(columns) + 1):
            raise AnetError(f"{manifest}:{lineno}: expected 2 to {len(columns)} columns "
                            f"{','.join(columns)}, got {len(row)}")
        fields = dict(zip(columns, row))
        label = karyotype_label(fields["label"])
        if label is None:
            raise AnetError(f"{manifest}:{lineno}: unknown label {fields['label'].strip()!r} "
                            f"(expected {', '.join(KARYOTYPE_CLASSES)})")
        path = manifest_file(manifest, fields["path"], lineno)
        meta = _manifest_meta(fields, f"{manifest}:{lineno}", safe_name(path.stem))
        items.append((str(path), label, meta))
    if not items:
        raise AnetError(f"{manifest}: manifest has no rows")
    return items


def open_karyotype(source: str | None, name: str = "karyotype") -> RawDataset:
    """Chromosome TIFs labelled by class folders or a ``path,label[,cell]`` CSV manifest."""
    if source is None:
        raise AnetError("karyotype needs --source: a folder of class folders (1..22, X, Y) or a "
                        "CSV manifest path,label[,cell] (try --dataset synthetic-karyotype)")
    root = Path(source)
    if root.is_file() and root.suffix.lower() == ".csv":
        items, skipped = read_manifest(root), []
    elif root.is_dir() and (root / "manifest.csv").is_file() and not any(
            karyotype_label(p.name) is not None for p in root.iterdir() if p.is_dir()):
        items, skipped = read_manifest(root / "manifest.csv"), []
    elif root.is_dir():
        items, skipped = _list_folders(root)
    else:
        raise AnetError(f"--source {source}: not a folder of class folders or a .csv manifest")
    return RawDataset(name, str(root), KARYOTYPE_CLASSES, 1, len(items), items, skipped)
