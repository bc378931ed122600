"""Official download locations and checksums of the public datasets, and a verified fetch.

Files land in the cache (``$ANET_CACHE`` or ``~/.cache/anet``) under ``<dataset>/``; a
download is written to ``<file>.part``, checked against its MD5 and only then renamed, so a
broken connection never leaves a file that looks complete.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import urllib.request
from pathlib import Path

from anet.errors import AnetError

IDX_FILES = (
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
)

# dataset -> (mirrors tried in order, {file: md5}); the MD5s are the ones the dataset authors
# (and torchvision) publish for these exact files.
RESOURCES: dict[str, tuple[tuple[str, ...], dict[str, str]]] = {
    "mnist": (
        ("https://ossci-datasets.s3.amazonaws.com/mnist/",
         "https://storage.googleapis.com/cvdf-datasets/mnist/",
         "http://yann.lecun.com/exdb/mnist/"),
        dict(zip(IDX_FILES, ("f68b3c2dcbeaaa9fbdd348bbdeb94873", "d53e105ee54ea40749a09fcbcd1e9432",
                             "9fb629c4189551a2d022fa330f9573f3", "ec29112dd5afa0611ce80d1b7f02629c"))),
    ),
    "fashion-mnist": (
        ("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
         "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/"),
        dict(zip(IDX_FILES, ("8d4fb7e6c68d591d4c3dfef9ec88bf0d", "25c81989df183df01b3e8a0aad5dffbe",
                             "bef4ecab320f06d8554ea6380940ec79", "bb300cfdad3c16e7a12a480ee83cd310"))),
    ),
    "cifar": (
        ("https://www.cs.toronto.edu/~kriz/",),
        {"cifar-10-python.tar.gz": "c58f30108f718f92721af3b95e74349a"},
    ),
}

TIMEOUT_S = 30


def cache_dir(dataset: str) -> Path:
    """The cache folder of one dataset: ``$ANET_CACHE/<dataset>`` or ``~/.cache/anet/<dataset>``."""
    root = os.environ.get("ANET_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "anet")
    return Path(root) / dataset


def md5sum(path: Path) -> str:
    """Hex MD5 of a file, read in 1 MiB chunks."""
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _urlopen(url: str):
    # One indirection so tests can simulate being offline.
    return urllib.request.urlopen(url, timeout=TIMEOUT_S)


def fetch(dataset: str) -> Path:
    """Download every file of ``dataset`` into its cache folder (verified), return the folder.

    Files already cached with the right checksum are kept.

    Raises:
        AnetError: offline / all mirrors failed / checksum mismatch; the message says which
            files to put where instead.
    """
    mirrors, files = RESOURCES[dataset]
    folder = cache_dir(dataset)
    for name, md5 in files.items():
        target = folder / name
        if target.is_file() and md5sum(target) == md5:
            continue
        errors = []
        for base in mirrors:
            try:
                _download(base + name, target, md5)
                break
            except (OSError, http.client.HTTPException, ValueError) as e:  # URLError is an OSError
                errors.append(f"{base + name}: {getattr(e, 'reason', e)}")
        else:
            raise AnetError(
                f"could not download {dataset} ({'; '.join(errors)}). Offline? Put the files "
                f"{', '.join(files)} in {folder} (or in a folder passed as --source)"
            )
    return folder


def _download(url: str, target: Path, md5: str) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    part = target.with_name(target.name + ".part")
    digest = hashlib.md5(usedforsecurity=False)
    try:
        with _urlopen(url) as response, open(part, "wb") as f:
            for chunk in iter(lambda: response.read(1 << 20), b""):
                digest.update(chunk)
                f.write(chunk)
        if digest.hexdigest() != md5:
            raise ValueError(f"checksum mismatch (md5 {digest.hexdigest()}, expected {md5})")
        part.replace(target)
    finally:
        part.unlink(missing_ok=True)
