"""Raw readers: IDX, CIFAR pickles/archives, karyotype TIF trees and manifests, downloads."""

from __future__ import annotations

import gzip
import http.client
import io
import os
import pickle
import tarfile
import urllib.error

import numpy as np
import pytest
from PIL import Image

from anet.data import download, sources
from anet.errors import AnetError
from tests.conftest import (
    chromosome,
    digits,
    make_cifar_dir,
    make_cifar_tar,
    make_idx_dir,
    make_manifest,
    write_idx,
)

# --------------------------------------------------------------------------- IDX


@pytest.mark.parametrize("gz", [True, False])
def test_idx_pools_train_and_test(tmp_path, gz):
    folder = make_idx_dir(tmp_path / "idx", n_train=30, n_test=12, gz=gz)
    raw = sources.open_idx("mnist", str(folder))
    items = list(raw.items)
    assert raw.count == len(items) == 42 and raw.classes == tuple("0123456789")
    train_x, train_y = digits(30, 0)
    test_x, test_y = digits(12, 1)
    assert all((img == x).all() for (img, _, _), x in zip(items, np.concatenate([train_x, test_x])))
    assert [y for _, y, _ in items] == list(train_y) + list(test_y)
    assert items[0][2]["name"] == "train-00000" and items[30][2]["name"] == "t10k-00000"


def test_idx_bad_magic_names_the_file(tmp_path):
    folder = make_idx_dir(tmp_path / "idx", n_train=10, n_test=10)
    bad = folder / "train-images-idx3-ubyte.gz"
    bad.write_bytes(gzip.compress(b"\x00\x00\x08\x01" + b"\x00" * 20))
    with pytest.raises(AnetError, match="train-images-idx3-ubyte.gz: not an IDX3"):
        sources.open_idx("mnist", str(folder))


def test_idx_truncated_raw_and_gz(tmp_path):
    folder = make_idx_dir(tmp_path / "raw", n_train=10, n_test=10, gz=False)
    f = folder / "t10k-images-idx3-ubyte"
    f.write_bytes(f.read_bytes()[:-100])
    with pytest.raises(AnetError, match="t10k-images-idx3-ubyte: truncated IDX file"):
        sources.open_idx("mnist", str(folder))
    folder = make_idx_dir(tmp_path / "gz", n_train=10, n_test=10, gz=True)
    f = folder / "train-images-idx3-ubyte.gz"
    images, _ = digits(10, 0)
    f.write_bytes(gzip.compress(write_idx(tmp_path / "x", images).read_bytes()[:-300]))
    raw = sources.open_idx("mnist", str(folder))  # the gz size is only known while reading
    with pytest.raises(AnetError, match="train-images-idx3-ubyte.gz: truncated IDX file"):
        list(raw.items)


def test_idx_label_count_mismatch(tmp_path):
    folder = make_idx_dir(tmp_path / "idx", n_train=10, n_test=10)
    write_idx(folder / "train-labels-idx1-ubyte.gz", np.zeros(9, np.uint8))
    with pytest.raises(AnetError, match="9 labels but .* has 10 images"):
        sources.open_idx("mnist", str(folder))


