"""prepare: splits (pure functions), the JPG + TFRecord output, dataset.json, bad input, atomicity."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from anet.data import iscn, splits
from anet.data import prepare as prep
from anet.data.records import decode_example, shard_paths
from anet.errors import AnetError
from tests.cli import run_cli
from tests.conftest import (
    digits,
    make_cifar_dir,
    make_idx_dir,
    make_manifest,
    make_tif_tree,
    write_idx,
)

ANET = [sys.executable, "-m", "anet.cli"]  # the venv's interpreter, also from a worktree


def records(out: Path, split: str) -> list[dict]:
    import tensorflow as tf

    return [decode_example(r.numpy()) for r in tf.data.TFRecordDataset(shard_paths(out, split))]


# --------------------------------------------------------------------------- splits


def test_assign_splits_exact_per_class():
    labels = np.repeat(np.arange(10), 140)  # like fashion-mnist: 7000 per class / 50
    split = splits.assign_splits(labels, None, 0.05, 0.05, seed=0)
    for c in range(10):
        assert np.bincount(split[labels == c], minlength=3).tolist() == [126, 7, 7]


def test_assign_splits_totals_match_ratio_with_uneven_classes():
    labels = np.repeat(np.arange(5), [101, 97, 230, 45, 12])
    split = splits.assign_splits(labels, None, 0.1, 0.05, seed=3)
    assert np.bincount(split, minlength=3).tolist() == [413, 48, 24]  # round(48.5), round(24.25)
    for c in range(5):
        n = (labels == c).sum()
        assert abs((split[labels == c] == 1).sum() - n * 0.1) < 1


def test_assign_splits_deterministic_and_seed_dependent():
    labels = np.arange(1000) % 7
    a = splits.assign_splits(labels, None, 0.05, 0.05, seed=1)
    assert (a == splits.assign_splits(labels, None, 0.05, 0.05, seed=1)).all()
    assert (a != splits.assign_splits(labels, None, 0.05, 0.05, seed=2)).any()


def test_assign_splits_groups_never_straddle_and_stay_stratified():
    rng = np.random.default_rng(0)
    labels, cells = [], []
    for cell in range(200):  # 46-chromosome cells, XX or XY
        karyo = [c for c in range(22) for _ in range(2)] + ([22, 22] if rng.random() < .5 else [22, 23])
        labels += karyo
        cells += [f"c{cell}"] * len(karyo)
    labels, cells = np.array(labels), np.array(cells)
    split = splits.assign_splits(labels, cells, 0.05, 0.05, seed=0)
    for cell in np.unique(cells):
        assert len(set(split[cells == cell])) == 1
    assert np.bincount(split, minlength=3).tolist() == [8280, 460, 460]  # 180 / 10 / 10 cells
    for c in range(22):
        assert (split[labels == c] == 1).sum() == 20


def karyotype_cells(changes, sexes=("XX", "XY")):
    """Labels, cell ids and ISCN karyotypes of cells made by iscn.make_cell (None = normal)."""
    labels, cells, karyotypes = [], [], {}
    for i, change in enumerate(changes):
        cell = iscn.make_cell(sexes[i % len(sexes)], change)
        karyotypes[f"c{i}"] = cell.karyotype
        labels += [c.label for c in cell.chromosomes]
        cells += [f"c{i}"] * len(cell.chromosomes)
    return np.array(labels), np.array(cells), karyotypes


def kinds_per_split(split, cells, karyotypes) -> dict:
    """kind -> [train, valid, test] cells."""
    out: dict = {}
    for cell, karyotype in karyotypes.items():
        out.setdefault(iscn.kind(karyotype), [0, 0, 0])[int(split[cells == cell][0])] += 1
    return out


CHANGES = ([None] * 30 + ["+13", "+18", "+21", "47,XXY", "47,XYY"] * 2 + ["45,X"] * 2
           + ["del(5)(p14)", "t(9;22)(q34;q11)"])


def test_assign_splits_spreads_every_karyotype_kind():
    # Largest first used to place every 47-chromosome cell before the rest, and all ten went to
    # train ("gain": [10, 0, 0]). Each kind now has its share, rounded down or up, in every split.
    labels, cells, karyotypes = karyotype_cells(CHANGES)
    kinds = splits.cell_strata(cells, karyotypes)
    split = splits.assign_splits(labels, cells, 0.1, 0.1, seed=0, strata=kinds)
    assert kinds_per_split(split, cells, karyotypes) == {
        "normal": [24, 3, 3], "gain": [8, 1, 1], "loss": [2, 0, 0], "structural": [1, 1, 0]}
    golden = [0] * 9 + [2, 0, 0, 0, 1, 0, 1, 0, 0, 0, 0, 2, 2, 1] + [0] * 14 + [2, 0, 1, 0, 0, 1, 0]
    assert [int(split[cells == f"c{i}"][0]) for i in range(len(CHANGES))] == golden
    for c in range(24):  # per class still close to the ratios
        n = (labels == c).sum()
        assert all(abs((split[labels == c] == s).sum() - n * 0.1) <= 1.5 for s in (1, 2))
    # Without known karyotypes the cells' sizes (45, 46, 47) are the strata.
    by_size = splits.assign_splits(labels, cells, 0.1, 0.1, seed=0)
    assert kinds_per_split(by_size, cells, karyotypes)["gain"] == [8, 1, 1]
    assert (splits.assign_splits(labels, cells, 0.1, 0.1, seed=0, strata=kinds) == split).all()
    assert (splits.assign_splits(labels, cells, 0.1, 0.1, seed=1, strata=kinds) != split).any()


@pytest.mark.parametrize("n, fraction, lo, hi", [(5, 0.2, 1, 1), (200, 0.05, 10, 10),
                                                  (200, 0.9, 180, 180), (7, 0.2, 1, 2),
                                                  (3, 0.05, 0, 1), (4, 0.0, 0, 0)])
def test_stratum_bounds_golden(n, fraction, lo, hi):
    low, high = splits._bounds(np.array([n]), np.array([fraction]))
    assert (int(low[0, 0]), int(high[0, 0])) == (lo, hi)


@pytest.mark.parametrize("karyotype, kind", [
    ("46,XX", "normal"), ("46,XY", "normal"), ("47,XY,+21", "gain"), ("47,XXY", "gain"),
    ("45,X", "loss"), ("45,XY,-7", "loss"), ("46,XX,+21,-13", "numerical"),
    ("46,XY,del(5)(p14)", "structural"), ("46,XX,t(9;22)(q34;q11)", "structural"),
    ("47,XX,+18,del(5)(p14)", "gain"), ("47,XX,+21[10]/46,XX[20]", None), ("", None)])
def test_karyotype_kind_golden(karyotype, kind):
    assert iscn.kind(karyotype) == kind


def test_group_ids_union_cells_and_duplicates():
    cells = ["a", "a", "", "", "b", ""]
    digests = [b"1", b"2", b"3", b"2", b"4", b"4"]
    g = splits.group_ids(cells, digests)
    assert g[0] == g[1] == g[3] and g[4] == g[5] and len({g[0], g[2], g[4]}) == 3


def prepared(*args, **kw) -> dict:
    """``prepare``'s result as the dataset.json object it wrote."""
    return prep.prepare(*args, **kw).to_json()


