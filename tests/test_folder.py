"""prepare --dataset folder: your own class folders or CSV manifest, through train, evaluate and
predict; class order, jpg folder names, given splits (pure functions) and every bad input."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from anet.data import folder, splits
from anet.data import prepare as prep
from anet.data.records import decode_example, shard_paths
from anet.errors import AnetError
from tests.cli import run_cli
from tests.tinyrun import tiny_config

CLASSES = ("10 classes", "Ankle boot", "größe 2")  # digits, spaces, unicode


def image(c: int, i: int, colour: bool = False) -> Image.Image:
    """A bar whose position says the class, on noise; sizes vary."""
    rng = np.random.default_rng(100 * c + i)
    a = rng.integers(150, 200, (18 + i % 5, 16), dtype=np.uint8)
    a[:, 2 + 5 * c:5 + 5 * c] = 20
    return Image.fromarray(np.stack([a, a // 2, a], -1) if colour else a)


def make_tree(root: Path, per_class: int = 12) -> Path:
    """Class folders of PNGs and JPGs (one colour PNG, one in a subfolder), a broken PNG and a
    text file."""
    for c, name in enumerate(CLASSES):
        (root / name / "sub").mkdir(parents=True)
        for i in range(per_class):
            where = root / name / ("sub" if i == 0 else "") / f"im{i}.{'jpg' if i % 2 else 'png'}"
            image(c, i, colour=(c == 2 and i == 3)).save(where)
    (root / "Ankle boot" / "broken.png").write_bytes(b"not a png")
    (root / "größe 2" / "notes.txt").write_text("not an image")
    (root / ".DS_Store").write_text("hidden: ignored")
    return root


def records(out: Path, split: str) -> list[dict]:
    import tensorflow as tf

    return [decode_example(r.numpy()) for r in tf.data.TFRecordDataset(shard_paths(out, split))]


# --------------------------------------------------------------------------- pure functions


def test_class_order_is_natural_and_deterministic():
    names = ["b", "10", "2", "B", "a 10", "a 2", "Ä", "x"]
    assert folder.class_order(names) == ["2", "10", "a 2", "a 10", "B", "b", "x", "Ä"]
    assert folder.class_order(reversed(names)) == folder.class_order(names)
    assert folder.class_order([str(i) for i in range(1, 23)] + ["Y", "X"])[-3:] == ["22", "X", "Y"]


def test_class_dirs_are_safe_and_unique():
    assert folder.class_dirs(["T-shirt/top", "..", "Cat", "cat", "größe 2"]) == [
        "T-shirt_top", "class", "Cat", "cat-2", "größe 2"]


def test_assign_given_honours_given_splits_and_groups():
    labels = np.arange(40) % 2
    free = -np.ones(40, np.int64)
    groups = np.arange(40)
    assert (splits.assign_given(labels, groups, free, 0.1, 0.1, seed=3)
            == splits.assign_splits(labels, groups, 0.1, 0.1, seed=3)).all()
    given = free.copy()
    given[:10] = 2  # rows 0..9 test
    groups[30:34] = 1  # rows 30..33 join row 1's group: test too
    split = splits.assign_given(labels, groups, given, 0.25, 0.0, seed=0)
    assert (split[:10] == 2).all() and (split[30:34] == 2).all()
    rest = np.r_[split[10:30], split[34:]]  # 13 free rows of each class: 3 each to valid
    assert np.bincount(rest, minlength=3).tolist() == [20, 6, 0]
    assert splits.spanning_groups(groups, split) == 0
    assert splits.spanning_groups([0, 0, 1], [0, 1, 1]) == 1


# --------------------------------------------------------------------------- end to end


def test_folder_tree_prepare_train_evaluate_predict(tmp_path, capsys):
    src = make_tree(tmp_path / "my images")
    out = tmp_path / "data"
    code, stdout, err = run_cli(["prepare", "--dataset", "folder", "--source", src, "--out", out,
                                 "--valid-ratio", "0.2", "--test-ratio", "0.2", "--workers", "1"],
                                capsys)
    assert code == 0, err
    assert "classes: 3 in natural order: 10 classes, Ankle boot, größe 2" in stdout
    assert "channels: 3 (1 of 37 image files are colour; --channels 1 stores them gray)" in stdout
    assert "| my_images | 36 | 22 | 7 | 7 | 18x16 .. 22x16 |" in stdout
    info = json.loads((out / "dataset.json").read_text())
    assert info["name"] == "my_images" and tuple(info["classes"]) == CLASSES
    assert info["channels"] == 3 and info["options"]["channels"] is None
    assert {Path(s["file"]).name for s in info["skipped"]} == {"broken.png", "notes.txt"}
    assert any("not an image file (.txt" in s["reason"] for s in info["skipped"])
    for name in CLASSES:  # every class in every split
        assert all(info["counts"][s][name] >= 2 for s in ("train", "valid", "test"))
    recs = records(out, "test") + records(out, "valid") + records(out, "train")
    assert {r["channels"] for r in recs} == {3}
    assert sorted({r["filename"].split("/")[0] for r in recs}) == sorted(CLASSES)
    assert any(r["filename"] == "Ankle boot/sub-im0.jpg" for r in recs)

    config = tiny_config(tmp_path, out, epochs=1)
    run = tmp_path / "run"
    code, _, err = run_cli(["-q", "train", config, "--run-dir", run], capsys)
    assert code == 0, err
    assert json.loads((run / "input.json").read_text())["classes"] == list(CLASSES)
    code, stdout, err = run_cli(["-q", "evaluate", "--run-dir", run], capsys)
    assert code == 0, err
    ev = json.loads((run / "eval.json").read_text())
    assert ev["dataset"]["name"] == "my_images" and ev["accuracy"]["test"] is not None
    code, stdout, err = run_cli(["predict", "--run-dir", run, src / "größe 2" / "im1.jpg",
                                 "--top-k", "3"], capsys)
    assert code == 0, err
    header, row = stdout.splitlines()
    assert header.split("\t")[:3] == ["path", "class_1", "prob_1"]
    assert {row.split("\t")[i] for i in (1, 3, 5)} == set(CLASSES)

    # the same options reuse it; --channels 3 is what was chosen; --channels 1 is a rebuild
    code, stdout, _ = run_cli(["prepare", "--dataset", "folder", "--source", src, "--out", out,
                               "--valid-ratio", "0.2", "--test-ratio", "0.2", "--channels", "3"],
                              capsys)
    assert code == 0 and "already holds a finished dataset" in stdout
    code, _, err = run_cli(["prepare", "--dataset", "folder", "--source", src, "--out", out,
                            "--valid-ratio", "0.2", "--test-ratio", "0.2", "--channels", "1"], capsys)
    assert code == 2 and "built with --channels 3 (chosen from the images), not 1; use --force" in err


def write_manifest(root: Path, rows: list[str], header: str = "path,label,group,split") -> Path:
    path = root / "labels.csv"
    path.write_text("\n".join([header, *rows]) + "\n", encoding="utf-8")
    return path


def test_csv_manifest_groups_given_splits_and_any_class_names(tmp_path, capsys):
    src = tmp_path / "lab"
    (src / "img").mkdir(parents=True)
    rows = []
    for c, label in enumerate(("T-shirt/top", "Ankle boot", "Bag")):
        for i in range(16):
            image(c, i).save(src / "img" / f"{c}-{i}.png")
            split = "test" if i < 3 else ""  # patient p0 given to test: its row 3 follows it
            rows.append(f"img/{c}-{i}.png,{label},p{c}-{i // 4},{split}")
    manifest = write_manifest(src, rows)
    out = tmp_path / "data"
    code, stdout, err = run_cli(["prepare", "--dataset", "folder", "--manifest", manifest,
                                 "--out", out, "--valid-ratio", "0.25", "--test-ratio", "0.0",
                                 "--workers", "1", "--channels", "1"], capsys)
    assert code == 0, err
    assert "classes: 3 in natural order: Ankle boot, Bag, T-shirt/top" in stdout
    assert "channels: 1 (--channels 1)" in stdout
    info = json.loads((out / "dataset.json").read_text())
    assert info["classes"] == ["Ankle boot", "Bag", "T-shirt/top"] and info["channels"] == 1
    assert info["has_cells"] and (out / "jpg" / "T-shirt_top").is_dir()
    where = {}
    for split in ("train", "valid", "test"):
        for r in records(out, split):
            where.setdefault(r["cell"], set()).add(split)
    assert all(len(s) == 1 for s in where.values())  # a group never spans splits
    assert {g for g, s in where.items() if s == {"test"}} == {"p0-0", "p1-0", "p2-0"}
    assert info["totals"] == {"total": 48, "train": 24, "valid": 12, "test": 12}


# --------------------------------------------------------------------------- bad input


def _prepare(src, tmp_path, **kw):
    return prep.prepare("folder", source=str(src), out=str(tmp_path / "out"), workers=1, **kw)


def test_bad_trees(tmp_path):
    (tmp_path / "flat").mkdir()
    image(0, 0).save(tmp_path / "flat" / "a.png")
    with pytest.raises(AnetError, match=r"flat: no class folders; put each class's images"):
        _prepare(tmp_path / "flat", tmp_path)
    tree = make_tree(tmp_path / "t", per_class=12)
    (tree / "empty one").mkdir()
    with pytest.raises(AnetError, match=r"empty one: class folder 'empty one' holds no image "
                                        r"files; add its images or remove the folder"):
        _prepare(tree, tmp_path, valid_ratio=0.2, test_ratio=0.2)
    (tree / "empty one").rmdir()
    with pytest.raises(AnetError, match=r"class 'größe 2' has 12 images and none fall in the "
                                        r"valid split; each class needs about 20 images .* "
                                        r"raise --valid-ratio to 0.09"):
        _prepare(tree, tmp_path)  # the default 5% splits
    assert not (tmp_path / "out").exists() and not list(tmp_path.glob("out.partial-*"))
    (tree / "all broken").mkdir()
    (tree / "all broken" / "x.png").write_bytes(b"not a png")
    with pytest.raises(AnetError, match=r"class 'all broken' has no readable images"):
        _prepare(tree, tmp_path, valid_ratio=0.2, test_ratio=0.2)


@pytest.mark.parametrize("header, row, error", [
    ("path,lable", "a.png,x", r"labels.csv:1: unknown column 'lable'"),
    ("path,group", "a.png,g", r"labels.csv:1: header path,group lacks the column 'label'"),
    ("path,label", "../a.png,x", r"labels.csv:2: ../a.png lies outside the manifest's folder"),
    ("path,label", "nope.png,x", r"labels.csv:2: missing file nope.png"),
    ("path,label", "a.png, ", r"labels.csv:2: empty label"),
    ("path,label", "a.png,x\nb.png,y\n./a.png,y", r"labels.csv:4: ./a.png is listed again "
                                                  r"\(first on line 2\)"),
    ("path,label,split", "a.png,x,validation", r"labels.csv:2: split 'validation' must be train"),
    ("path,label,group,split", "a.png,x,p1,train\nb.png,y,p1,test",
     r"labels.csv:3: group 'p1' is in split test here but in train on line 2"),
    ("path,label", "a.png,x,extra", r"labels.csv:2: 3 values but the header names 2 columns"),
    ("path,label", "a.png,x\nb.png,x", r"every row has the label 'x'; a classifier needs"),
])
def test_bad_manifest(tmp_path, header, row, error):
    for name in ("a.png", "b.png"):
        image(0, 0).save(tmp_path / name)
    manifest = write_manifest(tmp_path, row.split("\n"), header)
    with pytest.raises(AnetError, match=error):
        _prepare(manifest, tmp_path / "o")


def test_bad_options_exit_2(tmp_path, capsys):
    tree = make_tree(tmp_path / "t")
    for args, error in (
        (["--dataset", "mnist", "--channels", "3"], "--channels is for --dataset folder only"),
        (["--dataset", "folder", "--source", tree, "--manifest", tree / "x.csv"],
         "give --source or --manifest, not both"),
        (["--dataset", "folder"], "--dataset folder needs --source DIR"),
        (["--dataset", "folder", "--manifest", tree / "x.csv"], "x.csv: no such file"),
    ):
        code, _, err = run_cli(["prepare", *args, "--out", tmp_path / "o"], capsys)
        assert code == 2 and error in err and err.startswith("error: ") and err.count("\n") == 1


def test_idx_to_folders_script_writes_a_class_tree(tmp_path):
    import importlib.util

    from tests.conftest import make_idx_dir

    spec = importlib.util.spec_from_file_location(
        "idx_to_folders", Path(__file__).parents[1] / "scripts" / "idx_to_folders.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    assert script.write_tree(make_idx_dir(tmp_path / "idx", n_test=40), tmp_path / "tree", 3) == 30
    assert len(list((tmp_path / "tree" / "Ankle boot").glob("t10k-*.png"))) == 3
    assert folder.list_tree(tmp_path / "tree")[0][:2] == ["Ankle boot", "Bag"]


def test_identical_images_in_two_given_splits_are_a_warning(tmp_path, capsys):
    rows = []
    for c, label in enumerate(("a", "b")):
        for i in range(10):
            image(c, i).save(tmp_path / f"{c}-{i}.png")
            rows.append(f"{c}-{i}.png,{label},{['train', 'valid', 'test'][i % 3]}")
    image(0, 0).save(tmp_path / "copy.png")  # the pixels of 0-0 (train), given to test
    manifest = write_manifest(tmp_path, [*rows, "copy.png,a,test"], "path,label,split")
    code, _, err = run_cli(["prepare", "--dataset", "folder", "--source", manifest, "--out",
                            tmp_path / "out", "--workers", "1"], capsys)
    assert code == 0, err
    assert "warning: 1 sets of identical images lie in different given splits" in err
    info = json.loads((tmp_path / "out" / "dataset.json").read_text())
    assert info["duplicates"] == 1 and info["totals"]["test"] == 7


def test_phone_photos_with_an_exif_orientation_are_prepared_upright(tmp_path, capsys):
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: stored sideways, shown turned right (a phone held upright)
    for c, label in enumerate(("a", "b")):
        (tmp_path / "src" / label).mkdir(parents=True)
        for i in range(6):  # stored 16 wide, 18..22 high; shown 16 high
            image(c, i).save(tmp_path / "src" / label / f"{i}.jpg", exif=exif, quality=95)
    code, stdout, err = run_cli(["prepare", "--dataset", "folder", "--source", tmp_path / "src",
                                 "--out", tmp_path / "out", "--workers", "1", "--valid-ratio",
                                 "0.2", "--test-ratio", "0.2"], capsys)
    assert code == 0, err
    assert "16x18 .. 16x22 |" in stdout  # height x width as shown, not as stored
    stored = np.asarray(Image.open(tmp_path / "src" / "b" / "0.jpg"))
    upright = np.asarray(Image.open(tmp_path / "out" / "jpg" / "b" / "0.jpg"))
    assert upright.shape == (16, 18) and stored.shape == (18, 16)
    assert np.abs(upright.astype(int) - np.rot90(stored, -1)).mean() < 2  # re-encoded JPEG