def test_idx_missing_files_say_which(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(AnetError, match="train-images-idx3-ubyte.gz, train-labels"):
        sources.open_idx("mnist", str(tmp_path / "empty"))


def test_offline_download_says_where_to_put_files(tmp_path, monkeypatch):
    monkeypatch.setenv("ANET_CACHE", str(tmp_path / "cache"))

    def offline(url):
        raise urllib.error.URLError("Name or service not known")

    monkeypatch.setattr(download, "_urlopen", offline)
    with pytest.raises(AnetError) as e:
        sources.open_idx("mnist", None)
    msg = str(e.value)
    assert "Offline?" in msg and "Name or service not known" in msg
    assert "t10k-labels-idx1-ubyte.gz" in msg and str(tmp_path / "cache" / "mnist") in msg


def test_download_checksum_mismatch_leaves_no_file(tmp_path, monkeypatch):
    monkeypatch.setenv("ANET_CACHE", str(tmp_path))
    monkeypatch.setattr(download, "_urlopen", lambda url: io.BytesIO(b"not the file"))
    with pytest.raises(AnetError, match="checksum mismatch"):
        download.fetch("fashion-mnist")
    assert not list((tmp_path / "fashion-mnist").iterdir())


def test_download_broken_http_response_is_a_one_line_error(tmp_path, monkeypatch):
    monkeypatch.setenv("ANET_CACHE", str(tmp_path))

    class Broken(io.BytesIO):
        def read(self, *args):  # a chunked response cut off mid-chunk
            raise http.client.IncompleteRead(b"partial")

    monkeypatch.setattr(download, "_urlopen", lambda url: Broken())
    with pytest.raises(AnetError, match="could not download cifar .*IncompleteRead"):
        download.fetch("cifar")
    assert not list((tmp_path / "cifar").iterdir())


def test_download_verified(tmp_path, monkeypatch):
    monkeypatch.setenv("ANET_CACHE", str(tmp_path))
    payload = b"cifar bytes"
    monkeypatch.setitem(download.RESOURCES, "cifar", (("https://x/",), {
        "cifar-10-python.tar.gz": __import__("hashlib").md5(payload).hexdigest()}))
    monkeypatch.setattr(download, "_urlopen", lambda url: io.BytesIO(payload))
    assert (download.fetch("cifar") / "cifar-10-python.tar.gz").read_bytes() == payload


# --------------------------------------------------------------------------- CIFAR


@pytest.mark.parametrize("as_tar", [False, True])
def test_cifar_folder_and_archive(tmp_path, as_tar):
    source = make_cifar_tar(tmp_path, n=10) if as_tar else make_cifar_dir(tmp_path, n=10).parent
    raw = sources.open_cifar(str(source), tmp_path / "work")
    items = list(raw.items)
    assert raw.classes[0] == "airplane" and raw.classes[9] == "truck" and raw.channels == 3
    assert len(items) == 60
    img, label, meta = items[13]
    assert img.shape == (32, 32, 3) and img.dtype == np.uint8
    assert (img[..., 0] == label * 20).all()  # red plane first: R,G,B planes -> HxWx3
    assert meta["name"] == "thing_s_001003"  # batch 2, image 3


class Evil:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_malicious_pickle_refused_and_not_executed(tmp_path):
    folder = make_cifar_dir(tmp_path, n=10)
    marker = tmp_path / "pwned"
    (folder / "data_batch_1").write_bytes(pickle.dumps(
        {b"data": Evil(marker), b"labels": []}, protocol=2))
    raw = sources.open_cifar(str(folder), tmp_path / "work")
    with pytest.raises(AnetError, match=r"data_batch_1: not a valid CIFAR-10 .*refused .*system"):
        list(raw.items)
    assert not marker.exists()


def test_malicious_meta_refused(tmp_path):
    folder = make_cifar_dir(tmp_path, n=10)
    (folder / "batches.meta").write_bytes(b"cbuiltins\neval\n(S'1+1'\ntR.")
    with pytest.raises(AnetError, match="refused to load global builtins.eval"):
        sources.open_cifar(str(folder), tmp_path / "work")


def _tar_with(path, member: tarfile.TarInfo, data: bytes = b"x"):
    with tarfile.open(path, "w:gz") as tar:
        member.size = len(data) if member.isfile() else 0
        tar.addfile(member, io.BytesIO(data) if member.isfile() else None)
    return path


@pytest.mark.parametrize("name,kind", [("../evil", tarfile.REGTYPE), ("/tmp/evil", tarfile.REGTYPE),
                                       ("link", tarfile.SYMTYPE)])
def test_unsafe_tar_member_refused(tmp_path, name, kind):
    member = tarfile.TarInfo(name)
    member.type = kind
    member.linkname = "/etc/passwd" if kind == tarfile.SYMTYPE else ""
    archive = _tar_with(tmp_path / "cifar-10-python.tar.gz", member)
    with pytest.raises(AnetError, match=f"unsafe archive member '{name}' refused"):
        sources.open_cifar(str(archive), tmp_path / "work")
    assert not (tmp_path / "evil").exists()


def test_cifar_wrong_layout(tmp_path):
    (tmp_path / "nothing").mkdir()
    with pytest.raises(AnetError, match="expected CIFAR-10 python files"):
        sources.open_cifar(str(tmp_path / "nothing"), tmp_path / "work")


# --------------------------------------------------------------------------- karyotype TIFs


def test_read_image_variants(tmp_path):
    img = chromosome(3, 1)
    Image.fromarray(img).save(tmp_path / "a.TIF", format="TIFF", compression="tiff_lzw")
    assert (sources.read_image(tmp_path / "a.TIF") == img).all()
    wide = np.linspace(0, 1, img.size).reshape(img.shape)
    Image.fromarray((1000 + wide * 30000).astype(np.uint16)).save(tmp_path / "b.tiff", format="TIFF")
    b = sources.read_image(tmp_path / "b.tiff")
    # by its bit depth's full range (the intensity policy), not stretched to its own min..max
    assert b.dtype == np.uint8 and b.min() == round(1000 * 255 / 65535) and b.max() == 121
    rgb = np.stack([img, img, img], -1)
    Image.fromarray(rgb).save(tmp_path / "c.tif", format="TIFF")
    c = sources.read_image(tmp_path / "c.tif")
    assert c.shape == img.shape and np.abs(c.astype(int) - img).max() <= 1


@pytest.mark.parametrize("content,reason", [
    (b"", "empty file"), (b"hello world\n", "not an image"), (b"II*\x00" + bytes(500), "not an image"),
])
def test_read_image_bad_files(tmp_path, content, reason):
    (tmp_path / "x.tif").write_bytes(content)
    with pytest.raises(sources.BadImage, match=reason):
        sources.read_image(tmp_path / "x.tif")


def test_read_image_truncated(tmp_path):
    Image.fromarray(chromosome(1, 1)).save(tmp_path / "a.tif", format="TIFF")
    data = (tmp_path / "a.tif").read_bytes()
    (tmp_path / "a.tif").write_bytes(data[: len(data) // 2])
    with pytest.raises(sources.BadImage, match="corrupt or truncated"):
        sources.read_image(tmp_path / "a.tif")


def test_class_folders(tif_tree):
    raw = sources.open_karyotype(str(tif_tree))
    labels = {sources.KARYOTYPE_CLASSES[y] for _, y, _ in raw.items}
    assert labels == {"1", "2", "X"} and raw.count == 64  # 60 images + 4 bad files to skip later
    assert all(isinstance(p, str) for p, _, _ in raw.items)


def test_unknown_label_folder(tif_tree):
    (tif_tree / "23").mkdir()
    with pytest.raises(AnetError, match=r"unknown label folder '23' \(expected 1, 2, .*X, Y\)"):
        sources.open_karyotype(str(tif_tree))


def test_karyotype_label_non_ascii_digits_are_unknown_not_a_crash(tif_tree):
    assert sources.karyotype_label("07") == 6 and sources.karyotype_label("x") == 22
    assert sources.karyotype_label("\u00b2") is None  # "²": isdigit() but not int()-able
    (tif_tree / "\u00b2").mkdir()
    with pytest.raises(AnetError, match="unknown label folder"):
        sources.open_karyotype(str(tif_tree))


def test_manifest_with_and_without_header(tmp_path):
    for header in (True, False):
        m = make_manifest(tmp_path / str(header), cells=3, header=header)
        raw = sources.open_karyotype(str(m))
        assert raw.count == 18
        _, label, meta = raw.items[5]
        assert meta["cell"] == "p00" and sources.KARYOTYPE_CLASSES[label] == "X"
        assert meta["polarity"] == -1 and meta["karyotype"] == ""


def test_manifest_named_columns(tmp_path):
    m = make_manifest(tmp_path, cells=1, header=False)
    rows = m.read_text().splitlines()
    lines = ["path,label,cell,karyotype,polarity,rotation"]
    lines += [f"{r},46,XX,{'up' if i % 2 else 'down'},{i * 10 - 20}".replace(",46,XX", ',"46,XX"')
              for i, r in enumerate(rows)]
    m.write_text("\n".join(lines) + "\n")
    items = sources.open_karyotype(str(m)).items
    assert [meta["polarity"] for _, _, meta in items[:3]] == [1, 0, 1]
    assert [meta["rotation"] for _, _, meta in items[:3]] == [-20.0, -10.0, 0.0]
    assert {meta["karyotype"] for _, _, meta in items} == {"46,XX"}


@pytest.mark.parametrize("header,row,error", [
    ("path,label,cell,polarity", "img/p00/c0.tif,1,p00,left", r":2: polarity 'left' must be up or"),
    ("path,label,cell,rotation", "img/p00/c0.tif,1,p00,tilted", r":2: rotation 'tilted' is not a"),
    ("path,label,colour", "img/p00/c0.tif,1,red", r":1: header path,label,colour: expected"),
    ("path,label,cell,cell", "img/p00/c0.tif,1,p00,p00", r":1: header path,label,cell,cell"),
])
def test_bad_named_manifest(tmp_path, header, row, error):
    m = make_manifest(tmp_path, cells=1)
    m.write_text(f"{header}\n{row}\n")
    with pytest.raises(AnetError, match=error):
        sources.open_karyotype(str(m))


@pytest.mark.parametrize("row,error", [
    ("img/p00/c0.tif,Z,p00", r"manifest.csv:3: unknown label 'Z'"),
    ("img/p00/nope.tif,1,p00", r"manifest.csv:3: missing file img/p00/nope.tif"),
    ("img/p00/c0.tif,1,p00,extra", r"manifest.csv:3: expected 2 to 3 columns"),
])
def test_bad_manifest_row(tmp_path, row, error):
    m = make_manifest(tmp_path, cells=1)
    lines = m.read_text().splitlines()
    lines.insert(2, row)
    m.write_text("\n".join(lines) + "\n")
    with pytest.raises(AnetError, match=error):
        sources.open_karyotype(str(m))


def test_karyotype_wrong_source(tmp_path):
    with pytest.raises(AnetError, match="not a folder of class folders or a .csv manifest"):
        sources.open_karyotype(str(tmp_path / "missing"))
    (tmp_path / "flat").mkdir()
    with pytest.raises(AnetError, match="no class folders"):
        sources.open_karyotype(str(tmp_path / "flat"))


@pytest.mark.parametrize("path", ["../outside.tif", "/etc/passwd", "img/../../outside.tif"])
def test_manifest_row_outside_its_folder_is_refused(tmp_path, path):
    m = make_manifest(tmp_path / "kary", cells=1)
    make_manifest(tmp_path, cells=1)  # a real image file just outside the manifest's folder
    (tmp_path / "outside.tif").write_bytes((tmp_path / "img" / "p00" / "c0.tif").read_bytes())
    lines = m.read_text().splitlines()
    lines.insert(2, f"{path},1,p00")
    m.write_text("\n".join(lines) + "\n")
    with pytest.raises(AnetError, match=rf"manifest.csv:3: {path} lies outside the manifest's folder"):
        sources.open_karyotype(str(m))
