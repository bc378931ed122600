"""Inputs that used to end in a Python traceback: each is now one `error: ...` line, exit 2."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import struct
import subprocess
from pathlib import Path

import pytest

from anet.data import sources
from anet.runs import RunPaths
from tests.cli import run_cli
from tests.conftest import make_idx_dir, make_tif_tree
from tests.tinydata import write_dataset
from tests.tinyrun import make_tiny_run, tiny_config


def last_line(err: str) -> str:
    return err.strip().split("\r")[-1].splitlines()[-1]


# --------------------------------------------------------------------------- 14


@pytest.mark.parametrize("damage", ["crc", "deflate", "not-gzip"])
def test_corrupt_gz_idx_is_one_line(tmp_path, capsys, damage):
    src = make_idx_dir(tmp_path / "idx", n_train=30, n_test=10)
    f = src / "train-images-idx3-ubyte.gz"
    data = bytearray(f.read_bytes())
    if damage == "crc":
        data[-8] ^= 0xFF  # the gzip trailer's CRC32
    elif damage == "deflate":
        data[20:40] = bytes(20)
    else:
        data[:2] = b"xx"
    f.write_bytes(bytes(data))
    code, _, err = run_cli(["prepare", "--dataset", "mnist", "--source", src, "--out",
                            tmp_path / "o", "--workers", "1"], capsys)
    assert code == 2, err
    assert last_line(err).startswith(f"error: {f}: corrupt or truncated IDX file (")
    assert not (tmp_path / "o").exists()


def test_dataset_json_with_wrong_keys_is_one_line(tmp_path, capsys):
    data = write_dataset(tmp_path / "data")
    meta = json.loads((data / "dataset.json").read_text())
    (data / "dataset.json").write_text(json.dumps({"nmae": meta.pop("name"), **meta}))
    cfg = tiny_config(tmp_path, data)
    code, _, err = run_cli(["train", cfg, "--run-dir", tmp_path / "r"], capsys)
    assert code == 2 and err.startswith(f"error: {data / 'dataset.json'}: unknown key 'nmae'")
    code, _, err = run_cli(["report", "--dataset", data], capsys)
    assert code == 2 and err.startswith(f"error: {data / 'dataset.json'}: unknown key 'nmae'")


# --------------------------------------------------------------------------- 15


def bomb_tif(path: Path, side: int = 100_000) -> Path:
    """A tiny TIF whose header claims side x side 8-bit pixels (a decompression bomb)."""
    tags = [(256, 4, side), (257, 4, side), (258, 3, 8), (259, 3, 1), (262, 3, 1),
            (273, 4, 8), (277, 3, 1), (278, 4, 1), (279, 4, side)]
    ifd = struct.pack("<H", len(tags)) + b"".join(
        struct.pack("<HHII" if t == 4 else "<HHIHxx", tag, t, 1, v) for tag, t, v in tags)
    path.write_bytes(b"II*\x00" + struct.pack("<I", 8) + ifd + b"\x00\x00\x00\x00")
    return path


def test_prepare_skips_and_lists_a_decompression_bomb(tmp_path, capsys):
    tifs = make_tif_tree(tmp_path / "tifs", per_class=4, bad=False)
    bomb = bomb_tif(tifs / "1" / "bomb.tif")
    limit = r"\(the limit is 89,478,485\)$"
    with pytest.raises(sources.BadImage, match=r"^too large: 10,000,000,000 pixels " + limit):
        sources.read_image(bomb)
    mid = bomb_tif(tmp_path / "mid.tif", side=10_000)  # over anet's limit, under Pillow's error
    with pytest.raises(sources.BadImage, match=r"^too large: 100,000,000 pixels"):
        sources.read_image(mid)
    out = tmp_path / "o"
    code, _, err = run_cli(["prepare", "--dataset", "karyotype", "--source", tifs, "--out", out,
                            "--workers", "1", "--valid-ratio", "0.2", "--test-ratio", "0.2"], capsys)
    assert code == 0, err
    skipped = json.loads((out / "dataset.json").read_text())["skipped"]
    assert [s["file"] for s in skipped] == [str(bomb)] and "too large" in skipped[0]["reason"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    return make_tiny_run(tmp_path_factory.mktemp("tb"), epochs=1)


def test_predict_refuses_a_decompression_bomb(trained, tmp_path, capsys):
    bomb = bomb_tif(tmp_path / "bomb.tif")
    code, _, err = run_cli(["predict", "--ckpt-dir", trained, bomb], capsys)
    assert code == 2
    assert err == (f"error: {bomb}: cannot read image (too large: 10,000,000,000 pixels (the "
                   "limit is 89,478,485))\n")


# --------------------------------------------------------------------------- 16


@contextlib.contextmanager
def read_only(folder: Path):
    """Make ``folder`` unwritable: chmod for a normal user, the immutable flag for root."""
    folder.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0:
        folder.chmod(0o500)
        try:
            yield
        finally:
            folder.chmod(0o700)
        return
    if shutil.which("chattr") is None or subprocess.run(
            ["chattr", "+i", str(folder)], capture_output=True).returncode != 0:
        pytest.skip("running as root without chattr +i: cannot make a folder read-only")
    try:
        yield
    finally:
        subprocess.run(["chattr", "-i", str(folder)], check=True)


def test_read_only_run_dir_fails_before_any_training(trained, tmp_path, capsys):
    run = Path(shutil.copytree(trained, tmp_path / "run"))
    cfg = trained.parent.parent / "tiny.yaml"
    steps_before = len(list(RunPaths(run).checkpoints.glob("ckpt-*")))
    with read_only(RunPaths(run).checkpoints):
        code, printed, err = run_cli(["train", cfg, "--run-dir", run, "--set", "train.epochs=3"],
                                     capsys)
    assert code == 2 and "epoch" not in printed and "resuming" not in printed
    assert err.startswith(f"error: {RunPaths(run).checkpoints}: cannot write here (")
    assert err.rstrip().endswith("fix its permissions or use another --run-dir")
    assert len(list(RunPaths(run).checkpoints.glob("ckpt-*"))) == steps_before


def test_read_only_out_folders_are_one_line_errors(trained, tmp_path, capsys):
    locked = tmp_path / "locked"
    src = make_idx_dir(tmp_path / "idx", n_train=30, n_test=10)
    run = Path(shutil.copytree(trained, tmp_path / "run"))
    with read_only(locked):
        code, _, err = run_cli(["prepare", "--dataset", "mnist", "--source", src, "--out",
                                locked / "m"], capsys)
        assert code == 2 and err.startswith(f"error: {locked}: cannot write here (")
        code, _, err = run_cli(["export", "--ckpt-dir", run, "--out", locked / "e"], capsys)
        assert code == 2 and err.startswith(f"error: {locked}: cannot write here (")
        assert err.rstrip().endswith("choose another --out")
    with read_only(run):
        code, _, err = run_cli(["evaluate", "--ckpt-dir", run, "--split", "valid"], capsys)
        assert code == 2 and err.startswith(f"error: {run}: cannot write here (")


def test_check_writable_names_a_file_in_the_way(tmp_path):
    from anet.errors import AnetError
    from anet.files import check_writable

    (tmp_path / "f").write_text("x")
    with pytest.raises(AnetError, match="not a folder"):
        check_writable(tmp_path / "f" / "sub", "choose another --out")
    assert check_writable(tmp_path / "new" / "sub", "x").is_dir()
    assert not list((tmp_path / "new" / "sub").iterdir())  # the probe file is gone
