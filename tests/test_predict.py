"""anet predict and export: the training preprocessing, checkpoint choice, SavedModel round trip."""

import io
import json
import sys
from dataclasses import replace

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from anet.cli import main
from anet.data import pipeline
from anet.data.images import image_bytes, load_inputs
from anet.data.records import decode_example, shard_paths
from anet.predict import export, predict
from anet.runs import Run, build_model, choose_checkpoint, open_run
from tests.tinyrun import make_tiny_run


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    return make_tiny_run(tmp_path_factory.mktemp("pr"), epochs=2)


@pytest.fixture(scope="module")
def spec(run):
    return open_run(run).spec()


def png(arr) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, "PNG")
    return buf.getvalue()


def test_inputs_are_eval_transform_of_the_same_bytes(run, spec, tmp_path):
    arr = np.random.default_rng(0).integers(0, 256, (40, 24), dtype=np.uint8)
    (tmp_path / "a.png").write_bytes(png(arr))
    Image.fromarray(arr).save(tmp_path / "b.jpg", quality=90)
    x = load_inputs([tmp_path / "a.png", tmp_path / "b.jpg"], spec)
    for i, name in enumerate(("a.png", "b.jpg")):
        want = pipeline.eval_transform(tf.constant((tmp_path / name).read_bytes()), spec)
        np.testing.assert_array_equal(x[i].numpy(), want.numpy())
    assert x.shape == (2, 67, 67, 1)


def test_16bit_tif_is_min_max_scaled_like_prepare(spec, tmp_path):
    a = np.linspace(1000, 41000, 40 * 24).reshape(40, 24).astype(np.uint16)
    Image.fromarray(a).save(tmp_path / "c.tif")
    data = image_bytes(tmp_path / "c.tif", 1)
    gray = np.asarray(Image.open(io.BytesIO(data)))
    expect = np.round((a.astype(float) - 1000) * 255 / 40000).astype(np.uint8)
    np.testing.assert_array_equal(gray, expect)
    want = pipeline.eval_transform(tf.constant(png(expect)), spec)
    np.testing.assert_array_equal(load_inputs([tmp_path / "c.tif"], spec)[0].numpy(), want.numpy())


def test_predict_matches_the_model_on_eval_dataset(run, spec, tmp_path, capsys):
    data_dir = open_run(run).cfg.data.dir
    records = {}
    for r in tf.data.TFRecordDataset(shard_paths(data_dir, "test")):
        ex = decode_example(r.numpy())
        records[ex["filename"]] = ex["image"]
    x, _, names, _ = next(iter(pipeline.eval_dataset(data_dir, "test", spec, batch_size=5,
                                                     with_meta=True)))
    names = [n.decode() for n in names.numpy()]
    paths = []
    for i, name in enumerate(names):
        paths.append(tmp_path / f"{i}.jpg")
        paths[-1].write_bytes(records[name])
    results = predict(run, paths, top_k=3)
    r = Run(run, open_run(run).cfg, open_run(run).ckpts)
    probs = build_model(r, choose_checkpoint(r)[0])(x, training=False).numpy()
    for res, p in zip(results, probs):
        assert [c for c, _ in res["top"]] == [str(i) for i in np.argsort(-p, kind="stable")]
        np.testing.assert_allclose([v for _, v in res["top"]], np.sort(p)[::-1], atol=1e-6)
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("# ckpt-") and out[1].startswith(f"{paths[0]}\t")


def test_checkpoint_choice(run, tmp_path):
    r = open_run(run)
    scored = [c for c in r.ckpts if c.valid_acc is not None]
    best = max(scored, key=lambda c: (c.valid_acc, -c.step))
    c, why = choose_checkpoint(r)
    assert c.step == best.step and why.startswith("recorded during training")
    assert choose_checkpoint(r, "5")[0].step == 5
    unscored = Run(r.dir, r.cfg, tuple(replace(c, valid_acc=None)
                                       for c in r.ckpts))
    assert choose_checkpoint(unscored)[0].step == r.ckpts[-1].step
    copy = Run(tmp_path, r.cfg, r.ckpts)
    (tmp_path / "eval.json").write_text(json.dumps({"chosen": {"name": "ckpt-00000005"}}))
    c, why = choose_checkpoint(copy)
    assert c.step == 5 and "evaluate" in why


def test_export_serves_raw_bytes_like_the_keras_model(run, spec, tmp_path):
    import keras

    out = export(run, tmp_path / "export")
    assert (out / "saved_model.pb").is_file() and (out / "model.keras").is_file()
    rng = np.random.default_rng(1)
    images = []
    for _ in range(3):
        buf = io.BytesIO()
        Image.fromarray(rng.integers(0, 256, (40, 24), dtype=np.uint8)).save(buf, "JPEG")
        images.append(buf.getvalue())
    served = tf.saved_model.load(str(out)).signatures["serving_default"](
        images=tf.constant(images))
    x = tf.stack([pipeline.eval_transform(tf.constant(b), spec) for b in images])
    r = open_run(run)
    want = build_model(r, choose_checkpoint(r)[0])(x, training=False).numpy()
    np.testing.assert_allclose(served["probabilities"].numpy(), want, atol=1e-5)
    ids = want.argmax(axis=1)
    assert served["class_ids"].numpy().tolist() == ids.tolist()
    assert [n.decode() for n in served["class_names"].numpy()] == [str(i) for i in ids]
    reloaded = keras.models.load_model(out / "model.keras")
    np.testing.assert_allclose(reloaded(x, training=False).numpy(), want, atol=1e-5)
    info = json.loads((out / "export.json").read_text())
    assert info["classes"] == ["0", "1", "2"]
    export(run, out)  # an earlier export is replaced


def test_export_refuses_a_foreign_folder(run, tmp_path, monkeypatch, capsys):
    (tmp_path / "keep.txt").write_text("mine")
    err = cli_error(monkeypatch, capsys, "export", "--ckpt-dir", run, "--out", tmp_path)
    assert "is not an anet export" in err and (tmp_path / "keep.txt").exists()
    err = cli_error(monkeypatch, capsys, "export", "--ckpt-dir", run, "--out", tmp_path / "keep.txt")
    assert "is not an anet export" in err and (tmp_path / "keep.txt").read_text() == "mine"


def cli_error(monkeypatch, capsys, *args):
    monkeypatch.setattr(sys, "argv", ["anet", *map(str, args)])
    with pytest.raises(SystemExit) as e:
        main()
    err = capsys.readouterr().err
    assert e.value.code == 2 and err.startswith("error: ") and err.count("\n") == 1, err
    return err


def test_unreadable_images(run, tmp_path, monkeypatch, capsys):
    (tmp_path / "notes.png").write_text("not an image")
    (tmp_path / "empty.jpg").write_bytes(b"")
    (tmp_path / "cut.png").write_bytes(png(np.zeros((40, 24), np.uint8))[:60])
    for name, message in [("notes.png", "cannot read image (not an image"),
                          ("empty.jpg", "cannot read image (empty file)"),
                          ("cut.png", "cannot read image"),
                          ("missing.jpg", "no such image file")]:
        err = cli_error(monkeypatch, capsys, "predict", "--ckpt-dir", run, tmp_path / name)
        assert f"{tmp_path / name}: {message}" in err


def test_predict_without_a_run(tmp_path, monkeypatch, capsys):
    err = cli_error(monkeypatch, capsys, "predict", "--ckpt-dir", tmp_path / "nope", "x.png")
    assert "no such run directory" in err
