"""The polarity head: layer table and counts, the loss, the records' polarity through the
pipeline (rotations past horizontal flip it), and one tiny run through train, evaluate, predict,
predict --cell and export."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from anet import models
from anet.config import DataConfig, load_config
from anet.data import pipeline
from anet.data.contract import from_dataset
from anet.data.info import load_dataset
from anet.data.sources import KARYOTYPE_CLASSES
from anet.steps import polarity_loss
from anet.train import train
from tests.cli import run_cli
from tests.tinydata import cell_folder, write_dataset
from tests.tinyrun import tiny_config


@pytest.mark.parametrize("name, size", [("alexnet", 67), ("anetc6", 67), ("vgg16", 32)])
def test_head_shares_the_trunk_with_exact_counts(name, size):
    opts = {"width": 0.0625, "fc_units": 32}
    plain = models.layer_table(name, (size, size, 1), 24, **opts)
    rows = models.layer_table(name, (size, size, 1), 24, polarity=True, **opts)
    head = rows[-1]
    assert rows[:-1] == plain and (head.name, head.kind, head.shape) == ("polarity", "head", (2,))
    assert (head.params, head.flops) == (32 * 2 + 2, 2 * 32 * 2)  # a dense 32 -> 2 on drop2
    model = models.build(name, (size, size, 1), 24, polarity=True, **opts)
    assert model.count_params() == sum(r.params for r in rows)
    assert model.get_layer("polarity").input.name == model.get_layer("fc3").input.name
    probs, pol = models.split_outputs(model(np.zeros((2, size, size, 1), np.float32)))
    assert probs.shape == (2, 24) and pol.shape == (2, 2) and models.has_polarity(model)


def test_polarity_loss_ignores_unknown():
    probs = tf.constant([[0.8, 0.2], [0.8, 0.2], [0.5, 0.5]])
    loss = polarity_loss(tf.constant([0, 1, -1]), probs).numpy()
    np.testing.assert_allclose(loss, [-math.log(0.8), -math.log(0.2), 0.0], rtol=1e-5)


@pytest.mark.parametrize("pol, rotation, degrees, want", [
    (0, 0.0, 30.0, 0), (0, 80.0, 20.0, 1), (1, 80.0, 20.0, 0), (1, -60.0, -40.0, 0),
    (0, -60.0, -20.0, 0), (0, 10.0, 180.0, 1), (-1, 80.0, 20.0, -1), (1, 0.0, -91.0, 0)])
def test_rotation_past_horizontal_flips_polarity(pol, rotation, degrees, want):
    got = pipeline.rotated_polarity(tf.constant(pol), tf.constant(rotation), tf.constant(degrees))
    assert int(got) == want


@pytest.fixture(scope="module")
def polar(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("polar")
    data = write_dataset(tmp / "data", num_classes=24, size=(30, 12), polarity=True,
                         n_per_split={"train": 96, "valid": 24, "test": 48}, jpg_tree=True)
    meta = json.loads((data / "dataset.json").read_text())
    meta["classes"] = list(KARYOTYPE_CLASSES)
    (data / "dataset.json").write_text(json.dumps(meta))
    cfg = load_config(tiny_config(tmp, data, name="polar", epochs=2),
                      ["model.polarity=true", "model.polarity_weight=1.0"])
    run = tmp / "runs" / "polar"
    train(cfg, run)
    return tmp, data, run


def test_pipeline_carries_polarity(polar):
    _, data, _ = polar
    spec = from_dataset(DataConfig(dir=str(data), image_size=40), load_dataset(data))
    x, y, pol = next(iter(pipeline.train_dataset(data, spec, batch_size=8, epoch=0, seed=0,
                                                 polarity=True)))
    assert x.shape[0] == y.shape[0] == pol.shape[0] == 8 and set(pol.numpy()) <= {0, 1}
    *_, pol = next(iter(pipeline.eval_dataset(data, "test", spec, batch_size=8, with_meta=True,
                                              polarity=True)))
    assert pol.dtype == tf.int32 and set(pol.numpy()) <= {0, 1}


def test_tiny_run_with_the_head(polar, tmp_path, capsys):
    _, data, run = polar
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert any(0 <= r.get("valid_polarity_acc", -1) <= 1 for r in rows if r["kind"] == "epoch")
    state = json.loads(sorted((run / "checkpoints").glob("ckpt-*/state.json"))[-1].read_text())
    assert 0 <= state["valid_polarity_acc"] <= 1
    code, out, err = run_cli(["evaluate", "--run-dir", run, "--karyograms", "1"], capsys)
    result = json.loads((run / "eval.json").read_text())
    assert code == 0 and result["polarity"]["examples"] == 48, err
    assert 0 <= result["polarity"]["accuracy"] <= 1 and "polarity (test, 48 known)" in out
    # predict: a polarity column; export: the serving signatures return it
    img = sorted((data / "jpg").rglob("test_*.jpg"))[0]
    code, out, err = run_cli(["predict", "--run-dir", run, img], capsys)
    header, row = out.splitlines()
    assert header.split("\t")[-3:] == ["polarity", "polarity_prob", "flags"], err
    assert row.split("\t")[-3] in ("up", "down")
    code, out, err = run_cli(["export", "--run-dir", run, "--out", tmp_path / "exp"], capsys)
    assert code == 0, err
    served = tf.saved_model.load(str(tmp_path / "exp")).signatures["serving_default"](
        images=tf.constant([img.read_bytes()]))
    assert served["polarity_probabilities"].shape == (1, 2)
    assert served["polarity"].numpy()[0].decode() in ("up", "down")
    assert json.loads((tmp_path / "exp" / "export.json").read_text())["polarity"] == ["up", "down"]
    # predict --cell: labels after the assignment, polarity, the call and the karyogram
    cell = cell_folder(data, tmp_path / "cell0")
    code, out, err = run_cli(["predict", "--run-dir", run, "--cell", cell, "--karyogram",
                              tmp_path / "k.png"], capsys)
    lines = out.splitlines()
    assert code == 0 and lines[0] == "path\tlabel\targmax\tpolarity", err
    assert len(lines) == 8 and lines[-1].startswith("call: 6,")
    assert all(line.split("\t")[3] in ("up", "down") for line in lines[1:-1])
    assert Image.open(tmp_path / "k.png").format == "PNG"


def test_polarity_refused_without_polarity_data(tmp_path, capsys):
    data = write_dataset(tmp_path / "plain")
    cfg = tiny_config(tmp_path, data)
    code, _, err = run_cli(["train", cfg, "--set", "model.polarity=true", "--run-dir",
                            tmp_path / "r"], capsys)
    assert code == 2 and err.strip().splitlines()[-1] == (
        f"error: model.polarity: true, but dataset tiny ({data}) records no polarity; set "
        "model.polarity: false or prepare data whose manifest has a polarity column")
    code, _, err = run_cli(["config", cfg, "--set", "model.polarity_weight=0"], capsys)
    assert code == 2 and "model.polarity_weight" in err and "must be > 0" in err


def test_predict_cell_errors(polar, tmp_path, capsys):
    _, data, run = polar
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "sub").mkdir()
    many = tmp_path / "many"
    many.mkdir()
    for i in range(101):
        (many / f"c{i}.png").write_bytes(b"")
    bad = tmp_path / "bad"
    bad.mkdir()
    Image.fromarray(np.full((30, 12), 200, np.uint8)).save(bad / "a.png")
    (bad / "b.png").write_bytes(b"not an image")
    for folder, msg in ((empty, "empty: no chromosome images; it holds 1 folders: pass one cell's"),
                        (many, "many: 101 images, more than one cell holds (at most 100"),
                        (bad, "b.png: cannot read (")):
        code, out, err = run_cli(["predict", "--run-dir", run, "--cell", folder], capsys)
        assert code == 2 and msg in err and out == "", err
    code, _, err = run_cli(["predict", "--run-dir", run, "--karyogram", tmp_path / "k.png",
                            str(bad / "a.png")], capsys)
    assert code == 2 and "--karyogram draws one cell's karyogram; add --cell DIR" in err
    code, _, err = run_cli(["predict", "--run-dir", run, "--cell", bad, "--json"], capsys)
    assert code == 2 and "--json does not apply to one cell's call" in err


def test_augmented_rotation_past_horizontal_flips_the_target(tmp_path):
    data = write_dataset(tmp_path / "d", size=(30, 12), polarity=True)  # rotation 0 recorded
    spec = from_dataset(DataConfig(dir=str(data), image_size=40), load_dataset(data))
    aug = pipeline.Augmentation(crop=False, flip=False, rotate_degrees=180)
    kw = {"batch_size": 16, "epoch": 0, "seed": 0, "polarity": True}
    plain = next(iter(pipeline.train_dataset(data, spec, **kw)))[2].numpy()
    turned = next(iter(pipeline.train_dataset(data, spec, augmentation=aug, **kw)))[2].numpy()
    epoch_seed = 0 * 100003 + 0
    degrees = np.array([float(pipeline.augment_degrees(tf.constant([epoch_seed, i], tf.int64), aug))
                        for i in range(16)])
    np.testing.assert_array_equal(turned, np.where(np.abs(degrees) > 90, 1 - plain, plain))