# --------------------------------------------------------------------------- end to end


def _dup_idx(folder: Path) -> Path:
    """An IDX source where train images 5..9 are copies of 0..4 (same labels)."""
    make_idx_dir(folder, n_train=300, n_test=60)
    x, y = digits(300, 0)
    x[5:10], y[5:10] = x[0:5], y[0:5]
    write_idx(folder / "train-images-idx3-ubyte.gz", x)
    write_idx(folder / "train-labels-idx1-ubyte.gz", y.astype(np.uint8))
    return folder


def test_prepare_mnist_end_to_end(tmp_path, capsys):
    src = _dup_idx(tmp_path / "idx")
    out = tmp_path / "mnist"
    meta = prepared("mnist", source=str(src), out=str(out), valid_ratio=0.1, test_ratio=0.1,
                        seed=0, cells=0, workers=1, force=False)
    printed = capsys.readouterr().out
    assert "| mnist | 360 | 288 | 36 | 36 | 28x28 |" in printed
    disk = json.loads((out / "dataset.json").read_text())
    assert disk == meta
    for key in ("name", "source", "seed", "ratios", "classes", "num_classes", "channels", "counts",
                "totals", "size", "mean", "std", "shards", "has_cells", "skipped", "created"):
        assert key in meta
    assert meta["classes"] == list("0123456789") and meta["channels"] == 1
    assert meta["totals"] == {"total": 360, "train": 288, "valid": 36, "test": 36}
    assert all(n == 36 // 10 or n == 4 for n in meta["counts"]["valid"].values())
    assert meta["has_cells"] is False and meta["duplicates"] == 5 and meta["skipped"] == []
    assert not list(tmp_path.glob("mnist.partial-*"))
    # records: every JPG once, label from the path, no pixel content in two splits
    seen, by_split = set(), {}
    for split in splits.SPLITS:
        assert [Path(p).name for p in shard_paths(out, split)] == meta["shards"][split]
        for ex in records(out, split):
            assert ex["filename"] not in seen
            seen.add(ex["filename"])
            assert meta["classes"][ex["label"]] == ex["filename"].split("/")[0]
            assert (out / "jpg" / ex["filename"]).read_bytes() == ex["image"]
            by_split[ex["filename"]] = split
    assert len(seen) == 360
    for i in range(5):  # the duplicated pairs share a split
        c = meta["classes"][int(digits(300, 0)[1][i])]
        assert by_split[f"{c}/train-{i:05d}.jpg"] == by_split[f"{c}/train-{i + 5:05d}.jpg"]
    # mean/std are of the train split (JPGs are lossy; compare to the raw pixels)
    x = np.concatenate([digits(300, 0)[0], digits(60, 1)[0]])
    x[5:10] = x[0:5]
    train = [int(f.split("-")[-1][:5]) + (300 if "t10k" in f else 0)
             for f, s in by_split.items() if s == "train"]
    assert meta["mean"][0] == pytest.approx(x[train].mean() / 255, abs=1e-5)
    assert meta["std"][0] == pytest.approx(x[train].std() / 255, abs=1e-5)


def test_prepare_deterministic_across_workers(tmp_path):
    src = make_idx_dir(tmp_path / "idx", n_train=1200, n_test=100)
    kw = {"source": str(src), "valid_ratio": 0.05, "test_ratio": 0.05, "seed": 7, "cells": 0,
          "force": False}
    a = prepared("mnist", out=str(tmp_path / "a"), workers=1, **kw)
    b = prepared("mnist", out=str(tmp_path / "b"), workers=2, **kw)
    assert a["counts"] == b["counts"] and a["mean"] == b["mean"]
    for split in splits.SPLITS:
        for pa, pb in zip(shard_paths(tmp_path / "a", split), shard_paths(tmp_path / "b", split)):
            assert Path(pa).read_bytes() == Path(pb).read_bytes()


def test_prepare_cifar_rgb(tmp_path):
    src = make_cifar_dir(tmp_path / "raw", n=20)
    out = tmp_path / "cifar"
    meta = prepared("cifar", source=str(src), out=str(out), valid_ratio=0.1, test_ratio=0.1,
                        seed=0, cells=0, workers=1, force=False)
    assert meta["channels"] == 3 and len(meta["mean"]) == 3 and meta["classes"][1] == "automobile"
    assert meta["totals"]["total"] == 120 and meta["size"] == {"min": [32, 32], "max": [32, 32]}
    ex = records(out, "test")[0]
    assert ex["channels"] == 3 and Image.open(out / "jpg" / ex["filename"]).mode == "RGB"
    assert not (out / "tmp").exists()


def test_prepare_karyotype_skips_bad_files(tif_tree, tmp_path):
    out = tmp_path / "k"
    meta = prepared("karyotype", source=str(tif_tree), out=str(out), valid_ratio=0.1,
                        test_ratio=0.1, seed=0, cells=0, workers=1, force=False)
    reasons = {Path(s["file"]).name: s["reason"] for s in meta["skipped"]}
    assert reasons["empty.tif"] == "empty file"
    assert reasons["notes.txt"].startswith("not an image")
    assert reasons["corrupt.tif"].startswith(("not an image", "corrupt"))
    assert reasons["truncated.tif"].startswith(("not an image", "corrupt or truncated"))
    assert meta["totals"]["total"] == 60 and meta["counts"]["valid"]["X"] == 2
    assert meta["classes"][-2:] == ["X", "Y"] and meta["size"]["min"] == [60, 40]
    assert sorted(os.listdir(out / "jpg" / "2"))[:2] == ["img000.jpg", "img001.jpg"]


def test_prepare_manifest_cells_stay_together(tmp_path):
    m = make_manifest(tmp_path / "kary", cells=20)
    out = tmp_path / "k"
    meta = prepared("karyotype", source=str(m), out=str(out), valid_ratio=0.1, test_ratio=0.1,
                        seed=0, cells=0, workers=1, force=False)
    assert meta["has_cells"] and meta["totals"] == {"total": 120, "train": 96, "valid": 12,
                                                     "test": 12}
    split_of: dict[str, set] = {}
    for split in splits.SPLITS:
        for ex in records(out, split):
            split_of.setdefault(ex["cell"], set()).add(split)
    assert len(split_of) == 20 and all(len(s) == 1 for s in split_of.values())


def test_prepare_synthetic_small(tmp_path):
    out = tmp_path / "sk"
    meta = prepared("synthetic-karyotype", source=None, out=str(out), valid_ratio=0.25,
                        test_ratio=0.25, seed=0, cells=4, workers=1, force=False)
    assert meta["totals"] == {"total": 184, "train": 92, "valid": 46, "test": 46}
    assert meta["has_cells"] and (out / "raw" / "manifest.csv").is_file()
    assert meta["num_classes"] == 24 and meta["skipped"] == []
    assert meta["has_polarity"] and meta["karyotypes"] == {f"cell{i:04d}": k for i, k in enumerate(
        ["46,XY", "46,XY", "46,XX", "46,XY"])}
    ex = records(out, "test")
    assert {e["polarity"] for e in ex} == {0, 1} and all(-90 <= e["rotation"] <= 90 for e in ex)


def test_prepare_synthetic_abnormal(tmp_path, capsys):
    out = tmp_path / "ab"
    code, _, _ = run_cli(["prepare", "--dataset", "synthetic-karyotype", "--cells", "3",
                          "--abnormal", "1", "--out", out, "--workers", "1",
                          "--valid-ratio", "0.34", "--test-ratio", "0.34"], capsys)  # a cell each
    meta = json.loads((out / "dataset.json").read_text())
    assert code == 0 and len(meta["karyotypes"]) == 3
    assert all(k.split(",")[2:] or k.split(",")[1] not in ("XX", "XY")
               for k in meta["karyotypes"].values())
    assert meta["totals"]["total"] == sum(int(k.split(",")[0]) for k in meta["karyotypes"].values())
    for rel in meta["structural"]:  # jpg path -> the rearranged chromosome's ISCN name
        cell = rel.split("/")[1].split("-")[0]
        assert (out / "jpg" / rel).is_file() and iscn.is_structural(meta["karyotypes"][cell])
    for bad, msg in ((["--abnormal", "1.5"], "--abnormal 1.5 must be a fraction"),
                     (["--abnormal", "0.2", "--dataset", "mnist"], "--abnormal is for synth")):
        args = ["prepare", "--dataset", "synthetic-karyotype", "--out", tmp_path / "x", *bad]
        code, _, err = run_cli(args, capsys)
        assert code == 2 and msg in err and not (tmp_path / "x").exists()


def test_prepare_synthetic_abnormal_cells_reach_the_test_split(tmp_path, capsys):
    # Seed 0 draws 7 normal, 5 gain (47), 1 loss (45,X) and 3 structural cells; the old
    # largest-first splitter left the test split with normal cells only.
    out = tmp_path / "ab"
    code, stdout, _ = run_cli(["prepare", "--dataset", "synthetic-karyotype", "--cells", "16",
                               "--abnormal", "0.5", "--out", out, "--workers", "1",
                               "--valid-ratio", "0.25", "--test-ratio", "0.25"], capsys)
    karyotypes = json.loads((out / "dataset.json").read_text())["karyotypes"]
    split_of = {ex["cell"]: s for s in splits.SPLITS for ex in records(out, s)}
    kinds: dict = {}
    for cell, karyotype in karyotypes.items():
        kinds.setdefault(iscn.kind(karyotype), []).append(split_of[cell])
    assert code == 0 and {k: len(v) for k, v in kinds.items()} == {
        "normal": 7, "gain": 5, "loss": 1, "structural": 3}
    for where in kinds.values():  # every kind in proportion: its share, rounded down or up
        for s, share in zip(splits.SPLITS, (0.5, 0.25, 0.25)):
            assert np.floor(len(where) * share) <= where.count(s) <= np.ceil(len(where) * share)
    assert kinds["gain"].count("test") >= 1
    table = {k: "/".join(str(v.count(s)) for s in splits.SPLITS) for k, v in kinds.items()}
    assert ("cells per split (train/valid/test) by karyotype: "
            f"normal {table['normal']}, gain {table['gain']}, loss {table['loss']}, "
            f"structural {table['structural']}") in stdout


# --------------------------------------------------------------------------- reruns, errors, atomicity


def test_rerun_without_force_does_nothing(tmp_path, capsys):
    src = make_idx_dir(tmp_path / "idx", n_train=100, n_test=20)
    out = tmp_path / "m"
    args = ["prepare", "--dataset", "mnist", "--source", src, "--out", out, "--workers", "1"]
    assert run_cli(args, capsys)[0] == 0
    stamp = (out / "dataset.json").stat().st_mtime_ns
    code, printed, _ = run_cli(args, capsys)
    assert code == 0 and "already holds a finished dataset" in printed
    assert "| mnist | 120 | 108 | 6 | 6 | 28x28 |" in printed
    assert (out / "dataset.json").stat().st_mtime_ns == stamp
    code, printed, _ = run_cli(args + ["--force", "--seed", "1"], capsys)
    assert code == 0 and json.loads((out / "dataset.json").read_text())["seed"] == 1
    assert not list(tmp_path.glob("m.old-*")) and not list(tmp_path.glob("m.partial-*"))


def test_leftover_partial_removed_and_foreign_dir_kept(tmp_path, capsys):
    src = make_idx_dir(tmp_path / "idx", n_train=50, n_test=10)
    dead = tmp_path / "m.partial-999999999"
    (dead / "jpg").mkdir(parents=True)
    out = tmp_path / "m"
    out.mkdir()
    (out / "mine.txt").write_text("user data")
    args = ["prepare", "--dataset", "mnist", "--source", src, "--out", out, "--workers", "1"]
    code, _, err = run_cli(args, capsys)
    assert code == 2 and f"error: --out {out} is a folder anet did not make" in err
    assert not dead.exists() and (out / "mine.txt").exists()


def test_cli_unknown_label_folder(tmp_path, capsys):
    make_tif_tree(tmp_path / "tifs", per_class=2, bad=False)
    (tmp_path / "tifs" / "abc").mkdir()
    code, _, err = run_cli(["prepare", "--dataset", "karyotype", "--source", tmp_path / "tifs",
                            "--out", tmp_path / "o", "--workers", "1"], capsys)
    assert code == 2 and err.startswith("error: ") and "unknown label folder 'abc'" in err
    assert not (tmp_path / "o").exists() and not list(tmp_path.glob("o.partial-*"))


def test_cli_bad_manifest_row_and_ratios(tmp_path, capsys):
    m = make_manifest(tmp_path, cells=2)
    m.write_text(m.read_text() + "img/p00/c0.tif,25,p00\n")
    code, _, err = run_cli(["prepare", "--dataset", "karyotype", "--source", m,
                            "--out", tmp_path / "o"], capsys)
    assert code == 2 and f"error: {m}:14: unknown label '25'" in err
    code, _, err = run_cli(["prepare", "--dataset", "mnist", "--valid-ratio", "0.6",
                            "--test-ratio", "0.5", "--out", tmp_path / "o"], capsys)
    assert code == 2 and "sum to less than 1" in err


def test_prepare_no_usable_images(tmp_path):
    (tmp_path / "t" / "5").mkdir(parents=True)
    (tmp_path / "t" / "5" / "a.tif").write_bytes(b"")
    with pytest.raises(AnetError, match="no usable images"):
        prep.prepare("karyotype", source=str(tmp_path / "t"), out=str(tmp_path / "o"), workers=1)
    assert not list(tmp_path.glob("o*"))


@pytest.mark.slow
def test_sigkill_midway_leaves_no_finished_dataset(tmp_path):
    src = make_idx_dir(tmp_path / "idx", n_train=3000, n_test=500)
    out = tmp_path / "m"
    cmd = [*ANET, "prepare", "--dataset", "mnist", "--source", str(src), "--out", str(out),
           "--workers", "1"]
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    deadline = time.time() + 60
    while time.time() < deadline:  # wait until JPGs are being written
        partial = list(tmp_path.glob("m.partial-*/jpg/*/*.jpg"))
        if partial:
            break
        time.sleep(0.01)
    assert partial and proc.poll() is None, "prepare finished before it could be killed"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (out / "dataset.json").exists() and list(tmp_path.glob("m.partial-*"))
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120,
                          check=False)
    assert done.returncode == 0, done.stderr
    assert "removing leftover" in done.stderr and "| mnist | 3500 |" in done.stdout
    assert (out / "dataset.json").is_file() and not list(tmp_path.glob("m.partial-*"))
    meta = json.loads((out / "dataset.json").read_text())
    assert hashlib.sha256(json.dumps(meta["counts"]).encode()).hexdigest()  # parseable, complete


def test_too_few_cells_for_a_validation_split_is_an_error(tmp_path, capsys):
    m = make_manifest(tmp_path / "k", cells=2)
    out = tmp_path / "o"
    code, _, err = run_cli(["prepare", "--dataset", "karyotype", "--source", m, "--out", out,
                            "--workers", "1"], capsys)
    assert code == 2 and err.splitlines()[-1] + "\n" == (
        "error: the validation split is empty: 12 images in 2 groups (cells / sets of identical "
        "images) at --valid-ratio 0.05; about 20 groups are needed (add images/--cells or raise "
        "--valid-ratio)\n")
    assert not out.exists() and not list(tmp_path.glob("o.partial-*"))
    code, _, err = run_cli(["prepare", "--dataset", "karyotype", "--source", m, "--out", out,
                            "--valid-ratio", "0"], capsys)
    assert code == 2 and err.startswith("error: --valid-ratio 0: a validation split is required")


def test_empty_test_split_is_a_warning(tmp_path, capsys):
    m = make_manifest(tmp_path / "k", cells=12)
    code, _, err = run_cli(["prepare", "--dataset", "karyotype", "--source", m, "--out",
                            tmp_path / "o", "--workers", "1", "--valid-ratio", "0.25",
                            "--test-ratio", "0.01"], capsys)
    assert code == 0
    assert ("warning: the test split is empty: 72 images in 12 groups (cells / sets of identical "
            "images) at --test-ratio 0.01; about 100 groups are needed") in err


@pytest.mark.slow
def test_workers_end_when_prepare_is_sigkilled(tmp_path):
    src = make_idx_dir(tmp_path / "idx", n_train=3000, n_test=500)
    cmd = [sys.executable, "-m", "anet.cli", "prepare", "--dataset", "mnist", "--source", str(src),
           "--out", str(tmp_path / "m"), "--workers", "2"]
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def children() -> list[int]:
        kids = []
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == proc.pid:  # field 4 of /proc/PID/stat: the parent pid
                kids.append(int(stat.parent.name))
        return kids

    deadline = time.time() + 60
    while time.time() < deadline and not (len(children()) >= 2 and list(tmp_path.glob(
            "m.partial-*/jpg/*/*.jpg"))):
        time.sleep(0.05)
    workers = children()
    assert len(workers) >= 2 and proc.poll() is None, "prepare finished before it could be killed"
    proc.kill()  # SIGKILL to prepare alone, not its process group: no cleanup runs
    proc.wait()
    def running(pid: int) -> bool:  # a zombie (ended, not yet reaped) counts as ended
        try:
            return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
        except OSError:
            return False

    deadline = time.time() + 10
    while time.time() < deadline and any(running(w) for w in workers):
        time.sleep(0.1)
    alive = [w for w in workers if running(w)]
    assert not alive, f"workers {alive} outlived prepare"


@pytest.mark.parametrize("n,p,width", [(48, 0.5, 0.2829), (385, 0.5, 0.0999), (100, 0.9, 0.1176),
                                       (0, 0.5, float("inf"))])
def test_interval_width_golden(n, p, width):
    assert splits.interval_width(n, p) == pytest.approx(width, abs=1e-4)


def test_prepare_warns_about_missing_classes_and_a_small_test_split(tif_tree, tmp_path, capsys):
    prep.prepare("karyotype", source=str(tif_tree), out=str(tmp_path / "out"), workers=1)
    err = capsys.readouterr().err
    assert "warning: 21 of 24 expected classes have no images: 3, 4," in err
    assert "warning: the test split has 3 images (1 in its smallest class): the 95% interval " \
           "of a test accuracy is up to 1.132 wide" in err
    assert "--test-ratio 0.3: 18 images, width 0.462" in err


def test_prepare_is_split_by_step_and_each_module_stays_small():
    # STYLE: one module per concern, under ~400 lines; step one (the JPG workers) is its own
    from anet.data import jpgs

    for module in (prep, jpgs):
        assert len(Path(module.__file__).read_text().splitlines()) <= 400, module.__name__
    assert prep.jpgs.write_jpgs is jpgs.write_jpgs and prep.jpgs.mapper is jpgs.mapper
